from __future__ import annotations

import pytest
import torch

from mmsa_marl_core import gather_actions, masked_argmax, masked_mean, td_targets
from mmsa_marl_core.ops.td import Rows

T, B = 5, 4


def test_td_targets_against_a_loop():
    torch.manual_seed(0)
    reward, next_q = torch.randn(T, B), torch.randn(T, B)
    terminated = (torch.rand(T, B) < 0.3).float()
    got = td_targets(reward, terminated, next_q, 0.9)
    for t in range(T):
        for b in range(B):
            bootstrap = 0.0 if terminated[t, b] == 1 else 0.9 * float(next_q[t, b])
            assert float(got[t, b]) == pytest.approx(float(reward[t, b]) + bootstrap, abs=1e-6)
    with pytest.raises(ValueError, match="td_targets"):
        td_targets(reward, terminated, next_q[:-1], 0.9)


def test_masked_mean_ignores_padding():
    x = torch.randn(T, B, 3)
    mask = torch.ones(T, B)
    mask[3:, 1] = 0
    poisoned = x.clone()
    poisoned[3:, 1] = 1e9
    assert masked_mean(x, mask) == masked_mean(poisoned, mask)
    manual = sum(float(x[t, b].sum()) for t in range(T) for b in range(B) if mask[t, b]) / (
        mask.sum() * 3
    )
    assert float(masked_mean(x, mask)) == pytest.approx(float(manual), rel=1e-5)
    assert masked_mean(x, torch.zeros(T, B)) == 0


def test_masked_argmax_and_gather():
    q = torch.tensor([[3.0, 2.0, 1.0], [0.0, 5.0, 4.0]])
    avail = torch.tensor([[False, True, True], [True, False, True]])
    best = masked_argmax(q, avail)
    assert best.tolist() == [1, 2]
    assert gather_actions(q, best).tolist() == [2.0, 4.0]


def test_rows_take_and_put_match_boolean_indexing_with_gradient():
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(5, 4, generator=g) > 0.4  # [T, B]
    mask[:, 0] = False  # an episode with no real step
    rows = Rows(mask)
    assert len(rows) == int(mask.sum())
    long = torch.randn(6, 4, 3, 2, generator=g)  # [T+1, B, ...]
    assert torch.equal(rows.take(long[:-1]), long[:-1][mask])
    assert torch.equal(rows.take(long, shift=1), long[1:][mask])  # row t+1 of each real t
    assert torch.equal(rows.take(long), long[:-1][mask])
    values = torch.randn(len(rows), 3, requires_grad=True)
    out = rows.put(values)
    expected = torch.zeros(5, 4, 3)
    expected[mask] = values.detach()
    assert torch.equal(out, expected)
    (out * torch.arange(60.0).reshape(5, 4, 3)).sum().backward()
    assert values.grad is not None
    assert torch.equal(values.grad, torch.arange(60.0).reshape(5, 4, 3)[mask])
    ints = rows.put(torch.arange(len(rows)))
    assert ints.dtype == torch.int64 and torch.equal(ints[mask], torch.arange(len(rows)))
    with pytest.raises(ValueError, match=r"must be \[>=6, 4, ...\]"):
        rows.take(long[:-1], shift=1)  # too short for the shift
    with pytest.raises(ValueError, match="bool"):
        Rows(mask.float())
