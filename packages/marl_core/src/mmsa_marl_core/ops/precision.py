"""Mixed precision of the gradient updates (`TrainConfig.precision`).

With ``precision="bf16"`` the training loop runs each ``learner.update`` inside
`update_precision`, and the learners run their passes *without gradient* inside `low_precision`:
bfloat16 autocast for the target networks' forward passes, the greedy action selection on real
data and the world model's imagination. Everything that carries gradient (the online networks,
the world-model losses, the mixers and every loss) stays float32, as do the mixers of the TD
targets. Measured on the MMSA learning check (packages/marl_core/README.md, "Mixed precision"):
autocast over the *whole* update was 1.56x faster but learned clearly worse (IQM 0.81 against
0.96); keeping the gradient path in float32 keeps the learning and most of the speed.

Outside `update_precision` (acting, evaluation, tests calling ``update`` directly) and with
``precision="fp32"``, `low_precision` does nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import torch

__all__ = ["PRECISIONS", "update_precision", "low_precision", "low_precision_dtype"]

PRECISIONS = ("fp32", "bf16")
"""Allowed values of `TrainConfig.precision`."""

_LOW: ContextVar[torch.dtype | None] = ContextVar("mmsa_low_precision", default=None)


@contextlib.contextmanager
def update_precision(precision: str, device: torch.device) -> Iterator[None]:
    """The context one gradient update runs in: `low_precision` regions use bfloat16 with
    ``precision="bf16"``, float32 with ``"fp32"``."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision={precision!r} is not allowed; use one of {', '.join(PRECISIONS)}"
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(device)
        raise RuntimeError(f"precision=bf16: {name} has no bfloat16 support; use precision=fp32")
    token = _LOW.set(torch.bfloat16 if precision == "bf16" else None)
    try:
        yield
    finally:
        _LOW.reset(token)


def low_precision_dtype() -> torch.dtype | None:
    """The dtype `low_precision` regions autocast to here (bfloat16), or None (float32)."""
    return _LOW.get()


def low_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast to bfloat16 on `device` inside a ``bf16`` `update_precision`, else nothing.
    For forward passes without gradient only; cast their results back with ``.float()``."""
    dtype = _LOW.get()
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
