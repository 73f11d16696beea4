"""Does a trained MMSA mixer use the world model's rollout code, and how good is the model the
code is imagined from? Read from finished MMSA runs (their last checkpoint and buffer); trains
nothing of its own.

For each run, on `--batches` batches drawn from the checkpoint's own replay buffer:

- `td_loss` of one MMSA update as the learner computes it (`MMSALearner.update` on a copy of the
  learner, so nothing is kept; imagination from every episode of the batch, where training drew
  a fraction of them), then the same update with the online rollout code `c_t` fed to
  the mixer replaced by zeros (`zero`: what the mixer makes of the state alone) and by the code of
  another episode of the batch at the same step (`shuffled`: a code with the same statistics but
  not this episode's future). The TD targets keep the target code in all three. If the mixer
  reads the code, both replacements raise the TD loss; `*_over_code` is their ratio to the real
  code's loss (1.0: the mixer ignores it);
- the world model's open-loop k-step error of the global state against the copy-last baseline
  (predicting no change), from the run's last diagnostics line (`diag_state_err_k*` and
  `diag_state_copy_err_k*` of `metrics.jsonl`): a ratio near 1 means the imagined futures carry
  little beyond `s_t`, which the mixer already reads.

    python bench/mmsa_code_probe.py RUN_DIR [RUN_DIR ...] --out bench/results/mmsa_code_probe.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import record  # noqa: E402

VARIANTS = ("code", "zero", "shuffled")


def _replace_online_code(how: str) -> Callable[..., Any]:
    """A stand-in for `rollout_code_pair` whose online code is zero or batch-shuffled."""
    from mmsa_marl_core.imagination.mmsa_world import rollout_code_pair

    def replaced(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        code, target_code = rollout_code_pair(*args, **kwargs)  # [T+1, B, C]
        if how == "zero":
            return torch.zeros_like(code), target_code
        order = torch.roll(torch.arange(code.shape[1]), 1)  # every episode gets another's
        return code[:, order], target_code

    return replaced


def probe_run(run_dir: Path, batches: int, seed: int) -> dict[str, Any]:
    from mmsa_envs import make
    from mmsa_marl_core import EpisodeBuffer, get_algo, read_metrics
    from mmsa_marl_core.learners import mmsa_learner
    from mmsa_marl_core.training.evaluate import run_checkpoint

    config, checkpoint, payload = run_checkpoint(run_dir, purpose="probe")
    if config.algo != "mmsa" or config.algo_config.ablation == "no_wm":
        raise ValueError(f"{run_dir}: an MMSA run with its world model is needed ({config.algo})")
    env = make(config.env, **config.env_kwargs)
    spec = env.spec
    env.close()
    learner = get_algo("mmsa").factory(spec, config.algo_config, torch.device("cpu"))
    learner.load_state_dict(payload["learner"])
    buffer = EpisodeBuffer(spec, config.buffer_size, spec.episode_limit)
    buffer.load_state_dict(payload["buffer"])
    rng = np.random.default_rng(seed)
    losses: dict[str, list[float]] = {v: [] for v in VARIANTS}
    original = mmsa_learner.rollout_code_pair
    for b in range(batches):
        batch = buffer.sample(config.batch_size, rng)
        for variant in VARIANTS:
            twin = copy.deepcopy(learner)
            twin.updates = max(twin.updates, twin.config.imagination_warmup_updates)
            # every row imagines (training drew `imagination_fraction` of the episodes), so that
            # each replacement reaches every row the mixer reads
            twin.config = dataclasses.replace(twin.config, imagination_fraction=1.0)
            torch.manual_seed(seed * 10_000 + b)  # the same imagined rows in every variant
            if variant != "code":
                mmsa_learner.rollout_code_pair = _replace_online_code(variant)  # type: ignore[assignment]
            try:
                losses[variant].append(float(twin.update(batch)["td_loss"]))
            finally:
                mmsa_learner.rollout_code_pair = original  # type: ignore[assignment]
    diag = [x for x in read_metrics(run_dir) if x["kind"] == "train" and "diag_state_err_k1" in x]
    model_vs_copy = {}
    if diag:
        last = diag[-1]
        k = 1
        while f"diag_state_err_k{k}" in last:
            copy_error = last[f"diag_state_copy_err_k{k}"]
            model_vs_copy[f"k{k}"] = last[f"diag_state_err_k{k}"] / copy_error
            k += 1
    median = {v: statistics.median(x) for v, x in losses.items()}
    return {
        "run_dir": str(run_dir),
        "checkpoint": checkpoint.name,
        "env": config.env,
        "ablation": config.algo_config.ablation,
        "td_loss_median": median,
        "zero_over_code": median["zero"] / median["code"],
        "shuffled_over_code": median["shuffled"] / median["code"],
        "td_loss_per_batch": losses,
        "state_error_model_over_copy": model_vs_copy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/mmsa_code_probe.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = [probe_run(d, args.batches, args.seed) for d in args.run_dirs]
    result = record("mmsa_code_probe", ["torch", "numpy", "mmsa-marl-core"]) | {
        "batches": args.batches,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for run in runs:
        ratio = {k: round(v, 3) for k, v in run["state_error_model_over_copy"].items()}
        print(
            f"{run['run_dir']}: TD loss zero/code {run['zero_over_code']:.3f}, "
            f"shuffled/code {run['shuffled_over_code']:.3f}; state error model/copy {ratio}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
