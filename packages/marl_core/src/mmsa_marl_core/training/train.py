"""The training loop: plain Python, read it top to bottom.

    envs, learner, buffer, rngs  <- config (or the latest checkpoint, with resume=True)
    while env_steps < config.steps:
        collect    n_envs whole episodes with the exploring policy (batched acting); under the
                   step cadence, after every vectorised step: updates_per_step x (envs that
                   stepped) gradient updates, and the last round stops at config.steps
        store      them in the episode buffer
        update     under the episode cadence: updates_per_episode x episodes gradient updates
        log        a train line every log_every env steps (metrics.jsonl + loggers)
        evaluate   greedy policy, eval_episodes episodes, every eval_every env steps
        checkpoint every checkpoint_every env steps: models, optimisers, buffer, RNG states,
                   counters, env episode counters (iterations end between episodes, so that
                   is all an exact resume needs)
    final evaluation, final checkpoint, run.json status "finished"

Exact resume: every random draw comes from the torch RNG (initialisation), one numpy Generator
(sampling and exploration) or the envs' per-episode seeds `episode_seed(seed, env, counter)`;
all of them are in the checkpoint, so a killed run resumed from its last checkpoint ends with
the same parameters, bit for bit on CPU, as a run that was never interrupted. Both update
cadences (`TrainConfig.update_every`) draw their batches from that Generator in the order they
run; under the step cadence acting and updates interleave within a round, and a round still ends
between episodes. What a checkpoint holds and how it is put back lives in `resume`; this module
holds the loop and `evaluate_policy`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import re
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from mmsa_envs import make_vector_env

from ..data.buffer import EpisodeBuffer
from ..ops.precision import update_precision
from ..registry import Learner, get_algo
from .checkpoint import (
    check_fingerprint,
    latest_checkpoint,
    list_checkpoints,
    remove_stale_tmp,
    save_checkpoint,
)
from .collect import AnyVectorEnv, Episodes, run_episodes
from .config import ConfigError, TrainConfig, config_to_dict
from .host_memory import resident_memory_mb, retain_freed_memory
from .metrics import JsonlMetrics, MetricsLogger
from .reproducible import kernel_settings, require_pinned
from .resume import (
    Progress,
    checkpoint_payload,
    comparable_fingerprint,
    restore_payload,
    run_fingerprint,
)
from .run_info import (
    git_commit,
    now,
    read_run_json,
    remove_stale_tmp_json,
    spec_to_dict,
    versions,
    write_json_atomic,
)
from .run_lock import RunLock

__all__ = [
    "train",
    "TrainResult",
    "NonFiniteLossError",
    "ResumeError",
    "RunTerminated",
    "check_update_budget",
    "evaluate_policy",
    "EVAL_SEED_OFFSET",
]

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
    on_start: Callable[[], Sequence[MetricsLogger]] | None = None,
) -> TrainResult:
    """Train `config.algo` on `config.env` into `run_dir` (see the module docstring).

    `device` is used as given (resolve 'auto' at the edge). `loggers` receive every metrics
    line; they belong to the caller, who closes them. `resume=True` continues the run in
    `run_dir` from its latest readable checkpoint; a directory that does not exist or holds no
    checkpoint is an error (`ResumeError`), never a silent fresh start.

    A command that is refused changes nothing on disk: the config, the env, the budget, the
    lock and the checkpoint are all checked before the first write. `on_start` is called once
    the run is accepted, before that first write (the flows write their labels there); the
    loggers it returns get every metrics line too. One process at a time may write a run
    directory (`RunLock`; a second gets `RunLockedError`). SIGTERM and SIGINT end the run with
    `run.json` status `terminated` / `interrupted` (`RunTerminated`, `KeyboardInterrupt`).
    A checkpoint is never written from parameters that are not finite, nor after updates with a
    NaN/inf loss since the previous checkpoint (their parameters may have blown up); the
    final checkpoint of a finished run is always written.
    """
    run_dir, device = Path(run_dir), torch.device(device)
    if config.reproducible:
        require_pinned(device)
    ckpt_dir = run_dir / "checkpoints"
    _check_run_dir(run_dir, resume)  # fail fast, before building anything
    retained = config.retain_freed_memory and retain_freed_memory()

    # ------------------------------------------------------------------ build (nothing written)
    entry = get_algo(config.algo)
    envs = _make_envs(config, config.n_envs, config.seed)
    eval_envs: AnyVectorEnv | None = None
    metrics_file: JsonlMetrics | None = None
    lock = RunLock(run_dir, create=not resume)
    created = not run_dir.exists()
    run_info: dict[str, Any] = {}
    started = False
    previous_sigterm: Any = None
    try:
        eval_envs = _make_envs(
            config, min(config.n_envs, config.eval_episodes), config.seed + EVAL_SEED_OFFSET
        )
        spec = envs.spec
        cadence = config.update_cadence(spec)
        if not resume:
            check_update_budget(config, spec)
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        rng = np.random.default_rng(config.seed)
        learner = entry.factory(spec, config.algo_config, device)
        buffer = EpisodeBuffer(spec, config.buffer_size, spec.episode_limit)
        prog = Progress(next_checkpoint=config.checkpoint_every)
        fingerprint = run_fingerprint(config, spec)

        # -------------------------------------------------------------- accept (still read-only)
        lock.acquire()
        _check_run_dir(run_dir, resume)  # again, now that no other writer can change it
        resumed: tuple[Path, dict[str, Any]] | None = None
        started_at = now()
        if resume:
            resumed = latest_checkpoint(ckpt_dir, required=PAYLOAD_KEYS)
            if resumed is None:  # _check_run_dir saw a checkpoint: it went away since
                raise ResumeError(f"{ckpt_dir} holds no checkpoint to resume from")
            path, payload = resumed
            check_fingerprint(comparable_fingerprint(payload["fingerprint"]), fingerprint, path)
            prog = restore_payload(payload, learner, buffer, rng, envs, eval_envs, device)
            if (run_dir / "run.json").exists():
                started_at = read_run_json(run_dir).get("started", started_at)

        # -------------------------------------------------------------- start writing
        if threading.current_thread() is threading.main_thread():
            previous_sigterm = signal.signal(signal.SIGTERM, _raise_terminated)
        remove_stale_tmp(ckpt_dir)
        remove_stale_tmp_json(run_dir)
        loggers = [*loggers, *(on_start() if on_start is not None else ())]
        metrics_file = JsonlMetrics(run_dir / "metrics.jsonl")
        if resumed is not None:
            metrics_file.truncate(int(resumed[1]["metrics_offset"]))
            log.info("resumed %s at %d env steps", resumed[0], prog.env_steps)
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
            "started": started_at,
            "finished": None,
            "env_steps": 0,
        }
        started = True
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
        checkpoint: Path | None = resumed[0] if resumed is not None else None
        nonfinite_at_checkpoint = learner.nonfinite_updates

        def update(credit: float, env_steps: int) -> None:
            """The gradient updates of both cadences: `credit` more updates, the fraction carried
            in `prog.update_credit`, once the buffer holds `batch_size` episodes (`env_steps`:
            where the run is, for the error that stops it)."""
            if len(buffer) < config.batch_size:
                return
            prog.update_credit += credit
            n_updates = int(prog.update_credit)
            prog.update_credit -= n_updates
            for _ in range(n_updates):
                batch = buffer.sample(config.batch_size, rng, device=device)
                with update_precision(config.precision, device):
                    metrics = learner.update(batch)
                for name, value in metrics.items():
                    prog.metric_sums[name] = prog.metric_sums.get(name, 0.0) + value
                    prog.metric_counts[name] = prog.metric_counts.get(name, 0) + 1
                prog.metric_count += 1
                prog.updates += 1
                if learner.nonfinite_updates > config.max_nonfinite_updates:
                    raise NonFiniteLossError(
                        f"{learner.nonfinite_updates} updates had a NaN/inf loss or gradient "
                        f"(max_nonfinite_updates={config.max_nonfinite_updates}); stopping at "
                        f"{env_steps} env steps; "
                        f"{_last_good(checkpoint)}. Lower the learning rate, enable "
                        "standardise_rewards, or check the env's rewards."
                    )

        def step_updates(stepped: int, env_steps: int) -> None:
            update(config.updates_per_step * stepped, env_steps)

        per_step = cadence == "step"
        tick = time.perf_counter()
        while prog.env_steps < config.steps:
            # ---------------------------------------------------------- collect and store
            # (under the step cadence the updates run inside, after every vectorised step)
            episodes = run_episodes(
                envs, learner, explore=True, env_steps=prog.env_steps, rng=rng,
                on_step=step_updates if per_step else None,
                stop_at=config.steps if per_step else None,
            )  # fmt: skip
            new_steps = int(episodes.lengths.sum())
            if len(episodes.lengths):
                buffer.add_episodes(**episodes.buffer_arrays())
            prog.env_steps += new_steps
            prog.episodes += len(episodes.lengths)
            prog.dropped_episodes += episodes.dropped
            prog.returns.extend(episodes.returns.tolist())

            # ---------------------------------------------------------- update (episode cadence)
            if not per_step:
                update(config.updates_per_episode * len(episodes.lengths), prog.env_steps)

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
                emit("train", _train_line(prog, learner, buffer))
                prog.returns, prog.metric_sums, prog.metric_count = [], {}, 0
                prog.metric_counts = {}
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
                bad = _nonfinite_tensors(learner.state_dict())
                if bad:
                    raise NonFiniteLossError(
                        f"the learner's {bad} holds NaN/inf at {prog.env_steps} env steps; not "
                        f"checkpointed; {_last_good(checkpoint)}. Lower the learning rate."
                    )
                if learner.nonfinite_updates > nonfinite_at_checkpoint and not finished:
                    log.warning(
                        "no checkpoint at %d env steps: %d update(s) since the last one had a "
                        "NaN/inf loss or gradient, so the parameters may have blown up",
                        prog.env_steps, learner.nonfinite_updates - nonfinite_at_checkpoint,
                    )  # fmt: skip
                    nonfinite_at_checkpoint = learner.nonfinite_updates
                    continue
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
                nonfinite_at_checkpoint = learner.nonfinite_updates
                write_json_atomic(run_dir / "run.json", run_info | {"env_steps": prog.env_steps})
        bar.close()

        if not last_eval:  # resumed from the final checkpoint: evaluate once more, write nothing
            last_eval = evaluate_policy(
                eval_envs, learner, config.eval_episodes, env_steps=prog.env_steps, rng=rng
            )
        assert checkpoint is not None
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
        if started:
            status = (
                "terminated"
                if isinstance(err, RunTerminated)
                else "interrupted"
                if isinstance(err, KeyboardInterrupt)
                else "failed"
            )
            stopped = run_info | {"status": status, "finished": now()}
            stopped["env_steps"] = _recorded_steps(run_dir, run_info)
            stopped["error"] = f"{type(err).__name__}: {err}"
            write_json_atomic(run_dir / "run.json", stopped)
        raise
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
        envs.close()
        if eval_envs is not None:
            eval_envs.close()
        if metrics_file is not None:
            metrics_file.close()
        lock.release()
        if created and not started:
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # the directory this refused command made (only if empty)


PAYLOAD_KEYS = (
    "env_steps",
    "fingerprint",
    "progress",
    "learner",
    "buffer",
    "rng",
    "env_counters",
    "eval_env_counters",
    "metrics_offset",
)
"""What a resume reads from a checkpoint; one that lacks any of them is skipped as incomplete."""


class ResumeError(ValueError):
    """`resume=True` on a directory that holds no run to continue."""


class RunTerminated(BaseException):
    """SIGTERM arrived while `train` ran (a `BaseException`, like `KeyboardInterrupt`)."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise RunTerminated(f"stopped by {signal.Signals(signum).name}")


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse a resume of nothing and a fresh run over an existing one (reads only)."""
    ckpt_dir = run_dir / "checkpoints"
    if not resume:
        if list_checkpoints(ckpt_dir) or (run_dir / "metrics.jsonl").exists():
            raise FileExistsError(
                f"{run_dir} already holds a run; pass resume=True (--resume) to continue it, "
                "or choose another run directory"
            )
        if run_dir.exists() and not run_dir.is_dir():
            raise FileExistsError(f"run directory {run_dir} is a file, not a directory")
        return
    if not run_dir.is_dir():
        raise ResumeError(
            f"cannot resume {run_dir}: it "
            f"{'is not a directory' if run_dir.exists() else 'does not exist'}"
        )
    if not list_checkpoints(ckpt_dir):
        held = [n for n in ("run.json", "metrics.jsonl") if (run_dir / n).exists()]
        what = f"holds {' and '.join(held)} but" if held else "holds no run:"
        raise ResumeError(
            f"cannot resume {run_dir}: it {what} no checkpoint (checkpoints/step_*.pt) to "
            "continue from; nothing was changed. Start afresh in another run directory, or "
            "delete this one"
        )


def _make_envs(config: TrainConfig, n: int, seed: int) -> AnyVectorEnv:
    """The run's vector env; env_kwargs the backend does not take are a `ConfigError` by key."""
    try:
        return make_vector_env(
            config.env, n, seed=seed, env_kwargs=config.env_kwargs, processes=config.env_processes
        )
    except TypeError as err:
        if not config.env_kwargs:
            raise
        first = next((x.strip() for x in str(err).splitlines() if x.strip()), "")
        m = re.search(r"unexpected keyword argument '(\w+)'", first)
        key = f"env_kwargs.{m.group(1)}" if m else "env_kwargs"
        raise ConfigError(
            f"config key '{key}': {config.env} does not accept env_kwargs "
            f"{dict(config.env_kwargs)!r} ({first.split(' was raised from')[0]})"
        ) from None


