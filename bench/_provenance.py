"""What every bench/results/*.json records next to its figures: the command, the date, the
commit, the machine and the installed versions (shared by the bench scripts)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["command", "git_commit", "machine", "now", "record", "versions"]

ROOT = Path(__file__).resolve().parents[1]


def command() -> str:
    """The command line that produced the result (interpreter name and arguments)."""
    return " ".join([Path(sys.executable).name, *sys.argv])


def now() -> str:
    """UTC date and time, to the second."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def git_commit() -> str | None:
    """The checkout's commit (None outside a git checkout)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine() -> dict[str, Any]:
    """CPU model, cores (visible and usable by this process), Python, platform and the load
    average now (the machine is shared: the load says how busy it was)."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    return {
        "cpu": cpu,
        "cores_visible": os.cpu_count(),
        "cores_usable": usable,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()),
    }


def versions(dists: Iterable[str]) -> dict[str, str]:
    """`{distribution: version}`, "not installed" for the missing ones."""
    out = {}
    for dist in dists:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def record(benchmark: str, dists: Iterable[str]) -> dict[str, Any]:
    """The header of a results JSON: benchmark name, command, date, commit, machine, and the
    versions of `dists`."""
    return {
        "benchmark": benchmark,
        "command": command(),
        "date": now(),
        "commit": git_commit(),
        "machine": machine(),
        "versions": versions(dists),
    }
