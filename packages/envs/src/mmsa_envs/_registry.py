"""`make(env_id)` and `registered()`: ids are `backend:name`; backends import lazily."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._backend import MissingBackendError, UnknownEnvError, install_hint, installed
from ._core import MultiAgentEnv

__all__ = ["make", "registered", "backends", "MissingBackendError", "UnknownEnvError"]


@dataclass(frozen=True)
class _Backend:
    module: str
    """Module (inside mmsa_envs) holding `make_env(name, **kwargs)` and `list_ids()`."""
    extra: str
    """pip extra that installs the backend ('' when nothing extra is needed)."""
    requires: tuple[str, ...] = ()
    """Top-level modules the backend imports."""


_BACKENDS: dict[str, _Backend] = {
    "dummy": _Backend("mmsa_envs._dummy_backend", ""),
    "lbf": _Backend("mmsa_envs._lbf", "lbf", ("lbforaging", "gymnasium")),
    "mamujoco": _Backend("mmsa_envs._mamujoco", "mamujoco", ("gymnasium_robotics", "mujoco")),
    "pettingzoo": _Backend("mmsa_envs._pettingzoo", "pettingzoo", ("pettingzoo",)),
    "smax": _Backend("mmsa_envs._smax", "smax", ("jaxmarl", "jax")),
    "smacv2": _Backend("mmsa_envs._smacv2", "smacv2", ("smacv2", "pysc2")),
}


def backends() -> list[str]:
    """Names of every backend this version knows (installed or not)."""
    return sorted(_BACKENDS)


def backend_installed(backend: str) -> bool:
    """Whether the packages behind `backend` are importable (smacv2 also needs StarCraft II)."""
    return installed(_BACKENDS[backend].requires)


def _load(backend: str, check_installed: bool) -> Any:
    """Import our adapter module (cheap: it imports its backend only when an env is built)."""
    spec = _BACKENDS[backend]
    missing = [m for m in spec.requires if check_installed and not installed([m])]
    if missing:  # smacv2 has no extra: its adapter says how to install it
        how = getattr(importlib.import_module(spec.module), "INSTALL_HELP", "")
        raise MissingBackendError(
            f"the {backend!r} backend needs {', '.join(missing)}, which is not installed: "
            f"{how or install_hint(spec.extra)}"
        )
    return importlib.import_module(spec.module)


def make(env_id: str, **kwargs: Any) -> MultiAgentEnv:
    """Build the env named `backend:name` (e.g. `lbf:Foraging-8x8-2p-2f-coop-v3`)."""
    if not isinstance(env_id, str):
        raise UnknownEnvError(
            f"env id must be a str like 'lbf:Foraging-8x8-2p-2f-v3', got {env_id!r}"
        )
    backend, _, name = env_id.partition(":")
    if backend not in _BACKENDS:
        close = difflib.get_close_matches(backend, list(_BACKENDS), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(repr(c + ':') for c in close)}" if close else ""
        raise UnknownEnvError(
            f"unknown env backend {backend!r} in {env_id!r}{hint}. "
            f"Known backends: {', '.join(backends())}"
        )
    module = _load(backend, check_installed=False)  # make_env says what is missing
    factory: Callable[..., MultiAgentEnv] = module.make_env
    return factory(name, **kwargs)


def registered(installed_only: bool = True) -> list[str]:
    """Env ids this version can build, grouped by backend.

    Backends whose packages are missing are skipped (or raise MissingBackendError with
    `installed_only=False`). Open-ended backends list examples: `lbf` builds any
    `Foraging-[2s-]NxN-Pp-Ff[-coop]-v3`, `pettingzoo` any ParallelEnv module path.
    """
    ids: list[str] = []
    for backend in backends():
        try:
            module = _load(backend, check_installed=True)
        except MissingBackendError:
            if installed_only:
                continue
            raise
        ids.extend(f"{backend}:{name}" if name else backend for name in module.list_ids())
    return ids
