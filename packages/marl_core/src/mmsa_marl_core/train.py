"""The training loop: plain Python, read it top to bottom.

    envs, learner, buffer, rngs  <- config (or the latest checkpoint, with resume=True)
    while env_steps < config.steps:
        collect    n_envs whole episodes with the exploring policy (batched acting)
        store      them in the episode buffer
        update     updates_per_episode x episodes gradient updates on sampled batches
        log        a train line every log_every env steps (metrics.jsonl + loggers)
        evaluate   greedy policy, eval_episodes episodes, every eval_every env steps
        checkpoint every checkpoint_every env steps: models, optimisers, buffer, RNG states,
                   counters, env episode counters (iterations end between episodes, so that
                   is all an exact resume needs)
    final evaluation, final checkpoint, run.json status "finished"

Exact resume: every random draw comes from the torch RNG (initialisation), one numpy Generator
(sampling and exploration) or the envs' per-episode seeds `episode_seed(seed, env, counter)`;
all of them are in the checkpoint, so a killed run resumed from its last checkpoint ends with
the same parameters, bit for bit on CPU, as a run that was never interrupted. What a checkpoint
holds and how it is put back lives in `resume`; this module holds the loop and `evaluate_policy`.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from mmsa_envs import make_vector_env

from .buffer import EpisodeBuffer
from .checkpoint import (
    check_fingerprint,
    latest_checkpoint,
    list_checkpoints,
    save_checkpoint,
)
from .collect import AnyVectorEnv, Episodes, run_episodes
from .config import TrainConfig, config_to_dict
from .host_memory import retain_freed_memory
from .learner import Learner, get_algo
from .metrics import JsonlMetrics, MetricsLogger
from .precision import update_precision
from .reproducible import kernel_settings, require_pinned
from .resume import (
    Progress,
    checkpoint_payload,
    comparable_fingerprint,
    restore_payload,
    run_fingerprint,
)
from .run_info import git_commit, now, read_run_json, spec_to_dict, versions, write_json_atomic

__all__ = ["train", "TrainResult", "NonFiniteLossError", "evaluate_policy", "EVAL_SEED_OFFSET"]

log = logging.getLogger("mmsa_marl_core")

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation envs use `seed + EVAL_SEED_OFFSET`, so their episodes never repeat training ones."""


class NonFiniteLossError(RuntimeError):
    """Too many updates had a NaN/inf loss or gradient."""


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    env_steps: int
    episodes: int
    updates: int
    wall_s: float
    final_eval: dict[str, float]
    checkpoint: Path


