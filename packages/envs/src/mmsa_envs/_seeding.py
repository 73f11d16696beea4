"""`episode_seed`: the seed of one episode of one env, derived from the run seed.

Seeding every episode from `(run seed, env index, episode counter)` makes collection exactly
resumable: a checkpoint taken between episodes only needs the counters, never env internals.
`np.random.SeedSequence` mixes the three numbers so neighbouring seeds give unrelated episodes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["episode_seed"]

_MAX_SEED = 2**31 - 1
"""Seeds are kept below 2**31 so every backend (int32 seeds included) accepts them."""


def episode_seed(seed: int, env_index: int, episode: int) -> int:
    """Seed in `[0, 2**31)` of episode `episode` of env `env_index` in a run seeded `seed`."""
    for name, value in (("seed", seed), ("env_index", env_index), ("episode", episode)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"episode_seed: {name}={value!r} must be a non-negative int")
    state = np.random.SeedSequence([int(seed), int(env_index), int(episode)]).generate_state(1)
    return int(state[0]) & _MAX_SEED
