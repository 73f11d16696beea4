"""The results report: per task x variant tables with bootstrap intervals, learning curves, figures.

`build_report(run_dirs)` reads run directories (`flows.runs`) and returns polars tables;
`write_report(report, out_dir)` writes them as parquet, markdown, CSV/JSON for DVC, and PNGs
(`flows.figures`). The final score of a run is its `evaluation.json` (written by the evaluate
flow/stage: a larger greedy evaluation of the final checkpoint) when present, else the last `eval`
line of its metrics. Scores are aggregated over seeds (IQM, mean, median, stratified-bootstrap
intervals from rliable, `flows.stats`).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import polars as pl

from .runs import EVALUATION_FILE, RunInfo, read_metrics, read_run
from .stats import aggregate, curve_band

__all__ = [
    "Report",
    "ReportConfig",
    "build_report",
    "curve_table",
    "final_scores",
    "quartile_table",
    "main",
    "random_baseline",
    "write_report",
]

_REPORT_PACKAGES = ("mmsa", "numpy", "polars", "rliable", "scipy", "matplotlib", "prefect", "dvc")


@dataclass(frozen=True)
class ReportConfig:
    """How scores are aggregated."""

    reps: int = 2000
    """Bootstrap resamples for the final-score intervals."""
    curve_reps: int = 500
    """Bootstrap resamples per point of a learning curve."""
    confidence: float = 0.95
    """Coverage of every interval."""
    seed: int = 0
    """Seed of the bootstrap (rliable draws from the global np.random; it is restored after)."""
    curve_points: int = 50
    """At most this many points per learning curve (evenly thinned from the common grid)."""


@dataclass(frozen=True)
class Report:
    summary: pl.DataFrame
    """One row per task x variant x metric: n_seeds, env_steps, IQM/mean/median with intervals."""
    runs: pl.DataFrame
    """One row per run: task, variant, seed, env_steps, status, final return (and win rate)."""
    curves: pl.DataFrame
    """task, variant, env_steps, iqm, low, high, n_seeds: eval return over training."""
    random: pl.DataFrame
    """task, episodes, return mean/std and interval of the random-policy datasets given."""
    quartile_curves: pl.DataFrame = field(default_factory=pl.DataFrame)
    """task, variant, metric, env_steps, median, q25, q75, n_seeds: the median over seeds with
    the 25-75% band (SMACv2's plot), of the eval win rate where the env has one, else of the
    return."""
    versions: Mapping[str, str] = field(default_factory=dict)
    """Package and backend versions recorded by the runs (values joined where runs differ)."""
    tools: Mapping[str, str] = field(default_factory=dict)
    """Versions of what made this report (python, numpy, polars, rliable, ...)."""


def final_scores(info: RunInfo, evaluation: Path | None = None) -> dict[str, float]:
    """`return` (and `win_rate` where the env has one) of a finished run, as described above;
    `evaluation` is where its evaluation JSON lies if not in the run directory."""
    evaluation = Path(evaluation) if evaluation else info.run_dir / EVALUATION_FILE
    if evaluation.is_file():
        row = json.loads(evaluation.read_text())
    else:
        evals = read_metrics(info.run_dir).filter(pl.col("kind") == "eval")
        if evals.is_empty() or "return_mean" not in evals.columns:
            raise ValueError(f"{info.run_dir} has no eval line and no {EVALUATION_FILE}")
        row = evals.sort("env_steps").row(-1, named=True)
    scores = {"return": float(row["return_mean"])}
    if info.has_win and row.get("win_rate") is not None:
        scores["win_rate"] = float(row["win_rate"])
    return scores


def random_baseline(dataset: Path, *, config: ReportConfig = ReportConfig()) -> dict[str, float]:
    """Mean return of a random-policy dataset written by the collect flow, with an interval."""
    with np.load(dataset) as data:
        returns = np.asarray(data["episode_return"], dtype=np.float64)
    est = aggregate(returns, reps=config.reps, confidence=config.confidence, seed=config.seed)
    return {
        "episodes": float(returns.size),
        "return_mean": est["mean"].value,
        "return_low": est["mean"].low,
        "return_high": est["mean"].high,
        "return_std": float(returns.std()),
    }


def build_report(
    run_dirs: Sequence[Path],
    *,
    baselines: Mapping[str, Path] | None = None,
    evaluations: Mapping[Path, Path] | None = None,
    config: ReportConfig = ReportConfig(),
) -> Report:
    """Aggregate the given runs by (task, variant).

    `baselines` maps task -> random-policy dataset (flows.collect); `evaluations` maps a run
    directory -> its evaluation JSON when that is not `evaluation.json` inside the run.
    """
    evaluations = {Path(k): Path(v) for k, v in (evaluations or {}).items()}
    if not run_dirs:
        raise ValueError("build_report: no run directories given")
    infos = [read_run(Path(d)) for d in run_dirs]
    run_rows = []
    for info in infos:
        run_rows.append(
            {
                "task": info.task,
                "variant": info.variant,
                "seed": info.seed,
                "env": info.env,
                "algo": info.algo,
                "status": info.status,
                "env_steps": info.env_steps,
                **final_scores(info, evaluations.get(info.run_dir)),
                "run_dir": str(info.run_dir),
            }
        )
    runs = pl.from_dicts(run_rows, infer_schema_length=None).sort("task", "variant", "seed")
    duplicate = runs.group_by("task", "variant", "seed").len().filter(pl.col("len") > 1)
    if not duplicate.is_empty():
        raise ValueError(f"several runs share task, variant and seed: {duplicate.to_dicts()}")

    summary_rows = []
    for (task, variant), group in runs.group_by("task", "variant", maintain_order=True):
        for metric in ("return", "win_rate"):
            if metric not in group.columns or group[metric].null_count() == len(group):
                continue
            scores = group[metric].drop_nulls().to_numpy()
            est = aggregate(
                scores, reps=config.reps, confidence=config.confidence, seed=config.seed
            )
            row: dict[str, object] = {
                "task": task,
                "variant": variant,
                "metric": metric,
                "n_seeds": len(scores),
                "env_steps": int(group["env_steps"].min()),  # type: ignore[arg-type]
            }
            for name, e in est.items():
                row |= {name: e.value, f"{name}_low": e.low, f"{name}_high": e.high}
            summary_rows.append(row)
    summary = pl.from_dicts(summary_rows).sort("task", "metric", "variant")

    random_rows = [
        {"task": task, **random_baseline(Path(path), config=config)}
        for task, path in sorted((baselines or {}).items())
    ]
    random = (
        pl.from_dicts(random_rows)
        if random_rows
        else pl.DataFrame(schema={"task": pl.String, "return_mean": pl.Float64})
    )
    return Report(
        summary=summary,
        runs=runs,
        curves=_curves(infos, config),
        quartile_curves=_quartile_curves(infos, config),
        random=random,
        versions=_run_versions(infos),
        tools=_tool_versions(),
    )


Curves = Mapping[tuple[str, str], Sequence[tuple[np.ndarray, np.ndarray]]]


def _eval_curves(
    infos: Sequence[RunInfo], column: str
) -> dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]]:
    """`column` of the eval lines over env steps, one `(steps, values)` per run, by (task,
    variant); runs without that column are left out."""
    groups: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    for info in infos:
        evals = read_metrics(info.run_dir).filter(pl.col("kind") == "eval")
        if evals.is_empty() or column not in evals.columns:
            continue
        evals = evals.filter(pl.col(column).is_not_null())
        if evals.is_empty():
            continue
        evals = evals.sort("env_steps").unique("env_steps", keep="last", maintain_order=True)
        steps = evals["env_steps"].to_numpy().astype(np.float64)
        values = evals[column].to_numpy().astype(np.float64)
        groups.setdefault((info.task, info.variant), []).append((steps, values))
    return groups


def _curves(infos: Sequence[RunInfo], config: ReportConfig) -> pl.DataFrame:
    """Eval return over env steps, interpolated onto a grid common to the runs of each group."""
    return curve_table(_eval_curves(infos, "return_mean"), config)


def _quartile_curves(infos: Sequence[RunInfo], config: ReportConfig) -> pl.DataFrame:
    """`quartile_table` of the eval win rate of the tasks whose runs record one, and of the eval
    return of the others."""
    wins = _eval_curves([i for i in infos if i.has_win], "win_rate")
    returns = _eval_curves(infos, "return_mean")
    won_tasks = {task for task, _ in wins}
    other = {key: c for key, c in returns.items() if key[0] not in won_tasks}
    return pl.concat(
        [quartile_table(wins, "win_rate", config), quartile_table(other, "return", config)],
        how="diagonal",
    )


def _common_grid(
    curves: Sequence[tuple[np.ndarray, np.ndarray]], config: ReportConfig
) -> tuple[np.ndarray, np.ndarray]:
    """`(grid, scores [R, P])`: runs evaluate at slightly different env steps (episodes end at
    different times), so each curve is interpolated onto one evenly spaced grid, as many points
    as the densest run has, inside the span every run covers (no point is extrapolated)."""
    start = max(s[0] for s, _ in curves)
    end = min(s[-1] for s, _ in curves)
    count = min(config.curve_points, max(len(s) for s, _ in curves))
    grid = np.unique(np.linspace(start, end, count).round()) if end > start else np.array([end])
    return grid, np.stack([np.interp(grid, s, v) for s, v in curves])


def quartile_table(
    groups: Curves, metric: str, config: ReportConfig = ReportConfig()
) -> pl.DataFrame:
    """Median over runs with the 25th and 75th percentiles (numpy's linear interpolation) at
    each point of the common grid (`curve_table`'s): task, variant, metric, env_steps, median,
    q25, q75, n_seeds."""

    def quartiles(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        q25, median, q75 = np.percentile(scores, [25, 50, 75], axis=0)
        return median, q25, q75

    return _band_table(groups, config, quartiles, ("median", "q25", "q75"), {"metric": metric})


def curve_table(groups: Curves, config: ReportConfig = ReportConfig()) -> pl.DataFrame:
    """IQM learning curves with bootstrap bands from the evaluation curves of each (task,
    variant): ``groups[(task, variant)]`` holds one ``(env_steps [P], returns [P])`` per run, steps
    increasing. Returns the ``curves`` table of `Report` (task, variant, env_steps, iqm, low,
    high, n_seeds); `figures.plot_learning_curves` draws it."""

    def band(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return curve_band(
            scores, reps=config.curve_reps, confidence=config.confidence, seed=config.seed
        )

    return _band_table(groups, config, band, ("iqm", "low", "high"), {})


def _band_table(
    groups: Curves,
    config: ReportConfig,
    band: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]],
    names: tuple[str, str, str],
    extra: Mapping[str, object],
) -> pl.DataFrame:
    """One row per (task, variant) and point of its common grid: task, variant, `extra`,
    env_steps, the three `names` columns of `band(scores [R, P])`, n_seeds."""
    rows = []
    for (task, variant), curves in sorted(groups.items()):
        if not curves:
            continue
        grid, scores = _common_grid(curves, config)
        columns = band(scores)
        for i, step in enumerate(grid):
            rows.append(
                {
                    "task": task,
                    "variant": variant,
                    **extra,
                    "env_steps": int(step),
                    **{name: float(col[i]) for name, col in zip(names, columns, strict=True)},
                    "n_seeds": len(curves),
                }
            )
    if not rows:
        return pl.DataFrame(schema={"task": pl.String, "variant": pl.String, "env_steps": pl.Int64})
    return pl.from_dicts(rows)


def _run_versions(infos: Sequence[RunInfo]) -> dict[str, str]:
    seen: dict[str, set[str]] = {}
    for info in infos:
        for name, version in info.versions.items():
            seen.setdefault(name, set()).add(str(version))
    return {name: ", ".join(sorted(v)) for name, v in sorted(seen.items())}


def _tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _REPORT_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_report(report: Report, out_dir: Path, *, title: str = "MMSA results") -> dict[str, Path]:
    """Write the report to `out_dir`; returns the written files by role."""
    from .figures import plot_finals, plot_learning_curves, plot_quartile_curves
    from .markdown import report_markdown

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "summary_parquet": out_dir / "summary.parquet",
        "runs_parquet": out_dir / "runs.parquet",
        "curves_parquet": out_dir / "curves.parquet",
        "curves_csv": out_dir / "curves.csv",
        "finals_csv": out_dir / "finals.csv",
        "metrics_json": out_dir / "metrics.json",
        "curves_png": out_dir / "learning_curves.png",
        "ablation_png": out_dir / "ablation.png",
        "quartiles_png": out_dir / "median_curves.png",
        "markdown": out_dir / "report.md",
    }
    report.summary.write_parquet(paths["summary_parquet"])
    report.runs.write_parquet(paths["runs_parquet"])
    report.curves.write_parquet(paths["curves_parquet"])
    report.curves.write_csv(paths["curves_csv"], float_precision=6)
    report.summary.filter(pl.col("metric") == "return").select(
        "task", "variant", "iqm", "iqm_low", "iqm_high", "n_seeds"
    ).write_csv(paths["finals_csv"], float_precision=6)
    paths["metrics_json"].write_text(json.dumps(_dvc_metrics(report), indent=2) + "\n")
    plot_learning_curves(report.curves, report.random, paths["curves_png"])
    plot_finals(report.summary, paths["ablation_png"])
    plot_quartile_curves(report.quartile_curves, paths["quartiles_png"])
    paths["markdown"].write_text(report_markdown(report, paths, title=title))
    return paths


def _dvc_metrics(report: Report) -> dict[str, dict[str, dict[str, float]]]:
    """Nested {task: {variant: {metric_stat: value}}} for `dvc metrics show/diff`."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for row in report.summary.iter_rows(named=True):
        entry = out.setdefault(row["task"], {}).setdefault(row["variant"], {})
        metric = row["metric"]
        entry[f"{metric}_iqm"] = round(row["iqm"], 6)
        entry[f"{metric}_iqm_low"] = round(row["iqm_low"], 6)
        entry[f"{metric}_iqm_high"] = round(row["iqm_high"], 6)
        entry[f"{metric}_mean"] = round(row["mean"], 6)
        entry["n_seeds"] = row["n_seeds"]
        entry["env_steps"] = row["env_steps"]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m flows.report RUN_ROOT... [--out DIR]`: report every run under the roots."""
    import argparse

    from .runs import find_runs

    parser = argparse.ArgumentParser(prog="python -m flows.report", description=main.__doc__)
    parser.add_argument("roots", nargs="+", type=Path, help="run directories or folders of them")
    parser.add_argument("--out", type=Path, default=Path("runs/report"))
    parser.add_argument("--title", default="MMSA results")
    parser.add_argument("--reps", type=int, default=ReportConfig.reps)
    parser.add_argument("--seed", type=int, default=ReportConfig.seed)
    args = parser.parse_args(argv)
    run_dirs = find_runs(args.roots)
    if not run_dirs:
        parser.error(f"no run directory (holding run.json) under {[str(r) for r in args.roots]}")
    report = build_report(run_dirs, config=ReportConfig(reps=args.reps, seed=args.seed))
    print(f"wrote {write_report(report, args.out, title=args.title)['markdown']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
