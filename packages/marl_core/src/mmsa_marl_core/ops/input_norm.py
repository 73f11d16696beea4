"""Feature-wise running input normalisation for continuous-control learners.

MaMuJoCo observations and states mix joint angles (~0.1) with velocities (~5). QMIX's
hypernetworks turn that scale straight into mixing weights: at initialisation on HalfCheetah-2x3
states ``dQ_tot/dQ_i`` is 17 +- 12, against 1.3 +- 0.6 on standardised states (measured), a large
state-dependent factor on every critic error and on the actors' gradient. Standardising inputs
with running statistics (as is common for MuJoCo, e.g. PPO's observation normalisation) keeps
every network in its designed range.

Statistics are buffers, so they move with ``.to(device)`` and are saved in the state dict (exact
resume). They are updated from the training batches only (masked), never while acting.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["RunningNormalizer"]


class RunningNormalizer(nn.Module):
    """``clip((x - mean) / sqrt(var + eps), -clip, clip)`` with running per-feature statistics.

    Args:
        dim: number of features ``F``.
        clip: bound of the normalised values (guards against outliers; 10 as in common practice).
        eps: added to the variance.

    Before any ``update`` the map is the identity (mean 0, var 1, count 0).
    """

    mean: Tensor
    var: Tensor
    count: Tensor

    def __init__(self, dim: int, clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
            raise ValueError(f"RunningNormalizer: dim={dim!r} must be an int >= 0")
        if not clip > 0 or not eps > 0:
            raise ValueError(f"RunningNormalizer: clip={clip!r} and eps={eps!r} must be > 0")
        self.dim, self.clip, self.eps = dim, float(clip), float(eps)
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    def _check(self, x: Tensor) -> None:
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(
                f"RunningNormalizer: expected x of shape [..., F={self.dim}], got {list(x.shape)}"
            )

    @torch.no_grad()
    def update(self, x: Tensor, mask: Tensor | None = None) -> None:
        """Fold the rows of ``x [..., F]`` in; ``mask`` (a prefix of ``x``'s leading axes, 0/1)
        keeps padding out. Chan et al.'s parallel mean/variance update, in float64."""
        self._check(x)
        rows = x.detach().reshape(-1, self.dim).double()
        if mask is not None:
            if x.shape[: mask.ndim] != mask.shape:
                raise ValueError(
                    f"RunningNormalizer: mask {list(mask.shape)} must be a prefix of the leading "
                    f"axes of x {list(x.shape)}"
                )
            weight = mask.reshape(*mask.shape, *([1] * (x.ndim - 1 - mask.ndim)))
            keep = weight.expand(x.shape[:-1]).reshape(-1) > 0
            rows = rows[keep]
        n = rows.shape[0]
        if n == 0:
            return
        batch_mean = rows.mean(dim=0)
        batch_var = rows.var(dim=0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * n / total
        self.var.copy_(
            (self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total) / total
        )
        self.count.copy_(total)

    def forward(self, x: Tensor) -> Tensor:
        """Normalised ``x [..., F]`` in ``x``'s dtype."""
        self._check(x)
        mean = self.mean.to(x.dtype)
        std = (self.var + self.eps).sqrt().to(x.dtype)
        return ((x - mean) / std).clamp(-self.clip, self.clip)
