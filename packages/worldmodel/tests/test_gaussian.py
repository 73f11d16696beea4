"""Diagonal Gaussians, KL oracles and the balanced-KL gradient split (DreamerV2)."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from mmsa_worldmodel import kl_balanced
from mmsa_worldmodel._gaussian import Gaussian, GaussianHead, kl_gaussian, kl_standard_normal


def _random_gaussian(generator: torch.Generator, shape: tuple[int, ...]) -> Gaussian:
    mean = torch.randn(shape, generator=generator) * 2
    std = torch.rand(shape, generator=generator) * 2 + 0.05
    return Gaussian(mean, std)


def test_kl_matches_torch_distributions_and_is_non_negative(generator: torch.Generator) -> None:
    q, p = _random_gaussian(generator, (5, 4, 12)), _random_gaussian(generator, (5, 4, 12))
    ours = kl_gaussian(q, p)
    expected = kl_divergence(Normal(q.mean, q.std), Normal(p.mean, p.std))
    torch.testing.assert_close(ours, expected)
    assert (ours >= 0).all()
    torch.testing.assert_close(kl_gaussian(q, q), torch.zeros_like(ours))
    standard = Normal(torch.zeros(()), torch.ones(()))
    torch.testing.assert_close(
        kl_standard_normal(q), kl_divergence(Normal(q.mean, q.std), standard)
    )


def test_balanced_kl_value_is_the_plain_kl(generator: torch.Generator) -> None:
    q, p = _random_gaussian(generator, (5, 4, 12)), _random_gaussian(generator, (5, 4, 12))
    for alpha in (0.5, 0.8, 0.95):
        torch.testing.assert_close(kl_balanced(q, p, alpha), kl_gaussian(q, p).sum(-1))


@pytest.mark.parametrize("alpha", [0.5, 0.8, 0.3])
def test_balanced_kl_gradient_split_is_exact(alpha: float) -> None:
    """With equal stds, d KL / d mean_q = -d KL / d mean_p, so the plain KL sends gradients of
    equal norm to both means and the balanced KL must send them in the ratio alpha / (1-alpha)."""
    g = torch.Generator().manual_seed(3)
    mean_q = torch.randn(4, 12, generator=g).requires_grad_()
    mean_p = torch.randn(4, 12, generator=g).requires_grad_()
    std = torch.rand(4, 12, generator=g) + 0.2
    kl_balanced(Gaussian(mean_q, std), Gaussian(mean_p, std), alpha).sum().backward()
    assert mean_q.grad is not None and mean_p.grad is not None
    ratio = mean_p.grad.norm() / mean_q.grad.norm()
    assert ratio.item() == pytest.approx(alpha / (1 - alpha), rel=1e-5)
    # Against separate computations of the plain KL's gradients.
    plain_q, plain_p = torch.autograd.grad(
        kl_gaussian(Gaussian(mean_q, std), Gaussian(mean_p, std)).sum(), [mean_q, mean_p]
    )
    torch.testing.assert_close(mean_p.grad, alpha * plain_p)
    torch.testing.assert_close(mean_q.grad, (1 - alpha) * plain_q)


def test_free_nats_floor_value_and_gradient() -> None:
    mean_q = torch.tensor([[0.1, 0.0], [3.0, 0.0]], requires_grad=True)
    std = torch.ones(2, 2)
    prior = Gaussian(torch.zeros(2, 2), std)
    value = kl_balanced(Gaussian(mean_q, std), prior, 0.8, free_nats=1.0)
    # Row 0 has KL 0.005 < 1 nat: floored, no gradient. Row 1 has KL 4.5 nats: unchanged.
    torch.testing.assert_close(value, torch.tensor([1.0, 4.5]))
    value.sum().backward()
    assert mean_q.grad is not None
    assert mean_q.grad[0].abs().sum() == 0
    assert mean_q.grad[1].abs().sum() > 0


def test_bad_alpha_and_free_nats_are_rejected(generator: torch.Generator) -> None:
    q = _random_gaussian(generator, (3,))
    with pytest.raises(ValueError, match="alpha=1.0"):
        kl_balanced(q, q, 1.0)
    with pytest.raises(ValueError, match="free_nats=-1"):
        kl_balanced(q, q, 0.8, free_nats=-1.0)


def test_gaussian_head_shapes_and_std_floor(generator: torch.Generator) -> None:
    head = GaussianHead(7, 5, min_std=0.1)
    dist = head(torch.randn(4, 3, 7, generator=generator) * 100)
    assert dist.mean.shape == dist.std.shape == (4, 3, 5)
    assert (dist.std >= 0.1).all()
    assert dist.rsample().shape == (4, 3, 5)
