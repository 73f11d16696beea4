"""Every bad input to `mmsa` is one clear line: exit status 2, a single `mmsa <cmd>: error: ...`
line on stderr that names the bad value, key or file, and nothing written or changed on disk.

The table runs through the CLI's real entry function (`flows.cli.main`) in this process, against
copies of a few prepared run directories (a finished run, runs with broken checkpoints or
`run.json`, YAML files); a handful of cases go through the installed `mmsa` console script, to
show that what a user's shell sees is the same single line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flows.cli import main

TINY_RUN = [
    "--env", "dummy", "--steps", "60", "--seed", "3", "--device", "cpu", "--no-progress",
    "--no-tensorboard", "n_envs=2", "batch_size=4", "buffer_size=20", "eval_episodes=2",
    "eval_every=30", "log_every=30", "checkpoint_every=20", "algo_config.agent_hidden=8",
    "algo_config.mixer_embed_dim=4", "algo_config.hypernet_hidden=8",
]  # fmt: skip
C = ["--no-progress", "--no-tensorboard", "--device", "cpu"]  # common to every train case


class _Evil:
    """A pickle that would run code when loaded without `weights_only`."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _train_fixture(root: Path, name: str, *extra: str) -> Path:
    run = root / name
    assert main(["train", *TINY_RUN, "--run-dir", str(run), *extra]) == 0
    return run


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> Path:
    """Run directories and files the cases refer to by relative path."""
    root = tmp_path_factory.mktemp("fixtures")
    run = _train_fixture(root, "run")
    vdn = _train_fixture(root, "vdn", "--algo", "vdn")
    newest = sorted((vdn / "checkpoints").glob("step_*.pt"))[-1]

    def copy(name: str) -> Path:
        shutil.copytree(run, root / name)
        return root / name

    nockpt = copy("nockpt")  # run.json and metrics.jsonl, no checkpoint
    shutil.rmtree(nockpt / "checkpoints")
    for name in ("allzero", "otheralgo", "otheralgo_only", "nolearner", "evil_only"):
        copy(name)
    for p in (root / "allzero" / "checkpoints").glob("*.pt"):
        p.write_bytes(b"")
    shutil.copy(newest, root / "otheralgo" / "checkpoints" / "step_9000.pt")
    only = root / "otheralgo_only" / "checkpoints"
    for p in only.glob("*.pt"):
        p.unlink()
    shutil.copy(newest, only / newest.name)
    for name, payload in (("nolearner", {"format": 1, "env_steps": 5}),
                          ("evil_only", {"format": 1, "x": _Evil()})):  # fmt: skip
        ckpts = root / name / "checkpoints"
        for p in ckpts.glob("*.pt"):
            p.unlink()
        torch.save(payload, ckpts / "step_60.pt")
    badjson = copy("badjson")
    (badjson / "run.json").write_text("{'not': json")
    (root / "emptydir").mkdir()
    (root / "afile").write_text("not a run\n")
    yamls = {
        "bad.yaml": "steps: [1, 2\n",
        "unk.yaml": "env: dummy\nfoo: 1\n",
        "unk_nested.yaml": "env: dummy\nalgo_config:\n  bar: 1\n",
        "list.yaml": "- 1\n- 2\n",
        "typo.yaml": "env: dummy\nsteps: '200'\n",
    }
    for name, text in yamls.items():
        (root / name).write_text(text)
    return root


