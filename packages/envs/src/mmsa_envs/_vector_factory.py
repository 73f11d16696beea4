"""`make_vector_env`: the fastest vector env for an id, behind `VectorEnv`'s API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._smax_vector import SMAXVectorEnv
from ._vector import VectorEnv

__all__ = ["make_vector_env"]


def make_vector_env(
    env_id: str,
    num_envs: int,
    *,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    autoreset: bool = False,
    processes: bool = True,
) -> VectorEnv | SMAXVectorEnv:
    """`SMAXVectorEnv` for `smax:` ids (one vmapped JAX call beats worker processes), else
    `VectorEnv` (`processes` picks worker processes or in-process envs). Both give the same
    `VecStep`s for the same seed."""
    if env_id.partition(":")[0] == "smax":
        return SMAXVectorEnv(
            env_id, num_envs, seed=seed, env_kwargs=env_kwargs, autoreset=autoreset
        )
    return VectorEnv(
        env_id,
        num_envs,
        seed=seed,
        env_kwargs=env_kwargs,
        processes=processes,
        autoreset=autoreset,
    )
