"""`retain_freed_memory`: freed blocks stay in the process (no page faults when they are reused),
the environment's own malloc settings win, and `train` records what it did."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from mmsa_marl_core import config_from_dict, train

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's",
)

# Allocate, write and free 8 blocks of 4 MiB, as an update does with its large tensors; count
# the minor page faults of 20 such rounds after 3 warm-up rounds.
CHURN = """
import resource, sys, torch
from mmsa_marl_core.training.host_memory import retain_freed_memory
print(retain_freed_memory() if sys.argv[1] == "retain" else None)
def churn():
    blocks = [torch.ones(1 << 20) for _ in range(8)]
    del blocks
for _ in range(3):
    churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _without_malloc_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}


def _churn(mode: str, env: dict[str, str]) -> tuple[str, int]:
    """(what retain_freed_memory answered, or None; minor faults of the 20 rounds)."""
    out = subprocess.run(
        [sys.executable, "-c", CHURN, mode],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    return out[0], int(out[1])


@glibc
def test_freed_blocks_are_reused_without_page_faults():
    clean = _without_malloc_settings()
    _, default_faults = _churn("default", clean)
    applied, retained_faults = _churn("retain", clean)
    # glibc's default maps every 4 MiB block afresh: 1024 faults per block and round.
    if default_faults < 20 * 8 * 1000 / 2:
        pytest.skip(f"this glibc already reuses the blocks ({default_faults} faults)")
    assert applied == "True" and retained_faults < default_faults / 100


@glibc
def test_the_environments_malloc_settings_win():
    clean = _without_malloc_settings()
    applied, faults = _churn("retain", {**clean, "MALLOC_MMAP_THRESHOLD_": "131072"})
    assert applied == "False" and faults > 20 * 8 * 1000 / 2  # left as the environment says


@pytest.mark.parametrize("wanted", [False, True])
def test_train_records_whether_freed_memory_is_kept(tmp_path, wanted):
    config = config_from_dict(
        {
            "env": "dummy",
            "steps": 60,
            "n_envs": 2,
            "batch_size": 2,
            "buffer_size": 8,
            "eval_episodes": 2,
            "retain_freed_memory": wanted,
            "algo_config": {"agent_hidden": 8, "mixer_embed_dim": 4, "hypernet_hidden": 8},
        }
    )
    train(config, tmp_path, progress=False)
    info = json.loads((tmp_path / "run.json").read_text())
    on_glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    overridden = {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ)
    expected = wanted and on_glibc and not overridden
    assert info["host_memory_retained"] is expected
    assert info["config"]["retain_freed_memory"] is wanted


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/statm is Linux's")
def test_resident_memory_follows_what_the_process_holds():
    # In a fresh interpreter, so that the peak starts below what the test allocates.
    code = """
import json, numpy as np
from mmsa_marl_core.training.host_memory import resident_memory_mb
before = resident_memory_mb()
block = np.ones(256 << 17)  # 256 MiB of float64, every page written
held = resident_memory_mb()
del block
print(json.dumps([before, held, resident_memory_mb()]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, held, after = json.loads(out.stdout)
    assert 240 < held["rss_mb"] - before["rss_mb"] < 280
    assert held["peak_rss_mb"] >= held["rss_mb"] - 1
    assert after["rss_mb"] < held["rss_mb"] - 200  # freed: a numpy block this size is mmapped
    assert after["peak_rss_mb"] >= held["rss_mb"] - 1  # the peak keeps it
