"""Benchmark of mmsa_worldmodel on CPU: one update, and imagination from every posterior state.

Sizes are those of an LBF task with 3 agents (`Foraging-10x10-3p-3f`: N=3, O=18, S=18, A=6),
batches of 32 episodes x 50 steps, the default `WorldModelConfig` (h 128, y 16 per agent,
SALE z 64, H=3). Inputs are random tensors of those shapes: the cost does not depend on values.

1. update: `loss(batch)` (observe + every loss), backward, Adam step.
2. imagine: `observe(batch)` then `imagine` of H=3 steps from all (T+1)*B = 1632 posterior states
   at once, without gradient, with a uniform policy over the decoded available actions (what a
   learner's rollout does, minus its agent network).
3. the same two at torch threads 1 and 2; and a profile of the update's top operators.

Reported figures are medians over `--repeats` timed runs after warm-up. The machine is shared:
compare figures from one run only.

Usage: .venv/bin/python bench/worldmodel.py [--repeats 20] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from mmsa_worldmodel import ModelState, WorldModel, WorldModelConfig

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "worldmodel.json"
T, B, N, O, S, A, H = 50, 32, 3, 18, 18, 6, 3  # noqa: E741 (the design's axis letters)


@dataclass(frozen=True)
class Batch:
    """Satisfies `mmsa_worldmodel.EpisodeBatch`."""

    obs: torch.Tensor
    state: torch.Tensor
    avail_actions: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    mask: torch.Tensor


def make_batch(seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(T, B)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    mask[torch.arange(T)[:, None] >= lengths[None, :]] = 0.0
    return Batch(
        obs=torch.randn(T + 1, B, N, O, generator=g),
        state=torch.randn(T + 1, B, S, generator=g),
        avail_actions=torch.rand(T + 1, B, N, A, generator=g) > 0.2,
        action=torch.randint(0, A, (T, B, N), generator=g),
        reward=torch.randn(T, B, generator=g),
        terminated=torch.zeros(T, B),
        mask=mask,
    )


def uniform_policy(obs: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    return torch.multinomial(avail.flatten(0, 1).float(), 1).view(avail.shape[:2])


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return {
        "median_ms": round(statistics.median(times), 2),
        "min_ms": round(min(times), 2),
        "repeats": repeats,
    }


def bench_threads(threads: int, repeats: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = WorldModel(n_agents=N, obs_dim=O, state_dim=S, n_actions=A, action_kind="discrete")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    batch = make_batch(0)

    def update() -> None:
        total, _ = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    def imagine() -> None:
        with torch.no_grad():
            posterior, _ = model.observe(batch)
            start = ModelState(posterior.deter.flatten(0, 1), posterior.stoch.flatten(0, 1))
            model.imagine(start, uniform_policy, H)

    def imagine_only() -> None:
        with torch.no_grad():
            model.imagine(start_states, uniform_policy, H)

    with torch.no_grad():
        posterior, _ = model.observe(batch)
        start_states = ModelState(posterior.deter.flatten(0, 1), posterior.stoch.flatten(0, 1))
    return {
        "threads": threads,
        "update": median_ms(update, repeats),
        "observe_and_imagine": median_ms(imagine, repeats),
        "imagine_only": median_ms(imagine_only, repeats),
    }


def profile_update(rows: int = 12) -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    model = WorldModel(n_agents=N, obs_dim=O, state_dim=S, n_actions=A, action_kind="discrete")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    batch = make_batch(1)
    for _ in range(3):
        total, _ = model.loss(batch)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            total, _ = model.loss(batch)
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    return [
        {
            "op": e.key,
            "self_ms_per_update": round(e.self_cpu_time_total / 5e3, 2),
            "calls_per_update": e.count // 5,
        }
        for e in events[:rows]
    ]


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores_usable": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def versions() -> dict[str, str]:
    out = {}
    for dist in ("torch", "numpy", "mmsa-worldmodel", "mmsa-sale"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 repeats, no profile")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    result: dict[str, Any] = {
        "benchmark": "mmsa_worldmodel update and imagination on CPU",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "sizes": {"T": T, "B": B, "N": N, "O": O, "S": S, "A": A, "H": H},
        "config": asdict(WorldModelConfig()),
        "results": [bench_threads(threads, repeats) for threads in (1, 2)],
    }
    if not args.quick:
        result["update_profile_top_ops"] = profile_update()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for row in result["results"]:
        print(
            f"threads={row['threads']}: update {row['update']['median_ms']} ms, "
            f"observe+imagine {row['observe_and_imagine']['median_ms']} ms, "
            f"imagine only {row['imagine_only']['median_ms']} ms"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
