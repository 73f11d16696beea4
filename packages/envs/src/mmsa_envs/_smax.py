"""`smax:` JaxMARL's SMAX, StarCraft-style micromanagement in JAX, against its heuristic enemy.

Ids are SMAX map names: `smax:smacv2_5_units`, `smax:smacv2_10_units`, `smax:smacv2_20_units`,
`smax:3m`, `smax:2s3z`, ... Keyword arguments go to JaxMARL's `HeuristicEnemySMAX` (e.g.
`max_steps`, `attack_mode`), except `raw_state` (below), which the adapter reads.

**SMAX is not SMACv2.** Its `smacv2_*` maps draw unit types uniformly from all six SMAX types
(marine, marauder, stalker, zealot, zergling, hydralisk) with SMACv2-style start positions,
not from SMACv2's per-race unit sets (protoss: stalker/zealot/colossus, ...), and the game is
SMAX's own simulator. Results on it are not SMACv2 results; say so next to every number.

What the adapter adds to the raw env:
- one jitted function per step (step, observations, masks, win flag fused) on the CPU;
- obs `[N, O]` stacked from the allies' observations, available actions =
  `env.get_avail_actions(state)`;
- state = `obs["world_state"]` scaled as SMACv2 scales its state: each unit's position relative
  to the map centre over half the map size (in [-1, 1]) and its weapon cooldown over its unit
  type's cooldown (floored at 0), zeros for dead units as before. SMAX's raw world state holds
  map coordinates (0-32) and a cooldown that keeps falling by one step's time while a unit does
  not fire (below -10 in a 100-step episode): fed to QMIX's state-conditioned hypernetworks it
  made the mixer's values grow without bound (Q_tot 7.7 -> 52 over a 300k-step run on `3m`
  whose returns stayed near 0.1, while VDN, which ignores the state, reached 1.85).
  `raw_state=True` gives JaxMARL's world state unchanged;
- team reward = the ally reward (SMAX gives every ally the same team reward);
- `info["battle_won"]`: every enemy dead and some ally alive (the +1 bonus of the last reward);
- SMAX marks one `dones["__all__"]` for both kinds of end: an end with one side wiped out is
  termination, an end by the step limit is truncation. SMAX checks its limit before counting
  the step, so `max_steps=100` ends on the 101st step; `spec.episode_limit` is that true length.
- `spec.entities`: where allies, enemies and own features sit in each observation (see
  `entity_layout`), for entity-based learners such as HPN-QMIX;
- episodes are seeded: `reset(seed)` starts from `jax.random.PRNGKey(seed)`, split once for the
  reset and then once per step (the same chain `SMAXVectorEnv` uses per row).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._backend import require, unknown, versions
from ._core import EntityLayout, EnvSpec, MultiAgentEnv, Step

__all__ = ["SMAXCore", "SMAXEnv", "core", "entity_layout", "list_ids", "make_env"]

EXTRA = "smax"
SMACV2_LIKE = ("smacv2_5_units", "smacv2_10_units", "smacv2_20_units")


def list_ids() -> list[str]:
    smax = require("jaxmarl.environments.smax.smax_env", "smax", EXTRA)
    return sorted(smax.MAP_NAME_TO_SCENARIO)


def make_env(name: str, **kwargs: Any) -> SMAXEnv:
    return SMAXEnv(name, **kwargs)


def entity_layout(smax_env: Any) -> EntityLayout | None:
    """The entity layout of an ally's observation in JaxMARL's `SMAX` (`unit_list` observations;
    None for `conic` ones, whose slots hold whichever units fall in each sector).

    JaxMARL `SMAX.get_obs_unit_list`: ally `i` sees the other units in index order, skipping
    itself, so the `num_allies - 1` other allies come first and the `num_enemies` enemies next,
    `len(unit_features)` each; `len(own_features)` own features close the vector. Its actions are
    `num_movement_actions` moves/stop, then action `num_movement_actions + e` attacks enemy `e`
    (`update_agent_health`: attacked index `action + num_allies - num_movement_actions`).
    """
    if smax_env.observation_type != "unit_list":
        return None
    n_allies, n_enemies = int(smax_env.num_allies), int(smax_env.num_enemies)
    unit, own = len(smax_env.unit_features), len(smax_env.own_features)
    moves = int(smax_env.num_movement_actions)
    others = (n_allies - 1 + n_enemies) * unit
    return EntityLayout(
        own=((others, others + own),),
        n_allies=n_allies - 1,
        ally_start=0,
        ally_dim=unit,
        n_enemies=n_enemies,
        enemy_start=(n_allies - 1) * unit,
        enemy_dim=unit,
        attack_actions=tuple(range(moves, moves + n_enemies)),
    )


class SMAXCore:
    """The jitted pure functions of one SMAX map, shared by `SMAXEnv` and `SMAXVectorEnv`.

    `reset(key) -> (out, state, chain_key)` and `step(key, state, actions[N]) -> (out, state,
    key)`, where `out = (obs [N,O], world_state [S], avail [N,A] bool, reward, terminated,
    truncated, won)`. Compiling them takes ~15 s per map, so one core serves every env of that
    map in the process.
    """

    def __init__(self, name: str, kwargs: dict[str, Any]) -> None:
        jax = require("jax", "smax", EXTRA)
        jaxmarl = require("jaxmarl", "smax", EXTRA)
        smax = require("jaxmarl.environments.smax.smax_env", "smax", EXTRA)
        if name not in smax.MAP_NAME_TO_SCENARIO:
            raise unknown("smax", name, smax.MAP_NAME_TO_SCENARIO)
        self.jax = jax
        self.cpu = jax.devices("cpu")[0]
        kwargs = dict(kwargs)
        raw_state = kwargs.pop("raw_state", False)
        if not isinstance(raw_state, bool):
            raise ValueError(f"smax: raw_state={raw_state!r} must be true or false")
        env = jaxmarl.make("HeuristicEnemySMAX", scenario=smax.map_name_to_scenario(name), **kwargs)
        self.env = env
        self.agents = list(env.agents)
        self.n_allies = int(env.num_allies)
        jnp = jax.numpy

        inner = env._env  # the SMAX env under the heuristic enemy
        n_units, n_features = int(inner.num_agents), len(inner.own_features)
        centre = jnp.array([inner.map_width, inner.map_height], jnp.float32) / 2
        cooldowns = jnp.asarray(inner.unit_type_weapon_cooldowns, jnp.float32)

        def scaled_state(world_state: Any, units: Any) -> Any:
            """The world state with positions and cooldowns scaled (module docstring);
            `units` is SMAX's own state (`unit_alive`, `unit_types`)."""
            per_unit = world_state[: n_units * n_features].reshape(n_units, n_features)
            alive = units.unit_alive[:, None]
            position = (per_unit[:, 1:3] - centre) / centre
            cooldown = jnp.maximum(per_unit[:, 3:4], 0.0) / cooldowns[units.unit_types][:, None]
            per_unit = per_unit.at[:, 1:3].set(jnp.where(alive, position, 0.0))
            per_unit = per_unit.at[:, 3:4].set(jnp.where(alive, cooldown, 0.0))
            return jnp.concatenate([per_unit.reshape(-1), world_state[n_units * n_features :]])

        def pack(obs: Any, state: Any) -> tuple[Any, Any, Any]:
            avail = env.get_avail_actions(state)
            world_state = obs["world_state"].astype(jnp.float32)
            return (
                jnp.stack([obs[a] for a in self.agents]).astype(jnp.float32),
                world_state if raw_state else scaled_state(world_state, state.state),
                jnp.stack([avail[a] for a in self.agents]).astype(bool),
            )

        def reset(key: Any) -> tuple[Any, Any, Any]:
            chain, reset_key = jax.random.split(key)
            obs, state = env.reset(reset_key)
            # The enemy policy state starts weakly typed and comes out of a step strongly typed;
            # without this every env would compile `step` twice.
            state = jax.tree.map(lambda x: jax.lax.convert_element_type(x, x.dtype), state)
            o, ws, av = pack(obs, state)
            false = jnp.array(False)
            return (o, ws, av, jnp.float32(0.0), false, false, false), state, chain

        def step(key: Any, state: Any, actions: Any) -> tuple[Any, Any, Any]:
            key, step_key = jax.random.split(key)
            acts = {a: actions[i] for i, a in enumerate(self.agents)}
            obs, state, rewards, dones, _ = env.step_env(step_key, state, acts)
            alive = state.state.unit_alive
            allies_dead = ~alive[: self.n_allies].any()
            enemies_dead = ~alive[self.n_allies :].any()
            done = dones["__all__"]
            terminated = done & (allies_dead | enemies_dead)
            won = enemies_dead & ~allies_dead
            o, ws, av = pack(obs, state)
            reward = rewards[self.agents[0]].astype(jnp.float32)
            return (o, ws, av, reward, terminated, done & ~terminated, won), state, key

        self.reset_fn: Callable[..., Any] = reset
        self.step_fn: Callable[..., Any] = step
        self.reset = jax.jit(reset)
        self.step = jax.jit(step)
        shapes = jax.eval_shape(reset, jax.random.PRNGKey(0))[0]
        self.spec = EnvSpec(
            id=f"smax:{name}",
            n_agents=len(self.agents),
            obs_dim=int(shapes[0].shape[1]),
            state_dim=int(shapes[1].shape[0]),
            action_kind="discrete",
            n_actions=int(shapes[2].shape[1]),
            episode_limit=int(env.max_steps) + 1,  # SMAX ends on step max_steps + 1
            has_win=True,
            backend_versions=versions("jaxmarl", "jax", "jaxlib", "mmsa-envs"),
            entities=entity_layout(env._env),
        )

    def key(self, seed: int) -> Any:
        """The episode key of `seed`, committed to the CPU so every jitted call runs there."""
        return self.jax.device_put(self.jax.random.PRNGKey(seed), self.cpu)


