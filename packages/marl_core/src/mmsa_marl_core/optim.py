"""Optimisation helpers shared by learners: optimiser factory, a guarded step that skips
non-finite losses/gradients, and a running mean/std for reward standardisation (EPyMARL)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["make_optimizer", "guarded_step", "RunningMeanStd"]

_OPTIMIZERS = ("adam", "rmsprop")


def make_optimizer(
    params: Iterable[nn.Parameter],
    name: str,
    lr: float,
    *,
    adam_eps: float = 1e-8,
    rmsprop_alpha: float = 0.99,
    rmsprop_eps: float = 1e-5,
) -> torch.optim.Optimizer:
    """Adam (EPyMARL default) or RMSprop (PyMARL: alpha 0.99, eps 1e-5)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, eps=adam_eps)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=rmsprop_alpha, eps=rmsprop_eps)
    raise ValueError(f"optimizer={name!r} is not allowed; use one of {_OPTIMIZERS}")


def guarded_step(
    loss: Tensor,
    optimizer: torch.optim.Optimizer,
    params: list[nn.Parameter],
    max_grad_norm: float,
) -> tuple[bool, float]:
    """Backward, clip the global gradient norm to `max_grad_norm`, step — unless the loss or the
    gradient norm is NaN/inf, in which case the step is skipped and gradients cleared.

    Returns `(applied, grad_norm)`; the caller counts skipped steps.
    """
    optimizer.zero_grad(set_to_none=True)
    if not bool(torch.isfinite(loss.detach())):
        return False, float("nan")
    loss.backward()
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
    if not math.isfinite(grad_norm):
        optimizer.zero_grad(set_to_none=True)
        return False, grad_norm
    optimizer.step()
    return True, grad_norm


class RunningMeanStd:
    """Running mean and variance over all values seen (parallel-variance update, Chan et al.)."""

    def __init__(self, epsilon: float = 1e-4) -> None:
        self.mean = 0.0
        self.var = 1.0
        self.count = float(epsilon)

    def update(self, values: Tensor) -> None:
        """Fold a 1-d tensor of values in (empty tensors are ignored)."""
        if values.numel() == 0:
            return
        v = values.detach().double()
        b_mean, b_var, b_count = float(v.mean()), float(v.var(unbiased=False)), float(v.numel())
        delta = b_mean - self.mean
        total = self.count + b_count
        self.mean += delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.var = m2 / total
        self.count = total

    def normalise(self, x: Tensor) -> Tensor:
        return (x - self.mean) / math.sqrt(self.var + 1e-8)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.mean, self.var, self.count = float(sd["mean"]), float(sd["var"]), float(sd["count"])
