"""Reproducible mode (`mmsa_marl_core.training.reproducible`): the pinned environment, the
refusal of an unpinned reproducible run, and `run_pinned`'s child."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mmsa_marl_core import TrainConfig, train
from mmsa_marl_core.training.reproducible import (
    CPU_FLAGS,
    PINNED_ENVIRONMENT,
    cpu_flags,
    kernel_settings,
    pinned_environ,
    require_pinned,
    run_pinned,
    unpinned_settings,
)

pinned_here = not unpinned_settings()


def _child_report() -> tuple[list[str], dict]:
    return unpinned_settings(), kernel_settings()


def _child_fails() -> None:
    raise ValueError("raised in the child")


def test_pinned_environ_sets_every_pin_and_keeps_the_rest() -> None:
    env = pinned_environ({"PATH": "/bin", "ATEN_CPU_CAPABILITY": "avx512", "XLA_FLAGS": "--a"})
    assert env["PATH"] == "/bin"
    for name, value in PINNED_ENVIRONMENT.items():
        assert env[name] == value
    assert env["XLA_FLAGS"] == "--a --xla_cpu_max_isa=SSE4_2"
    assert "X86_V3" in env["NPY_DISABLE_CPU_FEATURES"].split()


def test_run_pinned_child_has_pinned_kernels() -> None:
    missing, settings = run_pinned(_child_report)
    assert missing == []
    assert settings["aten_cpu_capability"] == "DEFAULT"
    assert settings["mkl_cbwr_branch"] in (3, None)
    assert settings["torch_threads"] == 1
    # The parent's environment is left as it was.
    assert os.environ.get("MKL_CBWR") != "COMPATIBLE" or pinned_here


def test_run_pinned_raises_the_childs_error() -> None:
    with pytest.raises(ValueError, match="raised in the child"):
        run_pinned(_child_fails)


@pytest.mark.skipif(pinned_here, reason="this test process itself runs pinned")
def test_unpinned_process_reports_and_refuses(tmp_path) -> None:
    missing = unpinned_settings()
    assert any("ATen CPU capability" in m or "MKL" in m for m in missing), missing
    with pytest.raises(ValueError, match="reproducible=True needs the CPU kernels pinned"):
        require_pinned("cpu")
    config = TrainConfig(env="dummy", steps=100, n_envs=2, batch_size=2, buffer_size=4,
                         reproducible=True)  # fmt: skip
    with pytest.raises(ValueError, match="reproducible=True"):
        train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_gpu_device_is_refused() -> None:
    with pytest.raises(ValueError, match="device cuda given"):
        require_pinned(torch.device("cuda"))


def test_cpu_flags_are_those_proc_cpuinfo_lists() -> None:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        assert cpu_flags() == {}
        return
    listed: set[str] = set()
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            listed.update(value.split())
    assert listed, "/proc/cpuinfo lists no flags"
    assert cpu_flags() == {name: name in listed for name in CPU_FLAGS}
    assert set(CPU_FLAGS) >= {"avx512_bf16", "amx_bf16", "amx_tile"}
    assert kernel_settings()["cpu_flags"] == cpu_flags()
