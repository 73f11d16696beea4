"""Learning checks: QMIX and VDN on a small real LBF map must beat a uniformly random policy
by a clear margin within a fixed step budget, on two seeds. The random baseline is measured
in the test (`lbf_check` of tests/conftest.py), on the same env and evaluation seeds."""

from __future__ import annotations

import pytest

# The run settings shared with the MMSA check (map, loop, Q-learning) are `lbf_check.config`
# in tests/conftest.py; this is the budget of QMIX and VDN on it.
STEPS = 8_000
UPDATES_PER_EPISODE = 2.0


@pytest.mark.learning
@pytest.mark.slow
@pytest.mark.parametrize("algo", ["qmix", "vdn"])
@pytest.mark.parametrize("seed", [0, 1])
def test_beats_random(tmp_path, lbf_check, algo, seed):
    config = lbf_check.config(
        {}, algo=algo, seed=seed, steps=STEPS, updates_per_episode=UPDATES_PER_EPISODE
    )
    learned = lbf_check.greedy_return(config, tmp_path)
    baseline = lbf_check.random_return(seed)
    print(f"{algo} seed {seed} on {lbf_check.device}: greedy {learned:.3f}, random {baseline:.3f}")
    assert learned > baseline + lbf_check.margin, (
        f"{algo} seed {seed}: {learned:.3f} vs random {baseline:.3f}"
    )
