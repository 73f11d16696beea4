"""Rollout codes: batched imagination from every real step, greedy current agents, GRU summary."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmsa_marl_core import EpisodeBuffer, onehot_last_actions
from mmsa_marl_core.imagination.imagination_graph import ImaginationGraphs
from mmsa_marl_core.imagination.rollout import (
    GreedyImaginationPolicy,
    RolloutEncoder,
    imagined_features,
    rollout_codes,
)
from mmsa_marl_core.networks.sale_agent import SALEAgent, agent_inputs, masked_greedy
from mmsa_sale import Encoder
from mmsa_worldmodel import WorldModel, WorldModelConfig

H, C = 2, 5
WM = WorldModelConfig(
    deter_dim=12, stoch_per_agent=2, hidden=14, embed_dim=10, vae1_latent_dim=5, sale_zs_dim=8
)


@pytest.fixture
def parts(dummy_spec, random_episodes):
    torch.manual_seed(0)
    spec = dummy_spec
    n, a = spec.n_agents, spec.n_actions
    buffer = EpisodeBuffer(spec, capacity=4, max_len=spec.episode_limit)
    buffer.add_episodes(**random_episodes(4, seed=2))
    batch = buffer.get(np.arange(4))
    model = WorldModel(
        n_agents=n,
        obs_dim=spec.obs_dim,
        state_dim=spec.state_dim,
        n_actions=a,
        action_kind="discrete",
        config=WM,
    )
    in_dim = spec.obs_dim + a + n
    agent = SALEAgent(input_dim=in_dim, n_actions=a, hidden_dim=9, zs_dim=8, phi_dim=7)
    encoder = Encoder(in_dim, a, zs_dim=8, hidden=10)
    last = onehot_last_actions(batch.action, a)
    hidden = agent.unroll(agent_inputs(batch.obs, last))
    before = torch.cat([torch.zeros_like(hidden[:1]), hidden[:-1]]).detach()
    return batch, model, agent, encoder, last, before


def test_rollout_encoder_shapes_and_leading_axes() -> None:
    enc = RolloutEncoder(feature_dim=13, code_dim=C)
    feats = torch.randn(H + 1, 6, 4, 13)
    codes = enc(feats)
    assert codes.shape == (6, 4, C)
    torch.testing.assert_close(codes.reshape(24, C), enc(feats.reshape(H + 1, 24, 13)))
    # The code depends on the whole sequence, not only on its start.
    changed = feats.clone()
    changed[-1] += 1.0
    assert not torch.allclose(enc(changed), codes)
    with pytest.raises(ValueError, match="D=13"):
        enc(torch.randn(H + 1, 4, 12))
    with pytest.raises(ValueError, match="code_dim=0"):
        RolloutEncoder(13, 0)


def test_imagined_features_from_every_real_step(parts) -> None:
    batch, model, agent, encoder, last, before = parts
    t1, b = batch.obs.shape[:2]
    posterior, _ = model.observe(batch)
    calls = []
    original = model.imagine_features

    def spy(start, policy, horizon, **kwargs):
        calls.append((start.deter.shape, horizon))
        return original(start, policy, horizon, **kwargs)

    model.imagine_features = spy  # type: ignore[method-assign]
    enc = RolloutEncoder(model.feature_dim, C)
    codes = rollout_codes(model, posterior, agent, encoder, before, last, H, enc)
    assert calls == [(torch.Size([t1 * b, WM.deter_dim]), H)]  # ONE batched call
    assert codes.shape == (t1, b, C)
    start = type(posterior)(*(leaf.flatten(0, 1) for leaf in posterior))
    torch.manual_seed(5)
    feats = imagined_features(
        model, start, agent, encoder, before.flatten(0, 1), last.flatten(0, 1), H
    )
    assert feats.shape == (H + 1, t1 * b, model.feature_dim)
    torch.testing.assert_close(feats[0], model.features(start).detach())
    assert not feats.requires_grad
    with pytest.raises(ValueError, match="rows"):
        imagined_features(model, start, agent, encoder, before[0], last[0], H)


def test_first_action_shortcut_replaces_only_the_first_agent_pass(parts) -> None:
    batch, model, agent, encoder, last, before = parts
    posterior, _ = model.observe(batch)
    start = type(posterior)(*(leaf.flatten(0, 1) for leaf in posterior))
    size = start.deter.shape[0]
    x = agent_inputs(batch.obs, last)
    after = agent.unroll(x).detach().flatten(0, 1)
    first = torch.randint(agent.n_actions, (size, batch.obs.shape[2]))
    seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    original = model.imagine_features

    def spy(start_, policy, horizon, **kwargs):
        def recording(obs, avail):
            seen.append((obs, avail, policy(obs, avail)))
            return seen[-1][2]

        out = original(start_, recording, horizon, **kwargs)
        assert policy.calls == horizon
        return out

    model.imagine_features = spy  # type: ignore[method-assign]
    imagined_features(
        model,
        start,
        agent,
        encoder,
        before.flatten(0, 1),
        last.flatten(0, 1),
        H,
        first_actions=first,
        first_hidden=after,
    )
    assert len(seen) == H and torch.equal(seen[0][2], first)
    # Step 1 continues from the real-data hidden state after x_t and a_t = first.
    obs1, avail1, chosen1 = seen[1]
    with torch.no_grad():
        x1 = agent_inputs(obs1, F.one_hot(first, agent.n_actions).float())
        q1, _ = agent(x1, after, encoder)
    assert torch.equal(chosen1, masked_greedy(q1, avail1 | ~avail1.any(-1, keepdim=True)))
    with pytest.raises(ValueError, match="together"):
        GreedyImaginationPolicy(agent, encoder, after, last.flatten(0, 1), first_actions=first)


def test_greedy_policy_starts_from_the_real_hidden_state(parts) -> None:
    batch, model, agent, encoder, last, before = parts
    size = before.shape[0] * before.shape[1]
    policy = GreedyImaginationPolicy(
        agent, encoder, before.reshape(size, *before.shape[2:]), last.reshape(size, *last.shape[2:])
    )
    # On the real observations, step 0 reproduces the agent's greedy choice on real data.
    obs = batch.obs.reshape(size, *batch.obs.shape[2:])
    avail = batch.avail_actions.reshape(size, *batch.avail_actions.shape[2:])
    with torch.no_grad():
        chosen = policy(obs, avail)
        x = agent_inputs(batch.obs, last)
        q = agent.q_values(x, agent.unroll(x), encoder)
    assert torch.equal(chosen, masked_greedy(q, batch.avail_actions).reshape(size, -1))
    assert bool(avail.gather(-1, chosen.unsqueeze(-1)).all())
    assert torch.equal(policy.last_action, F.one_hot(chosen, agent.n_actions).float())
    assert policy.calls == 1
    # A predicted mask with nothing available falls back to every action.
    none = torch.zeros_like(avail)
    assert policy(obs, none).shape == chosen.shape


def test_rollout_codes_train_only_the_rollout_gru(parts) -> None:
    batch, model, agent, encoder, last, before = parts
    posterior, _ = model.observe(batch)
    enc = RolloutEncoder(model.feature_dim, C)
    codes = rollout_codes(model, posterior, agent, encoder, before, last, H, enc)
    assert codes.shape == (*batch.obs.shape[:2], C)
    codes.pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
    assert all(p.grad is None for p in agent.parameters())
    assert all(p.grad is None for p in encoder.parameters())
    with pytest.raises(ValueError, match="horizon=0"):
        rollout_codes(model, posterior, agent, encoder, before, last, 0, enc)


def test_imagination_graphs_run_the_eager_imagination_on_the_cpu(parts) -> None:
    batch, model, agent, encoder, last, before = parts
    posterior, _ = model.observe(batch)
    start = type(posterior)(*(leaf.flatten(0, 1) for leaf in posterior))
    hidden, last_action = before.flatten(0, 1), last.flatten(0, 1)
    graphs = ImaginationGraphs(model, agent, encoder, H, bucket=4)
    torch.manual_seed(5)
    eager = imagined_features(model, start, agent, encoder, hidden, last_action, H)
    torch.manual_seed(5)
    out = graphs(start, hidden, last_action)
    assert torch.equal(out, eager)
    assert graphs.captured == 0 and graphs.failed is None  # no graph without CUDA
    first = torch.zeros(hidden.shape[:2], dtype=torch.int64)
    torch.manual_seed(6)
    eager = imagined_features(
        model, start, agent, encoder, hidden, last_action, H, first_actions=first,
        first_hidden=hidden,
    )  # fmt: skip
    torch.manual_seed(6)
    assert torch.equal(
        graphs(start, hidden, last_action, first_actions=first, first_hidden=hidden), eager
    )
    with pytest.raises(ValueError, match="bucket=0"):
        ImaginationGraphs(model, agent, encoder, H, bucket=0)
