"""Reproducible mode: the same config gives the same numbers on any x86-64 CPU.

A run is bitwise deterministic on one machine, but not across machines: the CPU kernels that
compute it are chosen per machine, and each sums in its own order.

- ATen's vectorised kernels (elementwise ops, reductions, random fills) by the CPU's widest
  instruction set: AVX512, AVX2 or the portable default (`ATEN_CPU_CAPABILITY`);
- MKL's BLAS (every matrix product of the networks) by its code branch (`MKL_CBWR`);
- oneDNN by its instruction set (`ONEDNN_MAX_CPU_ISA`);
- numpy's loops by their dispatch targets (`NPY_DISABLE_CPU_FEATURES`), XLA's (JAX, for SMAX) by
  its largest instruction set (`--xla_cpu_max_isa`);
- reductions split across threads by the thread count (OpenMP, MKL, torch).

Float32 results then differ in their last bits between CPUs, and reinforcement learning grows
those bits into other actions, other episodes and other final returns. Reproducible mode
(`TrainConfig.reproducible`, `mmsa train --reproducible`) pins each of these to a path that every
x86-64 CPU runs identically: ATen's default kernels, MKL's `COMPATIBLE` branch (Intel's
conditional numerical reproducibility across Intel and compatible CPUs), oneDNN at SSE4.1,
numpy's and XLA's baseline loops, and one thread everywhere (`PINNED_ENVIRONMENT`).

ATen, MKL and numpy read these settings when they load, so they must be in the process
environment before torch is imported: `pinned_environ()` gives that environment,
`unpinned_settings()` says what this process lacks, and `run_pinned(fn, ...)` runs `fn` in a
fresh process that has it (the CLI, the flows and the DVC stages go through it). The same
versions of torch, numpy and the backends are part of the promise: `run.json` records them,
with the kernels a run used (`kernel_settings()`).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "PINNED_ENVIRONMENT",
    "kernel_settings",
    "cpu_flags",
    "CPU_FLAGS",
    "require_pinned",
    "pinned_environ",
    "run_pinned",
    "unpinned_settings",
]

PINNED_ENVIRONMENT: Mapping[str, str] = {
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
"""The environment of a reproducible process, besides numpy's and XLA's (`pinned_environ`)."""

_XLA_FLAG = "--xla_cpu_max_isa=SSE4_2"
_MKL_CBWR_BRANCH = 1  # mkl_cbwr_get(MKL_CBWR_BRANCH): the branch in use
_MKL_CBWR_COMPATIBLE = 3
_T = TypeVar("_T")
_environ_lock = threading.Lock()


def _numpy_dispatch_targets() -> list[str]:
    """numpy's optional dispatch targets on this build (all above its baseline)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__
    except ImportError:  # numpy < 2
        return []
    return [str(t) for t in __cpu_dispatch__]


