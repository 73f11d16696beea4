from __future__ import annotations

import numpy as np
import pytest
import torch

from mmsa_marl_core import LinearSchedule, RNNAgent, epsilon_greedy, greedy, onehot_last_actions
from mmsa_marl_core.networks.agent import onehot_taken

T, B, N, O, A, H = 5, 4, 3, 7, 6, 8  # noqa: E741


def _agent(**kw) -> RNNAgent:
    torch.manual_seed(0)
    return RNNAgent(O, A, N, H, **kw)


def test_inputs_and_shapes():
    agent = _agent()
    assert agent.input_dim == O + A + N
    obs = torch.randn(T + 1, B, N, O)
    last = onehot_last_actions(torch.randint(0, A, (T, B, N)), A)
    inputs = agent.build_inputs(obs, last)
    assert inputs.shape == (T + 1, B, N, O + A + N)
    # the agent-id block is the identity over agents
    assert torch.equal(inputs[2, 1, :, O + A :], torch.eye(N))
    q = agent.unroll(inputs)
    assert q.shape == (T + 1, B, N, A)
    q1, h1 = agent(inputs[0], agent.initial_hidden((B,), torch.device("cpu")))
    assert q1.shape == (B, N, A) and h1.shape == (B, N, H)
    bare = _agent(last_action=False, agent_id=False)
    assert bare.build_inputs(obs, last).shape == (T + 1, B, N, O)
    with pytest.raises(ValueError, match="obs must end in"):
        agent.build_inputs(torch.zeros(T, B, N, O + 1), last)


def test_onehot_last_actions_shifts_by_one():
    action = torch.tensor([[[1, 2, 0]], [[5, 4, 3]]])  # [T=2, B=1, N=3]
    last = onehot_last_actions(action, A)
    assert last.shape == (3, 1, 3, A)
    assert last[0].sum() == 0
    assert last[1, 0].argmax(-1).tolist() == [1, 2, 0]
    assert last[2, 0].argmax(-1).tolist() == [5, 4, 3]


def test_unroll_matches_stepping_from_zero_state():
    """GRU state starts at zero at every episode start: unrolling equals stepping from zero."""
    agent = _agent()
    inputs = torch.randn(T, B, N, agent.input_dim)
    unrolled = agent.unroll(inputs)
    h = agent.initial_hidden((B,), torch.device("cpu"))
    assert h.abs().sum() == 0
    for t in range(T):
        q, h = agent(inputs[t], h)
        torch.testing.assert_close(q, unrolled[t])
    # continuing from a non-zero state gives different values: the reset matters
    q_stale, _ = agent(inputs[0], h)
    assert not torch.allclose(q_stale, unrolled[0])


def test_greedy_respects_availability():
    q = np.array([[[5.0, 1.0, 3.0], [0.0, 9.0, 2.0]]])
    avail = np.array([[[False, True, True], [True, False, True]]])
    assert greedy(q, avail).tolist() == [[2, 2]]
    with pytest.raises(ValueError, match="at least one available"):
        greedy(q, np.zeros_like(avail))


def test_epsilon_greedy_limits_and_uniform_over_available():
    rng = np.random.default_rng(0)
    q = np.random.default_rng(1).normal(size=(400, N, A))
    avail = np.ones((400, N, A), bool)
    avail[:, :, 0] = False
    assert np.array_equal(epsilon_greedy(q, avail, 0.0, rng), greedy(q, avail))
    random_actions = epsilon_greedy(q, avail, 1.0, rng)
    assert (random_actions != 0).all()
    counts = np.bincount(random_actions.ravel(), minlength=A)[1:]
    assert counts.min() > 0.15 * random_actions.size  # ~ uniform over 5 actions (0.2 each)
    # same generator state -> same actions
    a1 = epsilon_greedy(q, avail, 0.3, np.random.default_rng(7))
    a2 = epsilon_greedy(q, avail, 0.3, np.random.default_rng(7))
    assert np.array_equal(a1, a2)


def test_linear_schedule():
    sched = LinearSchedule(1.0, 0.05, 100)
    assert sched(0) == 1.0
    assert sched(50) == pytest.approx(0.525)
    assert sched(100) == sched(10_000) == 0.05
    assert LinearSchedule(1.0, 0.1, 0)(0) == 0.1
    with pytest.raises(ValueError, match="steps"):
        LinearSchedule(1.0, 0.1, -1)


def test_onehot_taken_is_the_float32_one_hot_of_the_chosen_actions():
    actions = np.array([[0, 5, 2], [3, 3, 1]], np.int64)
    out = onehot_taken(actions, 6, torch.device("cpu"))
    assert out.shape == (2, 3, 6) and out.dtype == torch.float32
    assert torch.equal(out, torch.nn.functional.one_hot(torch.from_numpy(actions), 6).float())
    with pytest.raises(IndexError):
        onehot_taken(np.array([[6]]), 6, torch.device("cpu"))
