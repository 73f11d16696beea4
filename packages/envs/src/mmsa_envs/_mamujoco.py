"""`mamujoco:` Multi-Agent MuJoCo (gymnasium-robotics `mamujoco_v1`).

Ids are `Scenario-Partition`: `mamujoco:HalfCheetah-6x1`, `mamujoco:Ant-2x4`, ... Keyword
arguments: `agent_obsk` (how many joints away an agent observes; default 1, as in MaMuJoCo and
FACMAC) and anything gymnasium's MuJoCo env takes (e.g. `max_episode_steps`).

What the adapter adds to the raw env:
- observations of different sizes (HalfCheetah 6x1: 9/9/8/9/9/8) are zero-padded to the largest;
  `spec.agent_obs_dims` keeps the true sizes;
- global state = `env.state()` (the single-agent MuJoCo observation);
- team reward = the reward MaMuJoCo gives every agent (it is one shared reward, not summed);
- continuous actions in `[-1, 1]` (the bounds are in the spec); agents with fewer action
  dimensions than the largest ignore the padded ones;
- unhealthy ends are termination, the 1000-step limit is truncation (both at once: termination).

Speed: `parallel_env.step` maps the agents' actions to the MuJoCo action through nested Python
loops, builds four per-agent dicts and drops the single-agent observation, which is exactly the
global state the adapter returns (`env.state()` recomputes it). The adapter does the same step
with a precomputed index map: `single_agent_env.step(global_action)` (its observation is the
state), then `env._get_obs()` for the agents, which is what `parallel_env.step` does inside;
`tests/test_mamujoco.py` checks it against `parallel_env.step` value for value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._backend import UnknownEnvError, require, unknown, versions
from ._core import EnvSpec, MultiAgentEnv, Step
from ._quiet import known_noise_dropped

__all__ = ["MaMuJoCoEnv", "list_ids", "make_env"]

EXTRA = "mamujoco"
KNOWN = (
    "HalfCheetah-6x1",
    "HalfCheetah-2x3",
    "Ant-2x4",
    "Ant-2x4d",
    "Ant-4x2",
    "Hopper-3x1",
    "Walker2d-2x3",
    "Swimmer-2x1",
    "Reacher-2x1",
    "Humanoid-9|8",
    "HumanoidStandup-9|8",
    "Pusher-3p",
)
"""The partitions gymnasium-robotics 1.4 defines (Many-segment scenarios take any `KxL`)."""


def list_ids() -> list[str]:
    return list(KNOWN)


def make_env(name: str, **kwargs: Any) -> MaMuJoCoEnv:
    return MaMuJoCoEnv(name, **kwargs)


def _action_index(
    partitions: Any, n_global: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(agent, dim, MuJoCo actuator) index arrays, or None unless every actuator is set once.

    MaMuJoCo's `map_local_actions_to_global_action` writes agent `i`'s action dim `k` to
    actuator `partitions[i][k].act_ids`; with these arrays that is one fancy-indexed copy.
    """
    agent_idx, dim_idx, global_idx = [], [], []
    for i, partition in enumerate(partitions):
        for k, body_part in enumerate(partition):
            if not isinstance(body_part.act_ids, int | np.integer):
                return None
            agent_idx.append(i)
            dim_idx.append(k)
            global_idx.append(int(body_part.act_ids))
    if sorted(global_idx) != list(range(n_global)):
        return None
    return np.array(agent_idx), np.array(dim_idx), np.array(global_idx)


