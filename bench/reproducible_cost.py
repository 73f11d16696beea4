"""The speed cost of reproducible mode (`mmsa_marl_core.training.reproducible`), measured side
by side.

Runs `bench/mmsa_throughput.py` (the real training loop of QMIX and MMSA on
`lbf:Foraging-8x8-2p-2f-coop-v3`, one torch thread, the "fast" setting) in fresh processes,
alternately with this machine's own kernels and with the pinned environment of reproducible
mode, `--rounds` times each, and reports per algorithm the median update time and steady env
steps per second of both, and pinned / native. Alternating the two in one run keeps a busy,
shared machine's drift out of the ratio.

    .venv/bin/python bench/reproducible_cost.py     # -> bench/results/reproducible_cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _provenance import command, git_commit, machine, now, versions

from mmsa_marl_core.training.reproducible import pinned_environ

HERE = Path(__file__).resolve().parent


def one_pass(pinned: bool, steps: int, repeats: int) -> dict:
    """One `mmsa_throughput.py` process; its per-algorithm results."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "throughput.json"
        env = pinned_environ() if pinned else dict(os.environ)
        cmd = [sys.executable, str(HERE / "mmsa_throughput.py"), "--settings", "fast",
               "--steps", str(steps), "--repeats", str(repeats), "--out", str(out)]  # fmt: skip
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        data = json.loads(out.read_text())
    return {
        algo: {
            "update_ms": data["results"][algo]["update_ms"],
            "steady_steps_per_s": data["results"][algo]["fast"]["steady_steps_per_s"],
        }
        for algo in ("qmix", "mmsa")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4_000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "reproducible_cost.json")
    args = parser.parse_args()

    passes: dict[str, list[dict]] = {"native": [], "pinned": []}
    for _ in range(args.rounds):
        for mode in ("native", "pinned"):
            passes[mode].append(one_pass(mode == "pinned", args.steps, args.repeats))
            print(mode, passes[mode][-1], flush=True)
    summary: dict[str, dict] = {}
    for algo in ("qmix", "mmsa"):
        row: dict[str, float] = {}
        for metric in ("update_ms", "steady_steps_per_s"):
            for mode in ("native", "pinned"):
                row[f"{metric}_{mode}"] = statistics.median(p[algo][metric] for p in passes[mode])
            row[f"{metric}_pinned_over_native"] = round(
                row[f"{metric}_pinned"] / row[f"{metric}_native"], 3
            )
        summary[algo] = row
    result = {
        "benchmark": "reproducible_cost",
        "command": command(),
        "date": now(),
        "git_commit": git_commit(),
        "machine": machine(),
        "versions": versions(["torch", "numpy", "mmsa-marl-core", "lbforaging"]),
        "settings": {"steps": args.steps, "repeats": args.repeats, "rounds": args.rounds,
                     "pinned_environment": {k: v for k, v in pinned_environ({}).items()}},
        "passes": passes,
        "summary": summary,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
