"""Keep freed host memory in the process, so that an update's large tensors are reused warm.

glibc's `malloc` serves blocks above its mmap threshold (128 KiB at start, raised dynamically
as mapped blocks are freed) with a fresh `mmap`, and trims free memory off the top of the heap.
An MMSA update allocates and frees hundreds of tensors of 1-5 MiB (the all-actions SALE head over
``[M, N, A, 64]``, the world model over every row of the batch), and with those defaults the CPU
page-faulted many of them in again at every update: in `bench/mmsa_throughput.py` on a 2-core
machine, about 22,000 minor faults and 33 ms of kernel time per update, against about 2,000 and
4 ms with the thresholds raised. The update is then 5-10% faster; what is computed is unchanged,
only where its memory comes from.

`retain_freed_memory` sets, through `mallopt`:

- ``M_MMAP_THRESHOLD`` = 32 MiB (the largest glibc accepts on 64-bit): blocks below it come from
  the heap, not from their own mapping;
- ``M_TRIM_THRESHOLD`` = 1 GiB: free memory at the top of the heap is handed back to the kernel
  only past that much.

The environment variables ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` are glibc's own
way to set the same; when either is set the process's choice is kept and nothing is changed.
Elsewhere (macOS, Windows, musl) there is no such knob and nothing happens. `train` calls this
unless `TrainConfig.retain_freed_memory` is False; the setting is process-wide.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "resident_memory_mb", "retain_freed_memory"]

MMAP_THRESHOLD = 32 * 1024 * 1024
"""Bytes: blocks below this come from the heap (glibc's maximum on 64-bit, HEAP_MAX_SIZE / 2)."""
TRIM_THRESHOLD = 1024 * 1024 * 1024
"""Bytes of free memory at the top of the heap kept before any is returned to the kernel."""

_M_TRIM_THRESHOLD = -1  # glibc malloc.h
_M_MMAP_THRESHOLD = -3
_ENV_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (module docstring); True when they were set.

    False, changing nothing, off glibc or when ``MALLOC_MMAP_THRESHOLD_`` or
    ``MALLOC_TRIM_THRESHOLD_`` is set in the environment.
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in _ENV_VARS):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt answers 1 on success; setting the mmap threshold also stops glibc from moving it.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def resident_memory_mb() -> dict[str, float]:
    """This process's resident memory in MiB: ``rss_mb`` now (Linux, from ``/proc/self/statm``)
    and ``peak_rss_mb``, the most it has held since it started (``getrusage``'s ``ru_maxrss``:
    KiB on Linux, bytes on macOS). A key whose source the platform lacks is left out."""
    out: dict[str, float] = {}
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        out["rss_mb"] = pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    if resource is not None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["peak_rss_mb"] = peak / 2**20 if sys.platform == "darwin" else peak / 2**10
    return out
