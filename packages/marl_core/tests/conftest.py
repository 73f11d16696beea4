"""Shared fixtures: random episodes from the real `dummy` env (N=3, O=7, S=11, A=6, T=5)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from mmsa_envs import EnvSpec, make


def collect_random(env_kwargs: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    """`n` episodes with uniformly random available actions, batch-major, padded to the limit."""
    env = make("dummy", **env_kwargs)
    spec = env.spec
    length, na, a = spec.episode_limit, spec.n_agents, spec.n_actions
    rng = np.random.default_rng(seed)
    out = {
        "obs": np.zeros((n, length + 1, na, spec.obs_dim), np.float32),
        "state": np.zeros((n, length + 1, spec.state_dim), np.float32),
        "avail_actions": np.zeros((n, length + 1, na, a), bool),
        "action": np.zeros((n, length, na), np.int64),
        "reward": np.zeros((n, length), np.float32),
        "terminated": np.zeros((n, length), bool),
        "lengths": np.zeros(n, np.int64),
    }
    for e in range(n):
        step = env.reset(seed=seed * 1000 + e)
        t = 0
        out["obs"][e, 0], out["state"][e, 0], out["avail_actions"][e, 0] = (
            step.obs,
            step.state,
            step.avail_actions,
        )
        while not step.done:
            avail = step.avail_actions
            act = np.array([rng.choice(np.flatnonzero(avail[i])) for i in range(na)], np.int64)
            step = env.step(act)
            out["action"][e, t], out["reward"][e, t] = act, step.reward
            out["terminated"][e, t] = step.terminated
            t += 1
            out["obs"][e, t], out["state"][e, t], out["avail_actions"][e, t] = (
                step.obs,
                step.state,
                step.avail_actions,
            )
        out["lengths"][e] = t
    return out


@pytest.fixture
def dummy_spec() -> EnvSpec:
    return make("dummy").spec


@pytest.fixture
def random_episodes() -> Callable[..., dict[str, np.ndarray]]:
    def _make(n: int, seed: int = 0, **env_kwargs) -> dict[str, np.ndarray]:
        return collect_random(env_kwargs, n, seed)

    return _make


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
