"""The training loop on the real `dummy` env: metrics, checkpoints, exact resume after SIGKILL,
corrupt and mismatching checkpoints, the non-finite stop, evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmsa_marl_core import (
    CheckpointMismatchError,
    NonFiniteLossError,
    QLearner,
    QLearnerConfig,
    config_from_dict,
    evaluate,
    read_metrics,
    register_algo,
    train,
)
from mmsa_marl_core.training.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from mmsa_marl_core.training.metrics import MEASURED
from mmsa_marl_core.training.reproducible import cpu_flags

BASE = {
    "env": "dummy",
    "steps": 600,
    "n_envs": 3,
    "batch_size": 6,
    "buffer_size": 40,
    "log_every": 100,
    "eval_every": 250,
    "eval_episodes": 4,
    "checkpoint_every": 200,
    "keep_checkpoints": 2,
    "algo_config": {"agent_hidden": 12, "mixer_embed_dim": 6, "hypernet_hidden": 10,
                    "epsilon_anneal_steps": 300, "target_update_interval": 20, "lr": 0.003},
}  # fmt: skip


def _config(**overrides):
    return config_from_dict({**BASE, **overrides})


def _final_params(run_dir) -> dict[str, torch.Tensor]:
    payload = load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])
    return {
        f"{module}.{name}": tensor
        for module in ("agent", "mixer", "target_agent", "target_mixer")
        for name, tensor in payload["learner"][module].items()
    }


def _strip_time(lines):
    return [{k: v for k, v in x.items() if k not in MEASURED} for x in lines]


def test_run_writes_metrics_checkpoints_and_run_json(tmp_path):
    result = train(_config(), tmp_path, progress=False)
    assert result.env_steps >= 600 and result.updates > 0
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["status"] == "finished" and info["env_steps"] == result.env_steps
    assert info["config"]["env"] == "dummy" and info["config"]["algo_config"]["agent_hidden"] == 12
    assert {"torch", "numpy", "mmsa-envs"} <= set(info["versions"])
    assert info["env_spec"]["n_agents"] == 3 and "git_commit" in info and info["device"] == "cpu"
    # The CPU's bf16 units (AVX512-BF16, AMX), as /proc/cpuinfo lists them, go with the run.
    assert info["cpu_kernels"]["cpu_flags"] == cpu_flags()
    lines = read_metrics(tmp_path)
    train_lines = [x for x in lines if x["kind"] == "train"]
    evals = [x for x in lines if x["kind"] == "eval"]
    assert lines[-1]["kind"] == "eval" and lines[-1]["env_steps"] == result.env_steps
    assert {"loss", "return_mean", "episodes", "updates", "wall_s"} <= set(train_lines[-1])
    # Resident memory of the process (MiB), now and at its peak: torch alone holds > 50 MiB.
    assert all(50 < x["rss_mb"] <= x["peak_rss_mb"] + 1 < 2**20 for x in train_lines)
    filled = [x["buffer_mb"] for x in train_lines]  # the replay's share: grows as it fills
    assert 0 < filled[0] and filled == sorted(filled) and filled[-1] < train_lines[-1]["rss_mb"]
    assert {"return_mean", "return_std", "n_episodes"} <= set(
        evals[-1]
    ) and "win_rate" not in evals[-1]
    steps = [x["env_steps"] for x in lines]
    assert steps == sorted(steps)
    ckpts = [p.name for p in list_checkpoints(tmp_path / "checkpoints")]
    assert len(ckpts) == 2 and ckpts[-1] == f"step_{result.env_steps}.pt"
    with pytest.raises(FileExistsError, match="resume=True"):
        train(_config(), tmp_path, progress=False)
    again = evaluate(tmp_path, episodes=5)
    assert again["n_episodes"] == 5 and again["env_steps"] == result.env_steps
    assert evaluate(tmp_path, episodes=5) == again  # deterministic


@pytest.mark.slow  # three short runs, one in a fresh interpreter
def test_sigkill_then_resume_is_bitwise_exact(tmp_path, killed_run):
    config = _config()
    straight = tmp_path / "straight"
    train(config, straight, progress=False)

    killed = tmp_path / "killed"
    killed_run(BASE, killed, kill_at=330)
    (only,) = list_checkpoints(killed / "checkpoints")  # killed between two checkpoints
    assert 200 <= load_checkpoint(only)["env_steps"] < 330
    assert max(x["env_steps"] for x in read_metrics(killed)) > 201  # lines past the checkpoint

    result = train(config, killed, progress=False, resume=True)
    assert json.loads((killed / "run.json").read_text())["status"] == "finished"
    a, b = _final_params(straight), _final_params(killed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed parameters differ"
    # metrics after resume continue exactly where the checkpoint left off (no duplicates)
    assert _strip_time(read_metrics(straight)) == _strip_time(read_metrics(killed))
    assert result.env_steps == json.loads((straight / "run.json").read_text())["env_steps"]


def test_corrupt_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    config = _config()
    train(config, tmp_path, progress=False)
    older, newest = list_checkpoints(tmp_path / "checkpoints")
    older_bytes = older.read_bytes()
    newest.write_bytes(newest.read_bytes()[:100])
    resumed_from = load_checkpoint(older)["env_steps"]
    longer = _config(steps=700)
    with caplog.at_level("WARNING", logger="mmsa_marl_core"):
        result = train(longer, tmp_path, progress=False, resume=True)
    assert f"{newest.name} is unreadable" in caplog.text and "falling back" in caplog.text
    assert result.env_steps >= 700
    # metrics written after the older checkpoint were dropped on resume: no step appears twice
    train_steps = [x["env_steps"] for x in read_metrics(tmp_path, "train")]
    assert train_steps == sorted(set(train_steps)) and resumed_from in train_steps
    assert not older.exists() or older.read_bytes() == older_bytes  # never rewritten in place


def test_mismatching_checkpoint_is_refused_by_name(tmp_path):
    train(_config(steps=250), tmp_path, progress=False)
    before = {p.name: p.read_bytes() for p in list_checkpoints(tmp_path / "checkpoints")}
    other = {**BASE, "algo_config": {**BASE["algo_config"], "agent_hidden": 16}}
    with pytest.raises(
        CheckpointMismatchError, match="algo_config.agent_hidden: checkpoint has 12"
    ):
        train(config_from_dict(other), tmp_path, progress=False, resume=True)
    with pytest.raises(CheckpointMismatchError, match="algo: checkpoint has 'qmix'"):
        train(_config(steps=250, algo="vdn"), tmp_path, progress=False, resume=True)
    after = {p.name: p.read_bytes() for p in list_checkpoints(tmp_path / "checkpoints")}
    assert after == before


def test_checkpoint_that_recorded_an_execution_key_still_resumes(tmp_path):
    """A checkpoint whose stored fingerprint holds `algo_config.cuda_graphs` (written before the
    key was declared an execution setting) continues; a real difference is still refused."""
    train(_config(steps=250), tmp_path, progress=False)
    path = list_checkpoints(tmp_path / "checkpoints")[-1]
    payload = load_checkpoint(path)
    payload["fingerprint"]["algo_config"]["cuda_graphs"] = True
    save_checkpoint(path.parent, payload["env_steps"], payload, keep=2)
    result = train(_config(steps=450), tmp_path, progress=False, resume=True)
    assert result.env_steps >= 450
    payload["fingerprint"]["algo_config"]["agent_hidden"] = 16
    save_checkpoint(path.parent, result.env_steps + 1, payload, keep=3)
    with pytest.raises(
        CheckpointMismatchError, match="algo_config.agent_hidden: checkpoint has 16"
    ):
        train(_config(steps=900), tmp_path, progress=False, resume=True)


class _PoisonedLearner(QLearner):
    def update(self, batch):
        import dataclasses

        return super().update(dataclasses.replace(batch, reward=batch.reward * float("nan")))


register_algo(
    "nan-test", lambda spec, cfg, device: _PoisonedLearner(spec, cfg, device), QLearnerConfig
)


def test_non_finite_updates_stop_the_run(tmp_path):
    config = _config(algo="nan-test", max_nonfinite_updates=3)
    with pytest.raises(NonFiniteLossError, match="4 updates had a NaN/inf loss"):
        train(config, tmp_path, progress=False)
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["status"] == "failed" and "NonFiniteLossError" in info["error"]


def test_greedy_policy_improves_on_dummy(tmp_path):
    """A short run must beat its own first (untrained) evaluation on the dummy task."""
    train(_config(steps=1500), tmp_path, progress=False)
    evals = read_metrics(tmp_path, "eval")
    assert evals[-1]["return_mean"] > evals[0]["return_mean"] + 0.5
    assert np.isfinite([x["loss"] for x in read_metrics(tmp_path, "train") if "loss" in x]).all()


def test_sparse_metrics_are_averaged_over_the_updates_that_report_them(tmp_path):
    """MMSA reports `diag_zs_erank` every `diagnostics_every` updates only: each train line
    holds its mean over those updates, not its sum spread over every update of the window
    (an effective rank lies in [1, zs_dim]; its sum over 2 reports spread over the ~22
    updates of a window would not)."""
    zs_dim = 8
    config = _config(
        algo="mmsa",
        steps=360,
        log_every=120,
        algo_config=BASE["algo_config"]
        | {"zs_dim": zs_dim, "sale_hidden": 16, "phi_dim": 8, "code_dim": 4,
           "diagnostics_every": 10},
    )  # fmt: skip
    train(config, tmp_path, progress=False)
    lines = [x for x in read_metrics(tmp_path) if x["kind"] == "train" and "diag_zs_erank" in x]
    assert lines, "no train line carried the diagnostics"
    updates = [0] + [x["updates"] for x in lines]
    assert min(b - a for a, b in zip(updates, updates[1:], strict=False)) > 20  # per window
    for line in lines:
        assert 1.0 <= line["diag_zs_erank"] <= zs_dim, line
