"""Reproducible mode end to end: `mmsa train --reproducible` gives bitwise the same run under
two different CPU kernel settings, where the same runs without it differ.

One machine cannot be two CPUs, so the test imitates a second one by the settings through which
CPUs differ: MKL's code branch (`MKL_CBWR=AVX2`, the branch of a CPU without AVX-512) and ATen's
kernels (`ATEN_CPU_CAPABILITY=default`, unvectorised). Both must move away from what this CPU
picks by itself on any x86 CPU with AVX2: an Intel CPU's own MKL branch is `AUTO` and its AVX2
and AVX-512 ATen kernels can agree on small nets, so imitating with `MKL_CBWR=AUTO` and
`ATEN_CPU_CAPABILITY=avx2` changed nothing there (it did on an AMD EPYC). That the unpinned runs
differ shows the imitation reaches the kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

MACHINES = {
    "native": {},
    "other": {"MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "default"},
}
ARGS = ["--env", "dummy", "--steps", "400", "--no-progress", "--no-tensorboard", "n_envs=4",
        "batch_size=8", "buffer_size=64", "eval_every=200", "log_every=100", "eval_episodes=4",
        "checkpoint_every=200"]  # fmt: skip
TIMING = ("wall_s", "per_s", "_ms", "rss_mb")


def _train(run_dir: Path, machine: str, *extra: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "ATEN_CPU_CAPABILITY")}
    env |= MACHINES[machine]
    cmd = [sys.executable, "-m", "flows.cli", "train", "--run-dir", str(run_dir), *ARGS, *extra]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]


def _numbers(run_dir: Path) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """Every metrics line without its timings, and the final checkpoint's learner tensors."""
    lines = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        lines.append({k: v for k, v in row.items() if not any(t in k for t in TIMING)})
    last = max((run_dir / "checkpoints").glob("step_*.pt"), key=lambda p: int(p.stem[5:]))
    payload = torch.load(last, weights_only=True)
    tensors = {}

    def walk(prefix: str, obj: object) -> None:
        if isinstance(obj, torch.Tensor):
            tensors[prefix] = obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}", v)

    walk("learner", payload["learner"])
    return lines, tensors


def _same(a: tuple[list[dict], dict], b: tuple[list[dict], dict]) -> bool:
    return (
        a[0] == b[0]
        and a[1].keys() == b[1].keys()
        and all(torch.equal(a[1][k], b[1][k]) for k in a[1])
    )


def test_reproducible_runs_agree_where_unpinned_runs_differ(tmp_path: Path) -> None:
    runs = {}
    for machine in MACHINES:
        for mode, extra in (("plain", ()), ("pinned", ("--reproducible",))):
            _train(tmp_path / f"{machine}-{mode}", machine, *extra)
            runs[machine, mode] = _numbers(tmp_path / f"{machine}-{mode}")
    assert runs["native", "pinned"][1], "the checkpoint holds no learner tensors"
    assert not _same(runs["native", "plain"], runs["other", "plain"]), (
        "the imitated second CPU changed nothing: this test cannot tell pinned from unpinned"
    )
    assert _same(runs["native", "pinned"], runs["other", "pinned"])
    meta = json.loads((tmp_path / "other-pinned" / "run.json").read_text())
    assert meta["config"]["reproducible"] is True
    assert meta["cpu_kernels"]["aten_cpu_capability"] == "DEFAULT"
    assert meta["cpu_kernels"]["torch_threads"] == 1
    plain = json.loads((tmp_path / "other-plain" / "run.json").read_text())
    assert plain["cpu_kernels"]["aten_cpu_capability"] == "DEFAULT"
    assert plain["cpu_kernels"]["environment"]["MKL_CBWR"] == "AVX2"