def check_update_budget(config: TrainConfig, spec: Any) -> None:
    """`ConfigError` when `config.steps` gives no gradient update at all if the episodes run to
    their limit: the loop collects rounds of `n_envs` episodes, and updates start once the
    buffer holds `batch_size` episodes, in the round that fills it under the episode cadence and
    from the first step of the round after it under the step cadence, which ends the run within
    one vectorised step of `steps` (e.g. FACMAC on a 1000-step MuJoCo task with 2000 steps)."""
    per_iteration = config.n_envs * spec.episode_limit
    first = math.ceil(config.batch_size / config.n_envs)  # the first iteration that may update
    if config.update_cadence(spec) == "step":
        _check_step_budget(config, spec, first)
        return
    iterations = math.ceil(config.steps / per_iteration)
    updating = max(0, iterations - first + 1)
    if int(config.updates_per_episode * config.n_envs * updating) >= 1:
        return
    if config.updates_per_episode == 0:
        raise ConfigError("updates_per_episode=0.0 gives no gradient update; use a value > 0")
    needed = first - 1 + math.ceil(1 / (config.updates_per_episode * config.n_envs))
    raise ConfigError(
        f"steps={config.steps} gives no gradient update on {config.env}: {iterations} "
        f"iteration(s) of n_envs={config.n_envs} episodes of up to {spec.episode_limit} steps "
        f"collect {iterations * config.n_envs} episodes, and updates start once the buffer holds "
        f"batch_size={config.batch_size}; use steps >= {(needed - 1) * per_iteration + 1} or a "
        "smaller batch_size"
    )


