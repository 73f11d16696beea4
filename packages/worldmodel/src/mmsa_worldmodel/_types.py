"""The world model's value types: `ModelState`, `Imagination`, `Observation`, `Policy`."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from torch import Tensor

from ._batch import PreparedBatch
from ._gaussian import Gaussian

__all__ = ["ModelState", "Imagination", "Observation", "Policy"]

Policy = Callable[[Tensor, Tensor], Tensor]
"""`policy(obs_hat [B', N, O], avail_hat [B', N, A] bool) -> actions [B', N] int64 | [B', N, A]`."""


class ModelState(NamedTuple):
    """`m_t = (h_t, y_t)`: `deter [..., Dh]` (GRU state) and `stoch [..., Dy]` (Gaussian latent)."""

    deter: Tensor
    stoch: Tensor


class Imagination(NamedTuple):
    """An imagined rollout of `H` steps from `B'` start states (start included at index 0)."""

    states: ModelState
    """`[H+1, B', Dh]` and `[H+1, B', Dy]`."""
    features: Tensor
    """`[H+1, B', D]`, `features(states)`."""
    actions: Tensor
    """`[H, B', N]` int64 or `[H, B', N, A]` float: what the policy chose at steps 0..H-1."""
    obs: Tensor
    """`[H+1, B', N, O]` decoded observations (the policy saw rows 0..H-1)."""
    avail: Tensor
    """`[H+1, B', N, A]` bool decoded available actions, at least one per agent."""
    reward: Tensor
    """`[H, B']` predicted team reward of step k -> k+1."""
    cont: Tensor
    """`[H, B']` predicted probability that the episode goes on after step k -> k+1."""


class Observation(NamedTuple):
    """Everything `observe` computes on a batch; `losses` and the diagnostics read it."""

    posterior: ModelState  # [T+1, B, ...]
    prior: ModelState  # [T+1, B, ...]
    post_dist: Gaussian  # [T+1, B, Dy]
    prior_dist: Gaussian  # [T+1, B, Dy]
    u: Tensor  # [T, B, U]
    x_dist: Gaussian  # [T, B, X]
    u_rec: Tensor  # [T, B, U]
    sale_error: Tensor | None  # [T, B]
    data: PreparedBatch  # the checked batch, padding zeroed
