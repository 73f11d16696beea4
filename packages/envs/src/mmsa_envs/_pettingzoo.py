"""`pettingzoo:` any PettingZoo ParallelEnv, named by the import path of its module.

`pettingzoo:mpe2.simple_spread_v3` calls `mpe2.simple_spread_v3.parallel_env(**kwargs)`; so do
`pettingzoo:mpe2.simple_speaker_listener_v4` and `pettingzoo:pettingzoo.sisl.pursuit_v5`.
Keyword arguments go to `parallel_env` (e.g. `continuous_actions=True`, `max_cycles=50`), except
`episode_limit` (needed only when the env has no `max_cycles`) and `team_reward`.

What the adapter adds to the raw env:
- the agent order is `env.possible_agents`; observations are flattened and zero-padded to the
  largest (`spec.agent_obs_dims` keeps the true sizes);
- discrete envs: `A` = the largest action count; an agent with fewer actions has the extra ones
  marked unavailable; an `action_mask` in an agent's info is honoured;
- continuous envs: `A` = the most action dimensions; bounds are the union over agents, and each
  agent's action is clipped to its own space (padded dimensions are ignored);
- global state = `env.state()` flattened where the env implements it, else the agents' true
  observations concatenated;
- team reward = sum of the agents' rewards (`team_reward="mean"` for the mean);
  `info["per_agent_reward"]` keeps them;
- the episode ends when every agent is done; it is truncated when any agent was truncated (the
  `max_cycles` limit) and no agent terminated; agents that leave early get zero observations.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from ._backend import UnknownEnvError, require, unknown, versions
from ._core import EnvSpec, MultiAgentEnv, Step

__all__ = ["PettingZooEnv", "list_ids", "make_env"]

EXTRA = "pettingzoo"
EXAMPLES = (
    "mpe2.simple_spread_v3",
    "mpe2.simple_speaker_listener_v4",
    "mpe2.simple_reference_v3",
    "pettingzoo.sisl.pursuit_v5",
)
"""Modules known to work; any module with a `parallel_env()` does."""


def list_ids() -> list[str]:
    return [m for m in EXAMPLES if importlib.util.find_spec(m.partition(".")[0]) is not None]


def make_env(name: str, **kwargs: Any) -> PettingZooEnv:
    return PettingZooEnv(name, **kwargs)


def _max_cycles(env: Any) -> int | None:
    for obj in (env, getattr(env, "unwrapped", None), getattr(env, "aec_env", None)):
        for holder in (obj, getattr(obj, "env", None), getattr(obj, "unwrapped", None)):
            value = getattr(holder, "max_cycles", None)
            if isinstance(value, int) and value > 0:
                return value
    return None


class PettingZooEnv(MultiAgentEnv):
    """One PettingZoo ParallelEnv behind the `MultiAgentEnv` contract (see the module docstring)."""

    def __init__(
        self,
        name: str,
        episode_limit: int | None = None,
        team_reward: str = "sum",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if team_reward not in ("sum", "mean"):
            raise ValueError(f"pettingzoo: team_reward={team_reward!r}; use 'sum' or 'mean'")
        require("pettingzoo", "pettingzoo", EXTRA)
        spaces = require("gymnasium.spaces", "pettingzoo", EXTRA)
        try:
            module = importlib.import_module(name)
        except ImportError as err:
            raise unknown("pettingzoo", name, EXAMPLES, hint=f"({err})") from err
        if not hasattr(module, "parallel_env"):
            raise unknown("pettingzoo", name, EXAMPLES, hint=f"{name} has no parallel_env().")
        env = module.parallel_env(**kwargs)
        self._env, self._spaces, self._mean = env, spaces, team_reward == "mean"
        self._agents = list(env.possible_agents)
        n = len(self._agents)
        obs_dims = tuple(spaces.flatdim(env.observation_space(a)) for a in self._agents)
        act_spaces = [env.action_space(a) for a in self._agents]
        if all(isinstance(s, spaces.Discrete) for s in act_spaces):
            kind, counts = "discrete", [int(s.n) for s in act_spaces]
            n_actions, low, high = max(counts), None, None
            self._base_avail = np.arange(n_actions)[None, :] < np.array(counts)[:, None]
        elif all(isinstance(s, spaces.Box) for s in act_spaces):
            kind, counts = "continuous", [int(np.prod(s.shape)) for s in act_spaces]
            n_actions = max(counts)
            low_arr = np.full(n_actions, np.inf)
            high_arr = np.full(n_actions, -np.inf)
            for s, c in zip(act_spaces, counts, strict=True):
                low_arr[:c] = np.minimum(low_arr[:c], s.low.reshape(-1))
                high_arr[:c] = np.maximum(high_arr[:c], s.high.reshape(-1))
            low = tuple(float(str(np.float32(v))) for v in low_arr)
            high = tuple(float(str(np.float32(v))) for v in high_arr)
            self._base_avail = np.ones((n, n_actions), bool)
        else:
            kinds = sorted({type(s).__name__ for s in act_spaces})
            raise UnknownEnvError(
                f"pettingzoo:{name}: action spaces {kinds} are not supported; all agents need "
                "Discrete or all Box actions"
            )
        self._act_spaces, self._counts = act_spaces, counts
        self._has_state = self._probe_state()
        state_dim = (
            int(np.prod(env.state_space.shape)) if self._has_state_space() else sum(obs_dims)
        )
        limit = episode_limit or _max_cycles(env)
        if limit is None:
            raise ValueError(f"pettingzoo:{name} has no max_cycles; pass episode_limit=...")
        self.spec = EnvSpec(
            id=f"pettingzoo:{name}",
            n_agents=n,
            obs_dim=max(obs_dims),
            state_dim=state_dim,
            action_kind=kind,  # type: ignore[arg-type]
            n_actions=n_actions,
            episode_limit=int(limit),
            agent_obs_dims=obs_dims,
            action_low=low,
            action_high=high,
            backend_versions=versions(
                "pettingzoo", "gymnasium", name.partition(".")[0], "mmsa-envs"
            ),
        )

    def _probe_state(self) -> bool:
        try:
            self._env.reset(seed=0)
            self._env.state()
        except (NotImplementedError, AttributeError):
            return False
        return True

    def _has_state_space(self) -> bool:
        return self._has_state and getattr(self._env, "state_space", None) is not None

    # ------------------------------------------------------------------ conversion
    def _observe(self, obs_by_agent: dict[str, Any], infos: dict[str, Any]) -> Step:
        spec, spaces = self.spec, self._spaces
        obs = np.zeros((spec.n_agents, spec.obs_dim), np.float32)
        avail = self._base_avail.copy()
        for i, agent in enumerate(self._agents):
            if agent in obs_by_agent:
                o = obs_by_agent[agent]
                if not isinstance(o, np.ndarray) or o.ndim != 1:
                    o = spaces.flatten(self._env.observation_space(agent), o)
                obs[i, : o.shape[0]] = o
            mask = infos.get(agent, {}).get("action_mask") if spec.discrete else None
            if mask is not None:
                avail[i, : len(mask)] &= np.asarray(mask, bool)
        if self._has_state:
            state = np.asarray(self._env.state(), np.float32).reshape(-1)
        else:
            state = np.concatenate([obs[i, :d] for i, d in enumerate(spec.agent_obs_dims)])
        if state.shape[0] != spec.state_dim:  # envs without a state_space: size from state()
            raise RuntimeError(f"{spec.id}: state has {state.shape[0]} values, expected "
                               f"{spec.state_dim}")  # fmt: skip
        return Step(obs, state, avail)

    def _reset(self, seed: int | None) -> Step:
        obs_by_agent, infos = self._env.reset(seed=seed)
        return self._observe(obs_by_agent, infos)

    def _step(self, actions: np.ndarray) -> Step:
        live = list(self._env.agents)  # the env empties its own list when the episode ends
        if self.spec.discrete:
            acts = {a: int(actions[i]) for i, a in enumerate(self._agents) if a in live}
        else:
            acts = {
                a: np.clip(actions[i, :c], s.low.reshape(-1), s.high.reshape(-1)).reshape(s.shape)
                for i, (a, c, s) in enumerate(
                    zip(self._agents, self._counts, self._act_spaces, strict=True)
                )
                if a in live
            }
        obs_by_agent, rewards, terms, truncs, infos = self._env.step(acts)
        per_agent = np.array([rewards.get(a, 0.0) for a in self._agents], np.float32)
        done = not self._env.agents or all(terms.get(a, True) or truncs.get(a, True) for a in live)
        truncated = done and any(truncs.get(a, False) for a in live)
        truncated = truncated and not any(terms.get(a, False) for a in live)
        terminated = done and not truncated
        base = self._observe(obs_by_agent, infos)
        reward = float(per_agent.mean() if self._mean else per_agent.sum())
        info = {"per_agent_reward": per_agent}
        return Step(base.obs, base.state, base.avail_actions, reward, terminated, truncated, info)

    def close(self) -> None:
        self._env.close()
