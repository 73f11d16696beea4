"""MMSA's four ablations (no_wm, no_sale, no_klb, no_gs) next to the full method and QMIX, on the
small LBF map of the learning checks, 3 seeds, at equal env steps and updates.

Every run is a real `mmsa_marl_core.train` run with the learning checks' settings (gamma 0.9,
batch 8 episodes, lr 1e-3, small networks; `tests/test_learning_mmsa.py`), then a greedy
evaluation of its final checkpoint on 64 episodes. Per variant: the IQM over seeds with a
stratified-bootstrap 95% interval (rliable, through `flows.stats.aggregate`). Runs are resumable
and skipped once finished (same machinery as `bench/mmsa_lbf.py`).

    .venv/bin/python bench/mmsa_ablations.py     # -> bench/results/mmsa_ablations.json
    # an A/B of MMSAConfig fields (JSON values), applied to every mmsa variant:
    .venv/bin/python bench/mmsa_ablations.py --updates-per-episode 2 --variants mmsa \
        --set agent_head='"residual"' --set encoder_update_interval=10 \
        --runs-dir /tmp/mmsa_ab/runs/residual --out /tmp/mmsa_ab/residual.json
    # the full method in mixed precision (TrainConfig.precision="bf16"), same seeds:
    .venv/bin/python bench/mmsa_ablations.py --precision bf16 --variants mmsa qmix \
        --runs-dir runs/bench_mmsa_ablations_bf16 --out bench/results/mmsa_ablations_bf16.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from _provenance import machine
from mmsa_lbf import one_run, run_cpus, status

ENV = "lbf:Foraging-5x5-2p-1f-v3"
VARIANTS = ("mmsa", "mmsa-no_wm", "mmsa-no_sale", "mmsa-no_klb", "mmsa-no_gs", "qmix")
SMALL_MMSA = {
    "zs_dim": 32,
    "sale_hidden": 32,
    "phi_dim": 32,
    "head_hidden": 32,
    "encoder_lr": 1e-3,
    "code_dim": 16,
    "world_model_lr": 1e-3,
    "world_model": {
        "deter_dim": 32,
        "stoch_per_agent": 4,
        "hidden": 32,
        "embed_dim": 32,
        "vae1_latent_dim": 8,
        "sale_zs_dim": 32,
        "sale_hidden": 32,
        "phi_dim": 16,
    },
}
"""MMSA's networks scaled down as in the learning check (every part of the method on)."""


def run_config(args: argparse.Namespace, variant: str, seed: int) -> dict[str, Any]:
    algo, _, ablation = variant.partition("-")
    algo_config: dict[str, Any] = {
        "gamma": 0.9,
        "lr": 1e-3,
        "agent_hidden": 32,
        "mixer_embed_dim": 16,
        "hypernet_hidden": 32,
        "target_update_interval": 50,
        "epsilon_anneal_steps": 3_000,
    }
    if algo == "mmsa":
        algo_config |= SMALL_MMSA | {"ablation": ablation or "none"} | dict(args.set)
    return {
        "env": args.env,
        "algo": algo,
        "steps": args.steps,
        "seed": seed,
        "n_envs": 8,
        "batch_size": 8,
        "buffer_size": 500,
        "updates_per_episode": args.updates_per_episode,
        "log_every": max(args.steps // 10, 1),
        "eval_every": max(args.steps // 4, 1),
        "eval_episodes": 64,
        "checkpoint_every": args.steps,
        "keep_checkpoints": 1,
        "precision": args.precision,
        "algo_config": algo_config,
    }


def run_dir(args: argparse.Namespace, variant: str, seed: int) -> Path:
    return args.runs_dir / variant / f"s{seed}"


def report(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    from mmsa_lbf import random_return

    from flows.stats import aggregate
    from mmsa_marl_core import read_metrics

    table: dict[str, Any] = {}
    for variant in args.variants:
        finals: dict[str, float] = {}
        walls: dict[str, float] = {}
        for seed in args.seeds:
            path = run_dir(args, variant, seed)
            if status(path) == "finished":
                lines = read_metrics(path)
                evals = [x for x in lines if x["kind"] == "eval"]
                finals[str(seed)] = float(evals[-1]["return_mean"])
                walls[str(seed)] = float(lines[-1]["wall_s"])
        row: dict[str, Any] = {"final_return": finals, "wall_s": walls, "n_finished": len(finals)}
        if finals:
            est = aggregate(np.asarray(list(finals.values())), reps=2000, seed=0)
            row |= {
                "iqm": est["iqm"].value,
                "iqm_ci95": [est["iqm"].low, est["iqm"].high],
                "mean": est["mean"].value,
            }
        table[variant] = row
    out = {
        "benchmark": "mmsa_ablations",
        "env": args.env,
        "command": "python bench/mmsa_ablations.py "
        f"--steps {args.steps} --updates-per-episode {args.updates_per_episode} "
        f"--seeds {' '.join(map(str, args.seeds))} --precision {args.precision}"
        + "".join(f" --set {k}='{json.dumps(v)}'" for k, v in args.set),
        "example_config": run_config(args, "mmsa", args.seeds[0]),
        "random_policy_return": random_return(args.env),
        "machine": {
            "platform": platform.platform(),
            "cpu": machine()["cpu"],
            "run_cpus": run_cpus(
                [run_dir(args, v, seed) for v in args.variants for seed in args.seeds]
            ),
            "cpu_count": os.cpu_count(),
            "load_avg": os.getloadavg(),
            "python": sys.version.split()[0],
            "versions": {d: version(d) for d in ("torch", "numpy", "lbforaging", "rliable")},
        },
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "variants": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    return out


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
    parser.add_argument("--env", default=ENV)
    parser.add_argument("--steps", type=int, default=8_000)
    parser.add_argument("--updates-per-episode", type=float, default=4.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/bench_mmsa_ablations"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/mmsa_ablations.json"))
    parser.add_argument(
        "--precision", default="fp32", choices=("fp32", "bf16"), help="TrainConfig.precision"
    )
    parser.add_argument(
        "--set",
        type=_setting,
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="an MMSAConfig field for every mmsa variant, e.g. agent_head='\"residual\"'",
    )
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if not args.report_only:
        for seed in args.seeds:  # seed-major: partial results cover every variant
            for variant in args.variants:
                start = time.time()
                one_run((run_config(args, variant, seed), str(run_dir(args, variant, seed))))
                print(f"{time.strftime('%H:%M:%S')} {variant} s{seed}: {time.time() - start:.0f} s")
    out = report(args)
    print(json.dumps({k: (v.get("iqm"), v.get("iqm_ci95")) for k, v in out["variants"].items()}))


if __name__ == "__main__":
    main()
