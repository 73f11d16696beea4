"""MMSA training throughput (env steps/s) next to QMIX, on the QMIX throughput benchmark's task.

Runs the real training loop (`mmsa_marl_core.train`) on `lbf:Foraging-8x8-2p-2f-coop-v3` for QMIX
and MMSA with the same loop settings, one torch thread, and reports:

- `steps_per_s`: env steps / wall seconds of the whole run (collection, updates, one evaluation);
- `steady_steps_per_s`: the same rate between the first train line with updates and the last one
  (excludes the warm-up, when the buffer is still filling and no update runs);
- `update_ms`: the median time of one `learner.update` on a sampled batch of 32 episodes;
- `minor_faults_per_update`, `kernel_ms_per_update`: page faults and kernel CPU time of the
  process per timed update (`getrusage`; the cost of mapping freed memory afresh, see
  `mmsa_marl_core.training.host_memory`);
- `act_ms`: the median time of one `learner.act` (exploring, host arrays in and out) for 1 and
  for 8 envs, measured after the updates;
- `device_syncs` (CUDA only): how many times one update waits for the GPU.

Settings: "classic" is PyMARL's QMIX loop (one env, one update per episode, batch 32
episodes, buffer 5000, agent hidden 64, mixer 32/64); "fast" is the loop's defaults (8 envs in
process, one update per episode); "quarter" is "fast" with one update every 4 episodes (the
replay ratio of a model-based run that trades updates for env steps). Targets: MMSA at least
half of our QMIX, and EPyMARL QMIX's rate measured side by side by bench/peer.py. `--threads`
sets torch's intra-op threads for both algorithms (1 by default; this machine has 2 cores);
`--precision bf16` runs both algorithms' updates in mixed precision (`TrainConfig.precision`);
`--device cuda` runs the networks and updates on the GPU (env stepping stays on the CPU).
Freed host memory is kept in the process from the start, as `train` does
(`mmsa_marl_core.training.host_memory`); `--no-retain-freed-memory` measures glibc's default
instead.

    .venv/bin/python bench/mmsa_throughput.py        # -> bench/results/mmsa_throughput.json
    .venv/bin/python bench/mmsa_throughput.py --steps 3000 --settings fast --profile
    .venv/bin/python bench/mmsa_throughput.py --precision bf16 \
        --out bench/results/mmsa_throughput_bf16.json
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import statistics
import sys
import tempfile
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from flows.training import choose_device
from mmsa_envs import VectorEnv
from mmsa_marl_core import EpisodeBuffer, config_from_dict, get_algo, read_metrics, train
from mmsa_marl_core.ops.precision import update_precision
from mmsa_marl_core.training.collect import run_episodes
from mmsa_marl_core.training.host_memory import retain_freed_memory

ENV = "lbf:Foraging-8x8-2p-2f-coop-v3"
SETTINGS = {
    "classic": {"n_envs": 1, "updates_per_episode": 1.0},
    "fast": {"n_envs": 8, "updates_per_episode": 1.0},
    "quarter": {"n_envs": 8, "updates_per_episode": 0.25},
}
COMMON = {"batch_size": 32, "buffer_size": 5000}
ALGO_CONFIG = {"agent_hidden": 64, "mixer_embed_dim": 32, "hypernet_hidden": 64}


def run_loop(
    algo: str,
    setting: str,
    steps: int,
    seed: int,
    precision: str,
    device: torch.device,
    retain_memory: bool,
) -> dict[str, float]:
    """Whole training run; rates from its metrics."""
    config = config_from_dict(
        {
            "env": ENV,
            "algo": algo,
            "steps": steps,
            "seed": seed,
            **COMMON,
            **SETTINGS[setting],
            "log_every": max(steps // 20, 1),
            "eval_every": steps,
            "eval_episodes": 1,
            "checkpoint_every": 10 * steps,
            "precision": precision,
            "retain_freed_memory": retain_memory,
            "algo_config": ALGO_CONFIG,
        }
    )
    with tempfile.TemporaryDirectory() as run_dir:
        result = train(config, run_dir, device=device, progress=False)
        lines = [x for x in read_metrics(Path(run_dir)) if x["kind"] == "train"]
    updating = [x for x in lines if x["updates"] > 0]
    steady = float("nan")
    if len(updating) >= 2:
        first, last = updating[0], updating[-1]
        steady = (last["env_steps"] - first["env_steps"]) / max(
            last["wall_s"] - first["wall_s"], 1e-9
        )
    return {
        "env_steps": result.env_steps,
        "updates": result.updates,
        "wall_s": round(result.wall_s, 2),
        "steps_per_s": round(result.env_steps / result.wall_s, 1),
        "steady_steps_per_s": round(steady, 1),
    }


def update_time(
    algo: str, seed: int, repeats: int, profile: bool, precision: str, device: torch.device
) -> dict[str, object]:
    """Median wall time of one update on batches of 32 random-policy episodes."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    with VectorEnv(ENV, 8, seed=seed, processes=False) as envs:
        entry = get_algo(algo)
        learner = entry.factory(envs.spec, entry.config_cls(**ALGO_CONFIG), device)
        buffer = EpisodeBuffer(envs.spec, 64, envs.spec.episode_limit)
        while len(buffer) < 32:
            episodes = run_episodes(envs, learner, explore=True, env_steps=0, rng=rng)
            buffer.add_episodes(**episodes.buffer_arrays())
    with update_precision(precision, device):
        for _ in range(3):  # warm-up (lazy imports, allocator, CUDA kernels and handles)
            learner.update(buffer.sample(32, rng, device=device))
    _sync(device)
    times = []
    profiler = cProfile.Profile() if profile else None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(repeats):
        batch = buffer.sample(32, rng, device=device)
        _sync(device)
        start = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        with update_precision(precision, device):
            learner.update(batch)
        _sync(device)
        if profiler is not None:
            profiler.disable()
        times.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_SELF)
    out: dict[str, object] = {
        "update_ms": round(1000 * statistics.median(times), 1),
        "minor_faults_per_update": round((after.ru_minflt - usage.ru_minflt) / repeats),
        "kernel_ms_per_update": round(1000 * (after.ru_stime - usage.ru_stime) / repeats, 1),
    }
    out["act_ms"] = {str(b): act_time(learner, b, rng) for b in (1, 8)}
    if device.type == "cuda":
        out["device_syncs"] = _count_syncs(learner, buffer.sample(32, rng, device=device))
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
        out["profile_top"] = text.getvalue().splitlines()[:60]
    return out


