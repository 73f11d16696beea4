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
between episodes. What a checkpoint holds and how it is put back lives in `resume`, the checks
made before anything is written in `preflight`, the greedy evaluation in `collect`; this module
holds the loop (and re-exports `evaluate_policy`, `check_update_budget` and `ResumeError`).
"""

from __future__ import annotations

import contextlib
import logging
import random
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

from ..data.buffer import EpisodeBuffer
from ..ops.precision import update_precision
from ..registry import get_algo
from .checkpoint import (
    check_fingerprint,
    latest_checkpoint,
    nonfinite_tensor,
    remove_stale_tmp,
    save_checkpoint,
)
from .collect import EVAL_SEED_OFFSET, AnyVectorEnv, evaluate_policy, run_episodes
from .config import TrainConfig
from .host_memory import retain_freed_memory
from .metrics import JsonlMetrics, MetricsLogger
from .preflight import ResumeError, check_run_dir, check_update_budget, make_envs
from .reproducible import require_pinned
from .resume import (
    PAYLOAD_KEYS,
    Progress,
    checkpoint_payload,
    comparable_fingerprint,
    restore_payload,
    run_fingerprint,
)
from .run_info import (
    now,
    read_run_json,
    remove_stale_tmp_json,
    running_record,
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
    check_run_dir(run_dir, resume)  # fail fast, before building anything
    retained = config.retain_freed_memory and retain_freed_memory()

    # ------------------------------------------------------------------ build (nothing written)
    entry = get_algo(config.algo)
    envs = make_envs(config, config.n_envs, config.seed)
    eval_envs: AnyVectorEnv | None = None
    metrics_file: JsonlMetrics | None = None
    lock = RunLock(run_dir, create=not resume)
    created = not run_dir.exists()
    run_info: dict[str, Any] = {}
    started = False
    previous_sigterm: Any = None
    try:
        eval_envs = make_envs(
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
        check_run_dir(run_dir, resume)  # again, now that no other writer can change it
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
        run_info = running_record(config, spec, device, started_at, retained)
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
                emit("train", prog.train_line(learner, buffer))
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
                bad = nonfinite_tensor(learner.state_dict())
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


class RunTerminated(BaseException):
    """SIGTERM arrived while `train` ran (a `BaseException`, like `KeyboardInterrupt`)."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise RunTerminated(f"stopped by {signal.Signals(signum).name}")


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


# ---------------------------------------------------------------------- helpers
def _next(env_steps: int, every: int) -> int:
    return (env_steps // every + 1) * every
