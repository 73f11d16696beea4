"""`smacv2:` SMACv2 on StarCraft II, through smacv2's `StarCraftCapabilityEnvWrapper`.

Ids are `race_N_vs_N` for race in protoss, terran, zerg and N in 5, 10, 20
(`smacv2:protoss_5_vs_5`, ...). Each builds the wrapper as smacv2's own example configs
(`sc2_gen_<race>.yaml`) do: map `10gen_<race>`, the race's weighted unit types, surrounded-or-
reflected start positions, and the same env arguments; keyword arguments override env arguments
(e.g. `seed`, `obs_last_action`). `env_factory` replaces the wrapper class: the tests pass
`mmsa_envs.testing.FakeStarCraftCapabilityEnv`, since StarCraft II cannot run here.

What the adapter adds to the raw env:
- obs `[N, O]` from `get_obs()`, state from `get_state()`, masks from `get_avail_actions()`;
- `info["battle_won"]`, `dead_allies`, `dead_enemies` passed on;
- SMACv2 returns `terminated=True` at its step limit too; the adapter reports a time-out
  (`info["episode_limit"]`, or the limit reached with both sides alive and no win) as truncation;
- `spec.entities` from smacv2's own part sizes (`entity_layout`), for entity-based learners;
- `reset(seed)` cannot seed a StarCraft II episode (smacv2's distributions draw from unseeded
  generators and SC2 is seeded once, at launch, by the `seed` env argument), so
  `reproducible_resets` is False.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ._backend import MissingBackendError, unknown, versions
from ._core import EntityLayout, EnvSpec, MultiAgentEnv, Step

__all__ = [
    "CAPABILITY_CONFIGS",
    "ENV_ARGS",
    "INSTALL_HELP",
    "SMACv2Env",
    "capability_config",
    "entity_layout",
    "list_ids",
    "make_env",
]

EXTRA = "smacv2"
RACES = ("protoss", "terran", "zerg")
SIZES = (5, 10, 20)
_ID = re.compile(r"^(?P<race>[a-z]+)_(?P<n>\d+)_vs_(?P<m>\d+)$")

INSTALL_HELP = (
    "SMACv2 needs three things: (1) the smacv2 package: "
    "pip install 'git+https://github.com/oxwhirl/smacv2.git'; "
    "(2) StarCraft II for Linux, version 4.10: download SC2.4.10.zip from "
    "https://github.com/Blizzard/s2client-proto#downloads, unzip it (password: iagreetotheeula) "
    "to ~/StarCraftII or anywhere with SC2PATH pointing there; (3) the SMAC maps: copy "
    "smacv2/env/starcraft2/maps/SMAC_Maps into $SC2PATH/Maps/. "
    "Without StarCraft II, `smax:smacv2_5_units` runs a JAX stand-in (not SMACv2)."
)

ENV_ARGS: dict[str, Any] = {
    "continuing_episode": False,
    "difficulty": "7",
    "game_version": None,
    "move_amount": 2,
    "obs_all_health": True,
    "obs_instead_of_state": False,
    "obs_last_action": False,
    "obs_own_health": True,
    "obs_pathing_grid": False,
    "obs_terrain_height": False,
    "obs_timestep_number": False,
    "reward_death_value": 10,
    "reward_defeat": 0,
    "reward_negative_scale": 0.5,
    "reward_only_positive": True,
    "reward_scale": True,
    "reward_scale_rate": 20,
    "reward_sparse": False,
    "reward_win": 200,
    "replay_dir": "",
    "replay_prefix": "",
    "conic_fov": False,
    "use_unit_ranges": True,
    "min_attack_range": 2,
    "obs_own_pos": True,
    "num_fov_actions": 12,
    "state_last_action": True,
    "state_timestep_number": False,
    "step_mul": 8,
    "heuristic_ai": False,
    "debug": False,
    "prob_obs_enemy": 0,
}
"""The env arguments of smacv2's `sc2_gen_{protoss,terran,zerg}.yaml` (identical across races)."""

_TEAMS: dict[str, dict[str, Any]] = {
    "protoss": {"unit_types": ["stalker", "zealot", "colossus"], "weights": [0.45, 0.45, 0.1]},
    "terran": {
        "unit_types": ["marine", "marauder", "medivac"],
        "weights": [0.45, 0.45, 0.1],
        "exception_unit_types": ["medivac"],
    },
    "zerg": {
        "unit_types": ["zergling", "baneling", "hydralisk"],
        "weights": [0.45, 0.1, 0.45],
        "exception_unit_types": ["baneling"],
    },
}

CAPABILITY_CONFIGS: dict[str, dict[str, Any]] = {
    race: {
        "n_units": 5,
        "n_enemies": 5,
        "team_gen": {"dist_type": "weighted_teams", **team, "observe": True},
        "start_positions": {
            "dist_type": "surrounded_and_reflect",
            "p": 0.5,
            "map_x": 32,
            "map_y": 32,
        },
    }
    for race, team in _TEAMS.items()
}
"""smacv2's capability configs per race (5v5 as in its yaml files; `capability_config` resizes)."""


def capability_config(race: str, n_units: int, n_enemies: int) -> dict[str, Any]:
    """A fresh copy of `race`'s capability config for `n_units` vs `n_enemies`.

    A copy, because smacv2's wrapper writes into the config it is given.
    """
    config = copy.deepcopy(CAPABILITY_CONFIGS[race])
    config["n_units"], config["n_enemies"] = n_units, n_enemies
    return config


