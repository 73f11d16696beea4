"""Report figures as PNG: learning curves with bootstrap bands, final scores per variant.

Figures are built with `matplotlib.figure.Figure` and saved through the Agg canvas, never through
`pyplot`: no GUI backend is touched and no global figure state leaks between reports (the flows
run them in worker threads).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

__all__ = ["plot_finals", "plot_learning_curves", "plot_quartile_curves"]

_DPI = 120
# No "Software: Matplotlib version..." chunk: a PNG's bytes then depend on what is drawn, not on
# the installed matplotlib's version string (dvc repro rewrites them byte for byte).
_PNG_METADATA: dict[str, str | None] = {"Software": None}
_MARKERS_UP_TO = 25  # curves with at most this many eval points get a marker per point


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return math.ceil(n / cols), cols


def _empty(path: Path, message: str) -> Path:
    fig = Figure(figsize=(5, 3))
    FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, message, ha="center", va="center")
    fig.savefig(path, dpi=_DPI, metadata=_PNG_METADATA)
    return path


def _task_panels(curves: pl.DataFrame) -> tuple[list[str], Figure, Any]:
    """The sorted tasks of `curves` and a figure with one 5 x 3.6 panel per task."""
    tasks = curves["task"].unique(maintain_order=True).sort().to_list()
    rows, cols = _grid(len(tasks))
    fig = Figure(figsize=(5 * cols, 3.6 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    return tasks, fig, fig.subplots(rows, cols, squeeze=False).ravel()


def _band_lines(ax: Any, panel: pl.DataFrame, columns: tuple[str, str, str]) -> None:
    """One line per variant of `panel` (centre, low, high = `columns`) with its band shaded."""
    centre_col, low_col, high_col = columns
    for variant in panel["variant"].unique(maintain_order=True).sort().to_list():
        line = panel.filter(pl.col("variant") == variant).sort("env_steps")
        n = int(line["n_seeds"][0])
        steps = line["env_steps"].to_numpy()
        centre, low, high = (line[c].to_numpy() for c in (centre_col, low_col, high_col))
        label = f"{variant} (n={n})"
        if len(steps) == 1:  # a one-point line and band draw nothing: a point with its band
            ax.errorbar(
                steps, centre, yerr=[centre - low, high - centre], fmt="o", capsize=4, label=label
            )
            continue
        # Markers while points are few, so a short curve reads as measured points.
        marker = "o" if len(steps) <= _MARKERS_UP_TO else None
        (drawn,) = ax.plot(steps, centre, marker=marker, markersize=3, label=label)
        ax.fill_between(steps, low, high, color=drawn.get_color(), alpha=0.2, linewidth=0)


def plot_learning_curves(curves: pl.DataFrame, random: pl.DataFrame, path: Path) -> Path:
    """One panel per task: IQM eval return of each variant over env steps, band = bootstrap CI.

    A dashed line marks the random policy's mean return where a random dataset was given.
    """
    path = Path(path)
    if curves.is_empty():
        return _empty(path, "no evaluation points yet")
    tasks, fig, axes = _task_panels(curves)
    random_by_task = (
        dict(zip(random["task"], random["return_mean"], strict=True))
        if "return_mean" in random.columns
        else {}
    )
    for ax, task in zip(axes, tasks, strict=False):
        _band_lines(ax, curves.filter(pl.col("task") == task), ("iqm", "low", "high"))
        if task in random_by_task:
            ax.axhline(random_by_task[task], color="grey", linestyle="--", label="random policy")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("env steps")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 50k, 1.5M: no overlapping digits
        ax.set_ylabel("eval return (IQM, 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[len(tasks) :]:
        ax.set_visible(False)
    fig.savefig(path, dpi=_DPI, metadata=_PNG_METADATA)
    return path


def plot_finals(summary: pl.DataFrame, path: Path, *, metric: str = "return") -> Path:
    """One panel per task: final IQM of each variant with its bootstrap CI (the ablation chart)."""
    path = Path(path)
    data = summary.filter(pl.col("metric") == metric) if "metric" in summary.columns else summary
    if data.is_empty():
        return _empty(path, f"no final {metric} yet")
    tasks = data["task"].unique(maintain_order=True).sort().to_list()
    rows, cols = _grid(len(tasks))
    most = max(len(data.filter(pl.col("task") == t)) for t in tasks)
    fig = Figure(figsize=(5 * cols, (0.5 * most + 1.4) * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, task in zip(axes, tasks, strict=False):
        panel = data.filter(pl.col("task") == task).sort("variant", descending=True)
        iqm = panel["iqm"].to_numpy()
        err = [iqm - panel["iqm_low"].to_numpy(), panel["iqm_high"].to_numpy() - iqm]
        labels = [f"{v} (n={n})" for v, n in zip(panel["variant"], panel["n_seeds"], strict=True)]
        ax.barh(range(len(panel)), iqm, xerr=err, color="tab:blue", alpha=0.7, capsize=3)
        ax.set_yticks(range(len(panel)), labels, fontsize=8)
        ax.set_title(task, fontsize=9)
        ax.set_xlabel(f"final {metric} (IQM, 95% CI)")
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[len(tasks) :]:
        ax.set_visible(False)
    fig.savefig(path, dpi=_DPI, metadata=_PNG_METADATA)
    return path


_METRIC_LABELS = {"win_rate": "eval win rate", "return": "eval return"}


def plot_quartile_curves(curves: pl.DataFrame, path: Path) -> Path:
    """One panel per task: the median over seeds of each variant's eval win rate (or return,
    for tasks without a win), band = 25th to 75th percentile over seeds (SMACv2's plot)."""
    path = Path(path)
    if curves.is_empty():
        return _empty(path, "no evaluation points yet")
    tasks, fig, axes = _task_panels(curves)
    for ax, task in zip(axes, tasks, strict=False):
        panel = curves.filter(pl.col("task") == task)
        metric = str(panel["metric"][0])
        _band_lines(ax, panel, ("median", "q25", "q75"))
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("env steps")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_ylabel(f"{_METRIC_LABELS.get(metric, metric)} (median, 25-75%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[len(tasks) :]:
        ax.set_visible(False)
    fig.savefig(path, dpi=_DPI, metadata=_PNG_METADATA)
    return path
