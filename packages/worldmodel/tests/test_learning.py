"""Learning check on real lbforaging: the model predicts the next state better than copying it.

Random-policy episodes of `lbf:Foraging-5x5-2p-1f-v3` (25 steps) are recorded with the real
lbforaging through mmsa_envs' adapter (state: every agent's observation); the model trains on 256
of them and is scored on 32 held-out ones. Copying `s_t` as the guess for `s_{t+1}` is a strong
baseline here (food never moves, players often stay), so a model that ignores the action, or whose
transition is broken, does not beat it (checked: zeroing the joint action fails this test).
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from mmsa_worldmodel import WorldModel, open_loop_error, posterior_collapse

ENV = "lbf:Foraging-5x5-2p-1f-v3"


@pytest.mark.learning
def test_one_step_prediction_beats_copying_the_last_state(wm: SimpleNamespace) -> None:
    torch.manual_seed(0)
    pytest.importorskip("lbforaging")
    train = wm.record(ENV, episodes=256, seed=1, max_episode_steps=25)
    held_out = wm.record(ENV, episodes=32, seed=2, max_episode_steps=25)
    _, _, n_agents, obs_dim = train.obs.shape
    config = dataclasses.replace(
        wm.SMALL,
        deter_dim=64,
        stoch_per_agent=8,
        hidden=64,
        embed_dim=64,
        vae1_latent_dim=16,
        sale_zs_dim=32,
        sale_hidden=64,
        phi_dim=32,
        # Integer grid coordinates: a sharper decoder than unit variance (README).
        state_scale=10.0,
        obs_scale=10.0,
    )
    model = WorldModel(
        n_agents=n_agents,
        obs_dim=obs_dim,
        state_dim=train.state.shape[-1],
        n_actions=6,
        action_kind="discrete",
        config=config,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = torch.Generator().manual_seed(0)
    for _ in range(500):
        rows = torch.randint(0, train.mask.shape[1], (16,), generator=rng)
        batch = wm.Batch(*(getattr(train, f.name)[:, rows] for f in dataclasses.fields(train)))
        total, _ = model.loss(batch)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    model.eval()
    errors = open_loop_error(model, held_out, horizon=3)
    assert errors["state"][0] < 0.9 * errors["state_copy"][0], errors
    assert errors["obs"][0] < 0.9 * errors["obs_copy"][0], errors
    assert posterior_collapse(model, held_out)["y"] < 0.5
