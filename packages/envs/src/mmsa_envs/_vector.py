"""`VectorEnv`: B copies of one env, stepped together, in worker processes or in-process.

The training loop collects PyMARL-style synchronous batches of B whole episodes::

    with VectorEnv("lbf:Foraging-8x8-2p-2f-coop-v3", num_envs=4, seed=0) as venv:
        vstep = venv.reset()                       # obs [B, N, O], state [B, S], avail [B, N, A]
        while not vstep.done.all():
            vstep = venv.step(policy(vstep.obs, vstep.avail_actions))   # actions [B, N]
        # rows with vstep.dropped set lost their worker: discard those partial episodes

Every episode of env `i` is seeded with `episode_seed(seed, i, episode_counters[i])`, so a run
resumes exactly from its counters alone. With `autoreset=False` a finished row waits (its actions
are ignored, it repeats its final observation with reward 0) until `reset()`. With
`autoreset=True` a finished row starts its next episode at once; `final_obs`, `final_state` and
`final_avail_actions` then hold the last observation of the episode that ended (for rows that
did not end they equal the current observation, so they are always the next observation of the
transition). A worker that dies is restarted; its row comes back `dropped` and truncated, and
`dropped_episodes` counts it: partial episodes are never passed off as real ones.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._buffers import Buffers
from ._core import EnvSpec, _bounds, validate_actions
from ._registry import make
from ._seeding import episode_seed
from ._worker import RESET, STEP, LocalSlot, ProcessSlot, RemoteError, WorkerCrashed

__all__ = ["VecStep", "VectorEnv"]

_RESET_ATTEMPTS = 3
"""A worker that crashes this many times in a row while resetting is a broken env, not bad luck."""


@dataclass(frozen=True)
class VecStep:
    """One step of B envs."""

    obs: np.ndarray
    """`[B, N, O]` float32."""
    state: np.ndarray
    """`[B, S]` float32."""
    avail_actions: np.ndarray
    """`[B, N, A]` bool."""
    reward: np.ndarray
    """`[B]` float32 team reward."""
    terminated: np.ndarray
    """`[B]` bool."""
    truncated: np.ndarray
    """`[B]` bool (time limit, or a dropped row)."""
    dropped: np.ndarray
    """`[B]` bool: that row's worker crashed; the partial episode must be discarded."""
    infos: tuple[Mapping[str, Any], ...]
    """Per env; for a finished row, the info of its last step."""
    final_obs: np.ndarray | None = None
    """Auto-reset only: `[B, N, O]` last observation of an episode that ended, else `obs`."""
    final_state: np.ndarray | None = None
    """Auto-reset only: `[B, S]`, as `final_obs`."""
    final_avail_actions: np.ndarray | None = None
    """Auto-reset only: `[B, N, A]`, as `final_obs`."""

    @property
    def done(self) -> np.ndarray:
        """`[B]` bool: terminated or truncated."""
        return self.terminated | self.truncated


