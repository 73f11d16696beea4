"""`EpisodeBatch`, what the world model reads, and the shape checks at the package boundary.

The Protocol has the fields of docs/design.md §3.5, so `mmsa_marl_core.Batch` satisfies it without
this package importing marl_core (and a test can use a small dataclass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

__all__ = ["EpisodeBatch", "PreparedBatch", "prepare_batch", "shape_str"]


class EpisodeBatch(Protocol):
    """Whole episodes, time-major, padded to the longest (row `T` is the final observation).

    Read-only members, so frozen dataclasses (e.g. `mmsa_marl_core.Batch`) satisfy it.
    """

    @property
    def obs(self) -> Tensor:
        """`[T+1, B, N, O]` float per-agent observations."""
        ...

    @property
    def state(self) -> Tensor:
        """`[T+1, B, S]` float global states."""
        ...

    @property
    def avail_actions(self) -> Tensor:
        """`[T+1, B, N, A]` bool available actions (all true for continuous actions)."""
        ...

    @property
    def action(self) -> Tensor:
        """`[T, B, N]` int64 (discrete) or `[T, B, N, A]` float (continuous) actions taken at t."""
        ...

    @property
    def reward(self) -> Tensor:
        """`[T, B]` team reward of the transition t -> t+1."""
        ...

    @property
    def terminated(self) -> Tensor:
        """`[T, B]` 1 where the episode truly ended at t+1 (not a time-out)."""
        ...

    @property
    def mask(self) -> Tensor:
        """`[T, B]` 1 where a real transition happens at t, 0 on padding."""
        ...


@dataclass(frozen=True)
class PreparedBatch:
    """A checked batch with padding zeroed, so whatever padded rows held (even NaN or inf)
    reaches neither a loss nor a gradient (0 * NaN is NaN: masking outputs is not enough)."""

    obs: Tensor  # [T+1, B, N, O]
    state: Tensor  # [T+1, B, S]
    avail_actions: Tensor  # [T+1, B, N, A] bool
    action: Tensor  # [T, B, N] int64 | [T, B, N, A] float
    reward: Tensor  # [T, B] float
    terminated: Tensor  # [T, B] float
    real: Tensor  # [T, B] bool: the transition t is real
    real_state: Tensor  # [T+1, B] bool: s_t is real (s_0 when the episode has a transition)


def shape_str(letters: str, sizes: tuple[int, ...]) -> str:
    """`[T+1=6, B=4, ...]`-style text for error messages."""
    return "[" + ", ".join(f"{k}={v}" for k, v in zip(letters.split(","), sizes, strict=True)) + "]"


def _field(batch: EpisodeBatch, name: str) -> Tensor:
    value = getattr(batch, name, None)
    if not isinstance(value, Tensor):
        raise TypeError(
            f"EpisodeBatch.{name} must be a torch.Tensor, got {type(value).__name__} "
            "(the batch must have obs, state, avail_actions, action, reward, terminated, mask)"
        )
    return value


def _expect(name: str, value: Tensor, letters: str, expected: tuple[int, ...]) -> None:
    if tuple(value.shape) != expected:
        raise ValueError(
            f"EpisodeBatch.{name} has shape {list(value.shape)}; expected "
            f"{shape_str(letters, expected)}"
        )


def prepare_batch(
    batch: EpisodeBatch,
    *,
    n_agents: int,
    obs_dim: int,
    state_dim: int,
    n_actions: int,
    discrete: bool,
) -> PreparedBatch:
    """Check every field of `batch` against the model's sizes and zero its padding.

    Raises `ValueError`/`TypeError` naming the field, its shape and the expected one.
    """
    obs = _field(batch, "obs")
    if obs.ndim != 4:
        raise ValueError(f"EpisodeBatch.obs must be [T+1, B, N, O], got shape {list(obs.shape)}")
    t1, b = int(obs.shape[0]), int(obs.shape[1])
    if t1 < 2:
        raise ValueError(
            f"EpisodeBatch.obs has {t1} time rows; need T+1 >= 2 (at least one transition)"
        )
    t = t1 - 1
    n, o, s, a = n_agents, obs_dim, state_dim, n_actions
    _expect("obs", obs, "T+1,B,N,O", (t1, b, n, o))
    _expect("state", _field(batch, "state"), "T+1,B,S", (t1, b, s))
    avail = _field(batch, "avail_actions")
    _expect("avail_actions", avail, "T+1,B,N,A", (t1, b, n, a))
    if avail.dtype != torch.bool:
        raise ValueError(f"EpisodeBatch.avail_actions must be bool, got {avail.dtype}")
    action = _field(batch, "action")
    if discrete:
        _expect("action", action, "T,B,N", (t, b, n))
        if action.dtype != torch.int64:
            raise ValueError(
                f"EpisodeBatch.action must be int64 for discrete actions, got {action.dtype}"
            )
    else:
        _expect("action", action, "T,B,N,A", (t, b, n, a))
        if not action.is_floating_point():
            raise ValueError(
                f"EpisodeBatch.action must be float for continuous actions, got {action.dtype}"
            )
    for name in ("reward", "terminated", "mask"):
        _expect(name, _field(batch, name), "T,B", (t, b))
    for name in ("obs", "state"):
        if not _field(batch, name).is_floating_point():
            raise ValueError(f"EpisodeBatch.{name} must be float, got {_field(batch, name).dtype}")
    real = batch.mask > 0
    # One device sync for the range check (boolean indexing and min/max would wait three times);
    # the message's exact range is computed only when it fails.
    if discrete and bool((real.unsqueeze(-1) & ((action < 0) | (action >= a))).any()):
        taken = action[real]
        raise ValueError(
            f"EpisodeBatch.action holds values in [{int(taken.min())}, {int(taken.max())}] "
            f"at real steps; discrete actions must lie in [0, A={a})"
        )
    real_state = torch.cat([real[:1], real], dim=0)
    dtype = obs.dtype

    def keep(value: Tensor, where: Tensor) -> Tensor:
        where = where.reshape(*where.shape, *([1] * (value.ndim - where.ndim)))
        return torch.where(where, value, torch.zeros((), dtype=value.dtype, device=value.device))

    return PreparedBatch(
        obs=keep(obs, real_state),
        state=keep(batch.state, real_state),
        avail_actions=keep(avail, real_state),
        action=keep(action, real),
        reward=keep(batch.reward.to(dtype), real),
        terminated=keep(batch.terminated.to(dtype), real),
        real=real,
        real_state=real_state,
    )
