"""`dvc repro` of the pipeline in a temporary copy of the repository (git init there), with the
`ci` profile (the smoke profile's pipeline with budgets of seconds); a second repro is a no-op."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def _copy_repo(dest: Path) -> None:
    """Every file git would put in a fresh clone (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file() and not name.startswith("results/"):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _run(cwd: Path, *args: str, env: dict[str, str]) -> str:
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, f"{args}:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out.stdout + out.stderr


def test_dvc_repro_then_nothing_to_do(tmp_path: Path) -> None:
    repo = tmp_path / "clone"
    _copy_repo(repo)
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "PREFECT_"))}
    env["PATH"] = venv_bin + os.pathsep + env["PATH"]  # the stages' `python` is this venv's
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    _run(repo, "git", "init", "-q", env=env)
    _run(repo, *git, "add", "-A", env=env)
    _run(repo, *git, "commit", "-qm", "copy", env=env)
    _run(repo, sys.executable, "-m", "flows.stages", "profile", "ci", env=env)

    first = _run(repo, "dvc", "repro", env=env)
    for stage in ("collect@dummy", "train@dummy-qmix-0", "evaluate@dummy-vdn-0", "report"):
        assert f"Running stage '{stage}'" in first
    out = repo / "results" / "ci"
    for algo in ("qmix", "vdn"):
        meta = json.loads((out / "runs" / "dummy" / algo / "seed0" / "run.json").read_text())
        assert meta["status"] == "finished" and meta["env_steps"] >= 200
        # The ci profile trains in reproducible mode: pinned kernels, one thread.
        assert meta["config"]["reproducible"] is True
        assert meta["cpu_kernels"]["aten_cpu_capability"] == "DEFAULT"
        evaluation = json.loads((out / "eval" / "dummy" / algo / "seed0.json").read_text())
        assert evaluation["episodes"] == 8
    summary = pl.read_parquet(out / "report" / "summary.parquet")
    assert sorted(summary.filter(pl.col("metric") == "return")["variant"]) == ["qmix", "vdn"]
    assert "## Random policy" in (out / "report" / "report.md").read_text()
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert set(metrics["dummy"]) == {"qmix", "vdn"}
    assert (out / "report" / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    lock = (repo / "dvc.lock").read_text()

    second = _run(repo, "dvc", "repro", env=env)
    assert "Running stage" not in second
    assert "Data and pipelines are up to date" in second
    assert (repo / "dvc.lock").read_text() == lock
    status = _run(repo, "dvc", "status", env=env)
    assert "up to date" in status
