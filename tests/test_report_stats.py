"""Unit tests of the statistics and the report tables on fabricated run directories.

The run directories here are written by hand in the pinned layout (run.json + metrics.jsonl) with
known numbers, so the aggregates can be checked exactly; the report from real training runs is in
test_report_runs.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flows.report import ReportConfig, build_report, curve_table, write_report
from flows.runs import find_runs, read_metrics, read_run, write_labels, write_results
from flows.stats import aggregate, curve_band, seeded_global_numpy

FAST = ReportConfig(reps=300, curve_reps=100, seed=0)


def fabricate(root: Path, algo: str, seed: int, final: float, *, steps: int = 1000,
              win: bool = False, every: int = 250) -> Path:  # fmt: skip
    """A finished run whose eval return rises linearly from 0 to `final`."""
    run = root / f"{algo}-{seed}"
    run.mkdir(parents=True)
    meta = {
        "config": {"env": "dummy", "algo": algo, "seed": seed, "steps": steps},
        "env_spec": {"has_win": win},
        "versions": {"torch": "2.13.0", "mmsa-envs": "0.1.0"},
        "status": "finished",
        "env_steps": steps,
    }
    (run / "run.json").write_text(json.dumps(meta))
    lines = []
    for i, step in enumerate(range(0, steps + 1, every)):
        base = {"env_steps": step, "episodes": i, "updates": i, "wall_s": 0.1 * i}
        lines.append({"kind": "train", **base, "loss": 1.0 / (i + 1), "return_mean": 0.0})
        ev = {"kind": "eval", **base, "return_mean": final * step / steps, "n_episodes": 8}
        if win:
            ev["win_rate"] = final * step / steps / 2
        lines.append(ev)
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run


# ----------------------------------------------------------------------------- stats
def test_aggregate_matches_hand_computed_values() -> None:
    scores = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0])
    est = aggregate(scores, reps=500, seed=0)
    # IQM drops the lowest and highest quarter (2 of 8 each): mean of 2, 3, 4, 5.
    assert est["iqm"].value == pytest.approx(3.5)
    assert est["mean"].value == pytest.approx(121.0 / 8)
    assert est["median"].value == pytest.approx(3.5)
    for e in est.values():
        assert e.low <= e.value <= e.high
    # The outlier widens the mean's interval more than the IQM's (the IQM is robust to it).
    assert est["mean"].high - est["mean"].low > est["iqm"].high - est["iqm"].low


def test_aggregate_is_reproducible_and_leaves_global_rng_alone() -> None:
    scores = np.random.default_rng(1).normal(size=7)
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    a = aggregate(scores, reps=300, seed=5)
    assert np.random.random() == expected_next  # global state restored
    b = aggregate(scores, reps=300, seed=5)
    c = aggregate(scores, reps=300, seed=6)
    assert a == b
    assert a["mean"].low != c["mean"].low or a["mean"].high != c["mean"].high


def test_seeded_global_numpy_restores_state_on_error() -> None:
    np.random.seed(7)
    state = np.random.get_state()[1].copy()
    with pytest.raises(RuntimeError), seeded_global_numpy(0):
        raise RuntimeError("boom")
    assert np.array_equal(np.random.get_state()[1], state)


def test_aggregate_single_run_collapses_and_bad_input_is_named() -> None:
    est = aggregate(np.array([0.25]), reps=50)
    assert est["iqm"] == est["iqm"].__class__(0.25, 0.25, 0.25)
    with pytest.raises(ValueError, match="finite"):
        aggregate(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="at least one run"):
        aggregate(np.array([]))
    with pytest.raises(ValueError, match="reps"):
        aggregate(np.array([1.0]), reps=0)


def test_curve_band_shapes_and_ordering() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5, 9)) + np.arange(9)  # [runs R=5, points P=9]
    iqm, low, high = curve_band(scores, reps=200)
    assert iqm.shape == low.shape == high.shape == (9,)
    assert np.all(low <= iqm + 1e-12) and np.all(iqm <= high + 1e-12)
    assert np.all(np.diff(iqm) > 0)  # follows the trend
    with pytest.raises(ValueError, match="runs, points"):
        curve_band(scores[0])


# ----------------------------------------------------------------------------- runs
def test_read_run_and_metrics(tmp_path: Path) -> None:
    run = fabricate(tmp_path, "qmix", 3, 1.0)
    info = read_run(run)
    assert (info.task, info.variant, info.seed, info.env_steps) == ("dummy", "qmix", 3, 1000)
    write_labels(run, task="tiny", variant="qmix-big")
    assert (read_run(run).task, read_run(run).variant) == ("tiny", "qmix-big")
    frame = read_metrics(run)
    assert frame.height == 10 and set(frame["kind"]) == {"train", "eval"}
    assert frame["env_steps"].dtype == pl.Int64
    assert frame.filter(pl.col("kind") == "train")["n_episodes"].null_count() == 5
    out = pl.read_parquet(write_results(run))
    assert out.columns[:5] == ["task", "variant", "env", "algo", "seed"]
    assert out.height == 10 and set(out["variant"]) == {"qmix-big"}


def test_torn_last_line_is_skipped_but_broken_middle_line_is_an_error(tmp_path: Path) -> None:
    run = fabricate(tmp_path, "qmix", 0, 1.0)
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"kind": "eval", "env_st')
    assert read_metrics(run).height == 10
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[2] = "not json"
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"metrics.jsonl:3"):
        read_metrics(run)


def test_missing_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no run.json"):
        read_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_runs([tmp_path / "nowhere"])


# ----------------------------------------------------------------------------- report
def test_report_tables_figures_and_files(tmp_path: Path) -> None:
    runs = [fabricate(tmp_path / "runs", "qmix", s, 0.5 + 0.1 * s, win=True) for s in range(4)]
    runs += [fabricate(tmp_path / "runs", "vdn", s, 0.2, steps=1250, win=True) for s in range(2)]
    # An evaluation file overrides the last eval line of seed 0 of vdn.
    (runs[4] / "evaluation.json").write_text(json.dumps({"return_mean": 0.9, "win_rate": 0.5}))
    assert find_runs([tmp_path / "runs"]) == sorted(runs)
    report = build_report(runs, config=FAST)

    summary = report.summary
    ret = summary.filter(pl.col("metric") == "return").sort("variant")
    assert ret["variant"].to_list() == ["qmix", "vdn"]
    assert ret["n_seeds"].to_list() == [4, 2]
    assert ret["env_steps"].to_list() == [1000, 1250]
    qmix = ret.row(0, named=True)
    assert qmix["mean"] == pytest.approx(np.mean([0.5, 0.6, 0.7, 0.8]))
    assert qmix["iqm"] == pytest.approx(0.65)  # mean of the middle two of four
    assert ret.row(1, named=True)["mean"] == pytest.approx((0.9 + 0.2) / 2)
    win = summary.filter(pl.col("metric") == "win_rate")
    assert win.height == 2

    curves = report.curves.filter(pl.col("variant") == "qmix").sort("env_steps")
    assert curves["env_steps"].to_list() == [0, 250, 500, 750, 1000]
    assert curves["iqm"][-1] == pytest.approx(0.65)
    assert (curves["low"] <= curves["iqm"] + 1e-9).all()
    assert report.versions["torch"] == "2.13.0" and "rliable" in report.tools

    # The median with the 25-75% band, of the win rate (these runs record one): seeds 0-3 of
    # qmix end at win rates 0.25, 0.30, 0.35, 0.40.
    quart = report.quartile_curves.filter(pl.col("variant") == "qmix").sort("env_steps")
    assert set(quart["metric"]) == {"win_rate"} and quart["n_seeds"][0] == 4
    assert quart["env_steps"].to_list() == [0, 250, 500, 750, 1000]
    last = quart.row(-1, named=True)
    assert (last["q25"], last["median"], last["q75"]) == pytest.approx((0.2875, 0.325, 0.3625))
    assert quart["median"][0] == 0.0

    paths = write_report(report, tmp_path / "out", title="T")
    for key in ("curves_png", "ablation_png", "quartiles_png"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = paths["markdown"].read_text()
    assert md.startswith("# T\n")
    assert "0.650 [" in md and "learning_curves.png" in md and "| torch | 2.13.0 |" in md
    metrics = json.loads(paths["metrics_json"].read_text())
    assert metrics["dummy"]["qmix"]["return_iqm"] == pytest.approx(0.65)
    assert pl.read_parquet(paths["summary_parquet"]).equals(report.summary)
    assert pl.read_csv(paths["curves_csv"]).columns[:3] == ["task", "variant", "env_steps"]


def test_quartile_curves_fall_back_to_the_return_without_a_win(tmp_path: Path) -> None:
    runs = [fabricate(tmp_path / "runs", "vdn", s, f) for s, f in enumerate((0.2, 1.0, 0.4))]
    quart = build_report(runs, config=FAST).quartile_curves.sort("env_steps")
    assert set(quart["metric"]) == {"return"}
    last = quart.row(-1, named=True)
    assert (last["q25"], last["median"], last["q75"]) == pytest.approx((0.3, 0.4, 0.7))


def test_report_rejects_duplicate_seeds_and_no_runs(tmp_path: Path) -> None:
    a = fabricate(tmp_path / "a", "qmix", 0, 1.0)
    b = fabricate(tmp_path / "b", "qmix", 0, 1.0)
    with pytest.raises(ValueError, match="share task, variant and seed"):
        build_report([a, b], config=FAST)
    with pytest.raises(ValueError, match="no run directories"):
        build_report([], config=FAST)


def test_random_baseline_from_dataset(tmp_path: Path) -> None:
    from flows.collect import collect_episodes, save_dataset

    run = fabricate(tmp_path / "runs", "qmix", 0, 1.0)
    data = save_dataset(collect_episodes("dummy", episodes=6, seed=0), tmp_path / "d.npz")
    report = build_report([run], baselines={"dummy": data}, config=FAST)
    row = report.random.row(0, named=True)
    with np.load(data) as f:
        assert row["return_mean"] == pytest.approx(float(f["episode_return"].mean()))
    assert row["episodes"] == 6


def test_curves_of_runs_evaluated_at_different_steps(tmp_path: Path) -> None:
    """Eval steps differ between runs (episodes end at different times): curves are interpolated
    onto one evenly spaced grid inside the span all runs cover."""
    runs = []
    for seed, offset in ((0, 100), (1, 150)):
        run = fabricate(tmp_path, "vdn", seed, 1.0)
        lines = [
            {"kind": "eval", "env_steps": offset + 1000 * i, "episodes": i, "updates": i,
             "wall_s": 0.0, "return_mean": (offset + 1000 * i) / 1000}
            for i in range(3)
        ]  # fmt: skip
        (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        runs.append(run)
    curve = build_report(runs, config=FAST).curves.sort("env_steps")
    assert curve["env_steps"].to_list() == [150, 1125, 2100]
    # return = steps / 1000 in both runs, so the interpolated IQM is exact.
    assert curve["iqm"].to_list() == pytest.approx([0.15, 1.125, 2.1])


def test_curve_table_from_plain_curves() -> None:
    """The same alignment from (steps, returns) arrays, as bench/mmsa_lbf.py plots its JSON: the
    grid stays inside the span every run of a group covers; one run gives a point band."""
    line = np.array([0.0, 1000.0, 2000.0])
    groups = {
        ("task", "b"): [(line + 100, (line + 100) / 1000), (line + 150, (line + 150) / 1000)],
        ("task", "a"): [(np.array([0.0, 500.0]), np.array([0.2, 0.4]))],
    }
    table = curve_table(groups, FAST)
    b = table.filter(pl.col("variant") == "b").sort("env_steps")
    assert b["env_steps"].to_list() == [150, 1125, 2100] and set(b["n_seeds"]) == {2}
    assert b["iqm"].to_list() == pytest.approx([0.15, 1.125, 2.1])
    a = table.filter(pl.col("variant") == "a").sort("env_steps")
    assert a["env_steps"].to_list() == [0, 500] and a["iqm"].to_list() == pytest.approx([0.2, 0.4])
    assert a["low"].to_list() == a["iqm"].to_list() == a["high"].to_list()
    assert table["variant"].to_list()[0] == "a"  # groups in sorted order
    assert curve_table({}, FAST).is_empty()
