"""Run B whole episodes at once in a `VectorEnv(autoreset=False)` with a `Learner`'s policy.

The result is batch-major numpy, ready for `EpisodeBuffer.add_episodes`. Rows whose worker
crashed (`VecStep.dropped`) are removed, never stored as if they were real episodes.

The training loop's step cadence hooks in here: `on_step` runs after every vectorised step (the
loop's gradient updates, interleaved with acting), and `stop_at` ends the round at a step budget,
returning the episodes still running as truncated ones (their last transition not terminal, so
learners bootstrap through it, as through a time limit).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mmsa_envs import SMAXVectorEnv, VectorEnv

from ..registry import Learner

__all__ = ["Episodes", "run_episodes", "evaluate_policy", "AnyVectorEnv", "EVAL_SEED_OFFSET"]

AnyVectorEnv = VectorEnv | SMAXVectorEnv
"""What `mmsa_envs.make_vector_env` returns: same `VecStep` contract either way."""

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation envs use `seed + EVAL_SEED_OFFSET`, so their episodes never repeat training ones."""


@dataclass(frozen=True)
class Episodes:
    """E finished episodes, batch-major, padded to the env's episode limit `L`."""

    obs: np.ndarray
    """`[E, L+1, N, O]` float32."""
    state: np.ndarray
    """`[E, L+1, S]` float32."""
    avail_actions: np.ndarray
    """`[E, L+1, N, A]` bool."""
    action: np.ndarray
    """`[E, L, N]` int64 or `[E, L, N, A]` float32."""
    reward: np.ndarray
    """`[E, L]` float32."""
    terminated: np.ndarray
    """`[E, L]` bool."""
    lengths: np.ndarray
    """`[E]` int64 real transitions."""
    won: np.ndarray
    """`[E]` bool, `info["battle_won"]` at the end (False where the env has no win flag)."""
    dropped: int
    """Episodes discarded because their worker crashed."""

    @property
    def returns(self) -> np.ndarray:
        """`[E]` undiscounted team return."""
        return self.reward.sum(axis=1)

    def buffer_arrays(self) -> dict[str, np.ndarray]:
        """Keyword arguments for `EpisodeBuffer.add_episodes`."""
        return {
            "obs": self.obs,
            "state": self.state,
            "avail_actions": self.avail_actions,
            "action": self.action,
            "reward": self.reward,
            "terminated": self.terminated,
            "lengths": self.lengths,
        }


def run_episodes(
    envs: AnyVectorEnv,
    learner: Learner,
    *,
    explore: bool,
    env_steps: int,
    rng: np.random.Generator,
    on_step: Callable[[int, int], None] | None = None,
    stop_at: int | None = None,
) -> Episodes:
    """One episode in each of the B envs, all stepped together with batched acting.

    `env_steps` is the run's count before this call. Without `on_step` the policy acts at
    `env_steps` throughout. With it, the policy acts at the live count (`env_steps` plus the
    steps taken so far here), and after every vectorised step `on_step(stepped, live)` is called
    with the number of envs that stepped and the live count after the step. With `stop_at`,
    stepping stops as soon as the live count reaches it: the episodes still running end there,
    cut (`terminated` false at their last transition, like a time-limit truncation).
    """
    spec = envs.spec
    b, n, limit = envs.num_envs, spec.n_agents, spec.episode_limit
    action_shape = (b, limit, n) if spec.discrete else (b, limit, n, spec.n_actions)
    obs = np.zeros((b, limit + 1, n, spec.obs_dim), np.float32)
    state = np.zeros((b, limit + 1, spec.state_dim), np.float32)
    avail = np.ones((b, limit + 1, n, spec.n_actions), bool)
    action = np.zeros(action_shape, np.int64 if spec.discrete else np.float32)
    reward = np.zeros((b, limit), np.float32)
    terminated = np.zeros((b, limit), bool)
    lengths = np.zeros(b, np.int64)
    won = np.zeros(b, bool)
    dropped = np.zeros(b, bool)

    step = envs.reset()
    obs[:, 0], state[:, 0], avail[:, 0] = step.obs, step.state, step.avail_actions
    acting_state = learner.initial_state(b)
    running = np.ones(b, bool)
    live = env_steps  # the run's env steps including those taken here
    t = 0
    while running.any() and t < limit:
        if stop_at is not None and live >= stop_at:
            break  # the step budget is spent: the running episodes are cut here
        act_avail = step.avail_actions
        if not running.all():
            # finished rows are ignored by the env, but the policy still needs a legal action set
            act_avail = act_avail.copy()
            act_avail[~running] = True
        actions, acting_state = learner.act(
            step.obs,
            act_avail,
            acting_state,
            env_steps=env_steps if on_step is None else live,
            explore=explore,
            rng=rng,
        )
        step = envs.step(actions)
        rows = np.flatnonzero(running)
        action[rows, t] = actions[rows]
        reward[rows, t] = step.reward[rows]
        terminated[rows, t] = step.terminated[rows]
        obs[rows, t + 1] = step.obs[rows]
        state[rows, t + 1] = step.state[rows]
        avail[rows, t + 1] = step.avail_actions[rows]
        lengths[rows] += 1
        dropped[rows] |= step.dropped[rows]
        for i in rows[step.done[rows]]:
            won[i] = bool(step.infos[i].get("battle_won", False))
        running &= ~step.done
        t += 1
        live += len(rows)
        if on_step is not None:
            on_step(len(rows), live)
    if running.any() and t >= limit:
        raise RuntimeError(
            f"{spec.id}: {int(running.sum())} episodes ran past episode_limit={limit} without "
            "ending; the env must truncate at its limit"
        )
    keep = ~dropped & (lengths > 0)  # a round cut before its first step holds no episode
    return Episodes(
        obs=obs[keep],
        state=state[keep],
        avail_actions=avail[keep],
        action=action[keep],
        reward=reward[keep],
        terminated=terminated[keep],
        lengths=lengths[keep],
        won=won[keep],
        dropped=int(dropped.sum()),
    )


def evaluate_policy(
    envs: AnyVectorEnv,
    learner: Learner,
    n_episodes: int,
    *,
    env_steps: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Greedy policy for `n_episodes` episodes -> return mean/std (and win rate if the env has
    one). Greedy acting draws nothing from `rng`."""
    returns: list[float] = []
    wins: list[bool] = []
    lengths: list[int] = []
    attempts = 0
    while len(returns) < n_episodes:
        batch: Episodes = run_episodes(envs, learner, explore=False, env_steps=env_steps, rng=rng)
        returns.extend(batch.returns.tolist())
        wins.extend(batch.won.tolist())
        lengths.extend(batch.lengths.tolist())
        attempts += 1
        if attempts > 10 * math.ceil(n_episodes / envs.num_envs):
            raise RuntimeError("evaluation keeps losing episodes to crashed env workers")
    r = np.asarray(returns[:n_episodes], np.float64)
    out = {
        "return_mean": float(r.mean()),
        "return_std": float(r.std()),
        "n_episodes": float(n_episodes),
        "length_mean": float(np.mean(lengths[:n_episodes])),
    }
    if envs.spec.has_win:
        out["win_rate"] = float(np.mean(wins[:n_episodes]))
    return out
