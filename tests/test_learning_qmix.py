"""Learning checks: QMIX and VDN on a small real LBF map must beat a uniformly random policy
by a clear margin within a fixed step budget, on two seeds. The random baseline is measured
here, on the same env and evaluation seeds."""

from __future__ import annotations

import numpy as np
import pytest

from mmsa_envs import make_vector_env
from mmsa_marl_core import config_from_dict, evaluate, train
from mmsa_marl_core.train import EVAL_SEED_OFFSET

ENV = "lbf:Foraging-5x5-2p-1f-v3"
EPISODES = 64
MARGIN = 0.15
"""Greedy return must exceed the random policy's by this much (returns lie in [0, 1])."""

# Small networks and batches keep four runs inside the test budget on two busy CPU cores;
# gamma 0.9 and fast target updates suit LBF's sparse terminal reward (see the README).
CONFIG = {
    "env": ENV,
    "steps": 8_000,
    "n_envs": 8,
    "batch_size": 8,
    "updates_per_episode": 2.0,
    "buffer_size": 500,
    "log_every": 2_000,
    "eval_every": 100_000,
    "eval_episodes": 16,
    "checkpoint_every": 100_000,
    "algo_config": {
        "gamma": 0.9,
        "lr": 1e-3,
        "agent_hidden": 32,
        "mixer_embed_dim": 16,
        "hypernet_hidden": 32,
        "target_update_interval": 50,
        "epsilon_anneal_steps": 3_000,
    },
}


def _random_return(seed: int) -> float:
    """Mean return of uniformly random available actions over the evaluation episodes."""
    rng = np.random.default_rng(seed)
    returns = []
    with make_vector_env(ENV, 8, seed=seed + EVAL_SEED_OFFSET, processes=False) as envs:
        while len(returns) < EPISODES:
            step = envs.reset()
            total = np.zeros(envs.num_envs)
            done = np.zeros(envs.num_envs, bool)
            while not done.all():
                scores = np.where(step.avail_actions, rng.random(step.avail_actions.shape), -1)
                step = envs.step(scores.argmax(-1))
                total += step.reward
                done |= step.done
            returns.extend(total.tolist())
    return float(np.mean(returns[:EPISODES]))


@pytest.mark.learning
@pytest.mark.slow
@pytest.mark.parametrize("algo", ["qmix", "vdn"])
@pytest.mark.parametrize("seed", [0, 1])
def test_beats_random(tmp_path, algo, seed):
    config = config_from_dict({**CONFIG, "algo": algo, "seed": seed})
    train(config, tmp_path, progress=False)
    learned = evaluate(tmp_path, episodes=EPISODES)["return_mean"]
    baseline = _random_return(seed)
    print(f"{algo} seed {seed}: greedy {learned:.3f}, random {baseline:.3f}")
    assert learned > baseline + MARGIN, (
        f"{algo} seed {seed}: {learned:.3f} vs random {baseline:.3f}"
    )
