"""SALEAgent: shapes, the all-actions pass against a per-action oracle, masking, No-SALE."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmsa_marl_core.networks.sale_agent import (
    SALEAgent,
    agent_inputs,
    all_actions,
    embedding_stats,
    masked_greedy,
    q_of_action,
)
from mmsa_sale import Encoder

T, B, N, OBS, A, Z, H = 5, 4, 3, 7, 6, 8, 10
IN = OBS + A + N


def make(use_sale: bool = True, head: str = "sale") -> tuple[SALEAgent, Encoder]:
    torch.manual_seed(0)
    agent = SALEAgent(
        input_dim=IN,
        n_actions=A,
        hidden_dim=H,
        zs_dim=Z,
        phi_dim=9,
        head_hidden=11,
        use_sale=use_sale,
        head=head,
    )
    return agent, Encoder(IN, A, zs_dim=Z, hidden=12)


def test_agent_inputs_layout() -> None:
    obs = torch.randn(T, B, N, OBS)
    last = F.one_hot(torch.randint(A, (T, B, N)), A).float()
    x = agent_inputs(obs, last)
    assert x.shape == (T, B, N, IN)
    assert torch.equal(x[..., :OBS], obs)
    assert torch.equal(x[..., OBS : OBS + A], last)
    ids = x[..., OBS + A :]
    assert torch.equal(ids[1, 2], torch.eye(N))
    with pytest.raises(ValueError, match="leading axes"):
        agent_inputs(obs, last[:, :, :2])


def test_q_values_shape_and_all_actions_match_per_action_oracle() -> None:
    agent, encoder = make()
    x = torch.randn(T, B, N, IN)
    hidden = agent.unroll(x)
    assert hidden.shape == (T, B, N, H)
    q = agent.q_values(x, hidden, encoder)
    assert q.shape == (T, B, N, A)
    # Oracle: TD7's critic evaluated on one action at a time, with the head on the concatenation.
    zs = encoder.zs(x)
    for a in range(A):
        onehot = F.one_hot(torch.full((T, B, N), a), A).float()
        zsa = encoder.zsa(zs, onehot)
        assert agent.phi is not None
        phi = agent.phi(hidden, onehot)
        expected = agent.head(torch.cat([zs, zsa, phi], dim=-1)).squeeze(-1)
        torch.testing.assert_close(q[..., a], expected, rtol=1e-5, atol=1e-5)


def test_action_values_accepts_per_row_continuous_actions() -> None:
    agent, encoder = make()
    x, h = torch.randn(B, N, IN), torch.randn(B, N, H)
    acts = torch.rand(B, N, 2, A) * 2 - 1
    v = agent.action_values(x, h, acts, encoder)
    assert v.shape == (B, N, 2)
    v0 = agent.action_values(x, h, acts[..., :1, :], encoder)
    torch.testing.assert_close(v[..., :1], v0)


def test_unroll_equals_stepwise_recurrence_and_forward() -> None:
    agent, encoder = make()
    x = torch.randn(T, B, N, IN)
    hidden = agent.unroll(x)
    h = agent.initial_hidden((B, N), x.device)
    for t in range(T):
        q, h = agent(x[t], h, encoder)
        torch.testing.assert_close(h, hidden[t])
        torch.testing.assert_close(q, agent.q_values(x[t], hidden[t], encoder))


def test_masked_greedy_never_picks_unavailable() -> None:
    q = torch.randn(B, N, A)
    avail = torch.rand(B, N, A) > 0.5
    avail[..., 0] = True
    q[..., 1] = 100.0
    avail[..., 1] = False
    actions = masked_greedy(q, avail)
    assert actions.shape == (B, N)
    assert bool(avail.gather(-1, actions.unsqueeze(-1)).all())
    with pytest.raises(ValueError, match="must match"):
        masked_greedy(q, avail[..., :2])


def test_no_sale_agent_is_a_plain_rnn_agent() -> None:
    agent, _ = make(use_sale=False)
    names = {n for n, _ in agent.named_parameters()}
    assert not any(n.startswith("phi") for n in names)
    assert agent.phi is None
    x = torch.randn(B, N, IN)
    q, h = agent(x, agent.initial_hidden((B, N), x.device), None)
    assert q.shape == (B, N, A)
    assert isinstance(agent.head, torch.nn.Linear)
    torch.testing.assert_close(q, agent.head(h))
    sale_agent, _ = make(use_sale=True)
    assert sum(p.numel() for p in sale_agent.parameters()) > sum(
        p.numel() for p in agent.parameters()
    )


def test_sale_head_requires_an_encoder_and_checks_sizes() -> None:
    agent, _ = make()
    x = torch.randn(B, N, IN)
    with pytest.raises(ValueError, match="encoder"):
        agent.q_values(x, torch.zeros(B, N, H), None)
    with pytest.raises(ValueError, match="input_dim"):
        agent.recurrent(torch.randn(B, N, IN + 1), torch.zeros(B, N, H))
    with pytest.raises(ValueError, match="hidden_dim=0"):
        SALEAgent(input_dim=IN, n_actions=A, hidden_dim=0)


def test_all_actions_is_identity() -> None:
    eye = all_actions(A, torch.zeros(1, dtype=torch.float64))
    assert eye.dtype == torch.float64 and torch.equal(eye, torch.eye(A, dtype=torch.float64))


def test_residual_head_starts_as_the_linear_agent_and_adds_the_sale_head() -> None:
    agent, encoder = make(head="residual")
    assert agent.linear_head is not None
    x = torch.randn(T, B, N, IN)
    hidden = agent.unroll(x)
    # The SALE head's last layer starts at zero: Q is QMIX's Linear(h) exactly.
    q = agent.q_values(x, hidden, encoder)
    torch.testing.assert_close(q, agent.linear_head(hidden))
    # With a non-zero SALE head: Linear(h)[a] + head([zs, zsa(a), phi(a)]) for each action.
    torch.nn.init.normal_(agent.head[-1].weight)
    q = agent.q_values(x, hidden, encoder)
    zs = encoder.zs(x)
    for a in range(A):
        onehot = F.one_hot(torch.full((T, B, N), a), A).float()
        assert agent.phi is not None
        sale = agent.head(
            torch.cat([zs, encoder.zsa(zs, onehot), agent.phi(hidden, onehot)], dim=-1)
        )
        expected = agent.linear_head(hidden)[..., a] + sale.squeeze(-1)
        torch.testing.assert_close(q[..., a], expected, rtol=1e-5, atol=1e-5)
    # The one-action path agrees with the all-actions pass.
    action = torch.randint(A, (T, B, N))
    one = q_of_action(agent, x.flatten(0, 1), hidden.flatten(0, 1), action.flatten(0, 1), encoder)
    torch.testing.assert_close(
        one, q.flatten(0, 1).gather(-1, action.flatten(0, 1).unsqueeze(-1)).squeeze(-1)
    )
    with pytest.raises(ValueError, match="head='mlp'"):
        SALEAgent(input_dim=IN, n_actions=A, head="mlp")


def test_embedding_stats_spread_and_effective_rank() -> None:
    torch.manual_seed(0)
    # Every sample on one line through the mean: effective rank 1.
    line = torch.randn(200, 1) * torch.randn(1, Z)
    _, erank = embedding_stats(line)
    assert float(erank) == pytest.approx(1.0, abs=1e-3)
    # Isotropic samples: rank near Z, spread near the per-dimension std.
    iso = 2.0 * torch.randn(5000, Z)
    spread, erank = embedding_stats(iso)
    assert float(spread) == pytest.approx(2.0, rel=0.05)
    assert Z - 0.5 < float(erank) <= Z
    # Identical samples: no spread.
    spread, _ = embedding_stats(torch.ones(10, Z))
    assert float(spread) == 0.0
    with pytest.raises(ValueError, match="M >= 2"):
        embedding_stats(torch.ones(1, Z))
