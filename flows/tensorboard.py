"""`TensorBoardLogger`: a `mmsa_marl_core.MetricsLogger` writing TensorBoard event files.

Scalars are tagged `<kind>/<name>` (e.g. `eval/return_mean`, `train/loss`) against env steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["TensorBoardLogger"]


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
                self._writer.add_scalar(f"{kind}/{name}", float(value), global_step=env_steps)
        self._writer.flush()

    def close(self) -> None:
        """Flush and close (idempotent)."""
        if not self._closed:
            self._closed = True
            self._writer.close()
