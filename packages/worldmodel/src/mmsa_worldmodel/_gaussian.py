"""Diagonal Gaussians and the balanced KL of DreamerV2.

`kl_balanced(post, prior, alpha)` has the value of `KL(q || p)` but splits its gradient:
`alpha` of it trains the prior towards the posterior and `1 - alpha` regularises the posterior
towards the prior (DreamerV2, Hafner et al. 2021, sec. 2.2 "KL balancing"):

    alpha * KL(sg(q) || p) + (1 - alpha) * KL(q || sg(p))

With alpha = 0.5 both sides get half the plain-KL gradient (the No-KLB ablation,
docs/design.md §4.6).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Gaussian", "GaussianHead", "kl_balanced", "kl_gaussian", "kl_standard_normal"]


class Gaussian(NamedTuple):
    """A diagonal Gaussian over the last axis: `mean [..., K]`, `std [..., K]` (> 0)."""

    mean: Tensor
    std: Tensor

    def rsample(self) -> Tensor:
        """Reparameterised sample `mean + std * eps` (gradients reach mean and std)."""
        return self.mean + self.std * torch.randn_like(self.std)

    def detach(self) -> Gaussian:
        return Gaussian(self.mean.detach(), self.std.detach())


class GaussianHead(nn.Module):
    """`Linear -> (mean, softplus(raw) + min_std)` (DreamerV1/V2's std parameterisation)."""

    def __init__(self, in_dim: int, out_dim: int, min_std: float) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, 2 * out_dim)
        self.min_std = min_std

    def forward(self, x: Tensor) -> Gaussian:
        mean, raw_std = self.linear(x).chunk(2, dim=-1)
        return Gaussian(mean, F.softplus(raw_std) + self.min_std)


def kl_gaussian(q: Gaussian, p: Gaussian) -> Tensor:
    """`KL(q || p)` per dimension, `[..., K]`, in nats (closed form for diagonal Gaussians)."""
    var_ratio = (q.std / p.std).pow(2)
    mean_term = ((q.mean - p.mean) / p.std).pow(2)
    return 0.5 * (var_ratio + mean_term - 1.0 - torch.log(var_ratio))


def kl_standard_normal(q: Gaussian) -> Tensor:
    """`KL(q || N(0, I))` per dimension, `[..., K]` (VAE-1's regulariser)."""
    var = q.std.pow(2)
    return 0.5 * (var + q.mean.pow(2) - 1.0 - torch.log(var))


def kl_balanced(post: Gaussian, prior: Gaussian, alpha: float, free_nats: float = 0.0) -> Tensor:
    """Balanced KL summed over the latent axis: `[..., K] -> [...]`.

    Value: `max(KL(q || p), free_nats)`; gradient: `alpha` of the plain-KL gradient to the prior's
    parameters, `1 - alpha` to the posterior's (DreamerV2). Steps whose KL is under `free_nats`
    get no gradient (DreamerV3 clips per step).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"kl_balanced: alpha={alpha!r} must lie strictly between 0 and 1")
    if free_nats < 0.0 or math.isnan(free_nats):
        raise ValueError(f"kl_balanced: free_nats={free_nats!r} must be >= 0")
    train_prior = kl_gaussian(post.detach(), prior).sum(-1)
    train_post = kl_gaussian(post, prior.detach()).sum(-1)
    if free_nats > 0.0:
        train_prior = train_prior.clamp(min=free_nats)
        train_post = train_post.clamp(min=free_nats)
    return alpha * train_prior + (1.0 - alpha) * train_post
