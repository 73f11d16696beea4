"""The SALE encoder objective (TD7, Fujimoto et al. 2023, eq. 4).

``L(f, g) = || g(f(x_t), a_t) - sg(f(x_{t+1})) ||^2``: the state-action embedding must predict the
embedding of the next input. As in TD7's ``train`` the target is computed under ``no_grad``, so the
state encoder learns only through the prediction path (``zs(x_t)`` and ``zsa``), and the loss is the
mean squared error over the embedding axis (``F.mse_loss``), averaged over positions.

Masking. Episode batches are padded (docs/design.md §3.6); ``mask`` marks the real transitions.
Padded positions are zeroed *before* the encoder runs, so whatever they hold (even NaN) changes
neither the loss nor any gradient.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from ._encoder import Encoder
from ._shapes import check_features

__all__ = ["encoder_loss"]


def _check_mask(mask: Tensor, leading: torch.Size) -> None:
    if not isinstance(mask, Tensor):
        raise TypeError(f"encoder_loss: mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.ndim > len(leading) or mask.shape != leading[: mask.ndim]:
        raise ValueError(
            f"encoder_loss: mask must have the leading axes of x, i.e. a prefix of "
            f"{list(leading)} (e.g. [T, B] for x [T, B, N, F]), got {list(mask.shape)}"
        )
    if not (mask.dtype == torch.bool or mask.is_floating_point()):
        raise ValueError(f"encoder_loss: mask must be bool or floating point, got {mask.dtype}")


def encoder_loss(
    encoder: Encoder,
    x: Tensor,
    action: Tensor,
    next_x: Tensor,
    mask: Tensor | None = None,
    *,
    reduction: Literal["mean", "none"] = "mean",
) -> Tensor:
    """TD7's encoder loss ``mean((zsa(zs(x), a) - zs(next_x).detach())**2)``, optionally masked.

    Args:
        encoder: the *online* encoder being trained.
        x: ``[..., F]`` inputs at time t, ``F = encoder.in_dim``.
        action: ``[..., A]`` actions taken at t (one-hot for discrete), same leading axes as ``x``.
        next_x: ``[..., F]`` inputs at t+1, same shape as ``x``; no gradient flows into its path.
        mask: optional ``bool`` or 0/1 float tensor over a prefix of the leading axes of ``x``
            (``[T, B]`` or ``[T, B, N]`` for ``x [T, B, N, F]``); non-negative float weights give a
            weighted mean. Positions with mask 0 do not affect the loss or the gradients.
        reduction: ``"mean"`` (default) returns the (masked) mean as a scalar; ``"none"`` returns
            the squared error averaged over the embedding axis, ``[...]`` = ``x.shape[:-1]``,
            multiplied by the mask, for callers that reduce and scale losses themselves.

    Returns:
        A scalar (``"mean"``; 0 when every position is masked) or a ``[...]`` tensor (``"none"``).
    """
    if not isinstance(encoder, Encoder):
        raise TypeError(f"encoder_loss: encoder must be an Encoder, got {type(encoder).__name__}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"encoder_loss: reduction must be 'mean' or 'none', got {reduction!r}")
    check_features("encoder_loss", "x", x, encoder.in_dim, "in_dim")
    check_features("encoder_loss", "action", action, encoder.action_dim, "action_dim")
    check_features("encoder_loss", "next_x", next_x, encoder.in_dim, "in_dim")
    leading = x.shape[:-1]
    if action.shape[:-1] != leading:
        raise ValueError(
            f"encoder_loss: action must have the leading axes of x {list(leading)}, "
            f"expected [{', '.join(map(str, leading))}, {encoder.action_dim}], "
            f"got {list(action.shape)}"
        )
    if next_x.shape != x.shape:
        raise ValueError(
            f"encoder_loss: next_x must have the shape of x {list(x.shape)}, "
            f"got {list(next_x.shape)}"
        )

    weight: Tensor | None = None
    if mask is not None:
        _check_mask(mask, leading)
        # Align the mask with the leading axes: [T, B] -> [T, B, 1, ...] over x.shape[:-1].
        weight = mask.to(x.dtype).reshape(*mask.shape, *([1] * (len(leading) - mask.ndim)))
        keep = (weight > 0).unsqueeze(-1)
        # Zero padded inputs before the network so garbage (inf, NaN) cannot reach the loss or
        # the gradients (0 * NaN is NaN, so masking only the output would not be enough).
        x = torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))
        next_x = torch.where(keep, next_x, torch.zeros((), dtype=x.dtype, device=x.device))
        action = torch.where(keep, action, torch.zeros((), dtype=action.dtype, device=x.device))

    # TD7: the target embedding is computed without gradient.
    with torch.no_grad():
        target = encoder.zs(next_x)
    prediction = encoder.zsa(encoder.zs(x), action)
    error = (prediction - target).pow(2).mean(dim=-1)  # [...], mean over Z as F.mse_loss

    if weight is None:
        return error.mean() if reduction == "mean" else error
    weight = weight.expand_as(error)
    if reduction == "none":
        return error * weight
    # Masked mean; an all-masked batch gives 0 (not NaN) and still carries a graph.
    return (error * weight).sum() / weight.sum().clamp(min=torch.finfo(error.dtype).tiny)