class VectorEnv:
    """B copies of `env_id` (see the module docstring for the loop and the semantics)."""

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        *,
        seed: int = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        processes: bool = True,
        autoreset: bool = False,
        num_workers: int | None = None,
        start_method: str = "forkserver",
    ) -> None:
        """`num_workers` (processes only; default: one per CPU core, at most B) share the B envs
        in contiguous blocks: one message per worker per step, however many envs it holds. A
        crashed worker drops the episodes of all its rows. `start_method` ('forkserver',
        'spawn' or 'fork'): the default is safe when the parent already runs threads (torch,
        jax)."""
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"VectorEnv: num_envs={num_envs!r} must be a positive int")
        episode_seed(seed, 0, 0)  # validates the seed
        if start_method not in mp.get_all_start_methods():
            raise ValueError(
                f"VectorEnv: start_method={start_method!r} is not available here; "
                f"use one of {mp.get_all_start_methods()}"
            )
        if num_workers is None:
            num_workers = min(num_envs, os.cpu_count() or 1)
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
            raise ValueError(f"VectorEnv: num_workers={num_workers!r} must be a positive int")
        self.num_envs = num_envs
        self.seed = seed
        self.autoreset = autoreset
        self.processes = processes
        self.dropped_episodes = 0
        self._counters = np.zeros(num_envs, np.int64)
        self._closed = False
        kwargs = dict(env_kwargs or {})
        self._slots: list[LocalSlot | ProcessSlot] = []
        # The shared arrays need the spec before any worker starts: one env built here says it.
        probe = make(env_id, **kwargs)
        self.spec: EnvSpec = probe.spec
        probe.close()
        ctx = mp.get_context(start_method) if processes else None
        if ctx is not None and start_method == "forkserver":
            # Workers fork from the server with these already imported (only takes effect
            # before the server first starts); "__main__" is the stdlib default.
            ctx.set_forkserver_preload(["__main__", "numpy", "mmsa_envs"])  # type: ignore[attr-defined]
        self._buf = Buffers(self.spec, num_envs, ctx)
        blocks = [b.tolist() for b in np.array_split(np.arange(num_envs), num_workers) if b.size]
        try:
            if ctx is not None:
                for rows in blocks:
                    self._slots.append(ProcessSlot(env_id, kwargs, seed, rows, self._buf, ctx))
            else:
                rows = list(range(num_envs))
                self._slots.append(LocalSlot(env_id, kwargs, seed, rows, self._buf))
        except BaseException:
            self.close()
            raise
        self._last: VecStep | None = None
        self._finished = np.ones(num_envs, bool)
        self._started = False

    # ------------------------------------------------------------------ counters
    @property
    def episode_counters(self) -> np.ndarray:
        """`[B]` int64: episodes started so far per env (settable, e.g. on resume)."""
        return self._counters.copy()

    @episode_counters.setter
    def episode_counters(self, value: np.ndarray) -> None:
        arr = np.asarray(value)
        if arr.shape != (self.num_envs,) or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"episode_counters must be {self.num_envs} ints, got shape {arr.shape} "
                f"dtype {arr.dtype}"
            )
        if (arr < 0).any():
            raise ValueError(f"episode_counters must be non-negative, got {arr.tolist()}")
        self._counters = arr.astype(np.int64)

    @property
    def worker_pids(self) -> list[int | None]:
        """Process id of the worker of each row (None in-process)."""
        pids: list[int | None] = [None] * self.num_envs
        for slot in self._slots:
            for row in slot.rows:
                pids[row] = slot.pid
        return pids

    # ------------------------------------------------------------------ API
    def reset(self) -> VecStep:
        """Start a new episode in every env."""
        self._check_open()
        infos = self._reset_rows(self._slots)
        self._finished[:] = False
        self._started = True
        b = self.num_envs
        zeros = np.zeros(b, bool)
        a = self._buf.arrays
        obs, state, avail = a["obs"].copy(), a["state"].copy(), a["avail"].copy()
        finals = (obs, state, avail) if self.autoreset else (None, None, None)
        self._last = VecStep(
            obs, state, avail, np.zeros(b, np.float32), zeros, zeros.copy(), zeros.copy(),
            tuple(infos[r] for r in range(b)), *finals,
        )  # fmt: skip
        return self._last

    def step(self, actions: np.ndarray) -> VecStep:
        """Step every running env: `actions [B, N]` int64 or `[B, N, A]` float32."""
        self._check_open()
        if not self._started or self._last is None:
            raise RuntimeError("VectorEnv.step() called before reset()")
        active = ~self._finished
        self._check_actions(actions, active)
        a, last = self._buf.arrays, self._last
        a["active"][:] = active
        a["counter"][:] = self._counters if self.autoreset else -1
        try:
            infos_by_row, dropped = self._step_rows(active)
        except BaseException:
            self._started = False  # rows may disagree now; the caller must reset
            raise
        reward = np.where(active, a["reward"], 0.0).astype(np.float32)
        terminated = np.where(active, a["terminated"], last.terminated)
        truncated = np.where(active, a["truncated"], last.truncated)
        reset = active & a["reset"]
        rows = np.flatnonzero(dropped)
        reward[rows], terminated[rows], truncated[rows], reset[rows] = 0.0, False, True, False
        self._counters += reset  # those workers reset with episode_seed(.., counter)
        infos = list(last.infos)
        for row, info in infos_by_row.items():
            infos[row] = info
        obs, state, avail = a["obs"].copy(), a["state"].copy(), a["avail"].copy()
        if not self.autoreset:
            self._finished |= terminated | truncated
            # a dead worker may have left its rows half-written: show their last observation
            for name, arr, old in (("obs", obs, last.obs), ("state", state, last.state),
                                   ("avail", avail, last.avail_actions)):  # fmt: skip
                arr[rows] = old[rows]
                a[name][rows] = old[rows]
            self._last = VecStep(
                obs, state, avail, reward, terminated, truncated, dropped, tuple(infos)
            )
            return self._last
        final_obs, final_state = a["final_obs"].copy(), a["final_state"].copy()
        final_avail = a["final_avail"].copy()
        final_obs[rows], final_state[rows] = last.obs[rows], last.state[rows]
        final_avail[rows] = last.avail_actions[rows]
        self._last = VecStep(
            obs, state, avail, reward, terminated, truncated, dropped, tuple(infos),
            final_obs, final_state, final_avail,
        )  # fmt: skip
        return self._last

    def _step_rows(self, active: np.ndarray) -> tuple[dict[int, Any], np.ndarray]:
        """Ask every slot with active rows to step them, then collect: (infos by row, dropped)."""
        requests: list[list[int]] = []
        for slot in self._slots:
            rows = [r for r in slot.rows if active[r]]
            requests.append(rows)
            if rows:
                slot.send(STEP)
        infos: dict[int, Any] = {}
        dropped = np.zeros(self.num_envs, bool)
        error: BaseException | None = None
        for slot, rows in zip(self._slots, requests, strict=True):
            if not rows:
                continue
            try:
                reply = slot.recv()
            except WorkerCrashed:
                dropped[rows] = True
                self.dropped_episodes += len(rows)
                slot.restart()
                if self.autoreset:  # the fresh worker starts every row's next episode at once
                    self._reset_rows([slot])
                infos.update((r, {"dropped": True}) for r in rows)
                continue
            except RemoteError as err:
                error = error or err  # keep collecting so every pipe stays in step
                continue
            infos.update(zip(rows, reply or [{}] * len(rows), strict=True))
        if error is not None:
            raise error
        return infos, dropped

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        for slot in getattr(self, "_slots", []):
            try:
                slot.close()
            except Exception:  # closing must not mask the error that got us here
                pass

    def __enter__(self) -> VectorEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("VectorEnv is closed")

    def _check_actions(self, actions: np.ndarray, active_mask: np.ndarray) -> None:
        """Validate the active rows' actions and write them into the shared action array."""
        spec, b = self.spec, self.num_envs
        arr = np.asarray(actions)
        want = (b, spec.n_agents) if spec.discrete else (b, spec.n_agents, spec.n_actions)
        if arr.shape != want:
            raise ValueError(
                f"{spec.id}: VectorEnv actions must have shape {want}, got {arr.shape}"
            )
        assert self._last is not None
        active = np.flatnonzero(active_mask)
        sub = arr if active.size == b else arr[active]
        # One vectorised test for the whole batch; only a failing batch is re-checked row by
        # row, so the error names the env, the agent and the value.
        if spec.discrete:
            ok = sub.dtype.kind in "iu" and bool(((sub >= 0) & (sub < spec.n_actions)).all())
            if ok:
                avail = self._last.avail_actions
                avail = avail if active.size == b else avail[active]
                ok = bool(np.take_along_axis(avail, sub[..., None], -1).all())
        else:
            assert spec.action_low is not None and spec.action_high is not None
            low, high, _, _ = _bounds(spec.action_low, spec.action_high)
            ok = sub.dtype.kind == "f" and bool(((sub >= low) & (sub <= high)).all())
        if not ok:
            for i in active:
                try:
                    validate_actions(spec, self._last.avail_actions[i], arr[i])
                except ValueError as err:
                    raise ValueError(f"env {i}: {err}") from None
        self._buf.arrays["actions"][active] = sub

    def _reset_rows(self, slots: list[LocalSlot | ProcessSlot]) -> dict[int, Any]:
        """Reset every row of `slots` with its next episode seed (the workers write the
        observations); returns the infos by row. A worker that crashes while resetting is
        restarted and retried."""
        seeds = self._buf.arrays["seed"]
        for slot in slots:
            for r in slot.rows:
                seeds[r] = episode_seed(self.seed, r, int(self._counters[r]))
                self._counters[r] += 1
        infos: dict[int, Any] = {}
        for attempt in range(_RESET_ATTEMPTS):
            pending = [s for s in slots if s.rows[0] not in infos]
            for slot in pending:
                slot.send(RESET)
            crashed = []
            for slot in pending:
                try:
                    reply = slot.recv()
                except WorkerCrashed:
                    crashed.append(slot)
                    continue
                infos.update(zip(slot.rows, reply or [{}] * len(slot.rows), strict=True))
            if not crashed:
                break
            if attempt + 1 == _RESET_ATTEMPTS:
                raise WorkerCrashed(f"env workers of rows {[s.rows for s in crashed]} keep dying")
            for slot in crashed:
                slot.restart()
        return infos
