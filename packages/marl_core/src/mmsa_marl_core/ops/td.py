"""Temporal-difference pieces shared by the value-based learners (pure tensor functions).

- `td_targets`: `y_t = r_t + gamma (1 - terminated_t) Q_tot^-(t+1)` (docs/design.md §4.4). Only a
  real termination stops bootstrapping; a time-limit truncation bootstraps from the final
  observation (Pardo et al. 2018, "Time limits in RL").
- `masked_mean`: the mean over real transitions only, so padding never enters a loss.
- `masked_argmax` / `gather_actions`: double-Q action selection under availability masks
  (van Hasselt et al. 2016).
- `td_metrics`: the logged TD statistics over real transitions, as tensors (read them with
  `optim.scalars`, one device sync).
- `Rows`: the real rows of a `[T, B]` mask, to gather from and scatter into `[T, B, ...]`
  tensors. Boolean indexing waits for the GPU at every use (its output size is data-dependent);
  `Rows` waits once, when it is built.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["td_targets", "masked_mean", "masked_argmax", "gather_actions", "td_metrics", "Rows"]


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


def td_metrics(td_error: Tensor, q_tot: Tensor, targets: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """Means over real transitions (all `[T, B]`): `td_error_abs`, `q_taken_mean`, `target_mean`."""
    with torch.no_grad():
        n_real = mask.sum().clamp(min=1.0)
        return {
            "td_error_abs": (td_error.abs() * mask).sum() / n_real,
            "q_taken_mean": (q_tot * mask).sum() / n_real,
            "target_mean": (targets * mask).sum() / n_real,
        }


class Rows:
    """The True entries of a mask ``[T, B]``, in the row-major order of ``x[mask]``.

    ``take(x)`` is ``x[mask]`` for ``x [T, B, ...]``; ``take(x, shift=s)`` is ``x[s:s+T][mask]``
    for a longer ``x [T+s', B, ...]`` (``shift=1`` reads row ``t+1`` of each real ``t``);
    ``put(values, like)`` is ``out = zeros; out[mask] = values`` with gradient to ``values``.
    """

    def __init__(self, mask: Tensor) -> None:
        if mask.dim() != 2 or mask.dtype != torch.bool:
            raise ValueError(f"Rows needs a bool [T, B] mask, got {mask.dtype} {list(mask.shape)}")
        self.shape = tuple(mask.shape)
        self.index = mask.reshape(-1).nonzero().squeeze(-1)  # the one device sync
        self._shifted: dict[int, Tensor] = {0: self.index}

    def __len__(self) -> int:
        return int(self.index.numel())

    def take(self, x: Tensor, shift: int = 0) -> Tensor:
        """``x[shift:shift+T][mask]``: x ``[>= T+shift, B, ...]`` -> ``[M, ...]``."""
        t, b = self.shape
        if x.dim() < 2 or x.shape[1] != b or x.shape[0] < t + shift:
            raise ValueError(f"Rows.take: x {list(x.shape)} must be [>={t + shift}, {b}, ...]")
        if shift not in self._shifted:
            self._shifted[shift] = self.index + shift * b
        return x.flatten(0, 1).index_select(0, self._shifted[shift])

    def put(self, values: Tensor) -> Tensor:
        """Zeros ``[T, B, ...]`` holding ``values [M, ...]`` on the mask's rows (differentiable)."""
        t, b = self.shape
        tail = tuple(values.shape[1:])
        return values.new_zeros(t * b, *tail).index_copy(0, self.index, values).view(t, b, *tail)
