"""Benchmark of mmsa_envs: adapter overhead against the raw backends, and vector-env scaling.

Writes bench/results/envs.json (machine, versions, command, date, every figure).

1. Adapter overhead, per backend (LBF Foraging-8x8-2p-2f-coop-v3, MaMuJoCo HalfCheetah-6x1,
   SMAX smacv2_5_units): we record episodes of random available actions with the adapter, then
   replay exactly those seeds and actions through the raw backend and through the adapter,
   interleaved (raw, adapter, raw, adapter, ...), and compare the median CPU time per step
   (this process; wall-clock is recorded too, but on a shared machine it also counts the time
   other processes hold the cores).
   Both loops do the same work per step except what the adapter adds. Target: overhead <= 10%.
2. VectorEnv scaling (MaMuJoCo HalfCheetah-6x1 and LBF): env steps per second of
   `VectorEnv(processes=True, autoreset=True)` at B in {1, 2, 4, 8} against one in-process env.
   Target: >= 1.6x one env on 2 cores for MaMuJoCo.
3. SMAX throughput: `SMAXEnv` against `SMAXVectorEnv` (one vmapped call) at B in {1, 8, 64}.
   SMAX's smacv2_* maps draw unit types from all SMAX types, not SMACv2's per-race sets: these
   are SMAX numbers, not SMACv2 ones.

Usage: .venv/bin/python bench/envs.py [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

warnings.filterwarnings("ignore")

from _provenance import command, git_commit, machine, now, versions  # noqa: E402

from mmsa_envs import EnvSpec, VectorEnv, make  # noqa: E402
from mmsa_envs._smax_vector import SMAXVectorEnv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "envs.json"
Episode = tuple[int, list[np.ndarray]]
DISTS = ("mmsa-envs", "numpy", "gymnasium", "lbforaging", "gymnasium-robotics", "mujoco",
         "pettingzoo", "jax", "jaxlib", "jaxmarl")  # fmt: skip


# ---------------------------------------------------------------------- helpers
def record(env_id: str, n_steps: int, seed: int = 0) -> list[Episode]:
    """Episodes of random available actions, `n_steps` steps in all (with their seeds)."""
    env = make(env_id)
    rng = np.random.default_rng(seed)
    episodes: list[Episode] = []
    total = 0
    while total < n_steps:
        ep_seed = seed * 100_003 + len(episodes)
        step, actions = env.reset(seed=ep_seed), []
        while not step.done and total < n_steps:
            if env.spec.discrete:
                act = np.array([rng.choice(np.flatnonzero(r)) for r in step.avail_actions])
            else:
                act = rng.uniform(-1, 1, (env.spec.n_agents, env.spec.n_actions))
                act = act.astype(np.float32)
            actions.append(act)
            step = env.step(act)
            total += 1
        episodes.append((ep_seed, actions))
    env.close()
    return episodes


def random_actions(spec: EnvSpec, avail: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniform over the available actions (discrete: `[..., N]`) or in [-1, 1] (continuous:
    `[..., N, A]`), for the masks `avail [..., N, A]` of one env or a vector of them."""
    if spec.discrete:
        return _valid_random(avail, rng)
    return rng.uniform(-1, 1, avail.shape).astype(np.float32)