def act_time(learner: object, envs: int, rng: np.random.Generator, repeats: int = 300) -> float:
    """Median wall time (ms) of one exploring `learner.act` for `envs` env rows."""
    spec = learner.spec  # type: ignore[attr-defined]
    obs = rng.standard_normal((envs, spec.n_agents, spec.obs_dim)).astype(np.float32)
    avail = np.ones((envs, spec.n_agents, spec.n_actions), bool)
    state = learner.initial_state(envs)  # type: ignore[attr-defined]
    times = []
    for i in range(repeats + 10):
        start = time.perf_counter()
        _, state = learner.act(  # type: ignore[attr-defined]
            obs, avail, state, env_steps=0, explore=True, rng=rng
        )
        if i >= 10:  # the first calls capture graphs and warm caches
            times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 3)


def _count_syncs(learner: object, batch: object) -> int:
    """How many times one CUDA update waits for the GPU (a value read back to the host)."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            learner.update(batch)  # type: ignore[attr-defined]
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return sum("synchroniz" in str(w.message) for w in caught)


def _sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so that host timers measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine(device: torch.device, retained: bool) -> dict[str, object]:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "device": str(device),
        "gpu": gpu,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_avg_at_start": os.getloadavg(),
        "torch_threads": torch.get_num_threads(),
        "host_memory_retained": retained,
        "python": sys.version.split()[0],
        "versions": {
            d: version(d)
            for d in ("torch", "numpy", "lbforaging", "mmsa-marl-core", "mmsa-worldmodel")
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000, help="env steps per training run")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--algos", nargs="+", default=["qmix", "mmsa"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=10, help="timed updates per algo")
    parser.add_argument("--profile", action="store_true", help="store a cProfile of MMSA updates")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--precision", default="fp32", choices=("fp32", "bf16"), help="TrainConfig.precision"
    )
    parser.add_argument(
        "--device", default="cpu", help="cpu, cuda[:N] or auto (cuda when torch sees a GPU)"
    )
    parser.add_argument(
        "--no-retain-freed-memory",
        dest="retain_memory",
        action="store_false",
        help="leave glibc's malloc thresholds as they are (TrainConfig.retain_freed_memory=False)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/mmsa_throughput.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        device = torch.device(choose_device(args.device))
    except ValueError as err:
        parser.error(str(err))

    # Before any timing, so that both algorithms and every setting run with the same allocator.
    retained = args.retain_memory and retain_freed_memory()
    info = machine(device, retained)
    results: dict[str, dict[str, object]] = {}
    for algo in args.algos:
        results[algo] = update_time(
            algo, args.seed, args.repeats, args.profile and algo == "mmsa", args.precision, device
        )
        for setting in args.settings:
            results[algo][setting] = run_loop(
                algo, setting, args.steps, args.seed, args.precision, device, args.retain_memory
            )
            print(algo, setting, results[algo][setting], flush=True)
        print(algo, "update_ms", results[algo]["update_ms"], flush=True)
    summary = {}
    if "qmix" in results and "mmsa" in results:
        for setting in args.settings:
            q = results["qmix"][setting]["steady_steps_per_s"]  # type: ignore[index]
            m = results["mmsa"][setting]["steady_steps_per_s"]  # type: ignore[index]
            summary[setting] = {
                "mmsa_over_qmix": round(m / q, 3),
                "target_half_of_qmix": bool(m >= 0.5 * q),
                "target_above_400": bool(m > 400),
            }
    out = {
        "benchmark": "mmsa_throughput",
        "env": ENV,
        "command": " ".join([sys.executable, *sys.argv]),
        "settings": {k: {**COMMON, **v} for k, v in SETTINGS.items()},
        "algo_config": ALGO_CONFIG,
        "precision": args.precision,
        "steps": args.steps,
        "machine": info,
        "results": results,
        "summary": summary,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
