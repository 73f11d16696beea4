"""Resident memory over whole training runs, read from their `metrics.jsonl` (no run of its own).

Every train line records the process's resident memory (`rss_mb`), its peak so far
(`peak_rss_mb`) and the bytes of replay slots holding an episode (`buffer_mb`: the buffer's
arrays are allocated zeroed, so their pages become resident as episodes are written). A run
whose memory does not grow holds `rss_mb - buffer_mb` level once training has started; what
this script reports for each run:

- `rss_mb` and `buffer_mb` at the first train line with updates and at the last line, and the
  peak over the run;
- `growth_mb`: the rise of `rss_mb` between those two lines, and `excess_growth_mb`, that rise
  less the buffer's (memory the run gained beyond its replay filling up), also per 100k env steps.

    python bench/run_memory.py RUN_DIR [RUN_DIR ...] --out bench/results/run_memory.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import record  # noqa: E402


def run_memory(run_dir: Path) -> dict[str, Any]:
    """The memory record of one run directory (ValueError when its lines carry no memory)."""
    from mmsa_marl_core import read_metrics
    from mmsa_marl_core.training.run_info import read_run_json

    train = [x for x in read_metrics(run_dir, kind="train") if "rss_mb" in x]
    if not train:
        raise ValueError(f"{run_dir}: no train line records rss_mb (a run of older code?)")
    started = next((x for x in train if x["updates"] > 0), train[0])
    last = train[-1]
    steps = max(last["env_steps"] - started["env_steps"], 1)
    growth = last["rss_mb"] - started["rss_mb"]
    out: dict[str, Any] = {
        "run_dir": str(run_dir),
        "env_steps": [started["env_steps"], last["env_steps"]],
        "rss_mb": [round(started["rss_mb"], 1), round(last["rss_mb"], 1)],
        "peak_rss_mb": round(max(x["peak_rss_mb"] for x in train), 1),
        "growth_mb": round(growth, 1),
        "curve": [[x["env_steps"], round(x["rss_mb"], 1)] for x in train],
    }
    if "buffer_mb" in started:
        buffer = last["buffer_mb"] - started["buffer_mb"]
        out["buffer_mb"] = [round(started["buffer_mb"], 1), round(last["buffer_mb"], 1)]
        out["excess_growth_mb"] = round(growth - buffer, 1)
        out["excess_growth_mb_per_100k_steps"] = round((growth - buffer) * 1e5 / steps, 1)
    if (run_dir / "run.json").is_file():
        info = read_run_json(run_dir)
        config = info.get("config", {})
        out |= {
            "env": config.get("env"),
            "algo": config.get("algo"),
            "ablation": (config.get("algo_config") or {}).get("ablation"),
            "git_commit": info.get("git_commit"),
            "status": info.get("status"),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path("bench/results/run_memory.json"))
    args = parser.parse_args()
    result = record("run_memory", ["torch", "numpy", "mmsa-marl-core"]) | {
        "runs": [run_memory(d) for d in args.run_dirs]
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for run in result["runs"]:
        print(
            f"{run['run_dir']}: rss {run['rss_mb'][0]} -> {run['rss_mb'][1]} MiB over "
            f"{run['env_steps'][0]}-{run['env_steps'][1]} steps, peak {run['peak_rss_mb']}, "
            f"beyond the buffer {run.get('excess_growth_mb', 'n/a')} MiB"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