def entity_layout(env: Any) -> EntityLayout:
    """The entity layout of a smacv2 observation, from smacv2's own part sizes.

    smacv2 `StarCraft2Env.get_obs_agent` concatenates, in this order, the move features
    (`get_obs_move_feats_size()`), the enemy features (`get_obs_enemy_feats_size() -> (M, f)`),
    the ally features (`get_obs_ally_feats_size() -> (N - 1, f)`) and the own features
    (`get_obs_own_feats_size()`); with `obs_timestep_number` one more value ends the vector,
    which counts as an own feature here. Action `n_actions_no_attack + e` attacks enemy `e`
    (for a medivac it heals ally `e` instead; the layout cannot say which units are medivacs).
    """
    move = int(env.get_obs_move_feats_size())
    n_enemies, enemy_dim = (int(v) for v in env.get_obs_enemy_feats_size())
    n_allies, ally_dim = (int(v) for v in env.get_obs_ally_feats_size())
    own_start = move + n_enemies * enemy_dim + n_allies * ally_dim
    obs_size = int(env.get_obs_size())
    first_attack = int(env.n_actions_no_attack)
    return EntityLayout(
        own=tuple(r for r in ((0, move), (own_start, obs_size)) if r[1] > r[0]),
        n_allies=n_allies,
        ally_start=move + n_enemies * enemy_dim,
        ally_dim=ally_dim,
        n_enemies=n_enemies,
        enemy_start=move,
        enemy_dim=enemy_dim,
        attack_actions=tuple(range(first_attack, first_attack + n_enemies)),
    )


def list_ids() -> list[str]:
    return [f"{race}_{n}_vs_{n}" for race in RACES for n in SIZES]


def make_env(name: str, **kwargs: Any) -> SMACv2Env:
    return SMACv2Env(name, **kwargs)


def _real_wrapper(**kwargs: Any) -> Any:
    """smacv2's StarCraftCapabilityEnvWrapper, after checking StarCraft II can be found."""
    try:
        from smacv2.env import StarCraftCapabilityEnvWrapper
    except ImportError as err:
        raise MissingBackendError(f"smacv2 is not installed ({err}). {INSTALL_HELP}") from err
    try:
        from pysc2 import run_configs  # pysc2 finds the game (SC2PATH or ~/StarCraftII)

        run_configs.get(version=kwargs.get("game_version"))
    except Exception as err:
        raise MissingBackendError(f"StarCraft II was not found ({err}). {INSTALL_HELP}") from err
    return StarCraftCapabilityEnvWrapper(**kwargs)


class SMACv2Env(MultiAgentEnv):
    """One SMACv2 env behind the `MultiAgentEnv` contract (see the module docstring)."""

    reproducible_resets = False

    def __init__(
        self, name: str, env_factory: Callable[..., Any] | None = None, **env_args: Any
    ) -> None:
        super().__init__()
        m = _ID.match(name)
        if m is None or m["race"] not in RACES:
            raise unknown("smacv2", name, list_ids(), hint="Ids look like protoss_5_vs_5.")
        race, n_units, n_enemies = m["race"], int(m["n"]), int(m["m"])
        kwargs = {
            **ENV_ARGS,
            "map_name": f"10gen_{race}",
            "capability_config": capability_config(race, n_units, n_enemies),
            **env_args,
        }
        self._env = (env_factory or _real_wrapper)(**kwargs)
        info = self._env.get_env_info()
        if info["n_agents"] != n_units:
            raise RuntimeError(f"smacv2:{name}: the env has {info['n_agents']} agents")
        self._n_enemies = n_enemies
        backend = "mmsa-envs (fake smacv2)" if env_factory is not None else "smacv2"
        self.spec = EnvSpec(
            id=f"smacv2:{name}",
            n_agents=int(info["n_agents"]),
            obs_dim=int(info["obs_shape"]),
            state_dim=int(info["state_shape"]),
            action_kind="discrete",
            n_actions=int(info["n_actions"]),
            episode_limit=int(info["episode_limit"]),
            has_win=True,
            backend_versions={
                **versions("smacv2", "pysc2", "mmsa-envs"),
                "env_factory": getattr(env_factory, "__qualname__", backend),
            },
            entities=entity_layout(self._env),
        )

    def _observe(self, reward: float, terminated: bool, truncated: bool, info: Any) -> Step:
        env = self._env
        obs = np.asarray(env.get_obs(), np.float32)
        state = np.asarray(env.get_state(), np.float32)
        avail = np.asarray(env.get_avail_actions(), bool)
        return Step(obs, state, avail, reward, terminated, truncated, info)

    def _reset(self, seed: int | None) -> Step:
        self._env.reset()  # smacv2 takes no seed per episode (see the module docstring)
        self._t = 0
        return self._observe(0.0, False, False, {"battle_won": False})

    def _step(self, actions: np.ndarray) -> Step:
        reward, terminated, info = self._env.step(actions.tolist())
        self._t += 1
        info = dict(info)
        won = bool(info.get("battle_won", False))
        both_alive = (
            info.get("dead_allies", 0) < self.spec.n_agents
            and info.get("dead_enemies", 0) < self._n_enemies
        )
        timeout = bool(info.get("episode_limit", False)) or (
            terminated and not won and both_alive and self._t >= self.spec.episode_limit
        )
        info["battle_won"] = won
        return self._observe(float(reward), bool(terminated) and not timeout, timeout, info)

    def close(self) -> None:
        self._env.close()
