"""Helpers every backend module shares: lazy imports, unknown-name errors, versions.

A backend module (`_lbf`, `_mamujoco`, ...) names the packages it needs in `REQUIRES` and the
pip extra that installs them in `EXTRA`, and defines `list_ids()` and `make_env(name, **kwargs)`.
It imports its backend only inside those functions, so `import mmsa_envs` stays cheap and a
missing backend only fails when used.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.util
import io
import os
import sys
from collections.abc import Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType

__all__ = [
    "MissingBackendError",
    "UnknownEnvError",
    "install_hint",
    "installed",
    "require",
    "unknown",
    "versions",
]


class MissingBackendError(ImportError):
    """The optional package behind a backend is not installed."""


class UnknownEnvError(ValueError):
    """An env id names no known backend or map."""


def install_hint(extra: str) -> str:
    """The command that installs mmsa-envs with the pip extra `extra`, as one line. mmsa-envs is
    not on PyPI, so it installs from a clone of the repository (or from the wheels `make dist`
    builds: the root README, "Layout")."""
    return f"pip install -c constraints.txt -e 'packages/envs[{extra}]' (from the repository root)"


def installed(modules: Iterable[str]) -> bool:
    """Whether every top-level module in `modules` can be imported (without importing it)."""
    return all(_findable(m) for m in modules)


def _findable(module: str) -> bool:
    if module in sys.modules:  # already imported (or blocked with None)
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Drop what is written to stdout meanwhile, at the file-descriptor level (jaxmarl's import
    also resets `sys.stdout`, so `contextlib.redirect_stdout` alone would not hold)."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):  # no fd 1: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            with contextlib.redirect_stdout(io.StringIO()):
                yield
    finally:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def require(module: str, backend: str, extra: str) -> ModuleType:
    """Import `module` or raise MissingBackendError saying what to install. What the import
    prints on stdout (jaxmarl announces its submodules there) is dropped: stdout belongs to the
    caller's output."""
    try:
        with _quiet_stdout():
            return importlib.import_module(module)
    except ImportError as err:
        raise MissingBackendError(
            f"the {backend!r} backend needs the package providing {module!r}, which is not "
            f"installed: {install_hint(extra)} ({err})"
        ) from err


def unknown(backend: str, name: str, known: Iterable[str], hint: str = "") -> UnknownEnvError:
    """An UnknownEnvError for `backend:name` listing the closest known names."""
    known = list(known)
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    listed = ", ".join(f"{backend}:{c}" for c in close) if close else "none close"
    extra = f" {hint}" if hint else ""
    return UnknownEnvError(f"unknown {backend} env {name!r}; closest matches: {listed}.{extra}")


def versions(*dists: str) -> dict[str, str]:
    """`{distribution: version}` of the installed distributions among `dists`."""
    out: dict[str, str] = {}
    for dist in dists:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out