def _valid_random(avail: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.argmax(avail * rng.random(avail.shape), axis=-1).astype(np.int64)


def per_step(loop: Callable[[], int]) -> tuple[float, float]:
    """Run `loop` once (it returns how many steps it took): `(wall, cpu)` seconds per step."""
    t0, c0 = time.perf_counter(), time.process_time()
    n = loop()
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def for_seconds(seconds: float, advance: Callable[[], int]) -> tuple[float, float]:
    """Call `advance` (it returns the env steps it took) until `seconds` have passed:
    `(wall, cpu)` seconds per env step."""
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        n += advance()
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def replay(
    reset: Callable[..., Any],
    step: Callable[[Any], Any],
    episodes: Sequence[tuple[int, Sequence[Any]]],
) -> Callable[[], tuple[float, float]]:
    """A runner for `interleaved`: replay the `(seed, actions)` episodes through `reset(seed=)`
    and `step(action)`; `(wall, cpu)` seconds per step. Raw backends and the adapter are timed
    by this one loop, so they differ only in what `reset` and `step` do."""

    def loop() -> int:
        n = 0
        for seed, acts in episodes:
            reset(seed=seed)
            for a in acts:
                step(a)
            n += len(acts)
        return n

    return lambda: per_step(loop)


def interleaved(runners: dict[str, Callable[[], Any]], repeats: int) -> dict[str, dict[str, Any]]:
    """Run every runner `repeats` times, round-robin.

    A runner returns seconds per step, or `(wall, cpu)` seconds per step. CPU time (this
    process, all threads) is the primary figure where given: on a shared machine it leaves out
    the time other processes hold the cores, which wall-clock time does not.
    """
    wall: dict[str, list[float]] = {k: [] for k in runners}
    cpu: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            out = run()
            if isinstance(out, tuple):
                wall[name].append(out[0])
                cpu[name].append(out[1])
            else:
                wall[name].append(out)
    res: dict[str, dict[str, Any]] = {}
    for k in runners:
        primary = cpu[k] or wall[k]
        res[k] = {
            "clock": "cpu" if cpu[k] else "wall",
            "us_per_step_median": statistics.median(primary) * 1e6,
            "steps_per_s_median": 1.0 / statistics.median(primary),
            "us_per_step_all": [round(x * 1e6, 2) for x in primary],
        }
        if cpu[k]:
            res[k]["wall_us_per_step_median"] = statistics.median(wall[k]) * 1e6
            res[k]["wall_us_per_step_all"] = [round(x * 1e6, 2) for x in wall[k]]
    return res


def overhead(result: dict[str, dict[str, Any]], raw: str, ours: str) -> float:
    """Relative extra time per step of `ours` over `raw` (medians, CPU time where measured)."""
    return result[ours]["us_per_step_median"] / result[raw]["us_per_step_median"] - 1.0


# ---------------------------------------------------------------------- 1. adapter overhead
def bench_lbf(repeats: int, n_steps: int) -> dict[str, Any]:
    import gymnasium as gym
    import lbforaging  # noqa: F401  (registers the ids)

    name = "Foraging-8x8-2p-2f-coop-v3"
    episodes = record(f"lbf:{name}", n_steps)
    raw = gym.make(name)
    unwrapped = gym.make(name).unwrapped
    ours = make(f"lbf:{name}")
    lists = [(s, [a.tolist() for a in acts]) for s, acts in episodes]
    runners = {
        "raw_gym_make": replay(raw.reset, raw.step, lists),
        "raw_unwrapped": replay(unwrapped.reset, unwrapped.step, lists),
        "adapter": replay(ours.reset, ours.step, episodes),
    }
    res = interleaved(runners, repeats)
    return {
        "env": f"lbf:{name}",
        "steps_per_repeat": sum(len(a) for _, a in episodes),
        "timings": res,
        "adapter_overhead_vs_gym_make": overhead(res, "raw_gym_make", "adapter"),
        "adapter_overhead_vs_unwrapped": overhead(res, "raw_unwrapped", "adapter"),
        "raw_loop": "gym.make(id).step(list of ints) and reset(seed) (the unwrapped env too), "
        "same seeds and actions as the adapter",
    }


def bench_mamujoco(repeats: int, n_steps: int) -> dict[str, Any]:
    from gymnasium_robotics import mamujoco_v1

    episodes = record("mamujoco:HalfCheetah-6x1", n_steps)
    raw = mamujoco_v1.parallel_env("HalfCheetah", "6x1")
    agents = raw.possible_agents
    dicts = [
        (s, [{a: act[i] for i, a in enumerate(agents)} for act in acts]) for s, acts in episodes
    ]
    ours = make("mamujoco:HalfCheetah-6x1")

    def step_and_state(action: dict[str, np.ndarray]) -> None:
        raw.step(action)
        raw.state()

    runners = {
        "raw": replay(raw.reset, raw.step, dicts),
        "raw_plus_state": replay(raw.reset, step_and_state, dicts),
        "adapter": replay(ours.reset, ours.step, episodes),
    }
    res = interleaved(runners, repeats)
    return {
        "env": "mamujoco:HalfCheetah-6x1",
        "steps_per_repeat": sum(len(a) for _, a in episodes),
        "timings": res,
        "adapter_overhead_vs_raw": overhead(res, "raw", "adapter"),
        "adapter_overhead_vs_raw_plus_state": overhead(res, "raw_plus_state", "adapter"),
        "raw_loop": "mamujoco_v1.parallel_env('HalfCheetah', '6x1').step(dict of actions), "
        "reset(seed); raw_plus_state also calls env.state() (the adapter returns the state)",
    }


def bench_smax(repeats: int, n_steps: int) -> dict[str, Any]:
    import jax
    import jaxmarl
    from jaxmarl.environments.smax import map_name_to_scenario

    name = "smacv2_5_units"
    episodes = record(f"smax:{name}", n_steps)
    ours = make(f"smax:{name}")
    env = jaxmarl.make("HeuristicEnemySMAX", scenario=map_name_to_scenario(name))
    agents = env.agents
    step_fn = jax.jit(env.step)  # jaxmarl's own step: auto-resets inside
    avail_fn = jax.jit(env.get_avail_actions)
    flat = [[{a: np.int32(act[i]) for i, a in enumerate(agents)} for act in acts]
            for _, acts in episodes]  # fmt: skip
    key = jax.random.PRNGKey(0)
    _, state = jax.jit(env.reset)(key)
    step_fn(key, state, flat[0][0])  # compile outside the timings
    jax.device_get(avail_fn(state))

    def raw_loop() -> int:
        k, s = key, state
        n = 0
        for acts in flat:
            for a in acts:
                k, sk = jax.random.split(k)
                obs, s, rew, dones, _ = step_fn(sk, s, a)
                # what a user's loop needs on the host: observations, state, masks, reward, end
                jax.device_get((obs, avail_fn(s), rew, dones))
            n += len(acts)
        return n

    runners = {
        "raw": lambda: per_step(raw_loop),
        "adapter": replay(ours.reset, ours.step, episodes),
    }
    res = interleaved(runners, repeats)
    return {
        "env": f"smax:{name}",
        "note": "SMAX smacv2_* maps draw unit types from all SMAX types, not SMACv2's "
        "per-race setups; these are SMAX numbers, not SMACv2 ones",
        "steps_per_repeat": sum(len(a) for _, a in episodes),
        "timings": res,
        "adapter_overhead_vs_raw": overhead(res, "raw", "adapter"),
        "raw_loop": "jit(env.step) (auto-reset) + jit(env.get_avail_actions), then "
        "jax.device_get of observations, masks, rewards and dones every step",
    }


# ---------------------------------------------------------------------- 2. vector scaling
def vector_scaling(env_id: str, sizes: list[int], seconds: float, repeats: int) -> dict[str, Any]:
    spec = make(env_id).spec
    rng = np.random.default_rng(0)

    parent_cpu: dict[int, list[float]] = {}

    def throughput(venv: Any) -> Callable[[], float]:
        v = venv.reset()

        def advance() -> int:
            nonlocal v
            v = venv.step(random_actions(spec, v.avail_actions, rng))
            return int(venv.num_envs)

        def run() -> float:
            wall, cpu = for_seconds(seconds, advance)
            parent_cpu.setdefault(id(venv), []).append(cpu)
            return wall  # seconds per env step (wall)

        return run

    venvs: dict[str, Any] = {"one_env_in_process": VectorEnv(env_id, 1, processes=False,
                                                             autoreset=True)}  # fmt: skip
    for b in sizes:
        venvs[f"B={b}"] = VectorEnv(env_id, b, processes=True, autoreset=True)
    try:
        res = interleaved({k: throughput(v) for k, v in venvs.items()}, repeats)
    finally:
        for v in venvs.values():
            v.close()
    base = res["one_env_in_process"]["steps_per_s_median"]
    return {
        "env": env_id,
        "timings": res,
        "parent_cpu_us_per_env_step": {
            k: round(statistics.median(parent_cpu[id(v)]) * 1e6, 1) for k, v in venvs.items()
        },
        "speedup_vs_one_env": {
            k: res[k]["steps_per_s_median"] / base for k in res if k != "one_env_in_process"
        },
        "loop": "VectorEnv(processes=True, autoreset=True).step with random valid actions; "
        "env steps per second (B per call), wall-clock; parent_cpu is the CPU time the "
        "calling process spends per env step (for one_env_in_process: the whole env step)",
    }


def _spin(env_id: str, n_steps: int) -> float:
    """Steps per second of one in-process env on random actions (run in a child process)."""
    env = make(env_id)
    spec = env.spec
    rng = np.random.default_rng(0)
    step = env.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        step = env.step(random_actions(spec, step.avail_actions, rng))
        if step.done:
            step = env.reset(seed=int(rng.integers(1 << 30)))
    return n_steps / (time.perf_counter() - t0)


def available_parallelism(env_id: str, n_steps: int, repeats: int) -> dict[str, Any]:
    """How much faster 2 independent processes run than 1 on this machine right now.

    On a shared machine this is the ceiling for any 2-process speedup: it puts the VectorEnv
    figures in context."""
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")
    ratios = []
    with ctx.Pool(2) as pool:
        pool.starmap(_spin, [(env_id, 200)] * 2)  # warm up (imports)
        for _ in range(repeats):
            one = pool.apply(_spin, (env_id, n_steps))
            t0 = time.perf_counter()
            pool.starmap(_spin, [(env_id, n_steps)] * 2)
            two = 2 * n_steps / (time.perf_counter() - t0)
            ratios.append(two / one)
    return {
        "env": env_id,
        "two_process_speedup_all": [round(r, 3) for r in ratios],
        "two_process_speedup_median": statistics.median(ratios),
        "meaning": "aggregate steps/s of 2 independent processes / 1 process (ideal 2.0 on 2 "
        "idle cores); the ceiling for VectorEnv on this machine at this time",
    }


def smax_throughput(sizes: list[int], seconds: float, repeats: int) -> dict[str, Any]:
    env_id = "smax:smacv2_5_units"
    rng = np.random.default_rng(0)
    single = make(env_id)

    def run_single() -> float:
        step = single.reset(seed=int(rng.integers(1 << 30)))

        def advance() -> int:
            nonlocal step
            step = single.step(_valid_random(step.avail_actions, rng))
            if step.done:
                step = single.reset(seed=int(rng.integers(1 << 30)))
            return 1

        return for_seconds(seconds, advance)[0]

    runners: dict[str, Callable[[], float]] = {"SMAXEnv": run_single}
    for b in sizes:
        venv = SMAXVectorEnv(env_id, b, autoreset=True)
        v0 = venv.reset()
        venv.step(_valid_random(v0.avail_actions, rng))  # compile outside the timings

        def run(venv: SMAXVectorEnv = venv) -> float:
            v = venv.reset()

            def advance() -> int:
                nonlocal v
                v = venv.step(_valid_random(v.avail_actions, rng))
                return venv.num_envs

            return for_seconds(seconds, advance)[0]

        runners[f"SMAXVectorEnv B={b}"] = run
    res = interleaved(runners, repeats)
    return {
        "env": env_id,
        "note": "SMAX numbers, not SMACv2 (unit types drawn from all SMAX types)",
        "timings": res,
        "loop": "random valid actions, auto-reset; env steps per second",
    }


# ---------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--parts", default="overhead,vector,smax", help="comma list of overhead,vector,smax"
    )
    args = parser.parse_args()
    steps = 1500 if args.quick else 4000
    seconds = 0.5 if args.quick else 2.0
    started = time.time()
    result: dict[str, Any] = {
        "command": command(),
        "date": now(),
        "git_commit": git_commit(),
        "machine": machine(),
        "versions": versions(DISTS),
        "method": __doc__,
        "targets": {"adapter_overhead_max": 0.10, "mamujoco_vector_speedup_min_on_2_cores": 1.6},
    }
    parts = set(args.parts.split(","))
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    if "overhead" in parts:
        print("LBF overhead ...", flush=True)
        result["adapter_overhead"] = {"lbf": bench_lbf(args.repeats, steps)}
        print("MaMuJoCo overhead ...", flush=True)
        result["adapter_overhead"]["mamujoco"] = bench_mamujoco(args.repeats, steps // 2)
        print("SMAX overhead (compiles first) ...", flush=True)
        result["adapter_overhead"]["smax"] = bench_smax(args.repeats, steps // 2)
    if "vector" in parts:
        print("VectorEnv scaling ...", flush=True)
        result["vector_env"] = {
            "mamujoco": vector_scaling("mamujoco:HalfCheetah-6x1", [1, 2, 4, 8], seconds, 3),
            "lbf": vector_scaling("lbf:Foraging-8x8-2p-2f-coop-v3", [1, 2, 4, 8], seconds, 3),
            "available_parallelism": available_parallelism(
                "mamujoco:HalfCheetah-6x1", 1000 if args.quick else 3000, 3
            ),
        }
    if "smax" in parts:
        print("SMAX vectorised throughput ...", flush=True)
        result["smax_vector"] = smax_throughput([1, 8, 64], seconds, 3)
    for key in ("adapter_overhead", "vector_env", "smax_vector"):  # parts not rerun: keep
        if key not in result and key in previous:
            result[key] = previous[key]
            result.setdefault("parts_kept_from_previous_run", []).append(
                {"part": key, "date": previous.get("date"), "command": previous.get("command")}
            )
    result["machine"]["load_average_at_end"] = list(os.getloadavg())
    result["wall_s"] = round(time.time() - started, 1)
    result["summary"] = summary(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {args.out}")


def summary(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "adapter_overhead" in result:
        ov = result["adapter_overhead"]
        out.update(
            {
                "lbf_overhead_vs_gym_make": round(ov["lbf"]["adapter_overhead_vs_gym_make"], 4),
                "lbf_overhead_vs_unwrapped": round(ov["lbf"]["adapter_overhead_vs_unwrapped"], 4),
                "mamujoco_overhead": round(ov["mamujoco"]["adapter_overhead_vs_raw"], 4),
                "mamujoco_overhead_vs_raw_plus_state": round(
                    ov["mamujoco"]["adapter_overhead_vs_raw_plus_state"], 4
                ),
                "smax_overhead": round(ov["smax"]["adapter_overhead_vs_raw"], 4),
            }
        )
    if "vector_env" in result:
        vec = result["vector_env"]
        for name in ("mamujoco", "lbf"):
            out[f"{name}_vector_speedup"] = {
                k: round(v, 3) for k, v in vec[name]["speedup_vs_one_env"].items()
            }
        out["machine_two_process_speedup"] = round(
            vec["available_parallelism"]["two_process_speedup_median"], 3
        )
    if "smax_vector" in result:
        out["smax_steps_per_s"] = {
            k: round(v["steps_per_s_median"]) for k, v in result["smax_vector"]["timings"].items()
        }
    return out


if __name__ == "__main__":
    main()
