"""Checkpoint files: atomic writes, the last k kept, safe loading, fallback on corruption.

A checkpoint is one `torch.save`d dict of tensors, numbers, strings, lists and dicts only, so it
loads with `torch.load(weights_only=True)` (no pickled code runs). It is written to a temporary
file in the same directory, flushed to disk, then moved into place with `os.replace`, so a run
killed at any moment leaves either the old set of checkpoints or the new one, never a torn file.

`checkpoints/step_<env_steps>.pt`; `latest_checkpoint` walks them newest first and falls back
to the previous one when a file is unreadable (or lacks a key the caller needs), logging which
file was skipped and why.

Pruning (`keep`) counts only the checkpoints up to the one just written: a `step_N.pt` from
beyond it cannot be part of this run's history (a resume starts from the newest readable one,
so every newer file was found unreadable), so it never takes a slot and is never deleted; it is
left for its owner, and skipped with a warning by every load. A temporary file a killed writer
left behind (`.step_N.pt.*.tmp`) is removed by `remove_stale_tmp`, which `train` calls once it
holds the run directory's lock.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "checkpoint_path",
    "list_checkpoints",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "check_fingerprint",
    "remove_stale_tmp",
    "nonfinite_tensor",
]

log = logging.getLogger("mmsa_marl_core")

_NAME = re.compile(r"^step_(\d+)\.pt$")
_TMP = re.compile(r"^\.step_\d+\.pt\..+\.tmp$")
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is unreadable or incomplete."""


class CheckpointMismatchError(ValueError):
    """A checkpoint belongs to a different run setup (env, algorithm, shapes, ...)."""


def checkpoint_path(directory: Path, env_steps: int) -> Path:
    return Path(directory) / f"step_{env_steps}.pt"


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoint files in `directory`, oldest first (by env steps)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(directory: Path, env_steps: int, payload: Mapping[str, Any], keep: int) -> Path:
    """Write `payload` atomically as `step_<env_steps>.pt`; delete all but the newest `keep`."""
    if keep < 1:
        raise ValueError(f"keep={keep} must be >= 1")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(directory, env_steps)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT_VERSION, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(directory)
    history = [p for p in list_checkpoints(directory) if _step(p) <= env_steps]
    for old in history[:-keep]:
        old.unlink(missing_ok=True)
    return path


def _step(path: Path) -> int:
    m = _NAME.match(path.name)
    return int(m.group(1)) if m else -1


def remove_stale_tmp(directory: Path) -> list[Path]:
    """Delete the temporary files (`.step_N.pt.*.tmp`) a writer killed mid-save left in
    `directory`; returns them. Only call it while holding the run directory's lock."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [p for p in directory.iterdir() if _TMP.match(p.name) and p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    if stale:
        log.info("removed %d temporary file(s) of interrupted checkpoint writes", len(stale))
    return stale


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(
    path: Path, map_location: str | torch.device = "cpu", required: Iterable[str] = ()
) -> dict[str, Any]:
    """Load one checkpoint with `weights_only=True`; `CheckpointError` if it is unreadable or
    lacks one of the `required` top-level keys."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many kinds for a torn or foreign file
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
        raise CheckpointError(
            f"checkpoint {path} is unreadable: {type(err).__name__}: {first}"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} is not an mmsa checkpoint of format {FORMAT_VERSION}"
        )
    missing = [key for key in required if key not in payload]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} is incomplete: it lacks {', '.join(map(repr, missing))}"
        )
    return payload


def latest_checkpoint(
    directory: Path, map_location: str | torch.device = "cpu", required: Iterable[str] = ()
) -> tuple[Path, dict[str, Any]] | None:
    """The newest readable checkpoint in `directory` (None if there is none at all).

    An unreadable one is skipped and the previous one is tried; once one loads, a warning names
    each file skipped and why. If every file is unreadable, `CheckpointError` lists them all
    (and nothing is logged: the error says it all). Files are never deleted here.
    """
    paths = list_checkpoints(directory)
    errors: list[str] = []
    for path in reversed(paths):
        try:
            payload = load_checkpoint(path, map_location, required)
        except CheckpointError as err:
            errors.append(str(err))
            continue
        for error in errors:
            log.warning("%s; falling back to the previous checkpoint", error)
        return path, payload
    if errors:
        raise CheckpointError(f"{directory} holds no readable checkpoint: " + "; ".join(errors))
    return None


def check_fingerprint(stored: Mapping[str, Any], current: Mapping[str, Any], path: Path) -> None:
    """Raise `CheckpointMismatchError` naming every dotted key where the run setups differ."""
    a, b = _flatten(stored), _flatten(current)
    missing = "<missing>"
    diffs = [
        f"{key}: checkpoint has {a.get(key, missing)!r}, this run has {b.get(key, missing)!r}"
        for key in sorted(set(a) | set(b))
        if a.get(key, missing) != b.get(key, missing)
    ]
    if diffs:
        raise CheckpointMismatchError(
            f"checkpoint {path} was written by a different run setup: " + "; ".join(diffs)
        )


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        elif isinstance(v, tuple):
            out[prefix + k] = list(v)
        else:
            out[prefix + k] = v
    return out


def nonfinite_tensor(tree: Any, prefix: str = "") -> str:
    """The dotted name of the first floating tensor in `tree` with a NaN/inf ('' if none)."""
    if isinstance(tree, torch.Tensor):
        bad = tree.is_floating_point() and not bool(torch.isfinite(tree).all())
        return prefix.rstrip(".") if bad else ""
    if isinstance(tree, Mapping):
        items: Any = tree.items()
    elif isinstance(tree, list | tuple):
        items = enumerate(tree)
    else:
        return ""
    for key, value in items:
        found = nonfinite_tensor(value, f"{prefix}{key}.")
        if found:
            return found
    return ""
