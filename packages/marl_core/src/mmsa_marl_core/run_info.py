"""`run.json`: what a run is (resolved config, env spec, versions, git commit, device) and where
it stands (`status` running|finished|failed, `env_steps`). Written atomically."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mmsa_envs import EnvSpec

__all__ = ["versions", "git_commit", "spec_to_dict", "write_json_atomic", "read_run_json", "now"]

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


def read_run_json(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "run.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: {run_dir} is not a training run directory")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
