"""Fakes shipped with the library for other people's tests (Acme-style).

`FakeStarCraftCapabilityEnv` stands in for smacv2's `StarCraftCapabilityEnvWrapper` where
StarCraft II cannot run. It has the same constructor (`capability_config` plus StarCraft2Env's
keyword arguments; unknown ones raise TypeError), the same methods and the same return types:
`reset() -> (obs list, state)`, `step(actions) -> (reward, terminated, info)` with
`battle_won`, `dead_allies`, `dead_enemies`, `get_obs()` (list of float32 arrays),
`get_state()`, `get_avail_actions()` (list of 0/1 int lists), `get_env_info()` (`state_shape`,
`obs_shape`, `cap_shape`, `n_actions`, `n_agents`, `episode_limit`), `close()`, and smacv2's
observation part sizes (`get_obs_move_feats_size`, `get_obs_enemy_feats_size`,
`get_obs_ally_feats_size`, `get_obs_own_feats_size`, `n_actions_no_attack`). Its action layout
is SMACv2's (0 no-op for the dead, 1 stop, 2-5 move north/south/east/west, 6+j attack enemy j),
its episode limit is the 10gen maps' 200 steps, and like SMACv2 it reports the time limit as
`terminated=True` without `episode_limit` in info (unless `continuing_episode`).

The battle itself is a toy: units walk on a 32x32 plane, shoot the nearest target in range and
lose health; the enemy walks to the nearest ally and shoots. Unit types follow the capability
config's weights, start positions its surrounded-or-reflected layout. It exercises every code
path of an adapter; it says nothing about StarCraft II.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["FakeStarCraftCapabilityEnv"]

_MAPS = {
    "10gen_protoss": ("P", ["stalker", "zealot", "colossus"]),
    "10gen_terran": ("T", ["marine", "marauder", "medivac"]),
    "10gen_zerg": ("Z", ["zergling", "baneling", "hydralisk"]),
}
# health, shield, damage per step, attack range (with use_unit_ranges), speed
_UNITS: dict[str, tuple[float, float, float, float, float]] = {
    "stalker": (80, 80, 13, 6, 1.0),
    "zealot": (100, 50, 8, 2, 1.0),
    "colossus": (200, 150, 10, 7, 0.8),
    "marine": (45, 0, 6, 5, 1.0),
    "marauder": (125, 0, 10, 6, 0.8),
    "medivac": (150, 0, 0, 4, 1.2),
    "zergling": (35, 0, 5, 1, 1.4),
    "baneling": (30, 0, 16, 1, 1.0),
    "hydralisk": (80, 0, 12, 5, 0.9),
}
_DEFAULTS: dict[str, Any] = {
    "map_name": "10gen_protoss", "step_mul": 8, "move_amount": 2, "difficulty": "7",
    "game_version": None, "seed": None, "continuing_episode": False, "obs_all_health": True,
    "obs_own_health": True, "obs_last_action": False, "obs_pathing_grid": False,
    "obs_terrain_height": False, "obs_instead_of_state": False, "obs_timestep_number": False,
    "obs_own_pos": False, "obs_starcraft": True, "conic_fov": False, "num_fov_actions": 12,
    "state_last_action": True, "state_timestep_number": False, "reward_sparse": False,
    "reward_only_positive": True, "reward_death_value": 10, "reward_win": 200,
    "reward_defeat": 0, "reward_negative_scale": 0.5, "reward_scale": True,
    "reward_scale_rate": 20, "use_unit_ranges": False, "min_attack_range": 2,
    "kill_unit_step_mul": 2, "fully_observable": False, "replay_dir": "", "replay_prefix": "",
    "window_size_x": 1920, "window_size_y": 1200, "heuristic_ai": False,
    "heuristic_rest": False, "debug": False, "prob_obs_enemy": 1.0, "action_mask": True,
}  # fmt: skip
"""StarCraft2Env's keyword arguments and defaults (smacv2)."""
_SIGHT = 9.0
_LIMIT = 200
_MAP = 32.0


