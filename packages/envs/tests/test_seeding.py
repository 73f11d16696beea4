"""episode_seed: deterministic, distinct per (seed, env, episode), bounded, validated."""

from __future__ import annotations

import pytest

from mmsa_envs import episode_seed


def test_deterministic_and_in_range() -> None:
    assert episode_seed(3, 1, 7) == episode_seed(3, 1, 7)
    seeds = {episode_seed(s, i, e) for s in range(3) for i in range(4) for e in range(5)}
    assert len(seeds) == 60
    assert all(0 <= s < 2**31 for s in seeds)


def test_axes_are_not_interchangeable() -> None:
    assert episode_seed(1, 2, 3) != episode_seed(3, 2, 1)
    assert episode_seed(0, 1, 0) != episode_seed(0, 0, 1)


@pytest.mark.parametrize("args", [(-1, 0, 0), (0, -2, 0), (0, 0, 1.5), (True, 0, 0)])
def test_rejects_bad_input(args: tuple[object, object, object]) -> None:
    with pytest.raises(ValueError, match="must be a non-negative int"):
        episode_seed(*args)  # type: ignore[arg-type]
