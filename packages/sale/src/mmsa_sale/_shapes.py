"""Shape checks shared by the SALE modules.

Shapes are API (STYLE.md): every public tensor argument is checked once at the package boundary,
and a mismatch raises ``ValueError`` naming the argument, the expected shape and the received one.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_features", "check_positive_int", "broadcast_leading"]


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is a positive ``int`` (not ``bool``), else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def check_features(where: str, name: str, tensor: Tensor, size: int, axis_letter: str) -> None:
    """Check that ``tensor`` is ``[..., size]``; the message shows both shapes."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.ndim < 1 or tensor.shape[-1] != size:
        raise ValueError(
            f"{where}: expected {name} of shape [..., {axis_letter}={size}], "
            f"got {list(tensor.shape)}"
        )
    if not tensor.is_floating_point():
        raise ValueError(
            f"{where}: {name} must be a floating-point tensor, got dtype {tensor.dtype} "
            "(discrete actions are one-hot float vectors made by the caller)"
        )


def _autocast_pair(a: Tensor, b: Tensor) -> bool:
    """True when autocast is on for the tensors' device and their dtypes are float32 and the
    autocast dtype (the mix autocast itself produces)."""
    device = a.device.type
    if not torch.is_autocast_enabled(device):
        return False
    return {a.dtype, b.dtype} == {torch.float32, torch.get_autocast_dtype(device)}


def broadcast_leading(where: str, names: tuple[str, str], a: Tensor, b: Tensor) -> torch.Size:
    """Broadcast the leading shapes (all but the feature axis) of ``a`` and ``b``.

    Raises ``ValueError`` naming both shapes when they do not broadcast, or both dtypes when they
    differ (a float64 action with a float32 embedding would otherwise fail deep inside a matmul);
    under ``torch.autocast`` on their device, where the linear layers cast their inputs
    themselves, float32 next to the autocast dtype is allowed.
    """
    if a.dtype != b.dtype and not _autocast_pair(a, b):
        raise ValueError(
            f"{where}: {names[0]} and {names[1]} must have the same dtype, "
            f"got {a.dtype} and {b.dtype}"
        )
    try:
        return torch.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    except RuntimeError:
        raise ValueError(
            f"{where}: leading axes of {names[0]} {list(a.shape)} and {names[1]} "
            f"{list(b.shape)} do not broadcast (all axes but the last must be equal or 1)"
        ) from None
