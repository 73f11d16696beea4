"""Tests of Phi = AvgL1Norm(Linear([x, a]))."""

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


def test_matches_cat_then_linear_then_norm(phi: Phi) -> None:
    x, a = torch.randn(T, B, N, OBS), torch.randn(T, B, N, A)
    y = phi.linear(torch.cat([x, a], -1))
    torch.testing.assert_close(phi(x, a), y / y.abs().mean(-1, keepdim=True).clamp(min=1e-8))
    torch.testing.assert_close(phi(x, a).abs().mean(-1), torch.ones(T, B, N))
    reference = y / y.abs().mean(-1, keepdim=True).clamp(min=1e-8)
    (g_weight_ref,) = torch.autograd.grad(reference.square().sum(), [phi.linear.weight])
    (g_weight,) = torch.autograd.grad(phi(x, a).square().sum(), [phi.linear.weight])
    torch.testing.assert_close(g_weight, g_weight_ref)


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
