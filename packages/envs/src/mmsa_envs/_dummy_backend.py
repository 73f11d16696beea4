"""Backend module for `dummy`, `dummy:discrete` and `dummy:continuous`."""

from __future__ import annotations

from typing import Any

from ._dummy import DummyEnv

_NAMES = ("discrete", "continuous")


def list_ids() -> list[str]:
    return ["", *_NAMES]


def make_env(name: str, **kwargs: Any) -> DummyEnv:
    from ._registry import UnknownEnvError

    kind = name or "discrete"
    if kind not in _NAMES:
        raise UnknownEnvError(
            f"unknown dummy env {name!r}; choose one of: dummy, dummy:discrete, dummy:continuous"
        )
    return DummyEnv(action_kind=kind, **kwargs)
