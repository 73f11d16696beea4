"""Tests of Phi = AvgL1Norm(Linear([x, a]))."""

import copy

import pytest
import torch
import torch.nn.functional as F

from mmsa_sale import Phi

T, B, N, OBS, A, Z = 5, 4, 3, 7, 6, 8


@pytest.fixture
def phi() -> Phi:
    torch.manual_seed(0)
    return Phi(in_dim=OBS, action_dim=A, out_dim=Z)


def test_hand_set_weights() -> None:
    phi = Phi(in_dim=2, action_dim=1, out_dim=2)
    with torch.no_grad():
        phi.linear.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, -1.0, 0.0]]))
        phi.linear.bias.copy_(torch.tensor([0.0, 1.0]))
    # Linear([1, 3, 1]) = [1 + 2, -3 + 1] = [3, -2]; mean |.| = 2.5 -> [1.2, -0.8]
    out = phi(torch.tensor([1.0, 3.0]), torch.tensor([1.0]))
    torch.testing.assert_close(out, torch.tensor([1.2, -0.8]))


def _reference(phi: Phi, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """AvgL1Norm(Linear(cat([x, a]))), written out: the definition Phi's split weights compute."""
    y = F.linear(torch.cat([x, a], -1), phi.linear.weight, phi.linear.bias)
    return y / y.abs().mean(-1, keepdim=True).clamp(min=1e-8)


def test_matches_cat_then_linear_then_norm(phi: Phi) -> None:
    # The algebra, in float64: the split-weight forward and its gradient equal the definition's
    # up to float64 rounding (the default float64 tolerances, rtol 1e-7).
    phi64 = copy.deepcopy(phi).double()
    x, a = torch.randn(T, B, N, OBS, dtype=torch.float64), torch.randn(T, B, N, A).double()
    reference = _reference(phi64, x, a)
    torch.testing.assert_close(phi64(x, a), reference)
    torch.testing.assert_close(phi64(x, a).abs().mean(-1), torch.ones(T, B, N).double())
    (g_ref,) = torch.autograd.grad(reference.square().sum(), [phi64.linear.weight])
    (g,) = torch.autograd.grad(phi64(x, a).square().sum(), [phi64.linear.weight])
    torch.testing.assert_close(g, g_ref)


def test_float32_within_its_rounding_bound(phi: Phi) -> None:
    # The float32 module against the float64 oracle, with the classic bound on a sum of n
    # rounded products, gamma_n = n u / (1 - n u), relative to the largest magnitude compared.
    # The weight gradient sums over the T*B*N rows (and the norm over Z outputs, the linear map
    # over OBS + A inputs); BLAS kernels of different CPUs sum in different orders, which is
    # why a fixed 1e-5 holds on one CPU and not another.
    x, a = torch.randn(T, B, N, OBS), torch.randn(T, B, N, A)
    phi64 = copy.deepcopy(phi).double()
    out32 = phi(x, a)
    out64 = phi64(x.double(), a.double())
    (g32,) = torch.autograd.grad(out32.square().sum(), [phi.linear.weight])
    (g64,) = torch.autograd.grad(out64.square().sum(), [phi64.linear.weight])
    u = torch.finfo(torch.float32).eps / 2
    for got, want, n in [(out32, out64, OBS + A + Z), (g32, g64, T * B * N + OBS + A + Z)]:
        gamma = n * u / (1 - n * u)
        scale = want.abs().max().item()
        torch.testing.assert_close(got.double(), want, rtol=0.0, atol=4 * gamma * scale)
    # ... and the bound is tight enough to catch a wrong formula (a missing bias).
    broken = F.linear(torch.cat([x, a], -1), phi.linear.weight)
    broken = broken / broken.abs().mean(-1, keepdim=True)
    assert (broken.double() - out64).abs().max() > 4 * (OBS + A + Z) * u * out64.abs().max()


def test_all_actions_equals_one_hot_loop(phi: Phi) -> None:
    x = torch.randn(T, B, N, OBS)
    out = phi.all_actions(x)
    assert out.shape == (T, B, N, A, Z)
    for k in range(A):
        one_hot = F.one_hot(torch.full((T, B, N), k), A).float()
        torch.testing.assert_close(out[..., k, :], phi(x, one_hot))


def test_broadcast_of_x_against_actions(phi: Phi) -> None:
    x, actions = torch.randn(B, N, 1, OBS), torch.randn(B, N, A, A)
    assert phi(x, actions).shape == (B, N, A, Z)
    torch.testing.assert_close(phi(x, actions), phi(x.expand(B, N, A, OBS), actions))


def test_wrong_sizes_are_rejected(phi: Phi) -> None:
    with pytest.raises(ValueError, match=r"expected x of shape \[\.\.\., in_dim=7\], got \[4, 3\]"):
        phi(torch.randn(B, 3), torch.randn(B, A))
    with pytest.raises(ValueError, match=r"action of shape \[\.\.\., action_dim=6\], got \[4, 7\]"):
        phi(torch.randn(B, OBS), torch.randn(B, OBS))
    with pytest.raises(ValueError, match="do not broadcast"):
        phi(torch.randn(B, OBS), torch.randn(N, A))
    with pytest.raises(ValueError, match="out_dim must be a positive int, got 0"):
        Phi(OBS, A, 0)
