"""Tests of Encoder: TD7 architecture, broadcasting over leading axes, all-actions evaluation."""

import pytest
import torch
import torch.nn.functional as F

from mmsa_sale import ACTIVATIONS, Encoder, SALEConfig

T, B, N, OBS, A, Z, H = 5, 4, 3, 7, 6, 8, 16


@pytest.fixture
def encoder() -> Encoder:
    torch.manual_seed(0)
    return Encoder(in_dim=OBS, action_dim=A, zs_dim=Z, hidden=H)


def test_td7_layout_and_defaults() -> None:
    enc = Encoder(in_dim=OBS, action_dim=A)
    assert (enc.zs_dim, enc.hidden, enc.activation) == (256, 256, "elu")
    shapes = {name: tuple(p.shape) for name, p in enc.named_parameters()}
    assert shapes == {
        "zs1.weight": (256, OBS), "zs1.bias": (256,),
        "zs2.weight": (256, 256), "zs2.bias": (256,),
        "zs3.weight": (256, 256), "zs3.bias": (256,),
        "zsa1.weight": (256, 256 + A), "zsa1.bias": (256,),
        "zsa2.weight": (256, 256), "zsa2.bias": (256,),
        "zsa3.weight": (256, 256), "zsa3.bias": (256,),
    }  # fmt: skip


def test_zs_and_zsa_match_td7_written_out(encoder: Encoder) -> None:
    # TD7's Encoder.zs / Encoder.zsa, written with torch.cat as in the reference implementation.
    x, a = torch.randn(B, OBS), torch.randn(B, A)
    zs = F.elu(encoder.zs1(x))
    zs = F.elu(encoder.zs2(zs))
    zs = encoder.zs3(zs)
    zs = zs / zs.abs().mean(-1, keepdim=True).clamp(min=1e-8)
    zsa = F.elu(encoder.zsa1(torch.cat([zs, a], 1)))
    zsa = F.elu(encoder.zsa2(zsa))
    zsa = encoder.zsa3(zsa)
    torch.testing.assert_close(encoder.zs(x), zs)
    torch.testing.assert_close(encoder.zsa(encoder.zs(x), a), zsa)
    # same gradients too (the split first layer must train every weight the concatenation does)
    reference = torch.autograd.grad(zsa.square().sum(), list(encoder.parameters()))
    ours = torch.autograd.grad(
        encoder.zsa(encoder.zs(x), a).square().sum(), list(encoder.parameters())
    )
    for g_ours, g_ref in zip(ours, reference, strict=True):
        torch.testing.assert_close(g_ours, g_ref)


def test_zs_ends_in_avg_l1_norm_and_zsa_is_not_normalised(encoder: Encoder) -> None:
    zs = encoder.zs(torch.randn(T, B, N, OBS) * 10)
    torch.testing.assert_close(zs.abs().mean(-1), torch.ones(T, B, N))
    zsa = encoder.zsa(zs, torch.randn(T, B, N, A))
    assert not torch.allclose(zsa.abs().mean(-1), torch.ones(T, B, N), atol=1e-2)


def test_shapes_over_leading_axes(encoder: Encoder) -> None:
    for lead in [(), (B,), (T, B, N), (T, B, N, A)]:
        zs = encoder.zs(torch.randn(*lead, OBS))
        assert zs.shape == (*lead, Z)
        assert encoder.zsa(zs, torch.randn(*lead, A)).shape == (*lead, Z)


def test_leading_axes_are_independent(encoder: Encoder) -> None:
    x, a = torch.randn(T, B, N, OBS), torch.randn(T, B, N, A)
    zsa = encoder.zsa(encoder.zs(x), a)
    single = encoder.zsa(encoder.zs(x[2, 1, 0]), a[2, 1, 0])
    torch.testing.assert_close(zsa[2, 1, 0], single)


def test_action_broadcasts_against_zs(encoder: Encoder) -> None:
    zs = encoder.zs(torch.randn(T, B, N, OBS))
    actions = torch.randn(T, B, N, A, A)  # [T, B, N, A(candidates), action_dim]
    broadcast = encoder.zsa(zs.unsqueeze(-2), actions)
    explicit = encoder.zsa(zs.unsqueeze(-2).expand(T, B, N, A, Z), actions)
    assert broadcast.shape == (T, B, N, A, Z)
    torch.testing.assert_close(broadcast, explicit)


def test_zsa_all_actions_equals_one_hot_loop(encoder: Encoder) -> None:
    zs = encoder.zs(torch.randn(T, B, N, OBS))
    all_actions = encoder.zsa_all_actions(zs)
    assert all_actions.shape == (T, B, N, A, Z)
    for k in range(A):
        one_hot = F.one_hot(torch.full((T, B, N), k), A).float()
        torch.testing.assert_close(all_actions[..., k, :], encoder.zsa(zs, one_hot))


def test_wrong_trailing_sizes_name_expected_and_received(encoder: Encoder) -> None:
    with pytest.raises(ValueError, match=r"expected x of shape \[\.\.\., in_dim=7\], got \[4, 9\]"):
        encoder.zs(torch.randn(B, 9))
    with pytest.raises(ValueError, match=r"zs of shape \[\.\.\., Z=8\], got \[4, 5\]"):
        encoder.zsa(torch.randn(B, 5), torch.randn(B, A))
    with pytest.raises(ValueError, match=r"action of shape \[\.\.\., action_dim=6\], got \[4, 2\]"):
        encoder.zsa(torch.randn(B, Z), torch.randn(B, 2))
    with pytest.raises(ValueError, match=r"\[4, 8\] and action \[3, 6\] do not broadcast"):
        encoder.zsa(torch.randn(B, Z), torch.randn(N, A))
    with pytest.raises(ValueError, match="one-hot float"):
        encoder.zsa(torch.randn(B, Z), torch.ones(B, A, dtype=torch.int64))


def test_bad_constructor_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown activation 'swish'; allowed: elu"):
        Encoder(OBS, A, activation="swish")
    for bad in [0, -3, 2.5, True]:
        with pytest.raises(ValueError, match=r"zs_dim must be a positive int, got"):
            Encoder(OBS, A, zs_dim=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="in_dim"):
        Encoder(0, A)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_builds_and_runs(name: str) -> None:
    enc = Encoder(OBS, A, zs_dim=Z, hidden=H, activation=name)
    assert enc.zsa_all_actions(enc.zs(torch.randn(B, OBS))).shape == (B, A, Z)


def test_from_config() -> None:
    enc = Encoder.from_config(OBS, A, SALEConfig(zs_dim=Z, hidden=H, activation="relu"))
    assert (enc.in_dim, enc.action_dim, enc.zs_dim, enc.hidden, enc.activation) == (
        OBS, A, Z, H, "relu",
    )  # fmt: skip
    assert "activation='relu'" in repr(enc)


def test_float64_and_gradients_flow(encoder: Encoder) -> None:
    enc = encoder.double()
    x = torch.randn(B, OBS, dtype=torch.float64, requires_grad=True)
    out = enc.zsa_all_actions(enc.zs(x))
    assert out.dtype == torch.float64
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in enc.parameters())
