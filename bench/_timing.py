"""Side-by-side timing of gradient updates for the update benchmarks (`mmsa_update_levers.py`,
`hpn_update.py`): batches of random-policy episodes, interleaved rounds (A B C ... A B C ...) so
that a change of machine load hits every variant alike, and medians with their quartiles."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from mmsa_marl_core import EpisodeBuffer
from mmsa_marl_core.training.collect import run_episodes


def random_batches(
    envs: Any, actor: Any, rng: np.random.Generator, n_batches: int, episodes: int = 32
) -> list[Any]:
    """`n_batches` batches of `episodes` episodes each, sampled from a buffer that `actor`
    filled with `episodes` exploring episodes of `envs` (at env step 0: epsilon 1, random)."""
    buffer = EpisodeBuffer(envs.spec, 2 * episodes, envs.spec.episode_limit)
    while len(buffer) < episodes:
        collected = run_episodes(envs, actor, explore=True, env_steps=0, rng=rng)
        buffer.add_episodes(**collected.buffer_arrays())
    return [buffer.sample(episodes, rng) for _ in range(n_batches)]


def time_interleaved(
    run: Callable[[str, Any], None], names: Iterable[str], batches: Sequence[Any], rounds: int
) -> dict[str, list[float]]:
    """Seconds of `run(name, batch)` for every name and batch, `rounds` times, the names taking
    turns within each round."""
    names = list(names)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            for batch in batches:
                start = time.perf_counter()
                run(name, batch)
                times[name].append(time.perf_counter() - start)
    return times


def median_ms(times: Sequence[float]) -> dict[str, Any]:
    """`update_ms` (median) and `update_ms_iqr` (25th and 75th percentiles) of `times` (s)."""
    return {
        "update_ms": round(1000 * statistics.median(times), 1),
        "update_ms_iqr": [round(1000 * float(q), 1) for q in np.percentile(times, [25, 75])],
    }