def _check_step_budget(config: TrainConfig, spec: Any, first: int) -> None:
    """`check_update_budget` under the step cadence: with every episode at its limit, each
    vectorised step is `n_envs` env steps, the buffer holds `batch_size` episodes after `first`
    rounds, and each later vectorised step adds `updates_per_step x n_envs` to the credit."""
    n, limit = config.n_envs, spec.episode_limit
    if config.updates_per_step == 0:
        raise ConfigError("updates_per_step=0.0 gives no gradient update; use a value > 0")
    vector_steps = math.ceil(config.steps / n)  # the run stops at the first one past `steps`
    filling = first * limit  # vectorised steps before the buffer holds batch_size episodes
    needed = filling + _additions_to_one(config.updates_per_step * n)
    if vector_steps >= needed:
        return
    raise ConfigError(
        f"steps={config.steps} gives no gradient update on {config.env}: the buffer holds "
        f"batch_size={config.batch_size} episodes only after {first} round(s) of n_envs={n} "
        f"episodes of up to {limit} steps ({filling * n} env steps), and update_every=step "
        f"runs updates_per_step={config.updates_per_step} per env step after that; use "
        f"steps >= {(needed - 1) * n + 1} or a smaller batch_size"
    )


def _additions_to_one(rate: float) -> int:
    """How many additions of `rate` the loop's carried credit needs to reach one whole update,
    added one at a time as the loop adds them (so float rounding counts as it does there)."""
    credit, count = 0.0, 0
    while credit < 1.0:
        if count > 1_000_000:  # an absurdly small rate: the exact count no longer matters
            return math.ceil(1 / rate)
        credit += rate
        count += 1
    return count


