"""No run loses data: the faults a user meets (a second writer, SIGTERM, a writer killed
mid-checkpoint, a junk checkpoint file, a run whose parameters blow up) each end with the run
directory intact, resumable and saying what happened.

The runs are real `mmsa train` processes on the `dummy` env (a second writer and SIGTERM need
another process) or `train` in this process; the resumes go through the same code a user's
`--resume` does.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from flows.cli import main
from flows.stages import _should_resume
from mmsa_marl_core import config_from_dict, evaluate, train
from mmsa_marl_core.training.checkpoint import list_checkpoints, load_checkpoint
from mmsa_marl_core.training.run_lock import RunLockedError, remove_run_dir

SMALL = [
    "n_envs=2", "batch_size=4", "buffer_size=20", "eval_episodes=2", "log_every=50",
    "algo_config.agent_hidden=8", "algo_config.mixer_embed_dim=4",
    "algo_config.hypernet_hidden=8",
]  # fmt: skip
C = ["--env", "dummy", "--device", "cpu", "--no-progress", "--no-tensorboard", "--seed", "1"]


def _mmsa() -> list[str]:
    exe = Path(sys.executable).with_name("mmsa")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "flows.cli"]


def _wait_for(predicate, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.communicate()[1]}")
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _status(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


@pytest.mark.slow  # two CLI processes and a resume (~15 s)
def test_second_writer_is_refused_and_sigterm_leaves_a_resumable_run(tmp_path):
    run = tmp_path / "run"
    long = [*C, "--steps", "200000", "checkpoint_every=100", "eval_every=100000", *SMALL]
    first = subprocess.Popen(
        [*_mmsa(), "train", "--run-dir", str(run), *long],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for(lambda: len(list_checkpoints(run / "checkpoints")) >= 1, proc=first)
        held = json.loads((run / ".lock").read_text())
        assert held["pid"] == first.pid

        # a second writer, fresh or resuming, is refused at once and names the holder
        for extra in ([], ["--resume"]):
            second = subprocess.run(
                [*_mmsa(), "train", "--run-dir", str(run), *long, *extra],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            lines = [x for x in second.stderr.splitlines() if x.strip()]
            assert second.returncode == 2, second.stderr
            assert len(lines) == 1, second.stderr
            if extra:
                assert f"in use by another mmsa process (pid {first.pid}" in lines[0]
            else:
                assert "already holds a run" in lines[0]
        # nor can a stage or benchmark that starts the directory afresh pull it from under it
        before = sorted(p.name for p in run.iterdir())
        with pytest.raises(RunLockedError, match=f"pid {first.pid}"):
            remove_run_dir(run)
        with pytest.raises(RunLockedError, match=f"pid {first.pid}"):
            _should_resume(run, {"another": "config"})
        assert {"run.json", "metrics.jsonl", "checkpoints"} <= set(before)
        assert sorted(p.name for p in run.iterdir()) == before
        assert first.poll() is None  # the holder never noticed

        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    lines = [x for x in err.splitlines() if x.strip()]
    assert first.returncode == 143, err
    assert "terminated" in lines[-1] and "Traceback" not in err, err
    info = _status(run)
    assert info["status"] == "terminated"
    assert "SIGTERM" in info["error"]
    steps = sorted(int(p.stem.split("_")[1]) for p in list_checkpoints(run / "checkpoints"))
    assert info["env_steps"] == steps[-1]  # what the newest checkpoint holds, not more
    assert not (run / ".lock").exists()

    # the terminated run continues from that checkpoint (a resume may change the budget)
    stop = steps[-1] + 100
    done = subprocess.run(
        [*_mmsa(), "train", "--run-dir", str(run), "--resume", *C, "--steps", str(stop)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    info = _status(run)
    assert info["status"] == "finished" and info["env_steps"] >= stop
    assert "error" not in info
    remove_run_dir(run)  # nobody writes to it now
    assert not run.exists()


def _small_config(**overrides) -> dict:
    return {
        "env": "dummy", "algo": "qmix", "steps": 300, "n_envs": 3, "batch_size": 6,
        "buffer_size": 40, "log_every": 60, "eval_every": 1000, "eval_episodes": 3,
        "checkpoint_every": 60, "keep_checkpoints": 2,
        "algo_config": {"agent_hidden": 12, "mixer_embed_dim": 6, "hypernet_hidden": 10},
    } | overrides  # fmt: skip


def test_killed_writers_temp_files_are_removed_and_junk_takes_no_slot(tmp_path, caplog):
    run = tmp_path / "run"
    config = config_from_dict(_small_config(steps=150))
    train(config, run, device="cpu", progress=False)
    ckpts = run / "checkpoints"
    # what a writer SIGKILLed mid-save leaves, and a junk file that sorts newest
    tmp_ckpt = ckpts / ".step_180.pt.k3j2h1.tmp"
    tmp_ckpt.write_bytes(b"\x80" * 4096)
    tmp_json = run / ".run.json.x9y8.tmp"
    tmp_json.write_text("{")
    junk = ckpts / "step_9999.pt"
    junk.write_bytes(b"not a checkpoint")
    before = {p.name for p in list_checkpoints(ckpts)}
    assert before == {"step_120.pt", "step_150.pt", "step_9999.pt"}

    longer = config_from_dict(_small_config(steps=240))  # a resume may extend the budget
    result = train(longer, run, device="cpu", resume=True, progress=False)
    assert not tmp_ckpt.exists() and not tmp_json.exists()
    assert junk.exists()  # not ours to delete: skipped by every load, never counted
    names = sorted(p.name for p in list_checkpoints(ckpts))
    real = [n for n in names if n != "step_9999.pt"]
    assert len(real) == config.keep_checkpoints, names
    assert result.checkpoint.name == "step_240.pt"
    assert "step_9999.pt is unreadable" in caplog.text
    # evaluate skips the junk the same way, with the newest real checkpoint
    assert evaluate(run, episodes=2)["env_steps"] == 240


def _all_finite(payload: dict) -> bool:
    def walk(tree):
        if isinstance(tree, torch.Tensor):
            yield not tree.is_floating_point() or bool(torch.isfinite(tree).all())
        elif isinstance(tree, dict):
            for v in tree.values():
                yield from walk(v)
        elif isinstance(tree, list | tuple):
            for v in tree:
                yield from walk(v)

    return all(walk(payload["learner"]))


def test_blow_up_stops_in_one_line_and_leaves_no_bad_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    argv = [
        "train", "--run-dir", str(run), *C, "--steps", "3000", "checkpoint_every=20",
        "eval_every=100000", "algo_config.lr=1e12", "algo_config.grad_norm_clip=1e30",
        "max_nonfinite_updates=3", *SMALL,
    ]  # fmt: skip
    status = main(argv)
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert status == 1, err
    assert err[-1].startswith("mmsa train: error: ") and "NaN/inf" in err[-1], err
    info = _status(run)
    assert info["status"] == "failed" and "NonFiniteLossError" in info["error"]
    paths = list_checkpoints(run / "checkpoints")
    for path in paths:  # every checkpoint on disk holds finite parameters
        assert _all_finite(load_checkpoint(path)), path
    if paths:  # and the newest one still evaluates to a finite return
        result = evaluate(run, episodes=2)
        assert result["env_steps"] == info["env_steps"]
        assert torch.isfinite(torch.tensor(result["return_mean"]))


def test_refused_resume_leaves_run_json_as_it_was(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--run-dir", str(run), *C, "--steps", "60", "checkpoint_every=20",
            "eval_every=30", *SMALL]  # fmt: skip
    assert main(argv) == 0
    before = (run / "run.json").read_bytes(), (run / "metrics.jsonl").read_bytes()
    for bad in (["algo_config.lr=0.5"], ["--algo", "vdn"], ["--seed", "2"]):
        assert main([*argv, *bad, "--resume"]) == 2
        assert ((run / "run.json").read_bytes(), (run / "metrics.jsonl").read_bytes()) == before
    capsys.readouterr()
    assert main(["evaluate", str(run), "--episodes", "2"]) == 0  # still a working run
    assert main([*argv, "--resume"]) == 0
    assert _status(run)["status"] == "finished"
