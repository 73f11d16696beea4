"""Side by side with EPyMARL: the same LBF task, the same env-step budget, at the same time.

For each pair, EPyMARL's `src/main.py` and our `mmsa train` start together, each pinned to its own
core (`taskset`), one torch thread on both sides (OMP_NUM_THREADS=MKL_NUM_THREADS=1, our
`--threads 1`), on `Foraging-8x8-2p-2f-coop-v3` with 50-step episodes; with `--swap` each pair
runs a second time with the cores swapped. Pairs: `qmix` (our QMIX vs EPyMARL QMIX), `vdn`
(VDN vs VDN), `mmsa-vs-qmix` (our MMSA vs EPyMARL QMIX). Both sides run at their defaults
otherwise (recorded in the JSON, EPyMARL's from the config its sacred run stores); the one
change on EPyMARL's side is `test_interval=steps-100`, so that it tests once more at the end of
the budget (its default, 50,000 steps, tests only after the first episode below that budget).

Recorded per side: env steps done, wall seconds, CPU seconds (user+sys of the process and its
children, from `os.wait4`), env steps per wall- and per CPU-second, peak RSS (the process
tree's summed RSS polled every 0.5 s with psutil, and `ru_maxrss`), and the final return each
side reports (EPyMARL: the last `test_return_mean` of its sacred `info.json`; ours: the last
`eval` line of `metrics.jsonl`); per pair the ratios ours/EPyMARL. The machine may be shared:
the load average before and after each pair is recorded next to the figures.

EPyMARL is not part of this repository: check it out and give it its own environment, e.g. a
clone in /tmp/epymarl and a venv with torch, sacred, pyyaml, numpy, gymnasium and lbforaging.

    .venv/bin/python bench/peer.py --epymarl /tmp/epymarl --python /tmp/epymarl-venv/bin/python
    .venv/bin/python bench/peer.py --epymarl /tmp/epymarl --python /tmp/epymarl-venv/bin/python \\
        --pairs mmsa-vs-qmix --steps 15000 --swap --out bench/results/peer_epymarl.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from _provenance import command, git_commit, machine, now, versions

ROOT = Path(__file__).resolve().parents[1]
TASK = "Foraging-8x8-2p-2f-coop-v3"
TIME_LIMIT = 50  # our lbf default (`max_episode_steps`), passed to EPyMARL's gymma env
PAIRS = {"qmix": ("qmix", "qmix"), "vdn": ("vdn", "vdn"), "mmsa-vs-qmix": ("mmsa", "qmix")}
EPYMARL_KEYS = (
    "runner", "batch_size_run", "batch_size", "buffer_size", "test_interval", "test_nepisode",
    "t_max", "lr", "target_update_interval_or_tau", "epsilon_anneal_time", "standardise_rewards",
    "obs_last_action", "obs_agent_id", "hidden_dim", "use_rnn", "mixer", "mixing_embed_dim",
    "hypernet_embed", "double_q", "use_cuda",
)  # fmt: skip
NOTES = [
    "wall and CPU seconds are whole runs: start-up, env steps, updates and each side's default "
    "evaluations (EPyMARL: 100 greedy episodes after the first episode and at the end; ours: "
    "eval_episodes every eval_every steps and at the end), outside the env-step budget on both",
    "EPyMARL's qmix/vdn defaults: feed-forward agents (use_rnn False), no last action in the "
    "input, standardised rewards, one env (episode runner); ours: GRU agents, last action in "
    "the input, 8 envs stepped together; both one update of 32 episodes per episode collected",
    "when one side ends first, the other runs its rest alone on its core",
    "returns are the sum of both agents' rewards on both sides; below epsilon's 50k-step anneal "
    "(both sides) they say little about learning",
]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def fail(msg: str) -> None:
    print(f"peer.py: {msg}", file=sys.stderr)
    sys.exit(2)


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run `cmd` to the end; wall and CPU seconds (process and children), peak RSS."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        peak = [0]
        done = threading.Event()

        def poll() -> None:
            try:
                root = psutil.Process(proc.pid)
            except psutil.NoSuchProcess:
                return
            while not done.is_set():
                rss = 0
                try:
                    for p in [root, *root.children(recursive=True)]:
                        try:
                            rss += p.memory_info().rss
                        except psutil.NoSuchProcess:
                            pass
                except psutil.NoSuchProcess:
                    break
                peak[0] = max(peak[0], rss)
                done.wait(0.5)

        poller = threading.Thread(target=poll, daemon=True)
        t0 = time.perf_counter()
        poller.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        poller.join()
    return {
        "returncode": proc.returncode,
        "wall_s": round(wall, 2),
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
        "user_s": round(ru.ru_utime, 2),
        "sys_s": round(ru.ru_stime, 2),
        "peak_rss_mib_polled": round(peak[0] / 2**20, 1),
        "ru_maxrss_mib": round(ru.ru_maxrss / 1024, 1),
    }


def _value(x: Any) -> float:
    return float(x["value"]) if isinstance(x, dict) else float(x)


def epymarl_side(args: argparse.Namespace, algo: str, core: int, work: Path) -> dict[str, Any]:
    sacred = args.epymarl / "results" / "sacred" / algo / f"lbforaging:{TASK}"
    before = set(sacred.glob("*")) if sacred.exists() else set()
    cmd = [
        "taskset", "-c", str(core), str(args.python), "src/main.py", f"--config={algo}",
        "--env-config=gymma", "with", f"env_args.time_limit={TIME_LIMIT}",
        f"env_args.key=lbforaging:{TASK}", f"t_max={args.steps}",
        f"test_interval={args.steps - 100}", "use_cuda=False", f"seed={args.seed}",
    ]  # fmt: skip
    env = {**os.environ, **ONE_THREAD}
    env.pop("PYTHONPATH", None)
    res = run_measured(cmd, args.epymarl, env, work / f"epymarl-{algo}-core{core}.log")
    res["command"] = " ".join(cmd)
    res["cwd"] = str(args.epymarl)
    new = sorted(set(sacred.glob("*")) - before, key=lambda p: p.stat().st_mtime)
    if not new:
        res["error"] = f"no new sacred run under {sacred}"
        return res
    run = new[-1]
    info = json.loads((run / "info.json").read_text())
    cfg = json.loads((run / "config.json").read_text())
    res["sacred_dir"] = str(run)
    res["config"] = {k: cfg.get(k) for k in EPYMARL_KEYS}
    # the loop runs while t_env <= t_max: it ends within one episode after the budget
    t_marks = [t for k, v in info.items() if k.endswith("_T") for t in v]
    res["env_steps"] = args.steps
    res["env_steps_note"] = (
        f"EPyMARL's loop runs while t_env <= t_max: done steps are in ({args.steps}, "
        f"{args.steps + TIME_LIMIT}]; rates use {args.steps}; last logged t_env {max(t_marks)}"
    )
    res["final_return"] = _value(info["test_return_mean"][-1])
    res["final_return_at_env_steps"] = info["test_return_mean_T"][-1]
    res["test_episodes"] = cfg.get("test_nepisode")
    shutil.rmtree(run, ignore_errors=True)
    return res


def ours_side(args: argparse.Namespace, algo: str, core: int, work: Path) -> dict[str, Any]:
    run_dir = work / f"ours-{algo}-core{core}"
    mmsa = Path(sys.executable).with_name("mmsa")
    cmd = [
        "taskset", "-c", str(core), str(mmsa), "train", "--env", f"lbf:{TASK}", "--algo", algo,
        "--steps", str(args.steps), "--seed", str(args.seed), "--device", "cpu",
        "--run-dir", str(run_dir), "--no-progress", "--no-tensorboard", "--threads", "1",
    ]  # fmt: skip
    env = {**os.environ, **ONE_THREAD}
    res = run_measured(cmd, ROOT, env, work / f"ours-{algo}-core{core}.log")
    res["command"] = " ".join(cmd)
    lines = []
    metrics = run_dir / "metrics.jsonl"
    if metrics.exists():
        lines = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
    evals = [x for x in lines if x.get("kind") == "eval"]
    if not lines:
        res["error"] = "no metrics.jsonl"
        return res
    res["env_steps"] = max(x["env_steps"] for x in lines)
    res["updates"] = max(x.get("updates", 0) for x in lines)
    if evals:
        res["final_return"] = float(evals[-1]["return_mean"])
        res["final_return_at_env_steps"] = evals[-1]["env_steps"]
    return res


def rates(side: dict[str, Any]) -> None:
    if "env_steps" in side and side["wall_s"] > 0 and side["cpu_s"] > 0:
        side["steps_per_wall_s"] = round(side["env_steps"] / side["wall_s"], 1)
        side["steps_per_cpu_s"] = round(side["env_steps"] / side["cpu_s"], 1)


def run_pair(args: argparse.Namespace, name: str, cores: tuple[int, int]) -> dict[str, Any]:
    ours_algo, epy_algo = PAIRS[name]
    work = Path(tempfile.mkdtemp(prefix=f"peer-{name}-"))
    load_before = list(os.getloadavg())
    out: dict[str, Any] = {}

    def go(key: str, fn: Any, algo: str, core: int) -> None:
        out[key] = fn(args, algo, core, work)

    threads = [
        threading.Thread(target=go, args=("ours", ours_side, ours_algo, cores[0])),
        threading.Thread(target=go, args=("epymarl", epymarl_side, epy_algo, cores[1])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for side in ("ours", "epymarl"):
        rates(out[side])
        out[side]["core"] = cores[0] if side == "ours" else cores[1]
        out[side]["algo"] = ours_algo if side == "ours" else epy_algo
        if out[side]["returncode"] != 0 or "error" in out[side]:
            out[side]["log_tail"] = (
                (work / f"{'ours' if side == 'ours' else 'epymarl'}-"
                 f"{out[side]['algo']}-core{out[side]['core']}.log")
                .read_text(errors="replace")[-2000:]
            )  # fmt: skip
    ratios = {}
    for key in ("steps_per_wall_s", "steps_per_cpu_s"):
        if key in out["ours"] and key in out["epymarl"]:
            ratios[key] = round(out["ours"][key] / out["epymarl"][key], 2)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "pair": name,
        "cores_ours_epymarl": list(cores),
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
        "ratio_ours_over_epymarl": ratios,
        **out,
    }


def epymarl_versions(args: argparse.Namespace) -> dict[str, Any]:
    code = (
        "import json, platform; from importlib.metadata import version as v\n"
        "out = {'python': platform.python_version()}\n"
        "for d in ('torch', 'numpy', 'lbforaging', 'gymnasium', 'sacred'):\n"
        "    try: out[d] = v(d)\n"
        "    except Exception: out[d] = 'not installed'\n"
        "print(json.dumps(out))"
    )
    vers = json.loads(subprocess.run([str(args.python), "-c", code], capture_output=True,
                                     text=True, check=True).stdout)  # fmt: skip
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=args.epymarl, capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    return {"commit": commit or None, "versions": vers}


def our_defaults() -> dict[str, Any]:
    from mmsa_marl_core import TrainConfig, get_algo

    cfg = TrainConfig()
    loop = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    keep = ("n_envs", "batch_size", "buffer_size", "updates_per_episode", "eval_every",
            "eval_episodes", "log_every", "checkpoint_every", "env_processes")  # fmt: skip
    out: dict[str, Any] = {"train_config": {k: loop[k] for k in keep}}
    for algo in ("qmix", "mmsa"):
        acfg = get_algo(algo).config_cls()
        fields = {f.name: getattr(acfg, f.name) for f in dataclasses.fields(acfg)}
        out[f"{algo}_config"] = {
            k: v for k, v in fields.items() if isinstance(v, int | float | str | bool)
        }
    out["note"] = "vdn uses qmix's QLearnerConfig with the VDN mixer"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epymarl", type=Path, required=True, help="EPyMARL checkout (src/main.py)")
    ap.add_argument("--python", type=Path, required=True, help="interpreter of EPyMARL's venv")
    ap.add_argument("--pairs", default="qmix,vdn,mmsa-vs-qmix", help=f"of {','.join(PAIRS)}")
    ap.add_argument("--steps", type=int, default=40_000, help="env-step budget of both sides")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--swap", action="store_true", help="rerun each pair with the cores swapped")
    ap.add_argument("--cores", default="0,1", help="cores for ours,EPyMARL")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/peer_epymarl.json")
    ap.add_argument("--append", action="store_true", help="add the pairs to an existing --out")
    args = ap.parse_args()

    args.epymarl = args.epymarl.resolve()
    if (
        not (args.epymarl / "src" / "main.py").is_file()
        or not (args.epymarl / "src" / "config" / "algs" / "qmix.yaml").is_file()
    ):
        fail(f"--epymarl {args.epymarl}: not an EPyMARL checkout (no src/main.py, src/config)")
    if not os.access(args.python, os.X_OK):
        fail(f"--python {args.python}: not an executable interpreter")
    if shutil.which("taskset") is None:
        fail("taskset (util-linux) not found: it pins each side to its own core")
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()]
    bad = [p for p in pairs if p not in PAIRS]
    if bad:
        fail(f"--pairs: unknown {bad}; choose from {list(PAIRS)}")
    if args.steps < 2000:
        fail("--steps: at least 2000 (our loop's first update needs 32 episodes of 50 steps)")
    cores = tuple(int(c) for c in args.cores.split(","))
    if len(cores) != 2 or cores[0] == cores[1]:
        fail("--cores: two different cores, ours first")

    result: dict[str, Any] = {}
    if args.append and args.out.exists():
        result = json.loads(args.out.read_text())
    result.setdefault("runs", [])
    result.update({
        "benchmark": "peer_epymarl",
        "date": now(),
        "command": command(),
        "commit": git_commit(),
        "machine": {**machine(), "shared": "the cores were shared with other jobs (see load)"},
        "task": {"ours": f"lbf:{TASK}", "epymarl": f"gymma lbforaging:{TASK}",
                 "episode_limit": TIME_LIMIT},
        "ours": {"versions": versions(["torch", "numpy", "lbforaging", "gymnasium"]),
                 "defaults": our_defaults()},
        "epymarl": {**epymarl_versions(args),
                    "change_from_defaults": "test_interval=steps-100 (a final test); "
                                            "use_cuda=False; seed"},
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "notes": NOTES,
    })  # fmt: skip
    for name in pairs:
        order = [cores, cores[::-1]] if args.swap else [cores]
        for c in order:
            print(f"{name}: ours on core {c[0]}, EPyMARL on core {c[1]}, {args.steps} steps",
                  flush=True)  # fmt: skip
            rec = run_pair(args, name, c)
            rec["steps"] = args.steps
            rec["benchmark_command"] = command()
            rec["date"] = now()
            print(json.dumps({k: rec[k] for k in ("pair", "ratio_ours_over_epymarl")}),
                  flush=True)  # fmt: skip
            result["runs"].append(rec)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
