"""Learning check: MMSA (SALE agents, world model, rollout codes, one loss) on the small real LBF
map of the QMIX learning check must beat a uniformly random policy by a clear margin within the
same step budget, on two seeds. The random baseline is measured in the test (`lbf_check` of
tests/conftest.py) on the same env and evaluation seeds."""

from __future__ import annotations

import pytest

from mmsa_marl_core import read_metrics

# The loop and the shared Q-learning settings are those of tests/test_learning_qmix.py
# (`lbf_check.config` of tests/conftest.py: gamma 0.9 and fast target updates for LBF's sparse
# reward); MMSA's own networks are scaled down so that two runs fit the test budget on two CPU
# cores. Every part of the method is on.
# MMSA gets 4 updates per episode where QMIX gets 2 (same env steps): its action-in SALE head
# learns more slowly per update than QMIX's linear head on this tiny map. Measured (seeds 0/1,
# random ~0.55): 8k steps x 2 updates/episode gives 0.64/0.66 (QMIX 0.97, MMSA no_sale 0.97);
# 6k steps x 4 updates/episode gave 0.86/0.78 before the one-pass world model changed the
# random draws, and 0.69 on seed 0 after it (below the bar of 0.71): 8k steps leave a margin
# (bench/mmsa_ablations.py, same settings, seed 0: 0.80 at 6k, 0.98 at 8k).
STEPS = 8_000
UPDATES_PER_EPISODE = 4.0
MMSA = {
    "zs_dim": 32,
    "sale_hidden": 32,
    "phi_dim": 32,
    "head_hidden": 32,
    "encoder_lr": 1e-3,
    "code_dim": 16,
    "world_model_lr": 1e-3,
    "diagnostics_every": 50,
    "world_model": {
        "deter_dim": 32,
        "stoch_per_agent": 4,
        "hidden": 32,
        "embed_dim": 32,
        "vae1_latent_dim": 8,
        "sale_zs_dim": 32,
        "sale_hidden": 32,
        "phi_dim": 16,
    },
}


@pytest.mark.learning
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_mmsa_beats_random(tmp_path, lbf_check, seed):
    config = lbf_check.config(
        MMSA, algo="mmsa", seed=seed, steps=STEPS, updates_per_episode=UPDATES_PER_EPISODE
    )
    learned = lbf_check.greedy_return(config, tmp_path)
    baseline = lbf_check.random_return(seed)
    print(f"mmsa seed {seed} on {lbf_check.device}: greedy {learned:.3f}, random {baseline:.3f}")
    assert learned > baseline + lbf_check.margin, (
        f"mmsa seed {seed}: {learned:.3f} vs random {baseline:.3f}"
    )
    # The run really trained the whole method: world model, SALE and TD terms all logged.
    last = [x for x in read_metrics(tmp_path) if x["kind"] == "train"][-1]
    assert {"td_loss", "kl_loss", "rec_loss", "loss_sale_agent", "loss_wm_sale"} <= set(last)
