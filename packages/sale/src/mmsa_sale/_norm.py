"""AvgL1Norm, the normalisation at the heart of SALE (TD7, Fujimoto et al. 2023, eq. 5).

``AvgL1Norm(x) = x / max(mean_i |x_i|, eps)`` over the feature axis. It keeps the embedding's scale
fixed (mean absolute value 1) without squashing its direction, so the critic sees inputs of a stable
magnitude while the encoder is still learning. The ``eps`` floor keeps an all-zero input at zero
instead of producing NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["avg_l1_norm"]


def avg_l1_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Divide ``x`` by the mean absolute value of its last axis, floored at ``eps``.

    Args:
        x: ``[..., F]`` floating-point tensor; every leading axis is independent.
        eps: lower bound on the divisor (TD7 uses 1e-8); must be positive.

    Returns:
        ``[..., F]`` tensor whose rows have mean ``|x| = 1`` (rows with mean ``|x| < eps`` are
        divided by ``eps`` instead, so an all-zero row stays zero).
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"avg_l1_norm: x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(
            f"avg_l1_norm: expected x of shape [..., F] with F >= 1, got {list(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"avg_l1_norm: x must be floating point, got dtype {x.dtype}")
    if not eps > 0:
        raise ValueError(f"avg_l1_norm: eps must be > 0, got {eps!r}")
    # TD7: x / x.abs().mean(-1, keepdim=True).clamp(min=eps)
    return x / torch.clamp(x.abs().mean(dim=-1, keepdim=True), min=eps)
