"""A report from two tiny real training runs (the dummy env, a few hundred steps each)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from flows.collect import collect_from_run
from flows.report import ReportConfig, build_report, write_report
from flows.stages import train_config
from flows.training import run_evaluation, run_training

pytestmark = pytest.mark.integration


def test_report_from_two_tiny_runs(tmp_path: Path, tiny_overrides: dict[str, int]) -> None:
    params = {
        "train": {"overrides": tiny_overrides},
        "task_defs": {"dummy": {"env": "dummy", "steps": 200, "overrides": {}}},
        "algo_defs": {"qmix": {"algo": "qmix", "overrides": {}}},
    }
    runs = []
    for seed in (0, 1):
        config = train_config(params, "dummy", "qmix", seed)
        run = run_training(
            config, tmp_path / f"seed{seed}", device="cpu", task="dummy", variant="qmix",
            torch_threads=1,
        )  # fmt: skip
        runs.append(run)
    # The second run gets a larger evaluation of its final checkpoint; the first keeps the
    # last evaluation of its training.
    evaluated = run_evaluation(runs[1], episodes=6, device="cpu")
    assert json.loads((runs[1] / "evaluation.json").read_text())["episodes"] == 6

    report = build_report(runs, config=ReportConfig(reps=200, curve_reps=100))
    last_eval = (
        pl.read_parquet(runs[0] / "results.parquet").filter(pl.col("kind") == "eval")
    ).sort("env_steps")["return_mean"][-1]
    finals = report.runs.sort("seed")["return"].to_list()
    assert finals == pytest.approx([last_eval, evaluated["return_mean"]])
    row = report.summary.filter(pl.col("metric") == "return").row(0, named=True)
    assert (row["task"], row["variant"], row["n_seeds"]) == ("dummy", "qmix", 2)
    assert row["mean"] == pytest.approx(sum(finals) / 2)
    assert min(finals) - 1e-9 <= row["mean_low"] <= row["mean_high"] <= max(finals) + 1e-9
    assert row["env_steps"] >= 200
    curve = report.curves.sort("env_steps")
    assert curve["n_seeds"].to_list() == [2] * curve.height and curve.height >= 2
    assert "torch" in report.versions and "mmsa-envs" in report.versions

    # The greedy policy of the checkpoint, collected on the evaluation's episode seeds, gives
    # back exactly the evaluation's mean return.
    from mmsa_marl_core.training.train import EVAL_SEED_OFFSET

    data = collect_from_run(runs[1], episodes=6, seed=1 + EVAL_SEED_OFFSET)
    assert data["episode_return"].mean() == pytest.approx(evaluated["return_mean"], abs=1e-5)
    assert data["obs"].shape == (6, 6, 3, 7) and "greedy" in json.loads(str(data["meta"]))["policy"]

    paths = write_report(report, tmp_path / "report")
    md = paths["markdown"].read_text()
    assert "| dummy | qmix | 2 |" in md
    assert paths["curves_png"].stat().st_size > 1000