class FakeStarCraftCapabilityEnv:
    """A stand-in for `smacv2.env.StarCraftCapabilityEnvWrapper` (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        if "capability_config" not in kwargs:
            raise KeyError("capability_config")  # the real wrapper indexes kwargs the same way
        config = kwargs.pop("capability_config")
        unknown = sorted(set(kwargs) - set(_DEFAULTS))
        if unknown:
            raise TypeError(f"__init__() got an unexpected keyword argument {unknown[0]!r}")
        args = {**_DEFAULTS, **kwargs}
        if args["map_name"] not in _MAPS:
            raise KeyError(args["map_name"])  # smacv2's get_map_params raises KeyError too
        self.args = args
        self.race, self.unit_types = _MAPS[args["map_name"]]
        self.distribution_config = config
        for key, sub in config.items():  # the real wrapper writes these into the given config
            if key not in ("n_units", "n_enemies"):
                sub.update(env_key=key, n_units=config["n_units"], n_enemies=config["n_enemies"])
        team = config["team_gen"]
        self.n_agents, self.n_enemies = int(config["n_units"]), int(config["n_enemies"])
        self._weights = np.asarray(team["weights"], float)
        self._types = list(team["unit_types"])
        self._exceptions = set(team.get("exception_unit_types", []))
        self._positions = config.get("start_positions", {"p": 0.5})
        self.episode_limit = _LIMIT
        self.n_actions_no_attack = 6  # no-op, stop, 4 moves (smacv2 without conic_fov)
        self.n_actions = self.n_actions_no_attack + self.n_enemies
        self.rng = np.random.default_rng(args["seed"])  # SC2 is seeded once, at launch
        self.shield_bits = 1 if self.race == "P" else 0
        self.unit_type_bits = len(self.unit_types)
        self._episode_steps = 0
        self.battles_won = self.battles_game = self.timeouts = 0
        self._closed = False
        self._new_episode()

    # ------------------------------------------------------------------ sizes
    # smacv2's StarCraft2Env (reached through the wrapper's __getattr__) sizes the four parts
    # of an observation, in the order `get_obs_agent` concatenates them: move, enemy, ally, own.
    def get_obs_move_feats_size(self) -> int:
        return 4  # can move north, south, east, west (no pathing grid or terrain height)

    def get_obs_enemy_feats_size(self) -> tuple[int, int]:
        # available_to_attack, distance, relative x, y, health, shield (protoss), unit type
        return self.n_enemies, 5 + self.shield_bits + self.unit_type_bits

    def get_obs_ally_feats_size(self) -> tuple[int, int]:
        # visible, distance, relative x, y, health, shield (protoss), unit type
        return self.n_agents - 1, 5 + self.shield_bits + self.unit_type_bits

    def get_obs_own_feats_size(self) -> int:
        # health, shield (protoss), unit type, position (obs_own_pos)
        return 1 + self.shield_bits + self.unit_type_bits + (2 if self.args["obs_own_pos"] else 0)

    def get_obs_size(self) -> int:
        (n_en, en), (n_al, al) = self.get_obs_enemy_feats_size(), self.get_obs_ally_feats_size()
        return (
            self.get_obs_move_feats_size() + n_en * en + n_al * al + self.get_obs_own_feats_size()
        )

    def get_state_size(self) -> int:
        ally = 4 + self.shield_bits + self.unit_type_bits
        enemy = 3 + self.shield_bits + self.unit_type_bits
        last = self.n_agents * self.n_actions if self.args["state_last_action"] else 0
        return self.n_agents * ally + self.n_enemies * enemy + last

    def get_cap_size(self) -> int:
        return self.unit_type_bits

    def get_total_actions(self) -> int:
        return self.n_actions

    def get_env_info(self) -> dict[str, Any]:
        return {
            "state_shape": self.get_state_size(),
            "obs_shape": self.get_obs_size(),
            "cap_shape": self.get_cap_size(),
            "n_actions": self.get_total_actions(),
            "n_agents": self.n_agents,
            "episode_limit": self.episode_limit,
        }

    # ------------------------------------------------------------------ episodes
    def _team(self, n: int) -> list[str]:
        team: list[str] = []
        while not team or all(t in self._exceptions for t in team):
            team = list(self.rng.choice(self._types, size=n, p=self._weights))
        return team

    def _new_episode(self) -> None:
        allies, enemies = self._team(self.n_agents), self._team(self.n_enemies)
        self.kind = allies + enemies
        n, m = self.n_agents, self.n_enemies
        if self.rng.random() > self._positions.get("p", 0.5):  # surrounded
            ally_pos = np.tile([_MAP / 2, _MAP / 2], (n, 1))
            corners = np.array([[0, 0], [0, _MAP], [_MAP, _MAP], [_MAP, 0]])
            groups = self.rng.integers(0, 4, m)
            t = self.rng.uniform(0.2, 0.6, m)[:, None]
            enemy_pos = corners[groups] * (1 - t) + (_MAP / 2) * t
        else:  # reflected
            ally_pos = self.rng.uniform([0, 0], [_MAP / 2 - 1, _MAP], (n, 2))
            enemy_pos = np.column_stack([_MAP - ally_pos[:m, 0], ally_pos[:m, 1]])
            if m > n:
                extra = self.rng.uniform([_MAP / 2, 0], [_MAP, _MAP], (m - n, 2))
                enemy_pos = np.vstack([enemy_pos, extra])
        self.pos = np.vstack([ally_pos, enemy_pos]).astype(float)
        stats = np.array([_UNITS[k] for k in self.kind], float)
        self.health_max, self.shield_max = stats[:, 0], stats[:, 1]
        self.damage, self.speed = stats[:, 2], stats[:, 4]
        self.range = (
            np.maximum(stats[:, 3], self.args["min_attack_range"])
            if self.args["use_unit_ranges"]
            else np.full(n + m, 6.0)
        )
        self.health, self.shield = self.health_max.copy(), self.shield_max.copy()
        self.last_action = np.zeros((n, self.n_actions))
        self._episode_steps = 0
        self._won = self._lost = False

    def reset(self) -> tuple[list[np.ndarray], np.ndarray]:
        if self._closed:
            raise RuntimeError("the fake SC2 process was closed")
        self._new_episode()
        return self.get_obs(), self.get_state()

    def step(self, actions: Any) -> tuple[float, bool, dict[str, Any]]:
        actions_int = [int(a) for a in actions]
        n, m = self.n_agents, self.n_enemies
        avail = self.get_avail_actions()
        for i, a in enumerate(actions_int):  # smacv2 asserts the same
            assert avail[i][a] == 1, f"Agent {i} cannot perform action {a}"
        self.last_action = np.eye(self.n_actions)[actions_int]
        enemy_hp_before = float((self.health[n:] + self.shield[n:]).sum())
        alive_before = self.health > 0
        step = self.args["move_amount"] / 2
        moves = {2: (0, step), 3: (0, -step), 4: (step, 0), 5: (-step, 0)}
        for i, a in enumerate(actions_int):
            if a in moves:
                self.pos[i] = np.clip(self.pos[i] + moves[a], 0, _MAP)
            elif a >= 6:
                self._hit(n + a - 6, self.damage[i])
        for j in range(n, n + m):  # the built-in AI: walk to the nearest ally, shoot in range
            if self.health[j] <= 0 or not (self.health[:n] > 0).any():
                continue
            dist = np.linalg.norm(self.pos[:n] - self.pos[j], axis=1)
            dist[self.health[:n] <= 0] = np.inf
            target = int(np.argmin(dist))
            if dist[target] <= self.range[j]:
                self._hit(target, self.damage[j] * 0.8)
            else:
                direction = (self.pos[target] - self.pos[j]) / dist[target]
                self.pos[j] += direction * self.speed[j] * step
        self._episode_steps += 1
        dead_allies = int((self.health[:n] <= 0).sum())
        dead_enemies = int((self.health[n:] <= 0).sum())
        killed = int((alive_before[n:] & (self.health[n:] <= 0)).sum())
        reward = enemy_hp_before - float((self.health[n:] + self.shield[n:]).sum())
        reward += self.args["reward_death_value"] * killed
        info: dict[str, Any] = {
            "battle_won": False, "dead_allies": dead_allies, "dead_enemies": dead_enemies
        }  # fmt: skip
        terminated = False
        if dead_enemies == m and dead_allies < n:
            terminated, info["battle_won"] = True, True
            reward += self.args["reward_win"]
            self.battles_won += 1
        elif dead_allies == n:
            terminated = True
            reward += self.args["reward_defeat"]
        elif self._episode_steps >= self.episode_limit:
            terminated = True
            if self.args["continuing_episode"]:
                info["episode_limit"] = True
            self.timeouts += 1
        if terminated:
            self.battles_game += 1
        if self.args["reward_scale"]:
            max_reward = m * self.args["reward_death_value"] + self.args["reward_win"]
            max_reward += float((self.health_max[n:] + self.shield_max[n:]).sum())
            reward /= max_reward / self.args["reward_scale_rate"]
        return reward, terminated, info

    def _hit(self, target: int, damage: float) -> None:
        if self.health[target] <= 0:
            return
        from_shield = min(self.shield[target], damage)
        self.shield[target] -= from_shield
        self.health[target] = max(0.0, self.health[target] - (damage - from_shield))

    # ------------------------------------------------------------------ observations
    def _unit_feats(self, i: int, j: int) -> list[float]:
        rel = (self.pos[j] - self.pos[i]) / _SIGHT
        feats = [float(np.linalg.norm(rel)), rel[0], rel[1], self.health[j] / self.health_max[j]]
        if self.shield_bits:
            feats.append(self.shield[j] / max(self.shield_max[j], 1.0))
        onehot = [0.0] * self.unit_type_bits
        onehot[self.unit_types.index(self.kind[j])] = 1.0
        return feats + onehot

    def get_obs_agent(self, agent_id: int) -> np.ndarray:
        n, m = self.n_agents, self.n_enemies
        size = self.get_obs_size()
        if self.health[agent_id] <= 0:
            return np.zeros(size, np.float32)
        avail = self.get_avail_agent_actions(agent_id)
        out: list[float] = [float(a) for a in avail[2:6]]
        unit = 5 + self.shield_bits + self.unit_type_bits
        for j in list(range(n, n + m)) + [k for k in range(n) if k != agent_id]:
            seen = self.health[j] > 0 and np.linalg.norm(self.pos[j] - self.pos[agent_id]) < _SIGHT
            if not seen:
                out += [0.0] * unit
                continue
            flag = float(avail[6 + j - n]) if j >= n else 1.0
            out += [flag, *self._unit_feats(agent_id, j)]
        out.append(self.health[agent_id] / self.health_max[agent_id])
        if self.shield_bits:
            out.append(self.shield[agent_id] / max(self.shield_max[agent_id], 1.0))
        onehot = [0.0] * self.unit_type_bits
        onehot[self.unit_types.index(self.kind[agent_id])] = 1.0
        out += onehot
        if self.args["obs_own_pos"]:
            out += list(self.pos[agent_id] / _MAP)
        return np.asarray(out, np.float32)

    def get_obs(self) -> list[np.ndarray]:
        return [self.get_obs_agent(i) for i in range(self.n_agents)]

    def get_state(self) -> np.ndarray:
        n = self.n_agents
        centre = np.array([_MAP / 2, _MAP / 2])
        rows: list[float] = []
        for j in range(n + self.n_enemies):
            onehot = [0.0] * self.unit_type_bits
            onehot[self.unit_types.index(self.kind[j])] = 1.0
            alive = self.health[j] > 0
            rel = (self.pos[j] - centre) / _MAP if alive else np.zeros(2)
            feats = [self.health[j] / self.health_max[j]]
            if j < n:
                feats.append(0.0)  # weapon cooldown
            feats += [rel[0], rel[1]]
            if self.shield_bits:
                feats.append(self.shield[j] / max(self.shield_max[j], 1.0))
            rows += feats + (onehot if alive else [0.0] * self.unit_type_bits)
        if self.args["state_last_action"]:
            rows += self.last_action.reshape(-1).tolist()
        return np.asarray(rows, np.float32)

    def get_avail_agent_actions(self, agent_id: int) -> list[int]:
        n = self.n_agents
        if self.health[agent_id] <= 0:
            return [1] + [0] * (self.n_actions - 1)
        avail = [0, 1] + [0] * (self.n_actions - 2)
        x, y = self.pos[agent_id]
        step = self.args["move_amount"] / 2
        avail[2], avail[3] = int(y + step <= _MAP), int(y - step >= 0)
        avail[4], avail[5] = int(x + step <= _MAP), int(x - step >= 0)
        for e in range(self.n_enemies):
            j = n + e
            in_range = np.linalg.norm(self.pos[j] - self.pos[agent_id]) <= self.range[agent_id]
            avail[6 + e] = int(self.health[j] > 0 and in_range and self.damage[agent_id] > 0)
        return avail

    def get_avail_actions(self) -> list[list[int]]:
        return [self.get_avail_agent_actions(i) for i in range(self.n_agents)]

    def get_capabilities(self) -> np.ndarray:
        caps = np.zeros((self.n_agents, self.unit_type_bits), np.float32)
        for i in range(self.n_agents):
            caps[i, self.unit_types.index(self.kind[i])] = 1.0
        return caps

    def get_stats(self) -> dict[str, Any]:
        return {
            "battles_won": self.battles_won,
            "battles_game": self.battles_game,
            "timeouts": self.timeouts,
            "win_rate": self.battles_won / max(self.battles_game, 1),
        }

    def close(self) -> None:
        self._closed = True
