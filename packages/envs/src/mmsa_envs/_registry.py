"""`make(env_id)` and `registered()`: ids are `backend:name`; backends import lazily."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._core import MultiAgentEnv

__all__ = ["make", "registered", "backends", "MissingBackendError", "UnknownEnvError"]


class MissingBackendError(ImportError):
    """The optional package behind a backend is not installed."""


class UnknownEnvError(ValueError):
    """An env id names no known backend or map."""


@dataclass(frozen=True)
class _Backend:
    module: str
    """Module (inside mmsa_envs) holding `make_env(name, **kwargs)` and `list_ids()`."""
    extra: str
    """pip extra that installs the backend."""


_BACKENDS: dict[str, _Backend] = {
    "dummy": _Backend("mmsa_envs._dummy_backend", ""),
}


def backends() -> list[str]:
    """Names of every backend this version knows (installed or not)."""
    return sorted(_BACKENDS)


def _load(backend: str) -> Any:
    spec = _BACKENDS[backend]
    return importlib.import_module(spec.module)


def make(env_id: str, **kwargs: Any) -> MultiAgentEnv:
    """Build the env named `backend:name` (e.g. `lbf:Foraging-8x8-2p-2f-coop-v3`)."""
    backend, _, name = env_id.partition(":")
    if backend not in _BACKENDS:
        close = difflib.get_close_matches(backend, list(_BACKENDS), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(repr(c + ':') for c in close)}" if close else ""
        raise UnknownEnvError(
            f"unknown env backend {backend!r} in {env_id!r}{hint}. "
            f"Known backends: {', '.join(backends())}"
        )
    module = _load(backend)
    factory: Callable[..., MultiAgentEnv] = module.make_env
    return factory(name, **kwargs)


def registered(installed_only: bool = True) -> list[str]:
    """Every env id this version can build (backends that are not installed are skipped)."""
    ids: list[str] = []
    for backend in backends():
        try:
            module = _load(backend)
        except MissingBackendError:
            if installed_only:
                continue
            raise
        ids.extend(f"{backend}:{name}" if name else backend for name in module.list_ids())
    return ids
