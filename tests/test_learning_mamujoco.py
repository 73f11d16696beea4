"""Learning check: continuous MMSA and the FACMAC baseline beat a uniformly random policy on
MaMuJoCo HalfCheetah-2x3 (real gymnasium-robotics env, real training loop), on 2 seeds.

Budget. The whole file must fit ~150 s on a 2-core CPU, so episodes are cut to 25 steps with the
env kwarg ``max_episode_steps`` (the time limit is a truncation: the learners bootstrap through
it, so they still learn infinite-horizon values, only from states near the start pose). The
uniformly random policy is measured here, on the same env with 16 seeded episodes.

What it shows. A uniformly random policy scores about -8.5 per 25-step episode. Broken
actor-critics score well below it (measured with this file's facmac settings, seed 0: actor loss
sign flipped -17.0, critic not frozen in the actor's term -16.0; saturated actors -10 to -12).
An untrained actor, whose actions are near zero, also beats random here
(-0.6), so this check guards against breaking the learner rather than proving locomotion; the
returns of longer runs are in the package README.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmsa_envs import VectorEnv, make
from mmsa_marl_core.config import config_from_dict
from mmsa_marl_core.train import EVAL_SEED_OFFSET, train

pytestmark = [pytest.mark.learning, pytest.mark.slow]

ENV = "mamujoco:HalfCheetah-2x3"
LIMIT = 25
EVAL_EPISODES = 16
MARGIN = 1.0
"""Required lead over the random policy's mean return (random: -8.5 per episode; a saturated actor
scores -10 to -12)."""

# Shared by both algorithms: TD3/TD7 noises and delay from the config defaults; a shorter
# uniform warm-up and a larger learning rate than TD7's for a run of ~1.5k updates.
COMMON = {"actor_lr": 1e-3, "critic_lr": 1e-3, "random_steps": 500, "width": 64}
SMALL_WORLD_MODEL = {
    "deter_dim": 32, "hidden": 32, "embed_dim": 32, "vae1_latent_dim": 8,
    "sale_zs_dim": 16, "sale_hidden": 32, "phi_dim": 16,
}  # fmt: skip
CASES = {
    "facmac": (COMMON, 1400),
    "mmsa_continuous": (
        COMMON | {"zs_dim": 32, "sale_hidden": 64, "phi_dim": 32, "world_model": SMALL_WORLD_MODEL},
        1000,
    ),
}


@pytest.fixture(scope="module")
def random_return() -> float:
    """Mean return of uniform random actions over 16 seeded episodes of the same env."""
    rng = np.random.default_rng(0)
    returns: list[float] = []
    with VectorEnv(
        ENV,
        EVAL_EPISODES,
        seed=EVAL_SEED_OFFSET,
        env_kwargs={"max_episode_steps": LIMIT},
        processes=False,
    ) as envs:
        spec = envs.spec
        assert spec.action_low is not None and spec.action_high is not None
        step = envs.reset()
        totals = np.zeros(EVAL_EPISODES)
        done = np.zeros(EVAL_EPISODES, bool)
        while not done.all():
            shape = (EVAL_EPISODES, spec.n_agents, spec.n_actions)
            actions = rng.uniform(spec.action_low, spec.action_high, size=shape)
            step = envs.step(actions.astype(np.float32))
            totals += np.where(done, 0.0, step.reward)
            done |= step.terminated | step.truncated
        returns = totals.tolist()
    mean = float(np.mean(returns))
    # Sanity of the baseline itself: HalfCheetah's control cost makes random clearly negative.
    assert -10.0 < mean < -3.0, returns
    return mean


def test_the_env_is_real_mamujoco() -> None:
    env = make(ENV, max_episode_steps=LIMIT)
    spec = env.spec
    assert (spec.n_agents, spec.n_actions, spec.state_dim) == (2, 3, 17)
    assert spec.action_kind == "continuous" and spec.episode_limit == LIMIT
    assert "gymnasium-robotics" in spec.backend_versions or "gymnasium_robotics" in str(
        spec.backend_versions
    )
    env.close()


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("algo", sorted(CASES))
def test_beats_random_policy(algo: str, seed: int, random_return: float, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    algo_config, steps = CASES[algo]
    config = config_from_dict(
        {
            "env": ENV,
            "env_kwargs": {"max_episode_steps": LIMIT},
            "algo": algo,
            "algo_config": algo_config,
            "steps": steps,
            "seed": seed,
            "n_envs": 4,
            "batch_size": 16,
            "buffer_size": 1000,
            "updates_per_episode": float(LIMIT),  # one update per env step (TD3)
            "log_every": 10_000,
            "eval_every": 10_000,
            "eval_episodes": EVAL_EPISODES,
            "checkpoint_every": 100_000,
        }
    )
    result = train(config, tmp_path / f"{algo}-{seed}", progress=False)
    achieved = result.final_eval["return_mean"]
    print(f"{algo} seed {seed}: {achieved:.2f} after {result.updates} updates")
    assert result.updates > 0.6 * steps
    assert achieved > random_return + MARGIN, (
        f"{algo} seed {seed}: greedy return {achieved:.2f} after {result.updates} updates, "
        f"random {random_return:.2f}"
    )
