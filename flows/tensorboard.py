"""`TensorBoardLogger`: a `mmsa_marl_core.MetricsLogger` writing TensorBoard event files.

Scalars are written against env steps. TensorBoard shows tag groups (the part before the first
`/`) in alphabetical order, so the tags are laid out for its first screen:

- `eval/<name>`: what the policy achieves (`eval/return_mean`, `eval/return_std`,
  `eval/win_rate`, `eval/length_mean`): the first group a user sees;
- `progress/<kind>_<name>`: bookkeeping counters of either kind (`episodes`, `n_episodes`,
  `updates`, `wall_s`, `steps_per_s`, `dropped_episodes`, `skipped`, `nonfinite_updates`,
  `rss_mb`, `peak_rss_mb`, `buffer_mb`);
- `train/<name>`: the learner's diagnostics (losses, TD error, gradient norms, exploration).

`metrics.jsonl` keeps every line as the training loop wrote it; only the tags differ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["COUNTERS", "TensorBoardLogger", "tag"]

COUNTERS = frozenset(
    {
        "episodes",
        "n_episodes",
        "updates",
        "wall_s",
        "steps_per_s",
        "dropped_episodes",
        "skipped",
        "nonfinite_updates",
        "rss_mb",
        "peak_rss_mb",
        "buffer_mb",
    }
)
"""Metric names that count work done rather than measure learning: tagged `progress/...`."""


def tag(kind: str, name: str) -> str:
    """The TensorBoard tag of metric `name` in a `kind` line (`train`, `eval`, ...)."""
    if name in COUNTERS:
        return f"progress/{kind}_{name}"
    return f"{kind}/{name}"


class TensorBoardLogger:
    """Writes every metrics line the training loop emits to `log_dir` (created if missing)."""

    def __init__(self, log_dir: Path | str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer: Any = SummaryWriter(log_dir=str(self.log_dir))
        self._closed = False

    def log(self, kind: str, env_steps: int, metrics: Mapping[str, float]) -> None:
        if self._closed:
            raise RuntimeError(f"TensorBoardLogger({self.log_dir}) is closed")
        for name, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                self._writer.add_scalar(tag(kind, name), float(value), global_step=env_steps)
        self._writer.flush()

    def close(self) -> None:
        """Flush and close (idempotent)."""
        if not self._closed:
            self._closed = True
            self._writer.close()
