"""Entry points of the DVC stages (dvc.yaml): `python -m flows.stages <stage> ...`.

    python -m flows.stages profile smoke|lbf-cpu|paper|ci  # compose params.yaml (as `dvc exp run`)
    python -m flows.stages check                        # can every cell of params.yaml train?
    python -m flows.stages collect  --task T
    python -m flows.stages train    --task T --algo A --seed S
    python -m flows.stages evaluate --task T --algo A --seed S
    python -m flows.stages report

Every stage reads `params.yaml` in the current directory (the repository root, where DVC runs
them) and writes under `results/<profile>/` (paths below), so the results of each profile live
side by side. They call the same plain functions as the Prefect flows, without Prefect: a stage
is one short process and needs no server.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "StagePaths",
    "check_profile",
    "compose_params",
    "load_params",
    "main",
    "paths",
    "train_config",
]

PARAMS_FILE = Path("params.yaml")
CONF_DIR = Path(__file__).resolve().parent / "conf"


@dataclass(frozen=True)
class StagePaths:
    """Where the stages of one profile read and write (relative to the repository root)."""

    root: Path

    def run_dir(self, task: str, algo: str, seed: int) -> Path:
        return self.root / "runs" / task / algo / f"seed{seed}"

    def evaluation(self, task: str, algo: str, seed: int) -> Path:
        return self.root / "eval" / task / algo / f"seed{seed}.json"

    def dataset(self, task: str) -> Path:
        return self.root / "data" / f"{task}.npz"

    @property
    def report(self) -> Path:
        return self.root / "report"


def paths(profile: str) -> StagePaths:
    return StagePaths(Path("results") / profile)


def compose_params(profile: str, overrides: Sequence[str] = (), out: Path = PARAMS_FILE) -> Path:
    """Write `out` from flows/conf with Hydra, exactly as `dvc exp run -S profile=...` does."""
    from dvc.utils.hydra import compose_and_dump

    available = sorted(p.stem for p in (CONF_DIR / "profile").glob("*.yaml"))
    if profile not in available:
        raise ValueError(f"profile {profile!r} does not exist; available: {available}")
    compose_and_dump(
        out, str(CONF_DIR), None, "config", str(Path.cwd()), [f"profile={profile}", *overrides]
    )
    return out


def load_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run the stages from the repository root, or create it with "
            "`python -m flows.stages profile smoke`"
        )
    params = yaml.safe_load(path.read_text())
    for key in ("profile", "tasks", "algos", "seeds", "task_defs", "algo_defs", "train"):
        if key not in params:
            raise ValueError(f"{path} has no {key!r}; regenerate it with flows.stages profile")
    return params


def _lookup(params: Mapping[str, Any], table: str, name: str) -> Mapping[str, Any]:
    defs = params[table]
    if name not in defs:
        raise ValueError(f"{name!r} is not in {table} of params.yaml; defined: {sorted(defs)}")
    return defs[name]


def train_config(params: Mapping[str, Any], task: str, algo: str, seed: int) -> Any:
    """The validated TrainConfig of one matrix cell: profile, task and algo overrides merged."""
    from .training import build_config, merge_overrides

    task_def = _lookup(params, "task_defs", task)
    algo_def = _lookup(params, "algo_defs", algo)
    overrides = merge_overrides(
        params["train"].get("overrides") or {},
        task_def.get("overrides") or {},
        algo_def.get("overrides") or {},
    )
    return build_config(
        env=task_def["env"],
        algo=algo_def["algo"],
        steps=int(task_def["steps"]),
        seed=seed,
        base={"env_kwargs": task_def.get("env_kwargs") or {}},
        overrides=overrides,
    )


def check_profile(params: Mapping[str, Any]) -> None:
    """Refuse a profile before anything trains: `ValueError` naming the first task or (task,
    algo) cell that cannot run: an env id its backend lacks or a backend that is not installed,
    a bad config key or value, or an algorithm with no learner for the task's env (its action
    kind, or an entity layout it needs). Builds each task's env once and each algorithm's
    learner on its spec, on the CPU, and discards them; the collect and train stages call it,
    so one bad cell stops every stage of the profile."""
    import torch

    from mmsa_envs import MissingBackendError, make
    from mmsa_marl_core import get_algo

    profile = params.get("profile")
    for task in params["tasks"]:
        task_def = _lookup(params, "task_defs", task)
        try:
            env = make(task_def["env"], **(task_def.get("env_kwargs") or {}))
        except (ValueError, TypeError, MissingBackendError) as err:
            raise ValueError(f"profile {profile!r}, task {task!r}: {err}") from None
        try:
            spec = env.spec
        finally:
            env.close()
        for algo in params["algos"]:
            try:
                config = train_config(params, task, algo, 0)
                get_algo(config.algo).factory(spec, config.algo_config, torch.device("cpu"))
            except (ValueError, TypeError) as err:
                raise ValueError(
                    f"profile {profile!r}: algo {algo!r} cannot train on task {task!r} "
                    f"({task_def['env']}): {err}"
                ) from None


def _should_resume(run_dir: Path, config_dict: Mapping[str, Any]) -> bool:
    """Resume an interrupted run of the same config (its checkpoints persist across repro);
    anything else in the run directory is stale and removed: this stage starts afresh."""
    import json

    from mmsa_marl_core.training.run_lock import remove_run_dir

    run_json = run_dir / "run.json"
    if run_json.is_file():
        meta = json.loads(run_json.read_text())
        same = meta.get("config") == config_dict
        if same and meta.get("status") != "finished" and any(run_dir.glob("checkpoints/*.pt")):
            return True
    remove_run_dir(run_dir)  # refused while another process writes to it
    return False


# --------------------------------------------------------------------------- stages
def stage_collect(params: Mapping[str, Any], task: str) -> Path:
    from .collect import collect_episodes, save_dataset

    check_profile(params)
    task_def = _lookup(params, "task_defs", task)
    spec = params.get("collect") or {}
    data = collect_episodes(
        task_def["env"],
        episodes=int(spec.get("episodes", 64)),
        seed=int(spec.get("seed", 0)),
        env_kwargs=task_def.get("env_kwargs") or {},
    )
    return save_dataset(data, paths(params["profile"]).dataset(task))


def stage_train(params: Mapping[str, Any], task: str, algo: str, seed: int) -> Path:
    from mmsa_marl_core import config_to_dict

    from .training import run_training

    check_profile(params)
    config = train_config(params, task, algo, seed)
    run_dir = paths(params["profile"]).run_dir(task, algo, seed)
    resume = _should_resume(run_dir, config_to_dict(config))
    return run_training(
        config,
        run_dir,
        device=str(params["train"].get("device", "auto")),
        resume=resume,
        task=task,
        variant=algo,
        torch_threads=params["train"].get("torch_threads"),
    )


def stage_evaluate(params: Mapping[str, Any], task: str, algo: str, seed: int) -> Path:
    from .training import run_evaluation

    spec = params.get("evaluate") or {}
    where = paths(params["profile"])
    out = where.evaluation(task, algo, seed)
    run_evaluation(
        where.run_dir(task, algo, seed),
        episodes=int(spec.get("episodes", 32)),
        device=str(spec.get("device", "auto")),
        out=out,
    )
    return out


def stage_report(params: Mapping[str, Any]) -> Path:
    from .report import ReportConfig, build_report, write_report

    where = paths(params["profile"])
    cells = [
        (t, a, int(s)) for t in params["tasks"] for a in params["algos"] for s in params["seeds"]
    ]
    run_dirs = [where.run_dir(*cell) for cell in cells]
    evaluations = {where.run_dir(*c): where.evaluation(*c) for c in cells}
    baselines = {t: where.dataset(t) for t in params["tasks"] if where.dataset(t).is_file()}
    spec = params.get("report") or {}
    config = ReportConfig(
        reps=int(spec.get("reps", 2000)),
        curve_reps=int(spec.get("curve_reps", 500)),
        seed=int(spec.get("seed", 0)),
    )
    report = build_report(run_dirs, baselines=baselines, evaluations=evaluations, config=config)
    title = f"MMSA results: {params['profile']} profile"
    return write_report(report, where.report, title=title)["markdown"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.stages", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="stage", required=True)
    profile = sub.add_parser("profile", help="compose params.yaml from flows/conf")
    profile.add_argument("name")
    profile.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. 'seeds=[0,1,2]'")
    sub.add_parser("collect").add_argument("--task", required=True)
    for name in ("train", "evaluate"):
        cell = sub.add_parser(name)
        cell.add_argument("--task", required=True)
        cell.add_argument("--algo", required=True)
        cell.add_argument("--seed", type=int, required=True)
    sub.add_parser("report")
    sub.add_parser("check", help="refuse params.yaml if any cell cannot train")
    args = parser.parse_args(argv)
    try:
        if args.stage == "profile":
            written = compose_params(args.name, args.overrides)
        else:
            params = load_params()
            if args.stage == "collect":
                written = stage_collect(params, args.task)
            elif args.stage == "train":
                written = stage_train(params, args.task, args.algo, args.seed)
            elif args.stage == "check":
                check_profile(params)
                print(f"profile {params['profile']!r}: every cell can train")
                return 0
            elif args.stage == "evaluate":
                written = stage_evaluate(params, args.task, args.algo, args.seed)
            else:
                written = stage_report(params)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
