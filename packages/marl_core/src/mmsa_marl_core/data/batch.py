"""`Batch`: whole episodes, time-major torch tensors, padded to the longest episode.

Axis letters (docs/design.md §3.1): `T` time, `B` batch, `N` agents, `O` observation, `S` state,
`A` actions. Row `T` of `obs`, `state` and `avail_actions` is the observation after the last
transition, so every target at time `t` can read `obs[t + 1]`.

Padding convention: after an episode's last real transition `mask` is 0, `reward` and
`terminated` are 0, observations and states are 0, and `avail_actions` is all true (so a masked
argmax over padded rows never sees an empty set of actions; the rows are masked out of every loss).
`Batch` satisfies `mmsa_worldmodel.EpisodeBatch`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

__all__ = ["Batch"]


@dataclass(frozen=True)
class Batch:
    """B whole episodes, time-major. Built by `EpisodeBuffer.sample`; never mutated."""

    obs: Tensor
    """`[T+1, B, N, O]` float32 observations; row T is the final observation."""
    state: Tensor
    """`[T+1, B, S]` float32 global states."""
    avail_actions: Tensor
    """`[T+1, B, N, A]` bool available actions (all true on padded rows)."""
    action: Tensor
    """`[T, B, N]` int64 (discrete) or `[T, B, N, A]` float32 (continuous) actions taken at t."""
    reward: Tensor
    """`[T, B]` float32 team reward of the transition at t."""
    terminated: Tensor
    """`[T, B]` float32, 1 where the transition at t ends the episode for real (no bootstrap)."""
    mask: Tensor
    """`[T, B]` float32, 1 where a real transition happens at t."""
    indices: np.ndarray
    """`[B]` int64 buffer slots the episodes came from (stateless sampling: they travel here)."""

    def __post_init__(self) -> None:
        t1, b = self.obs.shape[0], self.obs.shape[1]
        t = t1 - 1
        expected = {
            "state": (t1, b),
            "avail_actions": (t1, b),
            "action": (t, b),
            "reward": (t, b),
            "terminated": (t, b),
            "mask": (t, b),
        }
        for name, lead in expected.items():
            got = tuple(getattr(self, name).shape[:2])
            if got != lead:
                raise ValueError(
                    f"Batch.{name} leading shape {got} does not match obs [T+1={t1}, B={b}]: "
                    f"expected {lead}"
                )
        if self.indices.shape != (b,):
            raise ValueError(f"Batch.indices must have shape ({b},), got {self.indices.shape}")

    @property
    def max_t(self) -> int:
        """Number of transition rows `T`."""
        return int(self.reward.shape[0])

    @property
    def batch_size(self) -> int:
        return int(self.reward.shape[1])

    def to(self, device: torch.device | str) -> Batch:
        """The same batch with every tensor on `device` (non-blocking where possible)."""
        device = torch.device(device)
        moved = {
            f.name: getattr(self, f.name).to(device, non_blocking=True)
            for f in fields(self)
            if f.name != "indices"
        }
        return Batch(**moved, indices=self.indices)
