"""TD-loss spikes over whole training runs, read from their `metrics.jsonl` (no run of its own).

Each train line carries means over the updates since the previous line: the TD loss (`td_loss`
for MMSA; `loss` for QMIX and VDN, whose only loss is the TD loss) and the gradient norm before
clipping of the parameters the TD loss trains (`grad_norm_td` for MMSA, `grad_norm`). A line whose
TD loss is many times the run's median holds a few updates with TD errors far above the rest: a
spike. Per run (lines from `--from-steps` on, after the replay has filled and exploration has
mostly annealed): the median and maximum of both, every line above `--factor` x the median (its
env steps, TD loss, gradient norm, and the training return of the episodes collected over it and
over the line before), and the run's last evaluation in training (the training loop's own
greedy evaluation, `eval_episodes` episodes). The figure next to the JSON shows the TD
loss (log scale) and the evaluation win rate (the return where the env has no win) over env steps,
one column per algorithm, one line per run.

    python bench/td_spikes.py RUN_DIR [RUN_DIR ...] --out bench/results/smax_td_spikes.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import record  # noqa: E402

LOSS_KEYS = ("td_loss", "loss")
GRAD_KEYS = ("grad_norm_td", "grad_norm")


def _first(line: dict[str, Any], keys: tuple[str, ...]) -> str:
    found = next((k for k in keys if k in line), None)
    if found is None:
        raise ValueError(f"train line at {line.get('env_steps')} env steps has none of {keys}")
    return found


def td_spikes(run_dir: Path, from_steps: int, factor: float) -> dict[str, Any]:
    """The spike record of one run directory (module docstring)."""
    from mmsa_marl_core import read_metrics
    from mmsa_marl_core.training.run_info import read_run_json

    lines = [x for x in read_metrics(run_dir, kind="train") if x["updates"] > 0]
    lines = [x for x in lines if x["env_steps"] >= from_steps]
    if not lines:
        raise ValueError(f"{run_dir}: no train line with updates from {from_steps} env steps on")
    loss_key, grad_key = _first(lines[-1], LOSS_KEYS), _first(lines[-1], GRAD_KEYS)
    losses = [x[loss_key] for x in lines]
    grads = [x[grad_key] for x in lines]
    median_loss, median_grad = statistics.median(losses), statistics.median(grads)
    spikes = [
        {
            "env_steps": x["env_steps"],
            "td_loss": round(x[loss_key], 4),
            "grad_norm": round(x[grad_key], 3),
            "train_return": round(x.get("return_mean", float("nan")), 3),
            "train_return_line_before": round(lines[i - 1].get("return_mean", float("nan")), 3)
            if i
            else None,
        }
        for i, x in enumerate(lines)
        if x[loss_key] > factor * median_loss
    ]
    evals = read_metrics(run_dir, kind="eval")
    score = "win_rate" if evals and "win_rate" in evals[-1] else "return_mean"
    info = read_run_json(run_dir)
    config = info.get("config", {})
    return {
        "run_dir": str(run_dir),
        "env": config.get("env"),
        "algo": config.get("algo"),
        "seed": config.get("seed"),
        "git_commit": info.get("git_commit"),
        "keys": [loss_key, grad_key],
        "lines": len(lines),
        "td_loss_median": round(median_loss, 5),
        "td_loss_max": round(max(losses), 4),
        "grad_norm_median": round(median_grad, 4),
        "grad_norm_max": round(max(grads), 3),
        "spike_lines": spikes,
        "last_eval_in_training": {
            k: evals[-1][k] for k in ("return_mean", "win_rate") if k in evals[-1]
        },
        "curves": {
            "td_loss": [[x["env_steps"], x[loss_key]] for x in lines],
            score: [[x["env_steps"], x[score]] for x in evals],
        },
    }


def plot(result: dict[str, Any], out: Path) -> Path:
    """TD loss and evaluation score over env steps, one column per algorithm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    algos = sorted({r["algo"] for r in result["runs"]})
    fig, axes = plt.subplots(2, len(algos), figsize=(4 * len(algos), 6), squeeze=False)
    for col, algo in enumerate(algos):
        for run in (r for r in result["runs"] if r["algo"] == algo):
            score = next(k for k in run["curves"] if k != "td_loss")
            for row, key in ((0, "td_loss"), (1, score)):
                xs, ys = zip(*run["curves"][key], strict=True) if run["curves"][key] else ((), ())
                axes[row][col].plot(xs, ys, label=f"seed {run['seed']}")
                axes[row][col].set_ylabel("train TD loss (mean per line)" if row == 0 else score)
        axes[0][col].set_yscale("log")
        axes[0][col].set_title(algo)
        axes[1][col].set_xlabel("env steps")
        axes[1][col].legend(fontsize=8)
    fig.tight_layout()
    path = out.with_suffix(".png")
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--from-steps", type=int, default=30_000)
    parser.add_argument("--factor", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/td_spikes.json"))
    args = parser.parse_args()
    runs = [td_spikes(d, args.from_steps, args.factor) for d in args.run_dirs]
    result = record("td_spikes", ["torch", "mmsa-marl-core"]) | {
        "from_steps": args.from_steps,
        "factor": args.factor,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for run in runs:
        print(
            f"{run['algo']} seed {run['seed']}: TD loss median {run['td_loss_median']} max "
            f"{run['td_loss_max']}, grad norm median {run['grad_norm_median']} max "
            f"{run['grad_norm_max']}, {len(run['spike_lines'])} of {run['lines']} lines above "
            f"{args.factor}x the median; last eval in training {run['last_eval_in_training']}"
        )
    print(f"wrote {args.out} and {plot(result, args.out)}")


if __name__ == "__main__":
    main()