CUDA = torch.cuda.is_available()
# (case id, argv, a text the one error line must hold: the bad value, key or file)
CASES: list[tuple[str, list[str], str]] = [
    # ------------------------------------------------------------------ env ids
    ("lbf-unknown", ["train", "--env", "lbf:Nope-v3"], "'Nope-v3'"),
    ("lbf-no-suffix", ["train", "--env", "lbf:Foraging-5x5-2p-1f"], "'Foraging-5x5-2p-1f'"),
    ("lbf-0x0", ["train", "--env", "lbf:Foraging-0x0-2p-1f-v3"], "'Foraging-0x0-2p-1f-v3'"),
    ("lbf-crowded", ["train", "--env", "lbf:Foraging-3x3-20p-1f-v3"], "Foraging-3x3-20p-1f-v3"),
    ("lbf-empty", ["train", "--env", "lbf:"], "unknown lbf env ''"),
    ("pz-missing", ["train", "--env", "pettingzoo:nosuchpkg.env_v0"], "'nosuchpkg.env_v0'"),
    ("pz-not-env", ["train", "--env", "pettingzoo:json"], "'json'"),
    ("smacv2-missing", ["train", "--env", "smacv2:protoss_5_vs_5"], "smacv2 is not installed"),
    ("smacv2-unknown", ["train", "--env", "smacv2:nope"], "'nope'"),
    ("dummy-unknown", ["train", "--env", "dummy:weird"], "'weird'"),
    ("backend-near", ["train", "--env", "dummyx"], "'dummyx'"),
    ("env-empty", ["train", "--env", ""], "unknown env backend ''"),
    ("backend-unknown", ["train", "--env", "nobackend:foo"], "'nobackend'"),
    ("backend-case", ["train", "--env", "LBF:foraging-5x5-2p-1f-v3"], "'LBF'"),
    # ------------------------------------------------------------------ algorithms
    ("algo-unknown", ["train", "--env", "dummy", "--algo", "nope"], "'nope'"),
    ("ablation-flag", ["train", "--env", "dummy", "--algo", "mmsa", "--ablation", "nope"],
     "'nope'"),
    ("ablation-key", ["train", "--env", "dummy", "--algo", "mmsa", "algo_config.ablation=nope"],
     "'nope'"),
    ("ablation-qmix", ["train", "--env", "dummy", "--ablation", "no_wm"], "--ablation no_wm"),
    ("ablation-key-qmix", ["train", "--env", "dummy", "algo_config.ablation=no_wm"],
     "'algo_config.ablation'"),
    ("vdn-continuous", ["train", "--env", "dummy:continuous", "--algo", "vdn"],
     "'dummy:continuous'"),
    ("facmac-discrete", ["train", "--env", "dummy", "--algo", "facmac"], "action_kind='discrete'"),
    ("facmac-lbf", ["train", "--env", "lbf:Foraging-5x5-2p-1f-v3", "--algo", "facmac"],
     "lbf:Foraging-5x5-2p-1f-v3"),
    # ------------------------------------------------------------------ config keys and values
    ("key-unknown", ["train", "--env", "dummy", "foo=1"], "'foo'"),
    ("key-nested", ["train", "--env", "dummy", "algo_config.foo=1"], "'algo_config.foo'"),
    ("key-too-deep", ["train", "--env", "dummy", "algo_config.lr.x=1"], "'algo_config.lr'"),
    ("env-kwargs-dummy", ["train", "--env", "dummy", "env_kwargs.foo=1"], "'env_kwargs.foo'"),
    ("env-kwargs-lbf", ["train", "--env", "lbf:Foraging-5x5-2p-1f-v3", "env_kwargs.bogus=1"],
     "'env_kwargs.bogus'"),
    ("steps-str", ["train", "--env", "dummy", "steps=abc"], "'abc'"),
    ("steps-flag-str", ["train", "--env", "dummy", "--steps", "abc"], "'abc'"),
    ("steps-0", ["train", "--env", "dummy", "--steps", "0"], "steps=0"),
    ("steps-neg", ["train", "--env", "dummy", "--steps", "-5"], "steps=-5"),
    ("seed-neg", ["train", "--env", "dummy", "--seed", "-1"], "seed=-1"),
    ("lr-neg", ["train", "--env", "dummy", "algo_config.lr=-1"], "lr=-1.0"),
    ("lr-nan-str", ["train", "--env", "dummy", "algo_config.lr=nan"], "'nan'"),
    ("lr-nan", ["train", "--env", "dummy", "algo_config.lr=.nan"], "'algo_config.lr'"),
    ("lr-inf", ["train", "--env", "dummy", "algo_config.lr=.inf"], "'algo_config.lr'"),
    ("gamma-2", ["train", "--env", "dummy", "algo_config.gamma=2"], "gamma=2.0"),
    ("gamma-nan", ["train", "--env", "dummy", "algo_config.gamma=.nan"], "'algo_config.gamma'"),
    ("batch-0", ["train", "--env", "dummy", "batch_size=0"], "batch_size=0"),
    ("n-envs-0", ["train", "--env", "dummy", "n_envs=0"], "n_envs=0"),
    ("batch-over-buffer", ["train", "--env", "dummy", "buffer_size=4"], "buffer_size=4"),
    ("eval-every-0", ["train", "--env", "dummy", "eval_every=0"], "eval_every=0"),
    ("keep-0", ["train", "--env", "dummy", "keep_checkpoints=0"], "keep_checkpoints=0"),
    ("upe-neg", ["train", "--env", "dummy", "updates_per_episode=-1"], "updates_per_episode"),
    ("upe-nan", ["train", "--env", "dummy", "updates_per_episode=.nan"], "updates_per_episode"),
    ("precision", ["train", "--env", "dummy", "precision=fp16"], "'fp16'"),
    ("optimizer", ["train", "--env", "dummy", "algo_config.optimizer=sgd"], "'sgd'"),
    ("adam-eps-neg", ["train", "--env", "dummy", "algo_config.adam_eps=-1"], "adam_eps=-1.0"),
    ("rmsprop-alpha", ["train", "--env", "dummy", "algo_config.optimizer=rmsprop",
                       "algo_config.rmsprop_alpha=5"], "rmsprop_alpha=5.0"),
    ("rmsprop-eps-0", ["train", "--env", "dummy", "algo_config.rmsprop_eps=0"], "rmsprop_eps=0.0"),
    ("clip-nan", ["train", "--env", "dummy", "algo_config.grad_norm_clip=.nan"],
     "'algo_config.grad_norm_clip'"),
    ("eps-start-2", ["train", "--env", "dummy", "algo_config.epsilon_start=2"],
     "epsilon_start=2.0"),
    ("hidden-0", ["train", "--env", "dummy", "algo_config.agent_hidden=0"], "agent_hidden=0"),
    ("override-no-eq", ["train", "--env", "dummy", "lr"], "'lr'"),
    ("override-no-key", ["train", "--env", "dummy", "=3"], "'=3'"),
    ("steps-float", ["train", "--env", "dummy", "steps=1e3"], "'steps'"),
    ("seed-bool", ["train", "--env", "dummy", "seed=true"], "'seed'"),
    ("env-kwargs-int", ["train", "--env", "dummy", "env_kwargs=5"], "'env_kwargs'"),
    ("max-nonfinite-neg", ["train", "--env", "dummy", "max_nonfinite_updates=-1"],
     "max_nonfinite_updates=-1"),
    ("mmsa-lr-neg", ["train", "--env", "dummy", "--algo", "mmsa", "algo_config.lr=-1"],
     "lr=-1.0"),
    ("facmac-gamma", ["train", "--env", "dummy:continuous", "--algo", "facmac",
                      "algo_config.gamma=2"], "gamma=2.0"),
    ("facmac-lr-inf", ["train", "--env", "dummy:continuous", "--algo", "facmac",
                       "algo_config.actor_lr=.inf"], "'algo_config.actor_lr'"),
    ("train-eval-episodes-0", ["train", "--env", "dummy", "eval_episodes=0"], "eval_episodes=0"),
    ("no-updates", ["train", "--env", "dummy", "--steps", "5", "batch_size=64",
                    "buffer_size=100"], "steps=5 gives no gradient update"),
    ("upe-0", ["train", "--env", "dummy", "updates_per_episode=0"], "updates_per_episode=0"),
    # ------------------------------------------------------------------ YAML files
    ("yaml-bad", ["train", "--config", "bad.yaml"], "bad.yaml"),
    ("yaml-unknown", ["train", "--config", "unk.yaml"], "'foo'"),
    ("yaml-nested", ["train", "--config", "unk_nested.yaml"], "'algo_config.bar'"),
    ("yaml-list", ["train", "--config", "list.yaml"], "list.yaml"),
    ("yaml-missing", ["train", "--config", "nope.yaml"], "nope.yaml"),
    ("yaml-steps-str", ["train", "--config", "typo.yaml"], "'200'"),
    ("yaml-dir", ["train", "--config", "emptydir"], "emptydir is a directory"),
    # ------------------------------------------------------------------ devices, threads
    *([] if CUDA else [("device-cuda", ["train", "--env", "dummy", "--device", "cuda"],
                        "'cuda'"),
                       ("device-cuda7", ["train", "--env", "dummy", "--device", "cuda:7"],
                        "'cuda:7'")]),
    ("device-weird", ["train", "--env", "dummy", "--device", "weird"], "'weird'"),
    ("device-mps", ["train", "--env", "dummy", "--device", "mps"], "'mps'"),
    ("threads-0", ["train", "--env", "dummy", "--threads", "0"], "'0'"),
    ("threads-neg", ["train", "--env", "dummy", "--threads", "-2"], "'-2'"),
    ("threads-1000", ["train", "--env", "dummy", "--threads", "1000"], "'1000'"),
    # ------------------------------------------------------------------ evaluate
    ("eval-missing", ["evaluate", "nope_dir"], "nope_dir"),
    ("eval-empty", ["evaluate", "emptydir"], "emptydir"),
    ("eval-no-ckpt", ["evaluate", "nockpt"], "holds no checkpoint"),
    ("eval-episodes-0", ["evaluate", "run", "--episodes", "0"], "episodes=0"),
    ("eval-device", ["evaluate", "run", "--device", "weird"], "'weird'"),
    ("eval-file", ["evaluate", "afile"], "afile"),
    ("eval-bad-json", ["evaluate", "badjson"], "run.json"),
    ("eval-all-zero", ["evaluate", "allzero"], "holds no readable checkpoint"),
    ("eval-other-algo", ["evaluate", "otheralgo_only"], "'vdn'"),
    ("eval-no-learner", ["evaluate", "nolearner"], "lacks 'learner'"),
    ("eval-evil", ["evaluate", "evil_only"], "unreadable"),
    ("eval-episodes-str", ["evaluate", "run", "--episodes", "x"], "'x'"),
    # ------------------------------------------------------------------ resume, run dirs
    ("resume-no-dir", ["train", "--resume", "--env", "dummy"], "--resume needs --run-dir"),
    ("resume-missing", ["train", "--run-dir", "r1", "--resume", "--env", "dummy"],
     "r1: it does not exist"),
    ("resume-file", ["train", "--run-dir", "afile", "--resume"], "afile: it is not a directory"),
    ("resume-changed-lr", ["train", "--run-dir", "run", "--resume", "algo_config.lr=0.01"],
     "algo_config.lr"),
    ("resume-changed-algo", ["train", "--run-dir", "run", "--resume", "--algo", "vdn"],
     "algo: checkpoint has 'qmix'"),
    ("resume-all-zero", ["train", "--run-dir", "allzero", "--resume"],
     "holds no readable checkpoint"),
    ("resume-other-algo", ["train", "--run-dir", "otheralgo", "--resume"], "'vdn'"),
    ("resume-no-fingerprint", ["train", "--run-dir", "nolearner", "--resume"],
     "lacks 'fingerprint'"),
    ("resume-evil", ["train", "--run-dir", "evil_only", "--resume"], "unreadable"),
    ("resume-bad-json", ["train", "--run-dir", "badjson", "--resume"], "run.json"),
    ("resume-no-ckpt", ["train", "--run-dir", "nockpt", "--resume"], "no checkpoint"),
    ("resume-empty-dir", ["train", "--run-dir", "emptydir", "--resume", "--env", "dummy"],
     "no checkpoint"),
    ("overwrite", ["train", "--run-dir", "run", "--env", "dummy"], "already holds a run"),
    ("run-dir-file", ["train", "--run-dir", "afile", "--env", "dummy"], "afile"),
    ("locked", ["train", "--run-dir", "run", "--resume", "--steps", "80"], "in use by another"),
]  # fmt: skip


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under `root` with a hash of its bytes ('dir' for a directory)."""
    return {
        str(p.relative_to(root)): "dir"
        if p.is_dir()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
    }


def _argv(argv: list[str]) -> list[str]:
    if argv[0] != "train":
        return argv
    common = C if "--device" not in argv else [x for x in C if x not in ("--device", "cpu")]
    if "--run-dir" in argv or "--resume" in argv:
        return [*argv, *common]
    return [*argv, "--run-dir", "new_run", *common]


def test_the_table_is_big_enough():
    assert len(CASES) >= 60
    assert len({case_id for case_id, _, _ in CASES}) == len(CASES)


@pytest.mark.timeout(120)  # a case the CLI wrongly accepts would train a default run: fail it
@pytest.mark.parametrize(("argv", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(argv, needle, fixtures, tmp_path, monkeypatch,
                                                   capsys):  # fmt: skip
    work = tmp_path / "work"
    shutil.copytree(fixtures, work)
    monkeypatch.chdir(work)
    argv = _argv(argv)
    lock = None
    if "in use by another" in needle:  # another writer holds the run
        from mmsa_marl_core.training.run_lock import RunLock

        lock = RunLock(work / "run")
        lock.acquire()
    before = _snapshot(work)
    try:
        try:
            status = main(argv)
        except SystemExit as exit_:  # argparse
            status = exit_.code
    finally:
        if lock is not None:
            after_locked = _snapshot(work)
            lock.release()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mmsa {argv[0]}: error: "), lines[0]
    assert needle in lines[0], lines[0]
    assert (after_locked if lock is not None else _snapshot(work)) == before
    assert not (work / "PWNED").exists()


CONSOLE_CASES = [
    (["train", "--run-dir", "n1", "--env", "dummy", "env_kwargs.foo=1", *C], "'env_kwargs.foo'"),
    (["train", "--run-dir", "n2", "--env", "smacv2:protoss_5_vs_5", *C], "smacv2 is not installed"),
    (["evaluate", "allzero"], "holds no readable checkpoint"),
    (["train", "--run-dir", "nockpt", "--resume", *C], "no checkpoint"),
]  # fmt: skip


@pytest.mark.slow  # four fresh interpreters, two at a time (~10 s)
def test_console_script_prints_one_line(fixtures, tmp_path):
    exe = Path(sys.executable).with_name("mmsa")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "flows.cli"]
    work = tmp_path / "work"
    shutil.copytree(fixtures, work)
    before = _snapshot(work)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for pair in (CONSOLE_CASES[:2], CONSOLE_CASES[2:]):
        procs = [
            (subprocess.Popen([*cmd, *argv], cwd=work, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True), needle)
            for argv, needle in pair
        ]  # fmt: skip
        for proc, needle in procs:
            _, err = proc.communicate(timeout=120)
            lines = [line for line in err.splitlines() if line.strip()]
            assert proc.returncode == 2, err
            assert len(lines) == 1 and needle in lines[0], err
            assert "Traceback" not in err
    assert _snapshot(work) == before
    json.loads((work / "run" / "run.json").read_text())  # still a run
