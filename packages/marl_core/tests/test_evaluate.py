"""`random_return`: the uniformly random baseline on a run's evaluation seeds (`evaluate` itself is
tested through whole runs in test_train.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mmsa_envs import make_vector_env
from mmsa_marl_core.training.evaluate import random_return
from mmsa_marl_core.training.train import EVAL_SEED_OFFSET

ENV = "lbf:Foraging-5x5-2p-1f-v3"


def _by_hand(episodes: int, seed: int) -> float:
    """One env, one episode at a time: the same random draws when each reset batch holds one."""
    rng = np.random.default_rng(seed)
    returns = []
    with make_vector_env(ENV, 1, seed=seed + EVAL_SEED_OFFSET, processes=False) as envs:
        for _ in range(episodes):
            step, total = envs.reset(), 0.0
            while True:
                scores = np.where(step.avail_actions, rng.random(step.avail_actions.shape), -1)
                step = envs.step(scores.argmax(-1))
                total += float(step.reward[0])
                if step.done[0]:
                    break
            returns.append(total)
    return float(np.mean(returns))


def test_random_return_is_the_mean_over_seeded_random_episodes() -> None:
    value = random_return(ENV, 6, seed=3, n_envs=1)
    assert value == pytest.approx(_by_hand(6, 3))
    assert random_return(ENV, 6, seed=3, n_envs=1) == value  # deterministic
    # LBF returns lie in [0, 1] (the share of food value collected).
    assert 0.0 <= random_return(ENV, 32, seed=0) <= 1.0


def test_random_return_rejects_no_episodes() -> None:
    with pytest.raises(ValueError, match="episodes=0"):
        random_return(ENV, 0)