def _nonfinite_tensors(tree: Any, prefix: str = "") -> str:
    """The dotted name of the first floating tensor in `tree` with a NaN/inf ('' if none)."""
    if isinstance(tree, torch.Tensor):
        bad = tree.is_floating_point() and not bool(torch.isfinite(tree).all())
        return prefix.rstrip(".") if bad else ""
    if isinstance(tree, Mapping):
        items: Any = tree.items()
    elif isinstance(tree, list | tuple):
        items = enumerate(tree)
    else:
        return ""
    for key, value in items:
        found = _nonfinite_tensors(value, f"{prefix}{key}.")
        if found:
            return found
    return ""


def _last_good(checkpoint: Path | None) -> str:
    if checkpoint is None:
        return "no checkpoint was written"
    return f"the newest checkpoint, {checkpoint}, predates the blow-up"


def _recorded_steps(run_dir: Path, run_info: Mapping[str, Any]) -> int:
    """The env steps `run.json` last recorded (those of the last checkpoint)."""
    try:
        return int(read_run_json(run_dir).get("env_steps", run_info.get("env_steps", 0)))
    except (ValueError, FileNotFoundError):
        return int(run_info.get("env_steps", 0))


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


def _train_line(prog: Progress, learner: Learner, buffer: EpisodeBuffer) -> dict[str, float]:
    line: dict[str, float] = {  # each metric's mean over the updates that reported it
        name: total / prog.metric_counts.get(name, prog.metric_count)
        for name, total in prog.metric_sums.items()
    }
    if prog.returns:
        line["return_mean"] = float(np.mean(prog.returns))
        line["return_std"] = float(np.std(prog.returns))
    line["n_episodes"] = float(len(prog.returns))
    line["exploration"] = learner.exploration_rate(prog.env_steps)
    line["nonfinite_updates"] = float(learner.nonfinite_updates)
    line["dropped_episodes"] = float(prog.dropped_episodes)
    line["steps_per_s"] = prog.env_steps / max(prog.wall_s, 1e-9)
    line["buffer_mb"] = buffer.nbytes_filled / 2**20  # what the replay adds to rss_mb
    line |= resident_memory_mb()  # measured, like wall_s: differs between identical runs
    return line
