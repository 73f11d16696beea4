"""Aggregate scores over seeds with bootstrap confidence intervals (rliable).

Following Agarwal et al. (2021, "Deep RL at the edge of the statistical precipice", the rliable
library): report the interquartile mean (IQM) with a stratified-bootstrap 95% interval, next to
the mean and the median. rliable 1.2 draws its bootstrap indices from the *global* `np.random`
(`StratifiedBootstrap.update_indices` calls `np.random.choice` and ignores `random_state`), so
every estimate here seeds the global generator first and restores its previous state after, which
makes the intervals reproducible without disturbing the caller's random stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

__all__ = ["Estimate", "aggregate", "curve_band", "seeded_global_numpy"]


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its confidence interval."""

    value: float
    low: float
    high: float


@contextmanager
def seeded_global_numpy(seed: int) -> Iterator[None]:
    """Seed `np.random` (the global generator rliable uses) and restore its state afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _iqm(x: np.ndarray) -> np.ndarray:
    """IQM over runs (axis 0) for each column: the 25%-trimmed mean, as rliable's aggregate_iqm."""
    return np.asarray(scipy_stats.trim_mean(x.reshape(x.shape[0], -1), 0.25, axis=0))


def _check(scores: np.ndarray, what: str) -> None:
    if scores.shape[0] < 1:
        raise ValueError(f"{what}: need at least one run, got none")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{what}: scores must be finite, got {scores.ravel()[:8]}")


def aggregate(
    scores: np.ndarray, *, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict[str, Estimate]:
    """IQM, mean and median of `scores [R]` (one final score per run) with bootstrap intervals.

    With one run the interval collapses to the point: there is nothing to resample.
    """
    from rliable import library as rly  # heavy import (arch, pandas): only when needed

    scores = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    _check(scores, "aggregate")
    if reps < 1 or not 0.0 < confidence < 1.0:
        raise ValueError(f"reps={reps} must be >= 1 and confidence={confidence} in (0, 1)")

    def func(x: np.ndarray) -> np.ndarray:
        return np.array([_iqm(x)[0], np.mean(x), np.median(x)])

    with seeded_global_numpy(seed):
        points, intervals = rly.get_interval_estimates(
            {"scores": scores}, func, reps=reps, confidence_interval_size=confidence
        )
    point, interval = points["scores"], intervals["scores"]
    names = ("iqm", "mean", "median")
    return {
        name: Estimate(float(point[i]), float(interval[0, i]), float(interval[1, i]))
        for i, name in enumerate(names)
    }


def curve_band(
    scores: np.ndarray, *, reps: int = 500, confidence: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM over runs of `scores [R, P]` at each of P points, with a bootstrap band.

    Returns `(iqm [P], low [P], high [P])`. rliable's stratified bootstrap resamples runs
    independently at every point, so this is a pointwise band, as in rliable's sample-efficiency
    curves.
    """
    from rliable import library as rly

    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"curve_band: scores must be [runs, points], got shape {scores.shape}")
    _check(scores, "curve_band")
    with seeded_global_numpy(seed):
        points, intervals = rly.get_interval_estimates(
            {"curve": scores[:, None, :]},
            _iqm,
            reps=reps,
            confidence_interval_size=confidence,
        )
    return points["curve"], intervals["curve"][0], intervals["curve"][1]
