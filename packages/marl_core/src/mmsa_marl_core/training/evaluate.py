"""`evaluate(run_dir)`: the greedy policy of a run's checkpoint on fresh evaluation episodes;
`random_return(env)`: the uniformly random policy on the same evaluation seeds (the baseline a
learning check or a benchmark must beat)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmsa_envs import make_vector_env

from ..registry import get_algo
from .checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    latest_checkpoint,
    load_checkpoint,
)
from .config import TrainConfig, config_from_dict
from .run_info import read_run_config
from .train import EVAL_SEED_OFFSET, evaluate_policy

__all__ = ["evaluate", "random_return", "run_checkpoint"]

EVAL_KEYS = ("env_steps", "learner")
"""What `evaluate` reads from a checkpoint; one without them is skipped as incomplete."""


def run_checkpoint(
    run_dir: Path | str, checkpoint: Path | None = None, *, purpose: str = "load"
) -> tuple[TrainConfig, Path, dict[str, Any]]:
    """A run's config (from `run.json`), and the path and payload of `checkpoint` (default: the
    latest readable one holding `EVAL_KEYS`), refused when it was written by another algorithm.
    `purpose` completes the error when the run has no checkpoint ("holds no checkpoint to ...")."""
    run_dir = Path(run_dir)
    config = config_from_dict(read_run_config(run_dir))
    if checkpoint is None:
        found = latest_checkpoint(run_dir / "checkpoints", required=EVAL_KEYS)
        if found is None:
            raise CheckpointError(f"{run_dir / 'checkpoints'} holds no checkpoint to {purpose}")
        checkpoint, payload = found
    else:
        checkpoint = Path(checkpoint)
        payload = load_checkpoint(checkpoint, required=EVAL_KEYS)
    stored_algo = (payload.get("config") or {}).get("algo", config.algo)
    if stored_algo != config.algo:
        raise CheckpointMismatchError(
            f"checkpoint {checkpoint} was written by algo {stored_algo!r}, but "
            f"{run_dir / 'run.json'} says algo {config.algo!r}"
        )
    return config, checkpoint, payload


def evaluate(
    run_dir: Path | str,
    *,
    episodes: int = 32,
    device: str | torch.device = "cpu",
    checkpoint: Path | None = None,
    n_envs: int = 8,
) -> dict[str, float]:
    """Mean/std return (and win rate where the env has one) of the greedy policy stored in
    `checkpoint` (default: the run's latest readable checkpoint) over `episodes` episodes.

    The episodes are seeded like the run's own evaluations (`seed + EVAL_SEED_OFFSET`), starting
    from episode 0, so the same checkpoint always gives the same numbers.
    """
    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be >= 1")
    run_dir = Path(run_dir)
    config, checkpoint, payload = run_checkpoint(run_dir, checkpoint, purpose="evaluate")
    device = torch.device(device)
    with make_vector_env(
        config.env,
        min(n_envs, episodes),
        seed=config.seed + EVAL_SEED_OFFSET,
        env_kwargs=config.env_kwargs,
        processes=config.env_processes,
    ) as envs:
        learner = get_algo(config.algo).factory(envs.spec, config.algo_config, device)
        try:
            learner.load_state_dict(payload["learner"])
        except (RuntimeError, KeyError, ValueError) as err:
            first = next((x.strip() for x in str(err).splitlines() if x.strip()), "")
            raise CheckpointMismatchError(
                f"checkpoint {checkpoint} does not fit the {config.algo} learner of "
                f"{run_dir / 'run.json'}: {type(err).__name__}: {first}"
            ) from None
        result = evaluate_policy(
            envs, learner, episodes, env_steps=int(payload["env_steps"]),
            rng=np.random.default_rng(config.seed),
        )  # fmt: skip
    return result | {"env_steps": float(payload["env_steps"])}


def random_return(
    env: str,
    episodes: int = 64,
    seed: int = 0,
    *,
    env_kwargs: dict | None = None,
    n_envs: int = 8,
) -> float:
    """Mean return of uniformly random *available* actions over `episodes` episodes seeded like
    the evaluations of a run with `seed` (`seed + EVAL_SEED_OFFSET`); `rng` is `seed`'s."""
    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be >= 1")
    rng = np.random.default_rng(seed)
    returns: list[float] = []
    with make_vector_env(
        env, n_envs, seed=seed + EVAL_SEED_OFFSET, env_kwargs=env_kwargs, processes=False
    ) as envs:
        while len(returns) < episodes:
            step = envs.reset()
            total = np.zeros(envs.num_envs)
            done = np.zeros(envs.num_envs, bool)
            while not done.all():
                scores = np.where(step.avail_actions, rng.random(step.avail_actions.shape), -1)
                step = envs.step(scores.argmax(-1))
                total += np.where(done, 0.0, step.reward)
                done |= step.done
            returns.extend(total.tolist())
    return float(np.mean(returns[:episodes]))