class MaMuJoCoEnv(MultiAgentEnv):
    """One MaMuJoCo env behind the `MultiAgentEnv` contract (see the module docstring)."""

    def __init__(self, name: str, agent_obsk: int = 1, **kwargs: Any) -> None:
        super().__init__()
        scenario, sep, partition = name.rpartition("-")
        if not sep or not scenario:
            raise unknown("mamujoco", name, KNOWN, hint="Ids look like Scenario-Partition.")
        if isinstance(agent_obsk, bool) or not isinstance(agent_obsk, int) or agent_obsk < 0:
            raise ValueError(f"mamujoco: agent_obsk={agent_obsk!r} must be an int >= 0")
        try:
            with known_noise_dropped():  # MuJoCo's per-model XML warnings, an import notice
                mamujoco_v1 = require("gymnasium_robotics", "mamujoco", EXTRA).mamujoco_v1
                env = mamujoco_v1.parallel_env(scenario, partition, agent_obsk=agent_obsk, **kwargs)
        except (NotImplementedError, KeyError) as err:
            raise unknown("mamujoco", name, KNOWN) from err
        except Exception as err:
            if "UNKNOWN" in str(err):  # MaMuJoCo's own error for a partition it lacks
                raise unknown("mamujoco", name, KNOWN) from err
            raise
        self._env = env
        self._agents = list(env.possible_agents)
        obs_dims = tuple(int(env.observation_space(a).shape[0]) for a in self._agents)
        act_dims = [int(env.action_space(a).shape[0]) for a in self._agents]
        widest = self._agents[int(np.argmax(act_dims))]
        space = env.action_space(widest)
        self._parts = list(zip(self._agents, act_dims, strict=True))
        self._single = env.single_agent_env
        self._n_global = int(self._single.action_space.shape[0])
        self._act_index = _action_index(env.agent_action_partitions, self._n_global)
        self._obs_parts = list(zip(self._agents, obs_dims, strict=True))
        limit = env.single_agent_env.spec.max_episode_steps
        if limit is None:
            raise UnknownEnvError(f"mamujoco:{name} has no step limit; pass max_episode_steps")
        self.spec = EnvSpec(
            id=f"mamujoco:{name}",
            n_agents=len(self._agents),
            obs_dim=max(obs_dims),
            state_dim=int(env.state().shape[0]),
            action_kind="continuous",
            n_actions=max(act_dims),
            episode_limit=int(limit),
            agent_obs_dims=obs_dims,
            action_low=tuple(float(str(v)) for v in space.low),  # float32 0.4 -> 0.4
            action_high=tuple(float(str(v)) for v in space.high),
            backend_versions=versions("gymnasium-robotics", "mujoco", "gymnasium", "mmsa-envs"),
        )

    def _observe(self, obs_by_agent: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        obs = np.zeros((self.spec.n_agents, self.spec.obs_dim), np.float32)
        for i, (agent, dim) in enumerate(self._obs_parts):
            obs[i, :dim] = obs_by_agent[agent]
        return obs, self._env.state().astype(np.float32)

    def _reset(self, seed: int | None) -> Step:
        obs_by_agent, _ = self._env.reset(seed=seed)
        obs, state = self._observe(obs_by_agent)
        avail = np.ones((self.spec.n_agents, self.spec.n_actions), bool)
        self._all_avail = avail
        return Step(obs, state, avail, 0.0, False, False, {})

    def _step(self, actions: np.ndarray) -> Step:
        if self._act_index is None:  # a factorization we cannot map: the parallel API
            return self._step_parallel(actions)
        agent_idx, dim_idx, global_idx = self._act_index
        global_action = np.empty(self._n_global)
        global_action[global_idx] = actions[agent_idx, dim_idx]
        state, reward, term, trunc, info = self._single.step(global_action)
        env = self._env
        obs = np.zeros((self.spec.n_agents, self.spec.obs_dim), np.float32)
        for i, dim in enumerate(self.spec.agent_obs_dims):
            obs[i, :dim] = env._get_obs_agent(i)
        terminated = bool(term)
        truncated = bool(trunc) and not terminated
        if terminated or truncated:
            env.agents = []  # as parallel_env.step does
        return Step(
            obs, state.astype(np.float32), self._all_avail, float(reward), terminated, truncated,
            info,
        )  # fmt: skip

    def _step_parallel(self, actions: np.ndarray) -> Step:
        acts = {a: actions[i, :d] for i, (a, d) in enumerate(self._parts)}
        obs_by_agent, rewards, terms, truncs, infos = self._env.step(acts)
        first = self._agents[0]
        obs, state = self._observe(obs_by_agent)
        terminated = bool(terms[first])
        truncated = bool(truncs[first]) and not terminated
        return Step(
            obs, state, self._all_avail, float(rewards[first]), terminated, truncated, infos[first]
        )

    def close(self) -> None:
        self._env.close()
