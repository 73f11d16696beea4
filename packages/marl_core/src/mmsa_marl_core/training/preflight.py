"""What `train` checks before it writes anything: the run directory against `resume`, the env
and its `env_kwargs`, and that the budget gives at least one gradient update. Every check only
reads, so a refused command leaves the disk as it was."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from mmsa_envs import make_vector_env

from .checkpoint import list_checkpoints
from .collect import AnyVectorEnv
from .config import ConfigError, TrainConfig

__all__ = ["ResumeError", "check_run_dir", "check_update_budget", "make_envs"]


class ResumeError(ValueError):
    """`resume=True` on a directory that holds no run to continue."""


def check_run_dir(run_dir: Path, resume: bool) -> None:
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


def make_envs(config: TrainConfig, n: int, seed: int) -> AnyVectorEnv:
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
