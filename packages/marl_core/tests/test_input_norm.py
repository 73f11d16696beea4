"""Tests of the running input normaliser used by the continuous learners."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmsa_marl_core.ops.input_norm import RunningNormalizer

T, B, N, O = 5, 4, 3, 7  # noqa: E741 - axis letters (STYLE.md)


def test_public_surface() -> None:
    import mmsa_marl_core.ops.input_norm as module

    assert module.__all__ == ["RunningNormalizer"]


def test_identity_before_any_update() -> None:
    x = torch.randn(T, B, N, O)
    assert torch.equal(RunningNormalizer(O)(x), x)


def test_statistics_match_numpy_on_real_rows_only() -> None:
    torch.manual_seed(0)
    x = torch.randn(T, B, N, O) * torch.arange(1, O + 1) + 5.0
    mask = torch.ones(T, B)
    mask[3:, 1] = 0
    x[3:, 1] = 1e6  # padding: must not enter the statistics
    norm = RunningNormalizer(O)
    norm.update(x, mask)
    rows = x[mask > 0].reshape(-1, O).double().numpy()
    np.testing.assert_allclose(norm.mean.numpy(), rows.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.var.numpy(), rows.var(0), rtol=1e-6)
    assert float(norm.count) == rows.shape[0]
    y = norm(x)[mask > 0]
    np.testing.assert_allclose(y.mean((0, 1)).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std((0, 1), unbiased=False).numpy(), 1.0, atol=1e-4)


def test_incremental_updates_equal_one_big_update() -> None:
    torch.manual_seed(1)
    chunks = [torch.randn(B, N, O) * 3 + i for i in range(T)]
    a, b = RunningNormalizer(O), RunningNormalizer(O)
    for c in chunks:
        a.update(c)
    b.update(torch.stack(chunks))
    torch.testing.assert_close(a.mean, b.mean)
    torch.testing.assert_close(a.var, b.var)


def test_clip_state_dict_and_errors() -> None:
    norm = RunningNormalizer(O, clip=2.0)
    norm.update(torch.randn(100, O))
    assert float(norm(torch.full((1, O), 1e3)).max()) == 2.0
    fresh = RunningNormalizer(O, clip=2.0)
    fresh.load_state_dict(norm.state_dict())
    x = torch.randn(B, O)
    assert torch.equal(fresh(x), norm(x))
    with pytest.raises(ValueError, match="F=7"):
        norm(torch.randn(B, O + 1))
    with pytest.raises(ValueError, match="prefix"):
        norm.update(torch.randn(T, B, O), torch.ones(B, T))
    with pytest.raises(ValueError, match="dim"):
        RunningNormalizer(-1)
    empty = RunningNormalizer(O)
    empty.update(torch.randn(T, B, O), torch.zeros(T, B))  # nothing real: nothing changes
    assert float(empty.count) == 0.0 and torch.equal(empty.var, torch.ones(O, dtype=torch.float64))
