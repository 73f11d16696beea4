"""Tests of FixedEncoders: the TD7 online -> fixed -> fixed target chain."""

import pytest
import torch
from torch import nn

from mmsa_sale import Encoder, FixedEncoders, encoder_loss

B, OBS, A, Z, H = 4, 7, 6, 8, 16


def _encoder(seed: int) -> Encoder:
    torch.manual_seed(seed)
    return Encoder(in_dim=OBS, action_dim=A, zs_dim=Z, hidden=H)


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(module: nn.Module, snapshot: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, snapshot[k]) for k, v in module.state_dict().items())


def _train_step(encoders: FixedEncoders, optimiser: torch.optim.Optimizer) -> None:
    x, a, nx = torch.randn(B, OBS), torch.randn(B, A), torch.randn(B, OBS)
    optimiser.zero_grad()
    encoder_loss(encoders.online, x, a, nx).backward()
    optimiser.step()


def test_online_is_held_and_fixed_copies_are_frozen_eval_copies() -> None:
    online = _encoder(0)
    encoders = FixedEncoders(online)
    assert encoders.online is online
    for copy in (encoders.fixed, encoders.fixed_target):
        assert copy is not online
        assert _same(copy, _snapshot(online))
        assert all(not p.requires_grad for p in copy.parameters())
        assert not copy.training
        assert {p.data_ptr() for p in copy.parameters()}.isdisjoint(
            {p.data_ptr() for p in online.parameters()}
        )
    assert all(p.requires_grad for p in online.parameters())


def test_train_mode_leaves_fixed_copies_in_eval() -> None:
    parent = nn.ModuleDict({"encoders": FixedEncoders(_encoder(0))})
    parent.train()
    encoders = parent["encoders"]
    assert isinstance(encoders, FixedEncoders)
    assert encoders.online.training
    assert not encoders.fixed.training and not encoders.fixed_target.training
    parent.eval()
    assert not encoders.online.training
    encoders.fixed.train()  # even if someone flips a copy by hand, the next .train() resets it
    parent.train()
    assert not encoders.fixed.training and encoders.online.training


def test_optimiser_steps_move_only_online() -> None:
    encoders = FixedEncoders(_encoder(0))
    # An optimiser over every parameter (as a learner might build) must still leave the fixed
    # copies alone: they get no gradient.
    optimiser = torch.optim.Adam(encoders.parameters(), lr=1e-2)
    fixed, target, online = (
        _snapshot(encoders.fixed),
        _snapshot(encoders.fixed_target),
        _snapshot(encoders.online),
    )
    for _ in range(3):
        _train_step(encoders, optimiser)
    assert not _same(encoders.online, online)
    assert _same(encoders.fixed, fixed) and _same(encoders.fixed_target, target)
    assert all(p.grad is None for p in encoders.fixed.parameters())


def test_sync_moves_weights_one_step_down_the_chain() -> None:
    encoders = FixedEncoders(_encoder(0))
    optimiser = torch.optim.Adam(encoders.online.parameters(), lr=1e-2)
    w0 = _snapshot(encoders.online)
    _train_step(encoders, optimiser)
    w1 = _snapshot(encoders.online)
    encoders.sync()  # fixed_target <- w0 (old fixed), fixed <- w1
    assert _same(encoders.fixed, w1) and _same(encoders.fixed_target, w0)
    _train_step(encoders, optimiser)
    w2 = _snapshot(encoders.online)
    assert not _same(encoders.fixed, w2)
    encoders.sync()  # fixed_target <- w1, fixed <- w2
    assert _same(encoders.fixed, w2) and _same(encoders.fixed_target, w1)
    # two syncs without training in between bring the online weights into fixed_target
    encoders.sync()
    assert _same(encoders.fixed_target, w2)
    # copies, not aliases: training online afterwards leaves both fixed copies unchanged
    _train_step(encoders, optimiser)
    assert _same(encoders.fixed, w2) and _same(encoders.fixed_target, w2)
    assert all(not p.requires_grad for p in encoders.fixed.parameters())


def test_state_dict_round_trips_into_a_fresh_object() -> None:
    encoders = FixedEncoders(_encoder(0))
    optimiser = torch.optim.Adam(encoders.online.parameters(), lr=1e-2)
    _train_step(encoders, optimiser)
    encoders.sync()
    _train_step(encoders, optimiser)
    state = encoders.state_dict()
    assert {k.split(".")[0] for k in state} == {"online", "fixed", "fixed_target"}

    fresh = FixedEncoders(_encoder(1))  # different initial weights
    assert not _same(fresh.online, _snapshot(encoders.online))
    fresh.load_state_dict(state)
    for name in ("online", "fixed", "fixed_target"):
        assert _same(getattr(fresh, name), _snapshot(getattr(encoders, name))), name
    # the three copies differ, so a loader that mixed them up would have failed above
    assert not _same(encoders.online, _snapshot(encoders.fixed))
    assert not _same(encoders.fixed, _snapshot(encoders.fixed_target))
    assert all(not p.requires_grad for p in fresh.fixed.parameters())
    assert all(not p.requires_grad for p in fresh.fixed_target.parameters())
    x = torch.randn(B, OBS)
    torch.testing.assert_close(fresh.fixed.zs(x), encoders.fixed.zs(x))
    # through torch.save / weights_only load, as checkpoints do
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    again = FixedEncoders(_encoder(2))
    again.load_state_dict(torch.load(buffer, weights_only=True))
    assert _same(again.fixed_target, _snapshot(encoders.fixed_target))


def test_load_state_dict_rejects_other_sizes() -> None:
    state = FixedEncoders(_encoder(0)).state_dict()
    with pytest.raises(RuntimeError, match="size mismatch"):
        FixedEncoders(Encoder(in_dim=OBS + 1, action_dim=A, zs_dim=Z, hidden=H)).load_state_dict(
            state
        )


def test_only_encoders_are_accepted() -> None:
    with pytest.raises(TypeError, match="online must be an Encoder, got Linear"):
        FixedEncoders(nn.Linear(2, 2))  # type: ignore[arg-type]


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_copies_follow_the_online_device_and_dtype(device: str) -> None:
    online = _encoder(0).to(device=device, dtype=torch.float64)
    encoders = FixedEncoders(online)
    for copy in (encoders.fixed, encoders.fixed_target):
        assert {(p.device.type, p.dtype) for p in copy.parameters()} == {
            (torch.device(device).type, torch.float64)
        }
    x = torch.randn(B, 3, OBS, device=device, dtype=torch.float64)
    a = torch.randn(B, 3, A, device=device, dtype=torch.float64)
    loss = encoder_loss(encoders.online, x, a, x.flip(0), torch.ones(B, device=device))
    loss.backward()
    encoders.sync()
    assert encoders.fixed.zsa_all_actions(encoders.fixed.zs(x)).shape == (B, 3, A, Z)
