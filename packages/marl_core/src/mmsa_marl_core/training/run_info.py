"""`run.json`: what a run is (resolved config, env spec, versions, git commit, device) and where
it stands (`status` running|finished|failed, `env_steps`). Written atomically."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from mmsa_envs import EnvSpec

from .config import TrainConfig, config_to_dict
from .reproducible import kernel_settings

__all__ = [
    "versions",
    "git_commit",
    "spec_to_dict",
    "write_json_atomic",
    "read_run_json",
    "read_run_config",
    "remove_stale_tmp_json",
    "now",
    "running_record",
]

_DISTS = (
    "mmsa-envs",
    "mmsa-sale",
    "mmsa-worldmodel",
    "mmsa-marl-core",
    "mmsa",
    "torch",
    "numpy",
    "tqdm",
)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def versions(spec: EnvSpec | None = None) -> dict[str, str]:
    """Installed versions of the project's packages, torch, numpy and the env's backends."""
    out: dict[str, str] = {}
    for dist in _DISTS:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    if spec is not None:
        out.update({str(k): str(v) for k, v in spec.backend_versions.items()})
    return out


def git_commit() -> str | None:
    """Commit of the checkout this package runs from (None outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def spec_to_dict(spec: EnvSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        v = getattr(spec, f.name)
        if isinstance(v, Mapping):
            v = dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_JSON_TMP = re.compile(r"^\.[^/]+\.json\..+\.tmp$")


def remove_stale_tmp_json(directory: Path) -> list[Path]:
    """Delete the temporary files (`.run.json.*.tmp`) that a `write_json_atomic` killed midway
    left in `directory`; returns them. Only call it while holding the run directory's lock."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [p for p in directory.iterdir() if _JSON_TMP.match(p.name) and p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def read_run_json(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "run.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: {run_dir} is not a training run directory")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{path} is unreadable ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a run record: it holds a {type(data).__name__}")
    return data


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The `config` mapping of a run's `run.json` (a clear error naming the file if it has none)."""
    config = read_run_json(run_dir).get("config")
    if not isinstance(config, dict):
        raise ValueError(f"{Path(run_dir) / 'run.json'} is not a run record: it has no 'config'")
    return config


def running_record(
    config: TrainConfig, spec: EnvSpec, device: torch.device, started: str, retained: bool
) -> dict[str, Any]:
    """`run.json` of a run that has just started writing: what it is (resolved config, env spec,
    versions, git commit, device, threads, CPU kernels, whether freed host memory is retained)
    and `status` "running" since `started`."""
    return {
        "config": config_to_dict(config) | {"algo": config.algo},
        "env_spec": spec_to_dict(spec),
        "versions": versions(spec),
        "git_commit": git_commit(),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "cpu_kernels": kernel_settings(),
        "host_memory_retained": retained,
        "status": "running",
        "started": started,
        "finished": None,
        "env_steps": 0,
    }
