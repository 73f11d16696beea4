"""Input checks of `WorldModel`: model states handed in, and the actions an imagination policy
returns. Each error names the method, the bad shape or dtype and what is expected."""

from __future__ import annotations

import torch
from torch import Tensor

from ._types import ModelState

__all__ = ["check_state", "check_action"]


def check_state(
    where: str,
    state: ModelState,
    deter_dim: int,
    stoch_dim: int,
    batch_ndim: int | None = None,
) -> None:
    """`state` is a `ModelState` of `[..., Dh]` and `[..., Dy]` with the same leading axes (and
    exactly `batch_ndim` of them when given)."""
    if not isinstance(state, ModelState):
        raise TypeError(f"{where}: expected a ModelState, got {type(state).__name__}")
    deter, stoch = state
    if deter.shape[-1:] != (deter_dim,) or stoch.shape[-1:] != (stoch_dim,):
        raise ValueError(
            f"{where}: state has deter {list(deter.shape)} and stoch {list(stoch.shape)}; "
            f"expected [..., Dh={deter_dim}] and [..., Dy={stoch_dim}]"
        )
    if deter.shape[:-1] != stoch.shape[:-1]:
        raise ValueError(
            f"{where}: deter {list(deter.shape)} and stoch {list(stoch.shape)} "
            "must have the same leading axes"
        )
    if batch_ndim is not None and deter.ndim != batch_ndim + 1:
        raise ValueError(
            f"{where}: start states must be [B', Dh] and [B', Dy], got deter "
            f"{list(deter.shape)}; flatten [T+1, B] first, e.g. "
            "ModelState(s.deter.flatten(0, 1), s.stoch.flatten(0, 1))"
        )


def check_action(
    action: Tensor,
    size: int,
    step: int,
    n_agents: int,
    n_actions: int,
    discrete: bool,
    check_values: bool = True,
) -> None:
    """A policy output at imagination step `step`: int64 `[B', N]` within `[0, A)` (discrete) or
    floating `[B', N, A]` (continuous); `check_values=False` checks shape and dtype only."""
    where = f"WorldModel.imagine: policy output at step {step}"
    if not isinstance(action, Tensor):
        raise TypeError(f"{where} must be a torch.Tensor, got {type(action).__name__}")
    if discrete:
        if tuple(action.shape) != (size, n_agents) or action.dtype != torch.int64:
            raise ValueError(
                f"{where} has shape {list(action.shape)} and dtype {action.dtype}; expected "
                f"int64 [B'={size}, N={n_agents}]"
            )
        # One device sync per step (min and max would wait twice).
        if check_values and bool(((action < 0) | (action >= n_actions)).any()):
            raise ValueError(f"{where} holds actions outside [0, A={n_actions})")
    elif tuple(action.shape) != (size, n_agents, n_actions) or not action.is_floating_point():
        raise ValueError(
            f"{where} has shape {list(action.shape)} and dtype {action.dtype}; expected "
            f"float [B'={size}, N={n_agents}, A={n_actions}]"
        )
