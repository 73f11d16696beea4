from __future__ import annotations

import numpy as np
import torch

from mmsa_envs import VectorEnv, make
from mmsa_marl_core import EpisodeBuffer, QLearner, QLearnerConfig, run_episodes


def _learner(spec) -> QLearner:
    torch.manual_seed(0)
    return QLearner(spec, QLearnerConfig(agent_hidden=8), "cpu")


def test_episodes_match_a_manual_rollout():
    """Batched collection stores exactly what stepping each env by hand gives."""
    with VectorEnv("dummy", 4, seed=5, processes=False) as envs:
        learner = _learner(envs.spec)
        eps = run_episodes(envs, learner, explore=True, env_steps=0, rng=np.random.default_rng(1))
    assert eps.obs.shape == (4, 6, 3, 7) and eps.action.shape == (4, 5, 3)
    assert eps.dropped == 0 and (eps.lengths >= 1).all() and (eps.lengths <= 5).all()
    from mmsa_envs import episode_seed

    for i in range(4):
        env = make("dummy")
        step = env.reset(seed=episode_seed(5, i, 0))
        np.testing.assert_array_equal(eps.obs[i, 0], step.obs)
        for t in range(eps.lengths[i]):
            step = env.step(eps.action[i, t])
            assert eps.reward[i, t] == np.float32(step.reward)
            assert eps.terminated[i, t] == step.terminated
            np.testing.assert_array_equal(eps.obs[i, t + 1], step.obs)
            np.testing.assert_array_equal(eps.avail_actions[i, t + 1], step.avail_actions)
        assert step.done
        # every action taken was available
        n = eps.lengths[i]
        taken = np.take_along_axis(eps.avail_actions[i, :n], eps.action[i, :n, :, None], -1)
        assert taken.all()
    np.testing.assert_allclose(eps.returns, eps.reward.sum(1))
    buffer = EpisodeBuffer(envs.spec, 8, 5)
    buffer.add_episodes(**eps.buffer_arrays())
    assert len(buffer) == 4


def test_greedy_collection_is_deterministic_and_draws_no_randomness():
    with VectorEnv("dummy", 3, seed=2, processes=False) as envs:
        learner = _learner(envs.spec)
        rng = np.random.default_rng(0)
        state = rng.bit_generator.state
        a = run_episodes(envs, learner, explore=False, env_steps=0, rng=rng)
        assert rng.bit_generator.state == state
        envs.episode_counters = np.zeros(3, np.int64)
        b = run_episodes(envs, learner, explore=False, env_steps=0, rng=rng)
    np.testing.assert_array_equal(a.action, b.action)
    np.testing.assert_array_equal(a.obs, b.obs)
