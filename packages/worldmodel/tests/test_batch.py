"""The `EpisodeBatch` shape contract, checked once at the boundary with clear errors."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from mmsa_worldmodel._batch import prepare_batch


def _check(wm: SimpleNamespace, batch: object, discrete: bool = True):  # type: ignore[no-untyped-def]
    return prepare_batch(
        batch,  # type: ignore[arg-type]
        n_agents=wm.N,
        obs_dim=wm.O,
        state_dim=wm.S,
        n_actions=wm.A,
        discrete=discrete,
    )


def test_a_good_batch_keeps_its_real_rows_and_zeros_padding(
    wm: SimpleNamespace, generator: torch.Generator
) -> None:
    for kind in ("discrete", "continuous"):
        batch = wm.random_batch(generator, action_kind=kind)
        batch.obs[-1, 0] = float("nan")  # episode 0 is padded from t = T-2 on
        batch.action[-1, 0] = -1 if kind == "discrete" else float("inf")
        data = _check(wm, batch, discrete=kind == "discrete")
        real, real_state = data.real, data.real_state
        assert real.shape == (wm.T, wm.B) and real_state.shape == (wm.T + 1, wm.B)
        assert torch.equal(real, batch.mask > 0)
        assert torch.equal(real_state, torch.cat([real[:1], real]))
        assert torch.equal(data.obs[real_state], batch.obs[real_state])
        assert torch.equal(data.action[real], batch.action[real])
        assert not data.obs[~real_state].any() and not data.action[~real].any()
        assert not data.reward[~real].any() and data.reward.dtype == torch.float32


@pytest.mark.parametrize(
    ("field", "bad", "message"),
    [
        ("obs", lambda b: b.obs[..., :-1], r"obs has shape \[6, 4, 3, 6\]; expected \[T\+1=6"),
        ("obs", lambda b: b.obs.transpose(1, 2), r"obs has shape \[6, 3, 4, 7\]"),
        ("state", lambda b: b.state[:-1], r"state has shape \[5, 4, 11\]; expected"),
        ("avail_actions", lambda b: b.avail_actions.float(), "avail_actions must be bool"),
        ("action", lambda b: b.action.float(), "action must be int64"),
        (
            "action",
            lambda b: b.action + 6,
            r"at real steps; discrete actions must lie in \[0, A=6\)",
        ),
        ("action", lambda b: b.action[:, :, :2], r"action has shape \[5, 4, 2\]"),
        ("reward", lambda b: b.reward[None], r"reward has shape \[1, 5, 4\]; expected \[T=5"),
        ("mask", lambda b: b.mask[:-1], r"mask has shape \[4, 4\]"),
        ("terminated", lambda b: "no", "terminated must be a torch.Tensor, got str"),
    ],
)
def test_bad_fields_are_named(
    wm: SimpleNamespace,
    generator: torch.Generator,
    field: str,
    bad,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    batch = wm.random_batch(generator)
    broken = dataclasses.replace(batch, **{field: bad(batch)})
    with pytest.raises((ValueError, TypeError), match=message):
        _check(wm, broken)


def test_continuous_actions_need_the_action_axis(
    wm: SimpleNamespace, generator: torch.Generator
) -> None:
    batch = wm.random_batch(generator, action_kind="continuous")
    with pytest.raises(ValueError, match=r"action has shape \[5, 4, 3\]; expected \[T=5, B=4"):
        _check(wm, dataclasses.replace(batch, action=batch.action[..., 0]), discrete=False)


def test_a_batch_needs_one_transition(wm: SimpleNamespace, generator: torch.Generator) -> None:
    batch = wm.random_batch(generator, t=1)
    short = dataclasses.replace(batch, obs=batch.obs[:1])
    with pytest.raises(ValueError, match="need T\\+1 >= 2"):
        _check(wm, short)
