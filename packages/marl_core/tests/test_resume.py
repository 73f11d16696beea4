"""resume: the run fingerprint, and a checkpoint payload that restores every part of a run exactly
(learner, buffer, the three RNGs, the envs' episode counters, the loop's counters), through a
real `save_checkpoint` / `load_checkpoint` round trip on the real `dummy` env.

The end-to-end exact resume of `train` (SIGKILL, then resume) is in test_train.py.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from mmsa_envs import make_vector_env
from mmsa_marl_core import EpisodeBuffer, config_from_dict, get_algo
from mmsa_marl_core.training.checkpoint import (
    CheckpointMismatchError,
    check_fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from mmsa_marl_core.training.config import TrainConfig
from mmsa_marl_core.training.resume import (
    Progress,
    _to_device,
    checkpoint_payload,
    restore_payload,
    run_fingerprint,
)
from mmsa_marl_core.training.train import EVAL_SEED_OFFSET

BASE = {
    "env": "dummy",
    "steps": 300,
    "n_envs": 3,
    "batch_size": 4,
    "buffer_size": 8,
    "eval_episodes": 2,
    "algo_config": {"agent_hidden": 12, "mixer_embed_dim": 5, "hypernet_hidden": 10},
}


def _config(**overrides) -> TrainConfig:
    return config_from_dict({**BASE, **overrides})


class Run:
    """The parts of a run that a checkpoint holds, built as `train` builds them."""

    def __init__(self, config: TrainConfig, seed: int) -> None:
        self.envs = make_vector_env("dummy", config.n_envs, seed=config.seed, processes=False)
        self.eval_envs = make_vector_env(
            "dummy", config.eval_episodes, seed=config.seed + EVAL_SEED_OFFSET, processes=False
        )
        self.spec = self.envs.spec
        torch.manual_seed(seed)
        self.learner = get_algo(config.algo).factory(
            self.spec, config.algo_config, torch.device("cpu")
        )
        self.buffer = EpisodeBuffer(self.spec, config.buffer_size, self.spec.episode_limit)
        self.rng = np.random.default_rng(seed)

    def close(self) -> None:
        self.envs.close()
        self.eval_envs.close()

    def restore(self, payload: dict) -> Progress:
        return restore_payload(
            payload, self.learner, self.buffer, self.rng, self.envs, self.eval_envs,
            torch.device("cpu"),
        )  # fmt: skip


def _play(envs, episodes: int, rng: np.random.Generator) -> None:
    """Advance the envs' episode counters by playing `episodes` rounds of random actions."""
    for _ in range(episodes):
        step = envs.reset()
        while not step.done.all():
            step = envs.step((rng.random(step.avail_actions.shape) * step.avail_actions).argmax(-1))


# ---------------------------------------------------------------------- fingerprint
def test_fingerprint_holds_the_run_setup_but_not_its_budget(dummy_spec):
    base = run_fingerprint(_config(), dummy_spec)
    assert base["env"] == "dummy" and base["algo"] == "qmix" and base["seed"] == 0
    assert base["algo_config"]["agent_hidden"] == 12
    assert base["env_spec"] == {
        "n_agents": 3,
        "obs_dim": 7,
        "state_dim": 11,
        "action_kind": "discrete",
        "n_actions": 6,
        "episode_limit": 5,
    }
    # a longer run, other logging or checkpointing continue the same run
    longer = _config(steps=900, log_every=50, eval_every=70, checkpoint_every=90)
    assert run_fingerprint(longer, dummy_spec) == base
    changed = {
        "seed": _config(seed=1),
        "n_envs": _config(n_envs=2),
        "batch_size": _config(batch_size=5),
        "buffer_size": _config(buffer_size=9),
        "updates_per_episode": _config(updates_per_episode=2.0),
        "algo": _config(algo="vdn"),
        "env_kwargs": _config(env_kwargs={"terminate_after": 3}),
        "algo_config": _config(algo_config={**BASE["algo_config"], "lr": 1e-2}),
    }
    for key, config in changed.items():
        other = run_fingerprint(config, dummy_spec)
        assert other[key] != base[key], key
        assert {k for k in base if other[k] != base[k]} == {key}, key


def test_execution_settings_do_not_split_a_run(dummy_spec, tmp_path):
    """`cuda_graphs` chooses how the imagination runs, like the device: a checkpoint continues
    with it flipped, and one written before the key existed matches."""

    def mmsa(**algo_config):
        return _config(algo="mmsa", algo_config={**BASE["algo_config"], **algo_config})

    graphs = run_fingerprint(mmsa(cuda_graphs=True), dummy_spec)
    assert "cuda_graphs" not in graphs["algo_config"]
    assert run_fingerprint(mmsa(cuda_graphs=False), dummy_spec) == graphs
    check_fingerprint(graphs, run_fingerprint(mmsa(cuda_graphs=False), dummy_spec), tmp_path)
    # ... but what the learner computes does split it
    with pytest.raises(CheckpointMismatchError, match=r"algo_config\.code_dim"):
        check_fingerprint(graphs, run_fingerprint(mmsa(code_dim=3), dummy_spec), tmp_path)


def test_fingerprint_changes_with_the_env_spec(dummy_spec):
    other_spec = dataclasses.replace(dummy_spec, n_actions=dummy_spec.n_actions + 1)
    a = run_fingerprint(_config(), dummy_spec)
    b = run_fingerprint(_config(), other_spec)
    assert a["env_spec"]["n_actions"] + 1 == b["env_spec"]["n_actions"]


