"""The report as markdown: tables with intervals, the figures, and every version involved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from .report import Report

__all__ = ["markdown_table", "report_markdown", "run_markdown"]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; `|` inside cells is escaped."""

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    lines = [
        "| " + " | ".join(cell(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _interval(row: Mapping[str, Any], name: str) -> str:
    return f"{row[name]:.3f} [{row[f'{name}_low']:.3f}, {row[f'{name}_high']:.3f}]"


def _metric_table(summary: pl.DataFrame, metric: str) -> str:
    rows = [
        [
            r["task"],
            r["variant"],
            r["n_seeds"],
            f"{r['env_steps']:,}",
            _interval(r, "iqm"),
            _interval(r, "mean"),
            _interval(r, "median"),
        ]
        for r in summary.filter(pl.col("metric") == metric).iter_rows(named=True)
    ]
    header = ["task", "variant", "seeds", "env steps", "IQM [95% CI]", "mean [95% CI]"]
    return markdown_table([*header, "median [95% CI]"], rows)


def run_markdown(run_dir: Path, *, last_evals: int = 5) -> str:
    """Summary of one run for the Prefect UI: identity, final scores, recent evaluations, path."""
    from .runs import EVALUATION_FILE, read_metrics, read_run

    info = read_run(run_dir)
    metrics = read_metrics(run_dir)
    evals = metrics.filter(pl.col("kind") == "eval").sort("env_steps")
    rows: list[list[Any]] = [
        ["env", info.env],
        ["algo", info.algo],
        ["task / variant", f"{info.task} / {info.variant}"],
        ["seed", info.seed],
        ["status", info.status],
        ["env steps", f"{info.env_steps:,}"],
    ]
    if not evals.is_empty():
        last = evals.row(-1, named=True)
        rows.append(["final eval return", f"{last['return_mean']:.4f}"])
        if last.get("win_rate") is not None:
            rows.append(["final eval win rate", f"{last['win_rate']:.4f}"])
        if "wall_s" in evals.columns:
            rows.append(["wall time (s)", f"{last['wall_s']:.1f}"])
    evaluation = Path(run_dir) / EVALUATION_FILE
    if evaluation.is_file():
        import json

        record = json.loads(evaluation.read_text())
        rows.append(["evaluation.json return", f"{record['return_mean']:.4f}"])
    rows.append(["run directory", f"`{Path(run_dir).resolve()}`"])
    parts = [f"# Run {info.task} / {info.variant} / seed {info.seed}", ""]
    parts += [markdown_table(["", "value"], rows), ""]
    if not evals.is_empty():
        cols = [c for c in ("env_steps", "return_mean", "return_std", "win_rate") if c in evals]
        recent = evals.tail(last_evals).select(cols)
        body = [[f"{v:.4f}" if isinstance(v, float) else v for v in r] for r in recent.iter_rows()]
        parts += ["## Last evaluations", "", markdown_table(cols, body), ""]
    return "\n".join(parts)


def report_markdown(report: Report, paths: Mapping[str, Path], *, title: str) -> str:
    """The whole report; figure links are relative to the markdown file's directory."""
    parts = [f"# {title}", ""]
    parts += [
        "Final score of a run: its `evaluation.json` (greedy evaluation of the final checkpoint) "
        "when present, else its last evaluation during training. Aggregates over seeds: "
        "interquartile mean (IQM), mean and median, each with a stratified-bootstrap 95% "
        "confidence interval (rliable).",
        "",
    ]
    metrics = report.summary["metric"].unique(maintain_order=True).to_list()
    for metric in ("return", "win_rate"):
        if metric in metrics:
            parts += [
                f"## Final {metric.replace('_', ' ')}",
                "",
                _metric_table(report.summary, metric),
            ]
            parts.append("")
    if not report.random.is_empty():
        rows = [
            [
                r["task"],
                int(r["episodes"]),
                f"{r['return_mean']:.3f} [{r['return_low']:.3f}, {r['return_high']:.3f}]",
                f"{r['return_std']:.3f}",
            ]
            for r in report.random.iter_rows(named=True)
        ]
        parts += [
            "## Random policy",
            "",
            markdown_table(["task", "episodes", "mean return [95% CI]", "std"], rows),
            "",
        ]
    parts += [
        "## Figures",
        "",
        f"![learning curves]({paths['curves_png'].name})",
        "",
        f"![final return per variant]({paths['ablation_png'].name})",
        "",
        f"![median over seeds with the 25-75% band]({paths['quartiles_png'].name})",
        "",
        "## Runs",
        "",
    ]
    run_cols = ["task", "variant", "seed", "status", "env_steps", "return"]
    if "win_rate" in report.runs.columns:
        run_cols.append("win_rate")
    run_rows = [
        [r[c] if not isinstance(r[c], float) else f"{r[c]:.3f}" for c in run_cols]
        for r in report.runs.iter_rows(named=True)
    ]
    parts += [markdown_table(run_cols, run_rows), ""]
    parts += [
        "## Versions",
        "",
        "Recorded by the runs (packages and env backends):",
        "",
        markdown_table(["package", "version"], list(report.versions.items())),
        "",
        "Used to make this report:",
        "",
        markdown_table(["package", "version"], list(report.tools.items())),
        "",
    ]
    return "\n".join(parts)
