"""Shared arrays between a `VectorEnv` and its workers: actions in, observations out.

Pickling every `Step` through a pipe and stacking B of them costed the parent as much CPU as
stepping a MuJoCo env (measured: ~50 us to unpickle two HalfCheetah steps, ~60 us to stack).
Workers now write `obs`, `state` and `avail_actions` of their rows straight into arrays the
parent reads, and read their actions from one; the pipe only carries row lists, rewards, flags
and infos. `current` holds each row's latest observation; `final` (auto-reset only) the last
observation of an episode that just ended (equal to `current` for rows that did not end). The
per-row requests (which rows step, reset seeds, episode counters) and results (reward, ends)
are arrays too, so a request is one byte and a reply only the pickled infos.

The arrays are `multiprocessing` RawArrays handed to workers when they start (in-process slots
get the same views), so the layout is fixed by the `EnvSpec` and B.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from ._core import EnvSpec, Step

__all__ = ["Buffers"]

_CTYPES = {np.dtype(np.float32): ctypes.c_float, np.dtype(np.bool_): ctypes.c_bool,
           np.dtype(np.int64): ctypes.c_int64}  # fmt: skip


class Buffers:
    """`obs [B,N,O]`, `state [B,S]`, `avail [B,N,A]` (current and final), `actions`, and the
    per-row control and result arrays of one step."""

    def __init__(self, spec: EnvSpec, num_envs: int, context: Any | None) -> None:
        b, n, o, s, a = num_envs, spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions
        act_shape = (b, n) if spec.discrete else (b, n, a)
        act_dtype = np.int64 if spec.discrete else np.float32
        self.layout: dict[str, tuple[tuple[int, ...], Any]] = {
            "obs": ((b, n, o), np.float32),
            "state": ((b, s), np.float32),
            "avail": ((b, n, a), np.bool_),
            "final_obs": ((b, n, o), np.float32),
            "final_state": ((b, s), np.float32),
            "final_avail": ((b, n, a), np.bool_),
            "actions": (act_shape, act_dtype),
            # control: which rows to step, the episode counter to reset with (-1: no reset),
            # reset seeds; results: reward, ends, whether the row reset
            "active": ((b,), np.bool_),
            "counter": ((b,), np.int64),
            "seed": ((b,), np.int64),
            "reward": ((b,), np.float32),
            "terminated": ((b,), np.bool_),
            "truncated": ((b,), np.bool_),
            "reset": ((b,), np.bool_),
        }
        self.raw: dict[str, Any] = {}
        for name, (shape, dtype) in self.layout.items():
            size = int(np.prod(shape))
            if context is None:
                self.raw[name] = np.zeros(size, dtype)
            else:
                self.raw[name] = context.RawArray(_CTYPES[np.dtype(dtype)], size)
        self._views()

    def _views(self) -> None:
        self.arrays: dict[str, np.ndarray] = {
            name: np.frombuffer(self.raw[name], dtype=dtype).reshape(shape)
            if not isinstance(self.raw[name], np.ndarray)
            else self.raw[name].reshape(shape)
            for name, (shape, dtype) in self.layout.items()
        }

    def __getstate__(self) -> dict[str, Any]:  # travels to workers as the RawArrays only
        return {"layout": self.layout, "raw": self.raw}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.layout, self.raw = state["layout"], state["raw"]
        self._views()

    def write(self, row: int, step: Step, final: bool = False) -> None:
        """Put `step`'s observation into row `row` of the current (or final) arrays."""
        prefix = "final_" if final else ""
        arrays = self.arrays
        arrays[prefix + "obs"][row] = step.obs
        arrays[prefix + "state"][row] = step.state
        arrays[prefix + "avail"][row] = step.avail_actions
