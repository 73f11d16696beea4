"""`dummy`: a deterministic, tiny env for every other package's tests.

Each agent `i` must pick its target `(t + i + offset) % A` at step `t`; the offset comes from the
reset seed, and the target is in the agent's observation, so a learner can solve it. Reward is
the fraction of agents on target (discrete) or minus the mean squared distance of the action to
a target vector (continuous). The episode is truncated at `episode_limit`; it terminates early
when every agent is on target `terminate_after` steps in a row (0 disables early ends), so
learners see both kinds of end. At odd steps agent 0 may not use action 0, which exercises masks.

Default sizes are mutually distinct (N=3, O=7, S=11, A=6, T=5) so a swapped axis fails loudly.

`entities=True` (discrete only) declares an entity layout for entity-based learners: actions
`2..A-1` "attack" enemies `0..A-3`, enemy `j`'s one feature is observation `2 + j` (the target
flag of action `2 + j`), the rest (flags of actions 0 and 1, the time) are own features; there
are no allies. The observations and dynamics are the same.
"""

from __future__ import annotations

import numpy as np

from ._core import EntityLayout, EnvSpec, MultiAgentEnv, Step

__all__ = ["DummyEnv"]


class DummyEnv(MultiAgentEnv):
    def __init__(
        self,
        action_kind: str = "discrete",
        n_agents: int = 3,
        n_actions: int = 6,
        episode_limit: int = 5,
        terminate_after: int = 2,
        entities: bool = False,
    ) -> None:
        super().__init__()
        if action_kind not in ("discrete", "continuous"):
            raise ValueError(
                f"dummy: action_kind={action_kind!r} is not allowed; use 'discrete' or 'continuous'"
            )
        self._n, self._a, self._limit = n_agents, n_actions, episode_limit
        self._terminate_after = terminate_after
        obs_dim = n_actions + 1
        if entities and (action_kind != "discrete" or n_actions < 3):
            raise ValueError("dummy: entities=True needs discrete actions and n_actions >= 3")
        layout = (
            EntityLayout(
                own=((0, 2), (n_actions, obs_dim)),
                n_allies=0,
                ally_start=0,
                ally_dim=0,
                n_enemies=n_actions - 2,
                enemy_start=2,
                enemy_dim=1,
                attack_actions=tuple(range(2, n_actions)),
            )
            if entities
            else None
        )
        self.spec = EnvSpec(
            id=f"dummy:{action_kind}",
            n_agents=n_agents,
            obs_dim=obs_dim,
            state_dim=2 + 3 * n_agents,
            action_kind=action_kind,  # type: ignore[arg-type]
            n_actions=n_actions,
            episode_limit=episode_limit,
            action_low=(-1.0,) * n_actions if action_kind == "continuous" else None,
            action_high=(1.0,) * n_actions if action_kind == "continuous" else None,
            backend_versions={"mmsa-envs": _own_version()},
            entities=layout,
        )
        self._offset = 0
        self._time = 0
        self._streak = 0
        self._last = np.zeros(n_agents, np.float32)
        self._correct = np.zeros(n_agents, np.float32)

    # ------------------------------------------------------------------ dynamics
    def _targets(self) -> np.ndarray:
        return (self._time + np.arange(self._n) + self._offset) % self._a

    def _target_vectors(self) -> np.ndarray:
        phase = (
            self._time + np.arange(self._n)[:, None] + np.arange(self._a)[None, :] + self._offset
        )
        return (0.8 * np.sin(phase)).astype(np.float32)

    def _observe(self, reward: float, terminated: bool, truncated: bool) -> Step:
        n, a = self._n, self._a
        obs = np.zeros((n, a + 1), np.float32)
        obs[np.arange(n), self._targets()] = 1.0
        obs[:, a] = self._time / self._limit
        state = np.concatenate(
            [
                np.array([self._time / self._limit, 1.0], np.float32),
                self._targets().astype(np.float32) / a,
                self._last / a,
                self._correct,
            ]
        )
        avail = np.ones((n, a), bool)
        if self.spec.discrete and self._time % 2 == 1:
            avail[0, 0] = False
        info = {"per_agent_reward": self._correct.copy(), "t": self._time}
        return Step(obs, state, avail, float(reward), terminated, truncated, info)

    def _reset(self, seed: int | None) -> Step:
        self._offset = int(np.random.default_rng(seed).integers(self._a))
        self._streak = 0
        self._last[:] = 0.0
        self._correct[:] = 0.0
        self._time = 0
        return self._observe(0.0, False, False)

    def _step(self, actions: np.ndarray) -> Step:
        if self.spec.discrete:
            self._correct = (actions == self._targets()).astype(np.float32)
            self._last = actions.astype(np.float32)
            reward = float(self._correct.mean())
        else:
            err = ((actions - self._target_vectors()) ** 2).mean(axis=1)
            self._correct = (err < 0.05).astype(np.float32)
            self._last = actions.mean(axis=1)
            reward = float(-err.mean())
        self._streak = self._streak + 1 if self._correct.all() else 0
        t_next = self._time + 1
        terminated = 0 < self._terminate_after <= self._streak
        truncated = not terminated and t_next >= self._limit
        self._time = t_next
        return self._observe(reward, terminated, truncated)


def _own_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mmsa-envs")
    except PackageNotFoundError:
        return "0+unknown"
