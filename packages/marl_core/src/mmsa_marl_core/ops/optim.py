"""Optimisation helpers shared by learners: optimiser factory, named parameter groups, a guarded
step that skips non-finite losses/gradients, a running mean/std for reward standardisation
(EPyMARL), and `scalars`, which reads many 0-dim tensors with one device sync.

On a GPU every `float(tensor)` waits for the queued kernels; an update that logs twenty numbers
one by one stalls twenty times. The helpers here read what they need in one transfer."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "make_optimizer",
    "optimizer_groups",
    "guarded_step",
    "grouped_step",
    "pre_clip_grad_norms",
    "present_modules",
    "scalars",
    "RunningMeanStd",
]

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


def optimizer_groups(
    groups: Mapping[str, tuple[list[nn.Parameter], float, float]],
) -> tuple[list[dict[str, Any]], dict[str, tuple[list[nn.Parameter], float]]]:
    """Named groups ``{name: (params, lr, max_grad_norm)}`` -> the optimiser's parameter groups
    ``[{"params": params, "lr": lr}, ...]`` and `grouped_step`'s ``{name: (params,
    max_grad_norm)}``, both in the order of `groups`."""
    param_groups = [{"params": params, "lr": lr} for params, lr, _ in groups.values()]
    clips = {name: (params, clip) for name, (params, _, clip) in groups.items()}
    return param_groups, clips


def scalars(values: Mapping[str, Tensor | float]) -> dict[str, float]:
    """`{name: float(value)}` with one device sync for all the tensors (0-dim, one device)."""
    tensors = {k: v for k, v in values.items() if isinstance(v, Tensor)}
    read = dict(zip(tensors, _floats(list(tensors.values())), strict=True))
    return {k: read[k] if k in read else float(v) for k, v in values.items()}


def _floats(tensors: list[Tensor]) -> list[float]:
    if not tensors:
        return []
    # float64 holds every float32/bf16 value exactly: the same numbers as float(t) one by one.
    # All on the first tensor's device (clip_grad_norm_ returns a CPU zero for a group without
    # gradients, next to CUDA norms).
    device = tensors[0].device
    return torch.stack([t.detach().reshape(()).to(device, torch.float64) for t in tensors]).tolist()


def grouped_step(
    loss: Tensor,
    optimizer: torch.optim.Optimizer,
    groups: Mapping[str, tuple[list[nn.Parameter], float]],
) -> tuple[bool, dict[str, float]]:
    """One backward pass, a gradient-norm clip per named group ``(params, max_norm)``, one
    optimiser step. A NaN/inf loss or norm skips the step and clears the gradients.

    The loss and the norms are read in one device sync, after the backward pass (a non-finite
    loss gives non-finite gradients, so its norms say so too).

    Returns ``(applied, {group: norm before clipping})``.
    """
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norms = [torch.nn.utils.clip_grad_norm_(params, clip) for params, clip in groups.values()]
    values = _floats([loss, *norms])
    named = dict(zip(groups, values[1:], strict=True))
    if not all(math.isfinite(v) for v in values):
        optimizer.zero_grad(set_to_none=True)
        return False, named
    optimizer.step()
    return True, named


def guarded_step(
    loss: Tensor,
    optimizer: torch.optim.Optimizer,
    params: list[nn.Parameter],
    max_grad_norm: float,
) -> tuple[bool, float]:
    """Backward, clip the global gradient norm to `max_grad_norm`, step — unless the loss or the
    gradient norm is NaN/inf, in which case the step is skipped and gradients cleared
    (`grouped_step` with one group).

    Returns `(applied, grad_norm)`; the caller counts skipped steps.
    """
    applied, norms = grouped_step(loss, optimizer, {"all": (params, max_grad_norm)})
    return applied, norms["all"]


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
        b_mean, b_var = torch.stack([v.mean(), v.var(unbiased=False)]).tolist()  # one sync
        b_count = float(v.numel())
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


def pre_clip_grad_norms(
    modules: Mapping[str, nn.Module | None], clip: float, group_norm: float
) -> dict[str, Tensor]:
    """The gradient norm of each named module's parameters before their group's clip, which
    scaled them by ``min(1, clip / (group_norm + 1e-6))`` as `clip_grad_norm_` does; a module
    that is None or has a parameter without a gradient is left out."""
    scale = min(1.0, clip / (group_norm + 1e-6))
    out = {}
    for name, module in modules.items():
        params = [] if module is None else list(module.parameters())
        grads = [p.grad.flatten() for p in params if p.grad is not None]
        if grads and len(grads) == len(params):
            out[name] = torch.linalg.vector_norm(torch.cat(grads)) / scale
    return out


def present_modules(**modules: nn.Module | None) -> nn.ModuleDict:
    """A `ModuleDict` of the named modules that are not None (a learner's parts under an
    ablation), in the order given: the keys its `state_dict` is saved under."""
    return nn.ModuleDict({name: m for name, m in modules.items() if m is not None})