def train(
    config: TrainConfig,
    run_dir: Path | str,
    *,
    device: str | torch.device = "cpu",
    resume: bool = False,
    loggers: Sequence[MetricsLogger] = (),
    progress: bool = True,
) -> TrainResult:
    """Train `config.algo` on `config.env` into `run_dir` (see the module docstring).

    `device` is used as given (resolve 'auto' at the edge). `loggers` receive every metrics
    line; they belong to the caller, who closes them. `resume=True` continues from the latest
    readable checkpoint in `run_dir/checkpoints` (or starts fresh when there is none).
    """
    run_dir, device = Path(run_dir), torch.device(device)
    if config.reproducible:
        require_pinned(device)
    ckpt_dir = run_dir / "checkpoints"
    if not resume and (list_checkpoints(ckpt_dir) or (run_dir / "metrics.jsonl").exists()):
        raise FileExistsError(
            f"{run_dir} already holds a run; pass resume=True (--resume) to continue it, "
            "or choose another run directory"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    retained = config.retain_freed_memory and retain_freed_memory()

    # ------------------------------------------------------------------ build
    entry = get_algo(config.algo)
    envs = make_vector_env(
        config.env,
        config.n_envs,
        seed=config.seed,
        env_kwargs=config.env_kwargs,
        processes=config.env_processes,
    )
    eval_envs: AnyVectorEnv | None = None
    metrics_file: JsonlMetrics | None = None
    run_info: dict[str, Any] = {}
    try:
        eval_envs = make_vector_env(
            config.env,
            min(config.n_envs, config.eval_episodes),
            seed=config.seed + EVAL_SEED_OFFSET,
            env_kwargs=config.env_kwargs,
            processes=config.env_processes,
        )
        spec = envs.spec
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        rng = np.random.default_rng(config.seed)
        learner = entry.factory(spec, config.algo_config, device)
        buffer = EpisodeBuffer(spec, config.buffer_size, spec.episode_limit)
        prog = Progress(next_checkpoint=config.checkpoint_every)
        fingerprint = run_fingerprint(config, spec)

        metrics_file = JsonlMetrics(run_dir / "metrics.jsonl")
        run_info = {
            "config": config_to_dict(config) | {"algo": config.algo},
            "env_spec": spec_to_dict(spec),
            "versions": versions(spec),
            "git_commit": git_commit(),
            "device": str(device),
            "torch_threads": torch.get_num_threads(),
            "cpu_kernels": kernel_settings(),
            "host_memory_retained": retained,
            "status": "running",
            "started": now(),
            "finished": None,
            "env_steps": 0,
        }
        if resume:
            found = latest_checkpoint(ckpt_dir)
            if found is None:
                log.warning("no checkpoint in %s: starting the run from the beginning", ckpt_dir)
                metrics_file.truncate(0)
            else:
                path, payload = found
                check_fingerprint(comparable_fingerprint(payload["fingerprint"]), fingerprint, path)
                prog = restore_payload(payload, learner, buffer, rng, envs, eval_envs, device)
                metrics_file.truncate(int(payload["metrics_offset"]))
                if (run_dir / "run.json").exists():
                    run_info["started"] = read_run_json(run_dir).get("started", run_info["started"])
                log.info("resumed %s at %d env steps", path, prog.env_steps)
        write_json_atomic(run_dir / "run.json", run_info | {"env_steps": prog.env_steps})

        def emit(kind: str, metrics: Mapping[str, float]) -> None:
            counters = {
                "episodes": float(prog.episodes),
                "updates": float(prog.updates),
                "wall_s": round(prog.wall_s, 3),
            }
            assert metrics_file is not None
            metrics_file.write(
                {"kind": kind, "env_steps": prog.env_steps, "episodes": prog.episodes,
                 "updates": prog.updates, "wall_s": counters["wall_s"], **metrics}
            )  # fmt: skip
            for logger in loggers:
                logger.log(kind, prog.env_steps, {**counters, **metrics})

        bar = tqdm(
            total=config.steps, initial=min(prog.env_steps, config.steps), unit="step",
            disable=not progress, dynamic_ncols=True, desc=f"{config.algo} {config.env}",
        )  # fmt: skip
        last_eval: dict[str, float] = {}
        tick = time.perf_counter()
        while prog.env_steps < config.steps:
            # ---------------------------------------------------------- collect and store
            episodes = run_episodes(envs, learner, explore=True, env_steps=prog.env_steps, rng=rng)
            new_steps = int(episodes.lengths.sum())
            if len(episodes.lengths):
                buffer.add_episodes(**episodes.buffer_arrays())
            prog.env_steps += new_steps
            prog.episodes += len(episodes.lengths)
            prog.dropped_episodes += episodes.dropped
            prog.returns.extend(episodes.returns.tolist())

            # ---------------------------------------------------------- update
            if len(buffer) >= config.batch_size:
                prog.update_credit += config.updates_per_episode * len(episodes.lengths)
                n_updates = int(prog.update_credit)
                prog.update_credit -= n_updates
                for _ in range(n_updates):
                    batch = buffer.sample(config.batch_size, rng, device=device)
                    with update_precision(config.precision, device):
                        metrics = learner.update(batch)
                    for name, value in metrics.items():
                        prog.metric_sums[name] = prog.metric_sums.get(name, 0.0) + value
                    prog.metric_count += 1
                    prog.updates += 1
                    if learner.nonfinite_updates > config.max_nonfinite_updates:
                        raise NonFiniteLossError(
                            f"{learner.nonfinite_updates} updates had a NaN/inf loss or gradient "
                            f"(max_nonfinite_updates={config.max_nonfinite_updates}); stopping at "
                            f"{prog.env_steps} env steps. Lower the learning rate, enable "
                            "standardise_rewards, or check the env's rewards."
                        )

            now_tick = time.perf_counter()
            prog.wall_s += now_tick - tick
            tick = now_tick
            bar.update(min(prog.env_steps, config.steps) - bar.n)
            bar.set_postfix(
                ret=f"{float(np.mean(episodes.returns)) if new_steps else float('nan'):.3f}",
                eps=f"{learner.exploration_rate(prog.env_steps):.3f}",
                sps=f"{prog.env_steps / max(prog.wall_s, 1e-9):.0f}",
            )
            finished = prog.env_steps >= config.steps

            # ---------------------------------------------------------- log
            if prog.env_steps >= prog.next_log or finished:
                emit("train", _train_line(prog, learner))
                prog.returns, prog.metric_sums, prog.metric_count = [], {}, 0
                prog.next_log = _next(prog.env_steps, config.log_every)

            # ---------------------------------------------------------- evaluate
            if prog.env_steps >= prog.next_eval or finished:
                last_eval = evaluate_policy(
                    eval_envs, learner, config.eval_episodes, env_steps=prog.env_steps, rng=rng
                )
                emit("eval", last_eval)
                prog.next_eval = _next(prog.env_steps, config.eval_every)

            # ---------------------------------------------------------- checkpoint
            if prog.env_steps >= prog.next_checkpoint or finished:
                prog.next_checkpoint = _next(prog.env_steps, config.checkpoint_every)
                now_tick = time.perf_counter()
                prog.wall_s += now_tick - tick
                tick = now_tick
                payload = checkpoint_payload(
                    prog, fingerprint, config, learner, buffer, rng, envs, eval_envs,
                    metrics_file.offset(),
                )  # fmt: skip
                checkpoint = save_checkpoint(
                    ckpt_dir, prog.env_steps, payload, config.keep_checkpoints
                )
                write_json_atomic(run_dir / "run.json", run_info | {"env_steps": prog.env_steps})
        bar.close()

        if not last_eval:  # resumed from the final checkpoint: evaluate once more, write nothing
            last_eval = evaluate_policy(
                eval_envs, learner, config.eval_episodes, env_steps=prog.env_steps, rng=rng
            )
            checkpoint = list_checkpoints(ckpt_dir)[-1]
        run_info |= {"status": "finished", "finished": now(), "env_steps": prog.env_steps}
        write_json_atomic(run_dir / "run.json", run_info)
        return TrainResult(
            run_dir=run_dir,
            env_steps=prog.env_steps,
            episodes=prog.episodes,
            updates=prog.updates,
            wall_s=prog.wall_s,
            final_eval=last_eval,
            checkpoint=checkpoint,
        )
    except BaseException as err:
        if run_info and (run_dir / "run.json").exists():
            failed = run_info | {"status": "failed", "finished": now()}
            failed["error"] = f"{type(err).__name__}: {err}"
            write_json_atomic(run_dir / "run.json", failed)
        raise
    finally:
        envs.close()
        if eval_envs is not None:
            eval_envs.close()
        if metrics_file is not None:
            metrics_file.close()


def evaluate_policy(
    envs: AnyVectorEnv,
    learner: Learner,
    n_episodes: int,
    *,
    env_steps: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Greedy policy for `n_episodes` episodes -> return mean/std (and win rate if the env has
    one). Greedy acting draws nothing from `rng`."""
    returns: list[float] = []
    wins: list[bool] = []
    lengths: list[int] = []
    attempts = 0
    while len(returns) < n_episodes:
        batch: Episodes = run_episodes(envs, learner, explore=False, env_steps=env_steps, rng=rng)
        returns.extend(batch.returns.tolist())
        wins.extend(batch.won.tolist())
        lengths.extend(batch.lengths.tolist())
        attempts += 1
        if attempts > 10 * math.ceil(n_episodes / envs.num_envs):
            raise RuntimeError("evaluation keeps losing episodes to crashed env workers")
    r = np.asarray(returns[:n_episodes], np.float64)
    out = {
        "return_mean": float(r.mean()),
        "return_std": float(r.std()),
        "n_episodes": float(n_episodes),
        "length_mean": float(np.mean(lengths[:n_episodes])),
    }
    if envs.spec.has_win:
        out["win_rate"] = float(np.mean(wins[:n_episodes]))
    return out


# ---------------------------------------------------------------------- helpers
def _next(env_steps: int, every: int) -> int:
    return (env_steps // every + 1) * every


def _train_line(prog: Progress, learner: Learner) -> dict[str, float]:
    line: dict[str, float] = {
        name: total / prog.metric_count for name, total in prog.metric_sums.items()
    }
    if prog.returns:
        line["return_mean"] = float(np.mean(prog.returns))
        line["return_std"] = float(np.std(prog.returns))
    line["n_episodes"] = float(len(prog.returns))
    line["exploration"] = learner.exploration_rate(prog.env_steps)
    line["nonfinite_updates"] = float(learner.nonfinite_updates)
    line["dropped_episodes"] = float(prog.dropped_episodes)
    line["steps_per_s"] = prog.env_steps / max(prog.wall_s, 1e-9)
    return line
