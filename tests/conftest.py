"""Shared settings and helpers of the cross-package tests.

- One torch thread per test process (the small MARL networks run fastest on one thread, and
  tests running side by side do not oversubscribe).
- `lbf_check`: the LBF learning check shared by tests/test_learning_qmix.py and
  tests/test_learning_mmsa.py (map, evaluation, random baseline, common run settings).
- `tiny_overrides`: training overrides that make a run on the dummy env take seconds.
- `MMSA_TEST_DEVICE=cuda` runs the LBF learning checks' training and evaluation on the GPU
  (default cpu).

Test modules cannot import this file under `--import-mode=importlib`, so helpers are fixtures.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


@dataclass(frozen=True)
class LbfCheck:
    """A short real training run on a small LBF map must beat a uniformly random policy by
    `margin` in greedy return, both measured on the same evaluation seeds."""

    env: str = "lbf:Foraging-5x5-2p-1f-v3"
    """The map: 2 players, 1 food; sparse team reward in [0, 1] at the end of an episode."""
    episodes: int = 64
    """Evaluation episodes of the greedy policy and of the random baseline."""
    margin: float = 0.15
    """Greedy return must exceed the random policy's by this much (returns lie in [0, 1])."""
    device: str = os.environ.get("MMSA_TEST_DEVICE", "cpu")
    """Where the networks train and act (`MMSA_TEST_DEVICE`, default cpu)."""

    def config(self, algo_config: dict[str, Any], **run: Any) -> dict[str, Any]:
        """A training config of the check: the shared loop and Q-learning settings, with the
        caller's run settings (`steps`, `updates_per_episode`, `algo`, ...) and `algo_config`
        entries on top.

        Small networks and batches keep the runs inside the test budget on two busy CPU cores;
        gamma 0.9 and fast target updates suit LBF's sparse terminal reward (see the README).
        """
        return {
            "env": self.env,
            "n_envs": 8,
            "batch_size": 8,
            "buffer_size": 500,
            "log_every": 2_000,
            "eval_every": 100_000,
            "eval_episodes": 16,
            "checkpoint_every": 100_000,
            **run,
            "algo_config": {
                "gamma": 0.9,
                "lr": 1e-3,
                "agent_hidden": 32,
                "mixer_embed_dim": 16,
                "hypernet_hidden": 32,
                "target_update_interval": 50,
                "epsilon_anneal_steps": 3_000,
                **algo_config,
            },
        }

    def greedy_return(self, config: dict[str, Any], run_dir: Path) -> float:
        """Train `config` into `run_dir`; mean greedy return of its final checkpoint."""
        from mmsa_marl_core import config_from_dict, evaluate, train

        train(config_from_dict(config), run_dir, device=self.device, progress=False)
        return evaluate(run_dir, episodes=self.episodes, device=self.device)["return_mean"]

    def random_return(self, seed: int) -> float:
        """Mean return of uniformly random available actions on the evaluation seeds of a run
        with `seed` (computed once per seed and session)."""
        return _random_return(self.env, self.episodes, seed)


@functools.cache
def _random_return(env: str, episodes: int, seed: int) -> float:
    from mmsa_marl_core.training.evaluate import random_return

    return random_return(env, episodes, seed)


@pytest.fixture(scope="session")
def lbf_check() -> LbfCheck:
    return LbfCheck()


@pytest.fixture
def tiny_overrides() -> dict[str, int]:
    """Training overrides for runs of a few hundred steps on the dummy env (a fresh dict)."""
    return {
        "n_envs": 4,
        "batch_size": 8,
        "buffer_size": 64,
        "eval_every": 100,
        "log_every": 100,
        "eval_episodes": 4,
        "checkpoint_every": 100,
    }
