"""Shared fixtures: random episodes from the real `dummy` env (N=3, O=7, S=11, A=6, T=5), and
small learners of every registered algorithm with a batch of their own episodes, and a training
run killed with SIGKILL part-way (for the resume tests)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mmsa_envs import EnvSpec, make, make_vector_env
from mmsa_marl_core import config_from_dict
from mmsa_marl_core.data.batch import Batch
from mmsa_marl_core.data.buffer import EpisodeBuffer
from mmsa_marl_core.registry import Learner, get_algo
from mmsa_marl_core.training.collect import run_episodes

SMALL = {"agent_hidden": 12, "mixer_embed_dim": 6, "hypernet_hidden": 10}
# Every registered algorithm: (env id, small algo_config).
SMALL_ALGOS = {
    "qmix": ("dummy", SMALL),
    "vdn": ("dummy", SMALL),
    "mmsa": ("dummy", SMALL | {"zs_dim": 8, "sale_hidden": 16, "phi_dim": 8, "code_dim": 4}),
    "facmac": ("dummy:continuous", SMALL | {"width": 16, "random_steps": 0}),
    "mmsa_continuous": (
        "dummy:continuous",
        SMALL | {"width": 16, "random_steps": 0, "zs_dim": 8, "sale_hidden": 16, "phi_dim": 5},
    ),
}


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


def small_learner_and_batch(algo: str, device: torch.device) -> tuple[Learner, Batch]:
    """A small `algo` learner (SMALL_ALGOS) on `device` and a batch of 8 of its own exploring
    episodes, sampled to `device`."""
    env, overrides = SMALL_ALGOS[algo]
    entry = get_algo(algo)
    torch.manual_seed(0)
    config = config_from_dict({"env": env, "algo": algo, "algo_config": overrides}).algo_config
    rng = np.random.default_rng(0)
    with make_vector_env(env, 4, seed=0) as envs:
        learner = entry.factory(envs.spec, config, device)
        buffer = EpisodeBuffer(envs.spec, 16, envs.spec.episode_limit)
        while len(buffer) < 8:
            episodes = run_episodes(envs, learner, explore=True, env_steps=0, rng=rng)
            buffer.add_episodes(**episodes.buffer_arrays())
    return learner, buffer.sample(8, rng, device=device)


@pytest.fixture
def learner_and_batch() -> Callable[[str, torch.device], tuple[Learner, Batch]]:
    return small_learner_and_batch


_KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys, json, torch
    torch.set_num_threads(1)
    from mmsa_marl_core import config_from_dict, train

    kill_at = int(sys.argv[3])

    class KillAt:
        def log(self, kind, env_steps, metrics):
            if env_steps >= kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        def close(self):
            pass

    train(config_from_dict(json.loads(sys.argv[1])), sys.argv[2], device=sys.argv[4],
          progress=False, loggers=[KillAt()])
    """
)


def run_killed(config: dict[str, Any], run_dir: Path, kill_at: int, device: str = "cpu") -> None:
    """Train `config` into `run_dir` in a fresh interpreter that SIGKILLs itself at the first
    metrics line at or past `kill_at` env steps; checks it was killed, not finished."""
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_RUN, json.dumps(config), str(run_dir), str(kill_at), device],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -9, proc.stderr  # killed, not finished
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"


@pytest.fixture
def killed_run() -> Callable[..., None]:
    return run_killed


def small_run_config(algo: str, **overrides: Any) -> dict[str, Any]:
    """A 210-step run of `algo` on its SMALL_ALGOS env and config, checkpoints at 100 and 200
    steps (the resume tests kill it at 120); `overrides` replace top-level keys."""
    env, algo_config = SMALL_ALGOS[algo]
    return {
        "env": env,
        "algo": algo,
        "steps": 210,
        "n_envs": 3,
        "batch_size": 6,
        "buffer_size": 40,
        "log_every": 60,
        "eval_every": 150,
        "eval_episodes": 3,
        "checkpoint_every": 100,
        "keep_checkpoints": 2,
        "algo_config": dict(algo_config),
    } | overrides


@pytest.fixture
def small_run() -> Callable[..., dict[str, Any]]:
    return small_run_config


def flatten_state(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """`(dotted key, leaf)` of every leaf of nested dicts and lists (a checkpoint's state)."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from flatten_state(v, f"{prefix}{k}.")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from flatten_state(v, f"{prefix}{i}.")
    else:
        yield prefix, tree


@pytest.fixture
def flat_state() -> Callable[..., Iterator[tuple[str, Any]]]:
    return flatten_state


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
