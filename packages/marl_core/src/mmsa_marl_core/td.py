"""Temporal-difference pieces shared by the value-based learners (pure tensor functions).

- `td_targets`: `y_t = r_t + gamma (1 - terminated_t) Q_tot^-(t+1)` (DESIGN 4.4). Only a real
  termination stops bootstrapping; a time-limit truncation bootstraps from the final observation
  (Pardo et al. 2018, "Time limits in RL").
- `masked_mean`: the mean over real transitions only, so padding never enters a loss.
- `masked_argmax` / `gather_actions`: double-Q action selection under availability masks
  (van Hasselt et al. 2016).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["td_targets", "masked_mean", "masked_argmax", "gather_actions"]


def td_targets(reward: Tensor, terminated: Tensor, next_q_tot: Tensor, gamma: float) -> Tensor:
    """`reward [T, B]`, `terminated [T, B]` (0/1), `next_q_tot [T, B]` (target value of the next
    observation, row t is for obs t+1) -> targets `[T, B]` (no gradient through `next_q_tot`)."""
    if not (reward.shape == terminated.shape == next_q_tot.shape):
        raise ValueError(
            f"td_targets: reward {tuple(reward.shape)}, terminated {tuple(terminated.shape)} and "
            f"next_q_tot {tuple(next_q_tot.shape)} must all be [T, B]"
        )
    return reward + gamma * (1.0 - terminated) * next_q_tot.detach()


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of `x [T, B, ...]` over entries where `mask [T, B]` is 1 (0 if there are none)."""
    if x.shape[: mask.dim()] != mask.shape:
        raise ValueError(
            f"masked_mean: mask {tuple(mask.shape)} must match the leading axes of x "
            f"{tuple(x.shape)}"
        )
    m = mask.reshape(*mask.shape, *([1] * (x.dim() - mask.dim()))).expand_as(x)
    return (x * m).sum() / m.sum().clamp(min=1.0)


def masked_argmax(q: Tensor, avail: Tensor) -> Tensor:
    """`q [..., A]`, `avail [..., A]` bool -> best available action `[...]` int64."""
    return q.masked_fill(~avail, float("-inf")).argmax(dim=-1)


def gather_actions(q: Tensor, action: Tensor) -> Tensor:
    """`q [..., A]`, `action [...]` int64 -> `Q(action) [...]`."""
    return torch.gather(q, -1, action.unsqueeze(-1)).squeeze(-1)
