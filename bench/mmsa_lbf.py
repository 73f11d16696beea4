"""MMSA vs QMIX vs VDN on LBF at equal env steps, plus MMSA's four ablations on one map.

Every run is a real `mmsa_marl_core.train` run in `--runs-dir/<map>/<variant>/s<seed>`; the
script can be killed at any time and started again with the same arguments: finished runs are
skipped and unfinished ones resume exactly from their last checkpoint (a finished run is
extended when `--steps` grows). After every finished run
it rewrites `--out` (bench/results/mmsa_lbf.json) with the final greedy-evaluation return of
each run and, per (map, variant), the IQM over seeds with a stratified-bootstrap 95% interval
(rliable, through `flows.stats.aggregate`), next to the paper's 2M-step numbers, and draws it
(`plot`): `<out>.png`, every (map, variant)'s greedy return over env steps (IQM over seeds with a
pointwise bootstrap 95% band, the random policy dashed), and with ablations
`<out>_at_equal_steps.png`, each variant's return at the ablations' step budget (IQM, 95% CI).

    # background, resumable (same command to continue):
    nohup .venv/bin/python bench/mmsa_lbf.py > runs/mmsa_lbf.log 2>&1 &
    .venv/bin/python bench/mmsa_lbf.py --report-only     # rewrite the JSON from what finished
    .venv/bin/python bench/mmsa_lbf.py --set agent_head='"sale"' ...  # an MMSAConfig field A/B
    .venv/bin/python bench/mmsa_lbf.py --plot bench/results/mmsa_lbf_2m.json  # figures of a JSON
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

MAPS = ("lbf:Foraging-2s-8x8-2p-2f-coop-v3", "lbf:Foraging-10x10-3p-5f-v3")
ALGOS = ("mmsa", "qmix", "vdn")
ABLATIONS = ("no_wm", "no_sale", "no_klb", "no_gs")
PAPER_2M = {MAPS[0]: 0.93, MAPS[1]: 0.53}
"""Final MMSA returns the paper reports at 2M env steps (lbforaging v2 ids)."""


def variants(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """(map, variant, seed) in the order they run: seed-major, so that partial results cover
    every cell with as many seeds as possible."""
    out = []
    for seed in args.seeds:
        for env in args.maps:
            out += [(env, algo, seed) for algo in args.algos]
        if seed in args.ablation_seeds:
            out += [(args.maps[0], f"mmsa-{a}", seed) for a in args.ablations]
    return out


def run_config(args: argparse.Namespace, env: str, variant: str, seed: int) -> dict[str, Any]:
    """One run's TrainConfig as plain data; every variant shares the loop and QMIX settings."""
    algo, _, ablation = variant.partition("-")
    steps = args.ablation_steps if ablation and args.ablation_steps else args.steps
    algo_config: dict[str, Any] = {
        "gamma": args.gamma,  # 0.9: our LBF preset (mmsa_marl_core README, "Discount on LBF")
        "epsilon_anneal_steps": args.epsilon_anneal_steps,
        "standardise_rewards": True,  # EPyMARL's LBF setting
    }
    if algo == "mmsa":
        algo_config["ablation"] = ablation or "none"
        algo_config |= dict(args.set)
    return {
        "env": env,
        "algo": algo,
        "steps": steps,
        "seed": seed,
        "n_envs": args.n_envs,
        "batch_size": 32,
        "buffer_size": 5000,
        "updates_per_episode": args.updates_per_episode,
        "log_every": max(steps // 20, 1),
        "eval_every": max(args.steps // 10, 1),
        "eval_episodes": 32,
        "checkpoint_every": max(steps // 5, 1),
        "keep_checkpoints": 1,
        "algo_config": algo_config,
    }


def run_dir(args: argparse.Namespace, env: str, variant: str, seed: int) -> Path:
    return args.runs_dir / env.replace(":", "_") / variant / f"s{seed}"


def run_info(path: Path) -> dict[str, Any]:
    """A run's run.json ({} when it has none)."""
    info = path / "run.json"
    return json.loads(info.read_text()) if info.exists() else {}


def status(path: Path) -> str:
    return run_info(path).get("status", "absent")


def run_cpu(path: Path) -> str | None:
    """The CPU model a run trained on (run.json's `cpu_kernels.cpu`; None for runs without it)."""
    return (run_info(path).get("cpu_kernels") or {}).get("cpu")


def run_cpus(paths: list[Path]) -> list[str]:
    """The distinct CPU models the finished runs among `paths` trained on."""
    return sorted({c for p in paths if status(p) == "finished" and (c := run_cpu(p))})


def done_steps(path: Path) -> int:
    """Env steps a run has recorded in run.json (0 when it has none)."""
    return int(run_info(path).get("env_steps", 0))


def one_run(job: tuple[dict[str, Any], str]) -> tuple[str, float]:
    """Train (or resume) one run in a worker process; returns (run dir, wall seconds)."""
    import torch

    from mmsa_marl_core import config_from_dict, train
    from mmsa_marl_core.training.checkpoint import list_checkpoints
    from mmsa_marl_core.training.run_lock import remove_run_dir

    torch.set_num_threads(1)
    config_data, path_str = job
    path = Path(path_str)
    start = time.time()
    if status(path) == "finished" and done_steps(path) >= config_data["steps"]:
        return path_str, 0.0
    # A finished run with a smaller budget is extended (same config, larger `--steps`): it
    # resumes from its last checkpoint, which is how a straight run of the larger budget trains.
    resume = bool(list_checkpoints(path / "checkpoints"))
    if not resume:
        remove_run_dir(path)  # started but never checkpointed: start again (unless in use)
    train(config_from_dict(config_data), path, progress=False, resume=resume)
    return path_str, time.time() - start


def final_return(path: Path) -> tuple[float, list[tuple[int, float]], float] | None:
    """Final greedy return, the evaluation curve and the training wall time of a finished run."""
    from mmsa_marl_core import read_metrics

    if status(path) != "finished":
        return None
    lines = read_metrics(path)
    evals = [(int(x["env_steps"]), float(x["return_mean"])) for x in lines if x["kind"] == "eval"]
    return evals[-1][1], evals, float(lines[-1]["wall_s"])


def eval_curve(path: Path) -> list[tuple[int, float]]:
    """(env steps, greedy return) of every evaluation a run has logged so far."""
    from mmsa_marl_core import read_metrics

    if not (path / "metrics.jsonl").exists():
        return []
    lines = read_metrics(path)
    return [(int(x["env_steps"]), float(x["return_mean"])) for x in lines if x["kind"] == "eval"]


def random_return(env: str, episodes: int = 64, seed: int = 0) -> float:
    """Mean return of uniformly random available actions on the evaluation seeds."""
    from mmsa_marl_core.training.evaluate import random_return as measured

    return measured(env, episodes, seed)


def ablation_comparison(args: argparse.Namespace, cells: dict[str, Any]) -> dict[str, Any]:
    """The full method, its ablations and the other algorithms (QMIX, VDN) on the first map at
    the ablations' step budget: each run's evaluation nearest to that budget (a longer main run's
    curve is read there, so it is not flattered), IQM over seeds with a bootstrap 95% interval."""
    import numpy as np

    from flows.stats import aggregate

    budget = args.ablation_steps or args.steps
    table: dict[str, Any] = {"env": args.maps[0], "env_steps": budget, "variants": {}}
    others = [a for a in args.algos if a != "mmsa"]
    for variant in ["mmsa", *(f"mmsa-{a}" for a in args.ablations), *others]:
        cell = cells.get(f"{args.maps[0]} | {variant}")
        if cell is None:
            continue
        values = []
        for run in cell["runs"].values():
            curve = run.get("eval_curve") or []
            if (
                curve
                and abs(curve[-1][0] - budget) <= 0.1 * budget
                or any(step >= budget for step, _ in curve)
            ):
                values.append(min(curve, key=lambda point: abs(point[0] - budget))[1])
        if values:
            est = aggregate(np.asarray(values), reps=2000, seed=0)
            table["variants"][variant] = {
                "n_seeds": len(values),
                "returns": values,
                "iqm": est["iqm"].value,
                "iqm_ci95": [est["iqm"].low, est["iqm"].high],
            }
    return table


def report(args: argparse.Namespace) -> dict[str, Any]:
    """Collect every finished run and write `args.out`."""
    import numpy as np
    from _provenance import machine

    from flows.stats import aggregate

    cells: dict[str, dict[str, Any]] = {}
    for env, variant, seed in variants(args):
        key = f"{env} | {variant}"
        cell = cells.setdefault(key, {"env": env, "variant": variant, "runs": {}})
        path = run_dir(args, env, variant, seed)
        budget = run_config(args, env, variant, seed)["steps"]
        got = final_return(path) if done_steps(path) >= budget else None  # not yet extended
        cell["runs"][str(seed)] = (
            {"final_return": got[0], "eval_curve": got[1], "wall_s": got[2]}
            if got
            else {
                "status": "unfinished",
                "eval_curve": eval_curve(run_dir(args, env, variant, seed)),
            }
        )
    for cell in cells.values():
        finals = [r["final_return"] for r in cell["runs"].values() if "final_return" in r]
        cell["n_finished"] = len(finals)
        if finals:
            est = aggregate(np.asarray(finals), reps=2000, seed=0)
            cell["iqm"] = est["iqm"].value
            cell["iqm_ci95"] = [est["iqm"].low, est["iqm"].high]
            cell["mean"] = est["mean"].value
        if cell["variant"] == "mmsa" and cell["env"] in PAPER_2M:
            cell["paper_2M_return"] = PAPER_2M[cell["env"]]
    ablation_table = ablation_comparison(args, cells)
    out = {
        "benchmark": "mmsa_lbf",
        "command": " ".join(
            [
                "python bench/mmsa_lbf.py",
                f"--steps {args.steps}",
                f"--ablation-steps {args.ablation_steps}",
                f"--maps {' '.join(args.maps)}",
                f"--algos {' '.join(args.algos)}",
                f"--ablations {' '.join(args.ablations)}",
                f"--seeds {' '.join(map(str, args.seeds))}",
                f"--ablation-seeds {' '.join(map(str, args.ablation_seeds))}",
                f"--n-envs {args.n_envs}",
                f"--updates-per-episode {args.updates_per_episode}",
                f"--gamma {args.gamma}",
                f"--epsilon-anneal-steps {args.epsilon_anneal_steps}",
                f"--workers {args.workers}",
                f"--runs-dir {args.runs_dir}",
                f"--out {args.out}",
                *(f"--set {k}='{json.dumps(v)}'" for k, v in args.set),
            ]
        ),
        "train_wall_s_all_runs": round(
            sum(r.get("wall_s", 0.0) for c in cells.values() for r in c["runs"].values()), 1
        ),
        "budget": {
            "steps_per_run": args.steps,
            "ablation_steps_per_run": args.ablation_steps or args.steps,
            "seeds": args.seeds,
            "ablation_seeds": args.ablation_seeds,
            "n_envs": args.n_envs,
            "updates_per_episode": args.updates_per_episode,
            "gamma": args.gamma,
            "epsilon_anneal_steps": args.epsilon_anneal_steps,
            "paper_steps": 2_000_000,
        },
        "example_config": run_config(args, args.maps[0], "mmsa", args.seeds[0]),
        "machine": {
            "platform": platform.platform(),
            "cpu": machine()["cpu"],
            "run_cpus": run_cpus(
                [
                    run_dir(args, c["env"], c["variant"], int(seed))
                    for c in cells.values()
                    for seed in c["runs"]
                ]
            ),
            "cpu_count": os.cpu_count(),
            "load_avg": os.getloadavg(),
            "workers": args.workers,
            "python": sys.version.split()[0],
            "versions": {d: version(d) for d in ("torch", "numpy", "lbforaging", "rliable")},
        },
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "random_policy_return": {env: random_return(env) for env in args.maps},
        "cells": cells,
        "ablations_at_equal_steps": ablation_table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=1))
    os.replace(tmp, args.out)
    plot(args.out)
    return out


def plot(results: Path) -> list[Path]:
    """Figures of a results JSON of this script, written next to it (module docstring). The
    curves cover the span every run of a (map, variant) reached, so unfinished runs shorten it."""
    import numpy as np
    import polars as pl

    from flows.figures import plot_finals, plot_learning_curves
    from flows.report import curve_table

    results = Path(results)
    data = json.loads(results.read_text())
    groups: dict[tuple[str, str], list[tuple[Any, Any]]] = {}
    for cell in data["cells"].values():
        for run in cell["runs"].values():
            points = sorted(dict(run.get("eval_curve") or []).items())  # one point per step
            if len(points) >= 2:
                steps, returns = np.asarray(points, dtype=np.float64).T
                groups.setdefault((cell["env"], cell["variant"]), []).append((steps, returns))
    randoms = data.get("random_policy_return") or {}
    random = pl.DataFrame(
        {"task": list(randoms), "return_mean": list(randoms.values())},
        schema={"task": pl.String, "return_mean": pl.Float64},
    )
    paths = [plot_learning_curves(curve_table(groups), random, results.with_suffix(".png"))]
    table = data.get("ablations_at_equal_steps") or {}
    if len(table.get("variants") or {}) > 1:
        summary = pl.DataFrame(
            [
                {
                    "task": f"{table['env']} at {table['env_steps']:,} env steps",
                    "variant": variant,
                    "iqm": cell["iqm"],
                    "iqm_low": cell["iqm_ci95"][0],
                    "iqm_high": cell["iqm_ci95"][1],
                    "n_seeds": cell["n_seeds"],
                }
                for variant, cell in table["variants"].items()
            ]
        )
        paths.append(plot_finals(summary, results.with_name(f"{results.stem}_at_equal_steps.png")))
    return paths


def _setting(text: str) -> tuple[str, Any]:
    """`FIELD=JSON` -> (field, value); a nested field (world_model) replaces the whole dict."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--set {text!r}: expected FIELD=JSON")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"--set {text!r}: {err}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500_000, help="env steps per run")
    parser.add_argument(
        "--ablation-steps",
        type=int,
        default=0,
        help="env steps per ablation run (0: --steps); evaluations stay on --steps' grid",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ablation-seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--maps", nargs="+", default=list(MAPS))
    parser.add_argument("--algos", nargs="*", default=list(ALGOS))
    parser.add_argument("--ablations", nargs="*", default=list(ABLATIONS))
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--updates-per-episode", type=float, default=0.5)
    parser.add_argument("--gamma", type=float, default=0.9)
    parser.add_argument("--epsilon-anneal-steps", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1, help="runs in parallel (processes)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/bench_mmsa_lbf"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/mmsa_lbf.json"))
    parser.add_argument(
        "--set",
        type=_setting,
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="an MMSAConfig field for every mmsa variant, e.g. agent_head='\"sale\"'",
    )
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--plot", type=Path, nargs="+", metavar="JSON", help="only draw the figures of these JSONs"
    )
    args = parser.parse_args()
    if args.plot:
        for path in args.plot:
            print(*plot(path))
        return
    if args.report_only:
        report(args)
        return
    jobs = [
        (run_config(args, env, variant, seed), str(run_dir(args, env, variant, seed)))
        for env, variant, seed in variants(args)
    ]
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.workers, maxtasksperchild=1) as pool:
        for path, wall in pool.imap_unordered(one_run, jobs):
            print(f"{time.strftime('%H:%M:%S')} finished {path} in {wall:.0f} s", flush=True)
            report(args)
    report(args)


if __name__ == "__main__":
    main()
