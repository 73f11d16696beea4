"""Metrics sinks: the `MetricsLogger` protocol (TensorBoard and others plug in through it) and
the `metrics.jsonl` writer every run has.

Each `metrics.jsonl` line is one JSON object: `{"kind": "train"|"eval", "env_steps", "episodes",
"updates", "wall_s", ...}`; eval lines carry `return_mean`, `return_std`, `n_episodes` (and
`win_rate` when the env has a win flag), train lines carry losses and the `return_mean` of the
episodes collected since the previous train line, the env steps per wall-second and the
process's resident memory in MiB (`rss_mb` now, `peak_rss_mb` its peak so far) beside the
replay buffer's share of it (`buffer_mb`, the bytes of the slots holding an episode).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["MEASURED", "MetricsLogger", "JsonlMetrics", "read_metrics"]

MEASURED = frozenset({"wall_s", "steps_per_s", "rss_mb", "peak_rss_mb"})
"""Keys of a metrics line that measure the machine rather than the computation: two runs that
compute the same (a resumed run and an uninterrupted one) differ only in these."""


@runtime_checkable
class MetricsLogger(Protocol):
    """Receives every metrics line the loop writes (`kind` is 'train' or 'eval')."""

    def log(self, kind: str, env_steps: int, metrics: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


class JsonlMetrics:
    """Appends lines to `metrics.jsonl`; `offset()` and `truncate()` support exact resume."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, line: Mapping[str, Any]) -> None:
        clean = {k: _json_number(v) for k, v in line.items()}
        self._file.write(json.dumps(clean, sort_keys=False) + "\n")
        self._file.flush()

    def offset(self) -> int:
        """Byte size written so far (stored in checkpoints)."""
        self._file.flush()
        return self._file.tell()

    def truncate(self, offset: int) -> None:
        """Drop everything after `offset` (lines written after the checkpoint we resume from)."""
        self._file.flush()
        os.truncate(self.path, min(offset, self.path.stat().st_size))
        self._file.seek(0, os.SEEK_END)

    def close(self) -> None:
        self._file.close()


def _json_number(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN/inf
    return v


def read_metrics(run_dir: Path, kind: str | None = None) -> list[dict[str, Any]]:
    """Every line of `run_dir/metrics.jsonl` (optionally only one kind)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [x for x in lines if kind is None or x.get("kind") == kind]
