"""Unit tests of the flows' building blocks that need no server and no training run."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from flows.collect import collect_episodes, load_dataset, random_policy, save_dataset
from flows.runners import gpu_annotation, make_task_runner
from flows.stages import (
    CONF_DIR,
    _should_resume,
    check_profile,
    compose_params,
    paths,
    train_config,
)
from flows.training import build_config, choose_device, default_run_dir, merge_overrides, nest


# ----------------------------------------------------------------------------- config layers
def test_nest_and_merge_overrides() -> None:
    assert nest({"a.b": 1, "a": {"c": 2}, "d": 3}) == {"a": {"b": 1, "c": 2}, "d": 3}
    merged = merge_overrides(
        {"algo_config.lr": 0.1, "steps": 5},
        {"algo_config": {"lr": 0.2, "gamma": 0.9}},
        {"steps": 7},
    )
    assert merged == {"algo_config": {"lr": 0.2, "gamma": 0.9}, "steps": 7}
    with pytest.raises(ValueError, match="dotted name"):
        nest({"a..b": 1})
    with pytest.raises(ValueError, match="descends into 'a'"):
        nest({"a": 1, "a.b": 2})


def test_build_config_layers_and_rejects_bad_keys() -> None:
    config = build_config(
        env="dummy",
        algo="vdn",
        steps=123,
        seed=4,
        base={"n_envs": 2, "algo_config": {"lr": 0.5}},
        overrides={"algo_config.gamma": 0.5},
    )
    assert (config.env, config.algo, config.steps, config.seed, config.n_envs) == (
        "dummy",
        "vdn",
        123,
        4,
        2,
    )
    assert config.algo_config.lr == 0.5 and config.algo_config.gamma == 0.5
    with pytest.raises(ValueError, match="algo_config.not_a_key"):
        build_config(overrides={"algo_config.not_a_key": 1})


def test_choose_device() -> None:
    import torch

    assert choose_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert choose_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="'gpu' is not allowed"):
        choose_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            choose_device("cuda")


def test_default_run_dir_is_path_safe(tmp_path: Path) -> None:
    run = default_run_dir(tmp_path, "lbf:Foraging-5x5-2p-1f-v3", "qmix", 3)
    assert run.parent == tmp_path / "lbf_Foraging-5x5-2p-1f-v3" / "qmix"
    assert run.name.startswith("seed3-")


# ----------------------------------------------------------------------------- collect
def test_collect_dummy_shapes_masks_and_returns(tmp_path: Path) -> None:
    data = collect_episodes("dummy", episodes=4, seed=1)
    e, t, n, o, s, a = 4, 5, 3, 7, 11, 6  # dummy: limit 5, N=3, O=7, S=11, A=6
    assert data["obs"].shape == (e, t + 1, n, o)
    assert data["state"].shape == (e, t + 1, s)
    assert data["avail_actions"].shape == (e, t + 1, n, a)
    assert data["action"].shape == (e, t, n) and data["action"].dtype == np.int64
    lengths = data["episode_length"]
    assert np.array_equal(data["mask"].sum(axis=1), lengths)
    np.testing.assert_allclose(data["reward"].sum(axis=1), data["episode_return"], rtol=1e-6)
    # Every taken action was available at its step (the random policy respects the mask).
    taken = np.take_along_axis(data["avail_actions"][:, :-1], data["action"][..., None], -1)
    assert taken[..., 0][data["mask"]].all()
    again = collect_episodes("dummy", episodes=4, seed=1)
    assert np.array_equal(again["action"], data["action"])  # seeded
    arrays, meta = load_dataset(save_dataset(data, tmp_path / "d.npz"))
    assert meta["env"] == "dummy" and meta["episodes"] == 4 and meta["policy"] == "random"
    assert np.array_equal(arrays["obs"], data["obs"])
    with pytest.raises(ValueError, match="must end in .npz"):
        save_dataset(data, tmp_path / "d.zip")
    with pytest.raises(ValueError, match="episodes=0"):
        collect_episodes("dummy", episodes=0)


def test_random_policy_continuous_stays_in_bounds() -> None:
    data = collect_episodes("dummy:continuous", episodes=2, seed=0)
    assert data["action"].shape == (2, 5, 3, 6)
    assert data["action"].min() >= -1.0 and data["action"].max() <= 1.0

    class Spec:
        discrete = True

    act = random_policy(Spec())
    avail = np.zeros((3, 6), bool)
    avail[:, 4] = True
    assert act(np.zeros((3, 7)), avail, np.random.default_rng(0)).tolist() == [4, 4, 4]


# ----------------------------------------------------------------------------- runners
def test_task_runner_choice() -> None:
    from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    assert isinstance(make_task_runner("threads", max_workers=2), ThreadPoolTaskRunner)
    assert isinstance(make_task_runner("processes"), ProcessPoolTaskRunner)
    runner = make_task_runner("dask", dask_address="tcp://127.0.0.1:8786")
    assert isinstance(runner, DaskTaskRunner) and runner.address == "tcp://127.0.0.1:8786"
    with pytest.raises(ValueError, match="needs dask_address"):
        make_task_runner("dask")
    with pytest.raises(ValueError, match="'ray' is not allowed"):
        make_task_runner("ray")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_workers=0"):
        make_task_runner("threads", max_workers=0)


def test_gpu_annotation_only_for_dask() -> None:
    import dask

    with gpu_annotation("dask", 1):
        assert dask.get_annotations() == {"resources": {"GPU": 1}}
    with gpu_annotation("threads", 1):
        assert dask.get_annotations() == {}
    with pytest.raises(ValueError, match="gpus_per_run=-1"):
        gpu_annotation("dask", -1)


# ----------------------------------------------------------------------------- flow parameters
def test_flow_parameters_are_validated_by_prefect() -> None:
    from prefect.exceptions import ParameterTypeError

    from flows.flows import ablate_flow, report_flow, train_flow

    ok = train_flow.validate_parameters({"steps": 10, "device": "cpu"})
    assert ok["steps"] == 10
    for bad, name in (({"steps": -1}, "steps"), ({"device": "gpu"}, "device")):
        with pytest.raises(ParameterTypeError, match=name):
            train_flow.validate_parameters(bad)
    with pytest.raises(ParameterTypeError, match="variants.a.bad"):
        ablate_flow.validate_parameters({"variants": {"a": {"algo": "qmix", "bad": 1}}})
    with pytest.raises(ParameterTypeError, match="runner"):
        ablate_flow.validate_parameters({"variants": {"a": {"algo": "qmix"}}, "runner": "ray"})
    with pytest.raises(ParameterTypeError, match="seeds"):
        ablate_flow.validate_parameters({"variants": {"a": {"algo": "qmix"}}, "seeds": []})
    with pytest.raises(ParameterTypeError, match="reps"):
        report_flow.validate_parameters({"reps": 0})


# ----------------------------------------------------------------------------- DVC stages
def test_lbf_cpu_profile_trains_what_bench_mmsa_lbf_trains(tmp_path: Path) -> None:
    """The lbf-cpu profile regenerates the README's LBF table: every cell's TrainConfig is the
    one `bench/mmsa_lbf.py` builds at its 200k-step settings, variant for variant."""
    import argparse
    import importlib.util

    from mmsa_marl_core import config_from_dict, config_to_dict

    spec = importlib.util.spec_from_file_location("bench_mmsa_lbf", "bench/mmsa_lbf.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = argparse.Namespace(
        steps=200_000, ablation_steps=0, n_envs=8, updates_per_episode=0.5, gamma=0.9,
        epsilon_anneal_steps=100_000, set=[],
    )  # fmt: skip
    params = yaml.safe_load(compose_params("lbf-cpu", out=tmp_path / "p.yaml").read_text())
    assert params["algos"] == ["mmsa", "qmix", "vdn", *(f"mmsa-{a}" for a in bench.ABLATIONS)]
    assert params["seeds"] == [0, 1, 2, 3, 4]
    (task,) = params["tasks"]
    env = params["task_defs"][task]["env"]
    for variant in params["algos"]:
        for seed in (0, 4):
            ours = config_to_dict(train_config(params, task, variant, seed))
            theirs = config_to_dict(config_from_dict(bench.run_config(args, env, variant, seed)))
            assert ours == theirs, variant


def test_profiles_compose_and_build_valid_configs(tmp_path: Path) -> None:
    profiles = sorted(p.stem for p in (CONF_DIR / "profile").glob("*.yaml"))
    assert {"smoke", "paper", "paper-smax", "ci", "lbf-cpu", "smax-cpu", "mamujoco-cpu"} <= set(
        profiles
    )
    for profile in profiles:
        out = compose_params(profile, out=tmp_path / f"{profile}.yaml")
        params = yaml.safe_load(out.read_text())
        assert params["profile"] == profile
        for task in params["tasks"]:
            for algo in params["algos"]:
                config = train_config(params, task, algo, 0)
                assert config.env == params["task_defs"][task]["env"]
                assert config.steps == params["task_defs"][task]["steps"]
    smax = yaml.safe_load((tmp_path / "smax-cpu.yaml").read_text())
    assert {d["env"] for d in smax["task_defs"].values()} == {"smax:smacv2_5_units", "smax:3m"}
    assert {d["steps"] for d in smax["task_defs"].values()} == {300_000}
    assert {"qmix", "vdn", "mmsa", "hpn_qmix"} <= set(smax["algos"]) and len(smax["seeds"]) == 3
    assert train_config(smax, "smax-3m", "hpn_qmix", 2).algo_config.target_update_interval == 40
    mamujoco = yaml.safe_load((tmp_path / "mamujoco-cpu.yaml").read_text())
    cheetah = train_config(mamujoco, "mamujoco-halfcheetah-2x3", "facmac", 0)
    assert (cheetah.env, cheetah.steps, cheetah.update_every) == (
        "mamujoco:HalfCheetah-2x3",
        300_000,
        "step",
    )
    assert cheetah.env_kwargs == {"max_episode_steps": 100} and len(mamujoco["seeds"]) == 3
    assert set(mamujoco["algos"]) == {"mmsa_continuous", "facmac"}
    check_profile(mamujoco)  # both learners build on the continuous env
    paper = yaml.safe_load((tmp_path / "paper.yaml").read_text())
    assert {d["steps"] for d in paper["task_defs"].values()} == {2_000_000}
    assert train_config(paper, paper["tasks"][0], "mmsa-no_sale", 1).algo_config.ablation == (
        "no_sale"
    )
    paper_smax = yaml.safe_load((tmp_path / "paper-smax.yaml").read_text())
    cell = train_config(paper_smax, "smax-smacv2-5-units", "hpn_qmix", 4)
    assert (cell.env, cell.steps, cell.algo_config.epsilon_anneal_steps) == (
        "smax:smacv2_5_units",
        5_000_000,
        100_000,
    )
    assert set(paper_smax["algos"]) == {"mmsa", "qmix", "vdn", "hpn_qmix"}
    check_profile(paper_smax)  # HPN-QMIX finds SMAX's entity layout
    with pytest.raises(ValueError, match="profile 'nope' does not exist"):
        compose_params("nope", out=tmp_path / "x.yaml")
    with pytest.raises(ValueError, match="'nope' is not in task_defs"):
        train_config(paper, "nope", "qmix", 0)


def test_committed_params_yaml_is_the_composed_smoke_profile(tmp_path: Path) -> None:
    """`dvc exp run` recomposes params.yaml; the committed one must equal that (no diff)."""
    root = Path(__file__).resolve().parents[1]
    composed = compose_params("smoke", out=tmp_path / "params.yaml")
    assert (root / "params.yaml").read_text() == composed.read_text()


def test_should_resume_only_unfinished_same_config(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step_10.pt").write_bytes(b"x")
    meta = {"config": {"steps": 10}, "status": "running"}
    (run / "run.json").write_text(json.dumps(meta))
    assert _should_resume(run, {"steps": 10})
    assert run.exists()
    assert not _should_resume(run, {"steps": 20})  # other config: stale, removed
    assert not run.exists()
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step_10.pt").write_bytes(b"x")
    (run / "run.json").write_text(json.dumps(meta | {"status": "finished"}))
    assert not _should_resume(run, {"steps": 10})  # finished: the stage reruns from scratch
    assert not run.exists()
    assert paths("ci").run_dir("t", "a", 2) == Path("results/ci/runs/t/a/seed2")


def test_public_surface_of_the_flows_modules() -> None:
    import importlib

    expected = {
        "flows.collect": {"Policy", "collect_episodes", "collect_from_run", "load_dataset",
                          "random_policy", "save_dataset"},
        "flows.figures": {"plot_finals", "plot_learning_curves", "plot_quartile_curves"},
        "flows.flows": {"Variant", "ablate_flow", "collect_flow", "evaluate_flow", "render_flow",
                        "report_flow", "train_flow"},
        "flows.markdown": {"markdown_table", "report_markdown", "run_markdown"},
        "flows.report": {"Report", "ReportConfig", "build_report", "curve_table",
                         "final_scores", "main", "quartile_table", "random_baseline",
                         "write_report"},
        "flows.runners": {"RunnerKind", "gpu_annotation", "make_task_runner"},
        "flows.runs": {"EVALUATION_FILE", "LABELS_FILE", "RESULTS_FILE", "RunInfo", "find_runs",
                       "read_metrics", "read_run", "write_labels", "write_results"},
        "flows.serve": {"DEPLOYMENTS", "PROFILE_NAME", "ServerState", "deployments", "main",
                        "smoke_parameters", "start", "status", "stop"},
        "flows.stages": {"StagePaths", "check_profile", "compose_params", "load_params", "main",
                         "paths", "train_config"},
        "flows.stats": {"Estimate", "aggregate", "curve_band", "seeded_global_numpy"},
        "flows.testing": {"Served", "free_port", "served", "shared_served"},
        "flows.training": {"ProgressLines", "build_config", "choose_device", "default_run_dir",
                           "merge_overrides", "nest", "run_evaluation", "run_training"},
    }  # fmt: skip
    for name, names in expected.items():
        module = importlib.import_module(name)
        assert set(module.__all__) == names, name
        for attr in names:
            assert hasattr(module, attr), f"{name}.{attr}"


def test_deployments_use_module_entrypoints() -> None:
    """A file entrypoint (flows/flows.py:...) puts flows/ on sys.path in flow runs, where
    a flows module named like a standard-library one shadows it in spawned processes."""
    from flows.serve import DEPLOYMENTS, deployments

    built = deployments()
    assert sorted(f"{d.flow_name}/{d.name}" for d in built) == sorted(DEPLOYMENTS)
    for d in built:
        assert d.entrypoint.startswith("flows.flows.") and ".py" not in d.entrypoint


def test_smoke_deployments_take_the_smoke_profile(tmp_path: Path) -> None:
    from flows.flows import ablate_flow, train_flow
    from flows.serve import deployments

    params = yaml.safe_load(compose_params("smoke", out=tmp_path / "p.yaml").read_text())
    task = params["task_defs"][params["tasks"][0]]
    by_name = {f"{d.flow_name}/{d.name}": d.parameters for d in deployments()}
    train = by_name["mmsa-train/lbf-smoke"]
    assert (train["env"], train["steps"]) == (task["env"], task["steps"])
    assert train["overrides"]["algo_config"] == task["overrides"]["algo_config"]
    ablate = by_name["mmsa-ablate/lbf-smoke"]
    assert list(ablate["variants"]) == params["algos"] and ablate["seeds"] == params["seeds"]
    # Both are valid flow parameters and valid training configs.
    train_flow.validate_parameters(train)
    ablate_flow.validate_parameters(ablate)
    build_config(env=train["env"], algo="mmsa", steps=train["steps"], overrides=train["overrides"])


def test_stage_cli_names_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.stages import main

    monkeypatch.chdir(tmp_path)
    assert main(["report"]) == 2
    assert "params.yaml not found" in capsys.readouterr().err
    assert main(["profile", "ci"]) == 0 and (tmp_path / "params.yaml").is_file()
    assert main(["train", "--task", "nope", "--algo", "qmix", "--seed", "0"]) == 2
    assert "'nope' is not in task_defs" in capsys.readouterr().err
    assert main(["profile", "huge"]) == 2
    assert "profile 'huge' does not exist" in capsys.readouterr().err


def test_a_profile_that_cannot_train_is_refused_before_any_stage_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every cell of params.yaml is checked (env id, config, learner for the env) by the first
    collect or train stage: one bad cell stops the profile before anything trains."""
    from flows.stages import main, stage_train

    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load(compose_params("ci", out=tmp_path / "params.yaml").read_text())
    check_profile(params)  # the ci profile itself is fine
    bad_env = copy.deepcopy(params)
    bad_env["task_defs"]["dummy"]["env"] = "dummy:nope"
    with pytest.raises(ValueError, match=r"profile 'ci', task 'dummy': .*'nope'"):
        check_profile(bad_env)
    continuous = copy.deepcopy(params)
    continuous["task_defs"]["dummy"]["env"] = "dummy:continuous"
    with pytest.raises(
        ValueError, match=r"algo 'qmix' cannot train on task 'dummy' \(dummy:continuous\): .*"
    ):
        check_profile(continuous)
    entities = copy.deepcopy(params)
    entities["algos"] = ["qmix", "hpn"]
    entities["algo_defs"]["hpn"] = {"algo": "hpn_qmix", "overrides": {}}
    with pytest.raises(ValueError, match=r"algo 'hpn' cannot train on task 'dummy'.*entit"):
        check_profile(entities)
    bad_key = copy.deepcopy(params)
    bad_key["algo_defs"]["vdn"]["overrides"] = {"algo_config": {"nope": 1}}
    with pytest.raises(ValueError, match=r"algo 'vdn' cannot train.*nope"):
        check_profile(bad_key)
    # The valid cell (qmix) is refused too: nothing trains, nothing is written.
    with pytest.raises(ValueError, match="algo 'hpn'"):
        stage_train(entities, "dummy", "qmix", 0)
    assert not (tmp_path / "results").exists()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(continuous))
    assert main(["check"]) == 2
    assert "algo 'qmix' cannot train on task 'dummy'" in capsys.readouterr().err
    assert main(["collect", "--task", "dummy"]) == 2
    assert not (tmp_path / "results").exists()


def test_runs_without_a_progress_bar_print_progress_lines(tmp_path: Path, capsys) -> None:
    from flows.training import run_training

    small = {"agent_hidden": 8, "mixer_embed_dim": 4, "hypernet_hidden": 8}
    tiny = {"n_envs": 2, "batch_size": 4, "buffer_size": 20, "eval_episodes": 2,
            "eval_every": 60, "log_every": 30, "checkpoint_every": 60,
            "algo_config": small}  # fmt: skip
    config = build_config(env="dummy", algo="qmix", steps=120, seed=4, overrides=tiny)
    run_training(config, tmp_path / "run", device="cpu", torch_threads=1)
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("[qmix dummy")]
    steps = [x for x in lines if "env steps (" in x]
    assert len(steps) >= 3  # one per log_every of a 120-step run
    assert "/120 env steps (" in steps[-1] and "env steps/s" in steps[-1]
    assert "(100%)" in steps[-1] and "0.0 min left" in steps[-1]
    assert any("eval at 120 env steps: greedy return" in x for x in lines)