# ---------------------------------------------------------------------- payload
def _advanced_run(config: TrainConfig, random_episodes) -> tuple[Run, Progress]:
    """A run some way in: episodes stored, a few updates (Adam state), counters moved."""
    run = Run(config, seed=0)
    run.buffer.add_episodes(**random_episodes(6, seed=1))
    for i in range(3):
        run.learner.update(run.buffer.get(np.arange(i, i + 4)))
    _play(run.envs, 2, run.rng)
    _play(run.eval_envs, 1, run.rng)
    prog = Progress(
        env_steps=123, episodes=31, updates=3, update_credit=0.5, next_log=200, wall_s=1.5,
        returns=[0.25, 1.0], metric_sums={"td_loss": 2.5}, metric_count=2,
    )  # fmt: skip
    return run, prog


def test_payload_round_trip_restores_every_part_exactly(tmp_path: Path, random_episodes):
    config = _config()
    a, prog = _advanced_run(config, random_episodes)
    fingerprint = run_fingerprint(config, a.spec)
    payload = checkpoint_payload(
        prog, fingerprint, config, a.learner, a.buffer, a.rng, a.envs, a.eval_envs, 4567
    )
    # checkpoint.py stores it with torch.save and loads it with weights_only=True
    loaded = load_checkpoint(save_checkpoint(tmp_path, prog.env_steps, payload, keep=1))
    assert loaded["env_steps"] == 123 and loaded["metrics_offset"] == 4567
    assert loaded["fingerprint"] == fingerprint
    assert loaded["config"]["algo"] == "qmix" and loaded["config"]["steps"] == 300
    # What the interrupted run does next, drawn from every source of randomness it has.
    expected = (a.rng.random(4), random.random(), torch.rand(3))
    next_obs = a.envs.reset().obs, a.eval_envs.reset().obs

    b = Run(config, seed=9)  # another seed: nothing matches before the restore
    try:
        restored = b.restore(loaded)
        assert restored == prog
        sd_a, sd_b = a.learner.state_dict(), b.learner.state_dict()
        flat_a, flat_b = _flatten(sd_a), _flatten(sd_b)
        assert flat_a.keys() == flat_b.keys()
        for key, value in flat_a.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, flat_b[key]), key
            else:
                assert value == flat_b[key], key
        assert len(b.buffer) == len(a.buffer) == 6
        rows_a, rows_b = a.buffer.get(np.arange(6)), b.buffer.get(np.arange(6))
        for field in ("obs", "state", "action", "reward", "mask"):
            assert torch.equal(getattr(rows_a, field), getattr(rows_b, field)), field
        got = (b.rng.random(4), random.random(), torch.rand(3))
        np.testing.assert_array_equal(got[0], expected[0])
        assert got[1] == expected[1]
        assert torch.equal(got[2], expected[2])
        # the envs continue with the same episode seeds
        np.testing.assert_array_equal(b.envs.reset().obs, next_obs[0])
        np.testing.assert_array_equal(b.eval_envs.reset().obs, next_obs[1])
    finally:
        a.close()
        b.close()


def test_restore_accepts_the_python_rng_state_as_nested_lists(random_episodes):
    """A payload that went through a format without tuples (JSON, some loaders) still
    restores Python's `random` exactly."""
    config = _config()
    a, prog = _advanced_run(config, random_episodes)
    payload = checkpoint_payload(
        prog, {}, config, a.learner, a.buffer, a.rng, a.envs, a.eval_envs, 0
    )
    version, internal, gauss = payload["rng"]["python"]
    payload["rng"]["python"] = [version, list(internal), gauss]
    expected = [random.random() for _ in range(3)]
    try:
        a.restore(payload)
        assert [random.random() for _ in range(3)] == expected
    finally:
        a.close()


def test_progress_goes_into_the_payload_whole(random_episodes):
    config = _config()
    a, prog = _advanced_run(config, random_episodes)
    payload = checkpoint_payload(
        prog, {}, config, a.learner, a.buffer, a.rng, a.envs, a.eval_envs, 0
    )
    a.close()
    assert payload["progress"] == dataclasses.asdict(prog)
    assert {f.name for f in dataclasses.fields(Progress)} == set(payload["progress"])
    assert payload["env_counters"].tolist() == [2, 2, 2]
    assert payload["eval_env_counters"].tolist() == [1, 1]


def test_to_device_moves_model_tensors_but_not_step_counters():
    """Optimiser `step` counters are 0-dim tensors that Adam keeps on the CPU; the rest of the
    learner's state goes to the device (the meta device stands in for CUDA here)."""
    tree = {
        "agent": {"weight": torch.ones(2, 3)},
        "optimiser": {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(4)}}},
        "history": [torch.ones(1), 5, "label"],
        "updates": 7,
    }
    out = _to_device(tree, torch.device("meta"))
    assert out["agent"]["weight"].device.type == "meta"
    assert out["optimiser"]["state"][0]["exp_avg"].device.type == "meta"
    assert out["optimiser"]["state"][0]["step"].device.type == "cpu"
    assert out["history"][0].device.type == "meta" and out["history"][1:] == [5, "label"]
    assert out["updates"] == 7


def _flatten(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        out: dict = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(tree, list):
        out = {}
        for i, v in enumerate(tree):
            out.update(_flatten(v, f"{prefix}{i}."))
        return out
    return {prefix: tree}
