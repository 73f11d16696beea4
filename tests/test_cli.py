"""`mmsa` command line: config layering, errors by name, and a tiny real run end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import (
    DEFAULT_PRESET,
    build_parser,
    default_run_dir,
    main,
    resolve_device,
    train_config_from_args,
)
from flows.config import build_train_config, load_yaml, merge, parse_overrides

TINY = [
    "--env", "dummy", "--steps", "120", "--seed", "3", "--device", "cpu", "--no-progress",
    "n_envs=2", "batch_size=4", "buffer_size=20", "eval_episodes=3", "eval_every=60",
    "log_every=30", "checkpoint_every=60", "algo_config.agent_hidden=8",
    "algo_config.mixer_embed_dim=4", "algo_config.hypernet_hidden=8",
]  # fmt: skip


def test_parse_overrides_and_merge():
    got = parse_overrides(["algo_config.lr=3e-4", "n_envs=4", "env_processes=true", "env=dummy"])
    assert got == {"algo_config": {"lr": 3e-4}, "n_envs": 4, "env_processes": True, "env": "dummy"}
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["n_envs"])
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["a..b=1"])


def test_config_layers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("env: dummy\nsteps: 50\nalgo_config:\n  lr: 0.1\n  gamma: 0.9\n")
    assert load_yaml(path)["steps"] == 50
    config = build_train_config(
        config_file=path,
        overrides=["algo_config.lr=0.2", "seed=7"],
        steps=99,
        base={"n_envs": 3, "algo_config": {"agent_hidden": 16}},
    )
    assert (config.env, config.steps, config.seed, config.n_envs) == ("dummy", 99, 7, 3)
    assert (config.algo_config.lr, config.algo_config.gamma, config.algo_config.agent_hidden) == (
        0.2,
        0.9,
        16,
    )
    with pytest.raises(ValueError, match="algo_config.lrr"):
        build_train_config(overrides=["algo_config.lrr=1"])
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        load_yaml(tmp_path / "bad.yaml")


def test_no_arguments_use_the_embedded_preset():
    config = train_config_from_args(build_parser().parse_args(["train"]))
    assert config.env == DEFAULT_PRESET["env"] and config.algo == "qmix"
    assert config.algo_config.gamma == DEFAULT_PRESET["algo_config"]["gamma"]
    assert config.steps == DEFAULT_PRESET["steps"]
    vdn = train_config_from_args(build_parser().parse_args(["train", "--algo", "vdn", "seed=4"]))
    assert (vdn.algo, vdn.seed, vdn.env) == ("vdn", 4, DEFAULT_PRESET["env"])
    other = train_config_from_args(build_parser().parse_args(["train", "--env", "dummy"]))
    assert other.env == "dummy" and other.algo_config.gamma == 0.99  # generic defaults


def test_device_and_run_dir_names():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError, match="not allowed"):
        resolve_device("tpu")
    d = default_run_dir("lbf:Foraging-5x5-2p-1f-v3", "qmix", 2)
    assert d.parent == Path("runs/lbf_Foraging-5x5-2p-1f-v3/qmix") and d.name.startswith("seed2-")
    d = default_run_dir("dummy", "mmsa", 0, root="out", label="mmsa-no_sale")
    assert d.parent == Path("out/dummy/mmsa-no_sale")


def test_bad_input_exits_with_a_named_error(tmp_path, capsys):
    assert main(["train", "--env", "dummy", "--run-dir", str(tmp_path), "n_envz=2"]) == 2
    assert "unknown config key 'n_envz'" in capsys.readouterr().err
    assert main(["train", "--resume"]) == 2
    assert "--resume needs --run-dir" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "nothing is not a run directory: it has no run.json" in capsys.readouterr().err


def test_train_evaluate_resume_smoke(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", *TINY, "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert f"results in {run_dir}" in out and "final evaluation: return_mean" in out
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished" and info["config"]["seed"] == 3
    assert info["config"]["algo_config"]["agent_hidden"] == 8
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["kind"] == "eval"
    # TensorBoard's first group (alphabetical) holds what the policy achieves, not counters.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    tags = events.Tags()["scalars"]
    first = min(t.split("/")[0] for t in tags)
    assert first == "eval"
    assert {t for t in tags if t.startswith("eval/")} >= {"eval/return_mean", "eval/return_std"}
    assert not {t for t in tags if t.startswith("eval/")} & {"eval/episodes", "eval/updates"}
    assert {"progress/eval_updates", "progress/train_wall_s", "train/loss"} <= set(tags)
    final = events.Scalars("eval/return_mean")[-1]
    assert final.step == lines[-1]["env_steps"]
    assert abs(final.value - lines[-1]["return_mean"]) < 1e-6

    assert main(["evaluate", str(run_dir), "--episodes", "2", "--device", "cpu"]) == 0
    said = capsys.readouterr()
    metrics = json.loads(said.out)
    assert metrics["n_episodes"] == 2 and "return_mean" in metrics
    saved = json.loads((run_dir / "evaluation.json").read_text())  # written, as the flow does
    assert saved["return_mean"] == metrics["return_mean"] and saved["episodes"] == 2
    assert "evaluation.json" in said.err

    # --resume with a bigger budget reuses the run's stored config (only --steps changes)
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--steps", "180",
                 "--device", "cpu", "--no-progress"]) == 0  # fmt: skip
    info = json.loads((run_dir / "run.json").read_text())
    assert info["env_steps"] >= 180 and info["config"]["algo_config"]["agent_hidden"] == 8
    assert main(["train", *TINY, "--run-dir", str(run_dir)]) == 2  # exists, no --resume
    assert "pass resume=True" in capsys.readouterr().err
    assert info["torch_threads"] == 1  # the default of --threads


def test_threads_option_sets_and_records_torch_threads(tmp_path, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        assert main(["train", *TINY, "--threads", "2", "--run-dir", str(tmp_path / "r")]) == 0
        assert torch.get_num_threads() == 2
        assert json.loads((tmp_path / "r" / "run.json").read_text())["torch_threads"] == 2
    finally:
        torch.set_num_threads(before)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["train", *TINY, "--threads", "0"])
    assert "--threads: '0' is not a positive integer" in capsys.readouterr().err


@pytest.mark.slow  # listing every backend imports jax for smax (~25 s here)
def test_console_script_and_envs_listing():
    exe = Path(sys.executable).with_name("mmsa")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "flows.cli"]
    proc = subprocess.run([*cmd, "train", "--help"], capture_output=True, text=True, check=True)
    for flag in ("--env", "--algo", "--steps", "--seed", "--device", "--config", "--run-dir",
                 "--resume", "key=value"):  # fmt: skip
        assert flag in proc.stdout
    from flows.cli import list_envs

    lines = list_envs()
    assert any(line.startswith("dummy") and "3 ids" in line for line in lines)


def test_ablation_flag_sets_the_mmsa_ablation_and_needs_mmsa(capsys):
    args = build_parser().parse_args(["train", "--env", "dummy", "--algo", "mmsa", "--ablation",
                                      "no_sale"])  # fmt: skip
    assert train_config_from_args(args).algo_config.ablation == "no_sale"
    assert main(["train", "--env", "dummy", "--algo", "qmix", "--ablation", "no_wm"]) == 2
    assert "--ablation no_wm needs --algo mmsa" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--algo", "mmsa", "--ablation", "no_mixer"])


def test_mmsa_on_continuous_actions_builds_the_actor_critic_learner():
    import torch

    from mmsa_envs import make
    from mmsa_marl_core import get_algo
    from mmsa_marl_core.learners.mmsa_continuous import MMSAContinuousLearner
    from mmsa_marl_core.learners.mmsa_learner import MMSALearner

    args = build_parser().parse_args(["train", "--env", "dummy:continuous", "--algo", "mmsa"])
    config = train_config_from_args(args)
    spec = make("dummy:continuous").spec
    factory = get_algo("mmsa").factory
    assert isinstance(factory(spec, config.algo_config, torch.device("cpu")), MMSAContinuousLearner)
    discrete = factory(make("dummy").spec, config.algo_config, torch.device("cpu"))
    assert isinstance(discrete, MMSALearner)


def test_envs_and_deployments_listings_are_short_and_quiet():
    from flows.serve import DEPLOYMENTS

    exe = Path(sys.executable).with_name("mmsa")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "flows.cli"]
    out = subprocess.run([*cmd, "envs", "--all"], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert not any("Importing submoduled" in x for x in lines)  # a backend's import chatter
    assert len(lines) < 80  # LBF's 1921 ids are a pattern and examples, not 1921 lines
    assert any("Foraging-[2s-]<W>x<H>-<P>p-<F>f[-coop]-v3" in x for x in lines)
    assert any(x.startswith("    smax:3m") for x in lines)  # other backends: every id
    smacv2 = [x for x in lines if x.startswith("smacv2")]
    if smacv2 and "not installed" in smacv2[0]:
        assert "mmsa-envs[smacv2]" not in smacv2[0] and "git+https://" in smacv2[0]
    listed = subprocess.run([*cmd, "deployments"], capture_output=True, text=True, check=True)
    names = [x.split()[0] for x in listed.stdout.splitlines()]
    assert names == list(DEPLOYMENTS)