def pinned_environ(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default `os.environ`) with the kernel paths and threads of reproducible mode."""
    env = dict(os.environ if base is None else base)
    env.update(PINNED_ENVIRONMENT)
    targets = _numpy_dispatch_targets()
    if targets:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(targets)
    xla = env.get("XLA_FLAGS", "")
    if "--xla_cpu_max_isa" not in xla:
        env["XLA_FLAGS"] = f"{xla} {_XLA_FLAG}".strip()
    return env


def _mkl_branch() -> int | None:
    """The MKL code branch this process uses (None where torch's MKL cannot be asked)."""
    import torch

    lib = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        get = ctypes.CDLL(str(lib)).mkl_serv_cbwr_get
    except (OSError, AttributeError):
        return None
    get.restype = ctypes.c_int
    return int(get(_MKL_CBWR_BRANCH))


def unpinned_settings() -> list[str]:
    """What keeps this process from reproducible mode, one `name=value (wanted ...)` each;
    empty when every kernel path is pinned. Imports torch."""
    import torch

    missing = []
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != "DEFAULT":
        missing.append(f"ATen CPU capability {capability} (wanted DEFAULT)")
    branch = _mkl_branch()
    if branch is not None and branch != _MKL_CBWR_COMPATIBLE:
        missing.append(f"MKL CBWR branch {branch} (wanted COMPATIBLE={_MKL_CBWR_COMPATIBLE})")
    wanted = pinned_environ({})
    wanted.pop("XLA_FLAGS", None)
    for name, value in sorted(wanted.items()):
        if os.environ.get(name) != value:
            missing.append(f"{name}={os.environ.get(name)!r} (wanted {value!r})")
    if "--xla_cpu_max_isa" not in os.environ.get("XLA_FLAGS", ""):
        missing.append(f"XLA_FLAGS without {_XLA_FLAG}")
    return missing


def kernel_settings() -> dict[str, Any]:
    """The CPU kernel paths of this process, for `run.json`: ATen's capability, MKL's branch,
    the pinning variables as set, the CPU model, its vector and bf16 features (`cpu_flags`) and
    the torch thread count."""
    import torch

    names = [*PINNED_ENVIRONMENT, "NPY_DISABLE_CPU_FEATURES", "XLA_FLAGS"]
    return {
        "cpu": _cpu_model(),
        "cpu_flags": cpu_flags(),
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl_cbwr_branch": _mkl_branch(),
        "torch_threads": torch.get_num_threads(),
        "environment": {name: os.environ.get(name) for name in names},
    }


CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
"""The features that decide how fast a `precision="bf16"` update can be on a CPU: AVX512-BF16
converts and multiplies bfloat16 in vector registers, AMX (`amx_tile` with `amx_bf16`) in
matrix tiles, which oneDNN uses for bfloat16 matrix products."""


def cpu_flags() -> dict[str, bool]:
    """`{feature: present}` for `CPU_FLAGS`, from /proc/cpuinfo; empty where it cannot be read
    (not Linux)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return {}
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), None)
    if flags is None:
        return {}
    return {name: name in flags for name in CPU_FLAGS}


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or None


def _pinned_call(fn: Callable[..., _T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> _T:
    """Body of `run_pinned`'s child: die with the parent, check the pins, call `fn`."""
    if sys.platform.startswith("linux"):
        # PR_SET_PDEATHSIG: a parent killed by any signal takes this process with it (SIGTERM,
        # so the run records that it was stopped) instead of leaving a writer behind.
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)
        except (OSError, AttributeError):
            pass
    missing = unpinned_settings()
    if missing:
        raise RuntimeError("reproducible mode could not pin: " + "; ".join(missing))
    import torch

    torch.set_num_threads(1)
    return fn(*args, **kwargs)


def run_pinned(fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """`fn(*args, **kwargs)` in a fresh process with `pinned_environ()`, its result (or its
    exception) returned (raised) here. `fn` and its arguments must pickle (a module-level
    function, plain data); the child shares stdout and stderr, so progress bars still show."""
    context = multiprocessing.get_context("spawn")
    with _environ_lock:
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(pinned_environ(saved))
        try:
            pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
            future = pool.submit(_pinned_call, fn, args, kwargs)  # spawns the child now
        finally:
            os.environ.clear()
            os.environ.update(saved)
    try:
        return future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def require_pinned(device: Any) -> None:
    """Refuse a reproducible run that this process cannot make reproducible (a GPU, or kernels
    not pinned), with one line saying what to do; else set one torch thread."""
    import torch

    if torch.device(device).type != "cpu":
        raise ValueError(
            f"reproducible=True pins CPU kernels; device {device} given: use device=cpu, "
            "or reproducible=false"
        )
    missing = unpinned_settings()
    if missing:
        raise ValueError(
            "reproducible=True needs the CPU kernels pinned before torch loads, and this "
            f"process has {missing[0]}: start it through `mmsa train`, the flows or "
            "`mmsa_marl_core.training.reproducible.run_pinned`, or with the environment of "
            "`pinned_environ()`"
        )
    torch.set_num_threads(1)