_CORES: dict[tuple[str, tuple[tuple[str, Any], ...]], SMAXCore] = {}


def core(name: str, kwargs: dict[str, Any]) -> SMAXCore:
    """The shared `SMAXCore` of `(name, kwargs)` (built once per process)."""
    try:
        cache_key = (name, tuple(sorted(kwargs.items())))
        hash(cache_key)
    except TypeError:  # unhashable kwargs: build an unshared core
        return SMAXCore(name, kwargs)
    if cache_key not in _CORES:
        _CORES[cache_key] = SMAXCore(name, kwargs)
    return _CORES[cache_key]


class SMAXEnv(MultiAgentEnv):
    """One SMAX env behind the `MultiAgentEnv` contract (see the module docstring)."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__()
        self._core = core(name, dict(kwargs))
        self.spec = self._core.spec
        self._state: Any = None
        self._key: Any = None
        self._auto_seed = np.random.SeedSequence().generate_state(1)[0]

    def _to_step(self, out: Any) -> Step:
        obs, ws, avail, reward, terminated, truncated, won = self._core.jax.device_get(out)
        # device_get may hand back read-only views of JAX buffers: give the caller its own
        # (writable) arrays, as every other backend does.
        obs, ws, avail = np.array(obs), np.array(ws), np.array(avail)
        info = {"battle_won": bool(won)}
        return Step(obs, ws, avail, float(reward), bool(terminated), bool(truncated), info)

    def _reset(self, seed: int | None) -> Step:
        if seed is None:  # unseeded episodes still differ from each other
            self._auto_seed = (int(self._auto_seed) * 6364136223846793005 + 1) % 2**31
            seed = int(self._auto_seed)
        out, self._state, self._key = self._core.reset(self._core.key(seed))
        return self._to_step(out)

    def _step(self, actions: np.ndarray) -> Step:
        out, self._state, self._key = self._core.step(
            self._key, self._state, actions.astype(np.int32)
        )
        return self._to_step(out)
