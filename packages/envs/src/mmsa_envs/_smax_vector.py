"""`SMAXVectorEnv`: B SMAX envs stepped as one `jax.vmap`-ed call, with `VectorEnv`'s contract.

Worker processes buy little for a JAX env: one vmapped, jitted step over B envs costs about as
much as a few single steps. This class offers the same API and semantics as `VectorEnv`
(`reset`, `step`, `VecStep`, `episode_counters`, auto-reset on or off, per-episode seeds) so the
training loop can take either. Row `i`'s episode `c` starts from
`PRNGKey(episode_seed(seed, i, c))` with the same key chain as `SMAXEnv.reset(seed=...)`, so a
row replays exactly what a lone `SMAXEnv` would. There are no workers to crash: `dropped` is
always False and `dropped_episodes` stays 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._seeding import episode_seed
from ._smax import SMAXCore, core
from ._vector import VecStep

__all__ = ["SMAXVectorEnv"]


class SMAXVectorEnv:
    """B copies of `smax:<map>` in one vmapped JAX computation (see the module docstring)."""

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        *,
        seed: int = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        autoreset: bool = False,
    ) -> None:
        backend, _, name = env_id.partition(":")
        if backend != "smax":
            raise ValueError(f"SMAXVectorEnv runs smax:<map> ids only, got {env_id!r}")
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"SMAXVectorEnv: num_envs={num_envs!r} must be a positive int")
        episode_seed(seed, 0, 0)  # validates the seed
        self._core: SMAXCore = core(name, dict(env_kwargs or {}))
        self.spec = self._core.spec
        self.num_envs, self.seed, self.autoreset = num_envs, seed, autoreset
        self.dropped_episodes = 0
        self._counters = np.zeros(num_envs, np.int64)
        self._fns = _compiled(self._core)
        self._started = False
        self._finished = np.ones(num_envs, bool)
        self._last: VecStep | None = None

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

    def _keys(self, rows: np.ndarray) -> Any:
        seeds = [episode_seed(self.seed, int(i), int(self._counters[i])) for i in rows]
        # Seeds committed to the CPU keep every later computation there (docs/design.md §7.4).
        jax = self._core.jax
        return self._fns["keys"](jax.device_put(np.asarray(seeds, np.uint32), self._core.cpu))

    # ------------------------------------------------------------------ API
    def reset(self) -> VecStep:
        """Start a new episode in every env."""
        jax = self._core.jax
        rows = np.arange(self.num_envs)
        out, self._states, self._chain = self._fns["reset"](self._keys(rows))
        self._counters += 1
        self._next = np.asarray(self._keys(rows))  # first keys of the next episodes
        obs, ws, avail, reward, term, trunc, won = (np.array(x) for x in jax.device_get(out))
        self._finished[:] = False
        self._started = True
        b = self.num_envs
        finals = (obs, ws, avail) if self.autoreset else (None, None, None)
        self._last = VecStep(
            obs, ws, avail, reward, term, trunc, np.zeros(b, bool),
            tuple({"battle_won": False} for _ in range(b)), *finals,
        )  # fmt: skip
        return self._last

    def step(self, actions: np.ndarray) -> VecStep:
        """Step every running env: `actions [B, N]` int."""
        if not self._started or self._last is None:
            raise RuntimeError("SMAXVectorEnv.step() called before reset()")
        active = ~self._finished
        acts = self._check_actions(actions, active)
        jax = self._core.jax
        out, cur, self._states, self._chain = self._fns["step"](
            self._chain, self._states, acts, active, self._next, np.bool_(self.autoreset)
        )
        # device_get may hand back read-only views of JAX buffers: copy what we edit.
        (obs, ws, avail, reward, term, trunc, won), current = jax.device_get((out, cur))
        obs, ws, avail, reward = obs.copy(), ws.copy(), avail.copy(), reward.copy()
        term, trunc = term.copy(), trunc.copy()
        last = self._last
        if not self.autoreset:  # finished rows repeat their final step with reward 0
            idle = ~active
            for arr, old in ((obs, last.obs), (ws, last.state), (avail, last.avail_actions),
                             (term, last.terminated), (trunc, last.truncated)):  # fmt: skip
                arr[idle] = old[idle]
            reward[idle] = 0.0
            won = np.where(idle, [i["battle_won"] for i in last.infos], won)
        infos = tuple({"battle_won": bool(w)} for w in won)
        done = term | trunc
        if self.autoreset:
            ended = np.flatnonzero(done)
            if ended.size:
                self._counters[ended] += 1
                self._next = np.array(self._next)
                self._next[ended] = np.asarray(self._keys(ended))
            c_obs, c_ws, c_avail = (np.array(x) for x in current)
            no_drop = np.zeros(self.num_envs, bool)
            self._last = VecStep(
                c_obs, c_ws, c_avail, reward, term, trunc, no_drop, infos, obs, ws, avail
            )
        else:
            self._finished |= done
            no_drop = np.zeros(self.num_envs, bool)
            self._last = VecStep(obs, ws, avail, reward, term, trunc, no_drop, infos)
        return self._last

    def close(self) -> None:
        """Nothing to release (kept for the `VectorEnv` API)."""
        self._started = False

    def __enter__(self) -> SMAXVectorEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ checks
    def _check_actions(self, actions: np.ndarray, active: np.ndarray) -> np.ndarray:
        spec, b = self.spec, self.num_envs
        arr = np.asarray(actions)
        if arr.shape != (b, spec.n_agents):
            raise ValueError(
                f"{spec.id}: actions must have shape {(b, spec.n_agents)}, got {arr.shape}"
            )
        if arr.dtype.kind not in "iu":
            raise ValueError(f"{spec.id}: discrete actions must be integers, got dtype {arr.dtype}")
        arr = np.where(active[:, None], arr, 0)  # rows that are over ignore their actions
        bad = np.argwhere((arr < 0) | (arr >= spec.n_actions))
        if bad.size:
            i, n = (int(v) for v in bad[0])
            raise ValueError(
                f"env {i}: {spec.id}: agent {n} action {int(arr[i, n])} is out of range "
                f"[0, {spec.n_actions - 1}]"
            )
        assert self._last is not None
        ok = np.take_along_axis(self._last.avail_actions, arr[..., None], axis=-1)[..., 0]
        bad = np.argwhere(~ok & active[:, None])
        if bad.size:
            i, n = (int(v) for v in bad[0])
            allowed = np.flatnonzero(self._last.avail_actions[i, n]).tolist()
            raise ValueError(
                f"env {i}: {spec.id}: agent {n} action {int(arr[i, n])} is not available now; "
                f"available actions: {allowed}"
            )
        return arr.astype(np.int32)


def _compiled(smax: SMAXCore) -> dict[str, Any]:
    """The vmapped, jitted reset and step of `smax`, compiled once per map and process.

    One step function serves both reset modes (`reset_rows` is all False without auto-reset),
    so switching modes never pays the ~15 s compilation again.
    """
    cached: dict[str, Any] | None = smax.__dict__.get("_vector_fns")
    if cached is not None:
        return cached
    jax = smax.jax
    jnp = jax.numpy

    def select(mask: Any, a: Any, b: Any) -> Any:
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    def step(
        keys: Any, states: Any, actions: Any, active: Any, next_keys: Any, autoreset: Any
    ) -> Any:
        out, new_states, new_keys = jax.vmap(smax.step_fn)(keys, states, actions)
        new_states = jax.tree.map(lambda a, b: select(active, a, b), new_states, states)
        new_keys = select(active, new_keys, keys)
        restart = (out[4] | out[5]) & autoreset & active
        first, first_states, first_keys = jax.vmap(smax.reset_fn)(next_keys)
        states = jax.tree.map(lambda a, b: select(restart, a, b), first_states, new_states)
        current = tuple(select(restart, f, o) for f, o in zip(first[:3], out[:3], strict=True))
        return out, current, states, select(restart, first_keys, new_keys)

    fns = {
        "keys": jax.jit(jax.vmap(jax.random.PRNGKey)),
        "reset": jax.jit(jax.vmap(smax.reset_fn)),
        "step": jax.jit(step),
    }
    smax.__dict__["_vector_fns"] = fns
    return fns
