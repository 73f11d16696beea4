"""What each CPU speed lever does to one MMSA update, measured side by side in one process.

One learner per lever is built on `lbf:Foraging-8x8-2p-2f-coop-v3` with the default `MMSAConfig`
(plus the lever's fields) and the same initial weights; all of them update on the same batches of
32 random-policy episodes (~1600 real steps, the size of a default run's batches). The levers are
timed in interleaved rounds (A B C ... A B C ...), so that a change of machine load hits every
lever alike, and the median per lever is reported next to its speed-up over the reference:

- `imagination_fraction=1.0`: imagination from every real step of the batch, the literal
  reading of the paper, in float32; the reference every ratio is taken against;
- `imagination_fraction=0.5`: imagination from a drawn half of the batch's episodes;
- `default`: `MMSAConfig()` in float32 (imagination from a drawn quarter, 0.25);
- `bf16`: the default under `TrainConfig.precision="bf16"` (the passes without gradient under
  bfloat16 autocast);
- `bf16+imagination_fraction=1.0`;
- `bf16_with_gradient`: the default with the whole update, the passes with gradient too, under
  bfloat16 autocast (set up by this script: no `TrainConfig.precision` does this), the widest
  bf16 path, which is what AMX's bf16 matrix units could speed up;
- `compiled_all_actions` (with `--compile`): the default with the all-actions SALE head pass
  without gradient
  (`SALEAgent.q_values`, three calls per update) through `torch.compile(dynamic=True)`, set up
  by this script (the learner has no such option); its compile time is reported.

The CPU's bf16 features (`avx512_bf16`, `amx_tile`, `amx_bf16`; `cpu_flags()`, as in `run.json`)
are recorded with the machine.

    .venv/bin/python bench/mmsa_update_levers.py   # -> bench/results/mmsa_update_levers.json
    .venv/bin/python bench/mmsa_update_levers.py --compile --rounds 6
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _provenance import command, git_commit, machine, now, versions
from _timing import median_ms, random_batches, time_interleaved

from mmsa_envs import VectorEnv
from mmsa_marl_core import get_algo
from mmsa_marl_core.networks.sale_agent import SALEAgent, all_actions
from mmsa_marl_core.ops.precision import update_precision
from mmsa_marl_core.training.reproducible import cpu_flags

ENV = "lbf:Foraging-8x8-2p-2f-coop-v3"
LEVERS: dict[str, tuple[dict[str, Any], str]] = {
    "imagination_fraction=1.0": ({"imagination_fraction": 1.0}, "fp32"),
    "imagination_fraction=0.5": ({"imagination_fraction": 0.5}, "fp32"),
    "default": ({}, "fp32"),
    "bf16": ({}, "bf16"),
    "bf16+imagination_fraction=1.0": ({"imagination_fraction": 1.0}, "bf16"),
    "bf16_with_gradient": ({}, "bf16-all"),
}
REFERENCE = "imagination_fraction=1.0"


def compiled_q_values() -> tuple[Any, Any]:
    """`(patched, eager)` `SALEAgent.q_values`: the patched one sends no-gradient all-actions
    passes through one `torch.compile(dynamic=True)` function."""
    eager = SALEAgent.q_values

    def all_action_values(agent: SALEAgent, inputs: Any, hidden: Any, encoder: Any) -> Any:
        return agent.action_values(inputs, hidden, all_actions(agent.n_actions, inputs), encoder)

    compiled = torch.compile(all_action_values, dynamic=True)

    def patched(self: SALEAgent, inputs: Any, hidden: Any, encoder: Any) -> Any:
        if self.use_sale and not torch.is_grad_enabled():
            return compiled(self, inputs, hidden, encoder)
        return eager(self, inputs, hidden, encoder)

    return patched, eager


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--per-round", type=int, default=3, help="timed updates per lever")
    parser.add_argument("--compile", action="store_true", help="add the compiled_all_actions lever")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/mmsa_update_levers.json"))
    args = parser.parse_args()
    started = machine()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    entry = get_algo("mmsa")
    levers = dict(LEVERS)
    if args.compile:
        levers["compiled_all_actions"] = ({}, "fp32")
    with VectorEnv(ENV, 8, seed=args.seed, processes=False) as envs:
        learners = {}
        for name, (fields, _) in levers.items():
            torch.manual_seed(args.seed)  # the same initial weights for every lever
            learners[name] = entry.factory(envs.spec, entry.config_cls(**fields), "cpu")
        batches = random_batches(envs, learners[REFERENCE], rng, args.per_round)
    patched, eager = compiled_q_values() if args.compile else (None, SALEAgent.q_values)
    compile_s = None

    def run(name: str, batch: Any) -> None:
        precision = levers[name][1]
        SALEAgent.q_values = patched if name == "compiled_all_actions" else eager  # type: ignore[method-assign]
        if precision == "bf16-all":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                learners[name].update(copy.copy(batch))
        else:
            with update_precision(precision, torch.device("cpu")):
                learners[name].update(copy.copy(batch))

    for name in levers:  # warm-up: lazy imports, allocator, the compile
        start = time.perf_counter()
        run(name, batches[0])
        run(name, batches[-1])
        if name == "compiled_all_actions":
            compile_s = round(time.perf_counter() - start, 1)
    times = time_interleaved(run, levers, batches, args.rounds)
    SALEAgent.q_values = eager  # type: ignore[method-assign]
    base = statistics.median(times[REFERENCE])
    results = {
        name: {
            **median_ms(t),
            "speedup_vs_reference": round(base / statistics.median(t), 3),
            "fields": levers[name][0],
            "precision": levers[name][1],
        }
        for name, t in times.items()
    }
    if compile_s is not None:
        results["compiled_all_actions"]["warmup_and_compile_s"] = compile_s
    out = {
        "benchmark": "mmsa_update_levers",
        "env": ENV,
        "command": command(),
        "commit": git_commit(),
        "batch_episodes": 32,
        "real_steps_per_batch": [int(b.mask.sum()) for b in batches],
        "rounds": args.rounds,
        "per_round": args.per_round,
        "threads": args.threads,
        "machine": started | {"cpu_flags": cpu_flags(), "load_average_at_end": os.getloadavg()},
        "versions": versions(("torch", "numpy", "lbforaging")),
        "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
        "reference": REFERENCE,
        "results": results,
        "finished": now(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    for name, r in results.items():
        print(f"{name:32s} {r['update_ms']:7.1f} ms  x{r['speedup_vs_reference']}")


if __name__ == "__main__":
    main()
