"""Reading run directories and turning their metrics into tables.

A run directory is written by `mmsa_marl_core.train` (layout in docs/design.md §6.2):
`run.json` (resolved config, env spec, versions, status, env steps) and `metrics.jsonl` (one JSON
object per line, `kind` "train" or "eval"). The flows add `tb/` (TensorBoard), `results.parquet`
(every metrics line with the run's identity columns) and, when the run was started by a flow or a
DVC stage, `labels.json` (`task` and `variant` names used to group runs in reports).

Everything here is plain polars and json: no Prefect, no torch, so the report and the DVC stages
can use it without starting anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

__all__ = [
    "EVALUATION_FILE",
    "LABELS_FILE",
    "RESULTS_FILE",
    "RunInfo",
    "find_runs",
    "read_metrics",
    "read_run",
    "write_labels",
    "write_results",
]

RESULTS_FILE = "results.parquet"
LABELS_FILE = "labels.json"
EVALUATION_FILE = "evaluation.json"
"""Written by the evaluate flow/stage: a greedy evaluation of the final checkpoint."""


@dataclass(frozen=True)
class RunInfo:
    """What a report needs to know about one run directory."""

    run_dir: Path
    task: str
    """Group name of the task: the label given by the flow/stage, else the env id."""
    variant: str
    """Group name of the algorithm variant: the label given by the flow/stage, else the algo."""
    env: str
    algo: str
    seed: int
    status: str
    env_steps: int
    has_win: bool
    versions: Mapping[str, str]
    config: Mapping[str, Any]


def write_labels(run_dir: Path, *, task: str, variant: str) -> None:
    """Record the task and variant names a flow or stage gave this run (read back by `read_run`)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LABELS_FILE).write_text(json.dumps({"task": task, "variant": variant}) + "\n")


def read_run(run_dir: Path) -> RunInfo:
    """Read `run.json` (and `labels.json` if present); a missing or broken file is a clear error."""
    run_dir = Path(run_dir)
    path = run_dir / "run.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory: it has no run.json")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    config = meta.get("config") or {}
    for key in ("env", "algo", "seed"):
        if key not in config:
            raise ValueError(f"{path}: config has no {key!r} (keys: {sorted(config)})")
    labels: dict[str, str] = {}
    if (run_dir / LABELS_FILE).is_file():
        labels = json.loads((run_dir / LABELS_FILE).read_text())
    spec = meta.get("env_spec") or {}
    return RunInfo(
        run_dir=run_dir,
        task=str(labels.get("task") or config["env"]),
        variant=str(labels.get("variant") or config["algo"]),
        env=str(config["env"]),
        algo=str(config["algo"]),
        seed=int(config["seed"]),
        status=str(meta.get("status", "unknown")),
        env_steps=int(meta.get("env_steps", 0)),
        has_win=bool(spec.get("has_win", False)),
        versions=dict(meta.get("versions") or {}),
        config=config,
    )


def read_metrics(run_dir: Path) -> pl.DataFrame:
    """Every line of `metrics.jsonl` as one row; columns are the union of the lines' keys.

    Lines may carry different keys (train lines hold losses, eval lines returns and win rates), so
    rows are built from dicts and missing values are null. A torn last line (a run killed while
    writing) is skipped; a broken line elsewhere is an error naming the line.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no metrics.jsonl")
    lines = path.read_text().splitlines()
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number} is not valid JSON: {exc}") from exc
        if not isinstance(row, dict) or "kind" not in row or "env_steps" not in row:
            raise ValueError(f"{path}:{number} needs 'kind' and 'env_steps', got {line[:120]!r}")
        rows.append({k: _scalar(v) for k, v in row.items()})
    if not rows:
        return pl.DataFrame(schema={"kind": pl.String, "env_steps": pl.Int64})
    frame = pl.from_dicts(rows, infer_schema_length=None)
    casts: dict[str, Any] = {
        c: pl.Float64 for c, t in frame.schema.items() if t.is_numeric() and c not in _INTS
    }
    casts |= {c: pl.Int64 for c in _INTS if c in frame.columns}
    return frame.with_columns([pl.col(c).cast(t) for c, t in casts.items()])


_INTS = ("env_steps", "episodes", "updates", "n_episodes")


def _scalar(value: Any) -> Any:
    """Keep metric values flat: nested values become JSON text, so parquet stays one table."""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def write_results(run_dir: Path) -> Path:
    """Write `results.parquet`: every metrics line plus task, variant, env, algo, seed columns."""
    info = read_run(run_dir)
    metrics = read_metrics(run_dir)
    identity = {
        "task": info.task,
        "variant": info.variant,
        "env": info.env,
        "algo": info.algo,
        "seed": info.seed,
    }
    frame = metrics.with_columns(
        [
            pl.lit(v, dtype=pl.Int64 if k == "seed" else pl.String).alias(k)
            for k, v in identity.items()
        ]
    ).select([*identity, *metrics.columns])
    out = Path(run_dir) / RESULTS_FILE
    tmp = out.with_suffix(".parquet.tmp")
    frame.write_parquet(tmp)
    tmp.replace(out)
    return out


def find_runs(roots: Iterable[Path]) -> list[Path]:
    """Every run directory (one holding `run.json`) under the given roots, sorted."""
    found: set[Path] = set()
    for root in roots:
        root = Path(root)
        if (root / "run.json").is_file():
            found.add(root)
        elif root.is_dir():
            found.update(p.parent for p in root.rglob("run.json"))
        else:
            raise FileNotFoundError(f"run root {root} does not exist")
    return sorted(found)
