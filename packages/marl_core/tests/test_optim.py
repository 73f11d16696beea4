from __future__ import annotations

import numpy as np
import pytest
import torch

from mmsa_marl_core import RunningMeanStd, guarded_step, make_optimizer
from mmsa_marl_core.ops.optim import scalars


def test_guarded_step_applies_clips_and_skips():
    layer = torch.nn.Linear(3, 1)
    params = list(layer.parameters())
    opt = make_optimizer(params, "adam", 0.1)
    before = [p.clone() for p in params]
    loss = (layer(torch.ones(2, 3)) * 1e6).sum()
    applied, norm = guarded_step(loss, opt, params, max_grad_norm=10.0)
    assert applied and norm > 10.0  # the norm before clipping is reported
    assert not all(torch.equal(a, b) for a, b in zip(before, params, strict=True))
    after = [p.clone() for p in params]
    bad = layer(torch.ones(2, 3)).sum() * float("nan")
    applied, norm = guarded_step(bad, opt, params, max_grad_norm=10.0)
    assert not applied and all(torch.equal(a, b) for a, b in zip(after, params, strict=True))
    inf_grad = (layer(torch.full((2, 3), float("inf"))) * 0).sum()  # finite? no: inf * 0 = nan
    assert not guarded_step(inf_grad, opt, params, 10.0)[0]


def test_optimizer_choice():
    params = list(torch.nn.Linear(2, 2).parameters())
    assert isinstance(make_optimizer(params, "rmsprop", 1e-3), torch.optim.RMSprop)
    with pytest.raises(ValueError, match="optimizer='sgd'"):
        make_optimizer(params, "sgd", 1e-3)


def test_running_mean_std_matches_numpy_and_round_trips():
    stats = RunningMeanStd(epsilon=0.0)
    data = torch.randn(1000) * 3 + 2
    for chunk in data.split(137):
        stats.update(chunk)
    assert stats.mean == pytest.approx(float(data.mean()), rel=1e-6)
    assert stats.var == pytest.approx(float(data.var(unbiased=False)), rel=1e-6)
    normed = stats.normalise(data)
    assert float(normed.mean()) == pytest.approx(0.0, abs=1e-5)
    other = RunningMeanStd()
    other.load_state_dict(stats.state_dict())
    assert other.state_dict() == stats.state_dict()
    stats.update(torch.empty(0))
    assert other.state_dict() == stats.state_dict()


def test_scalars_reads_every_tensor_as_float_and_keeps_order():
    values = {
        "a": torch.tensor(1.0 / 3.0),  # float32: the same double as float(tensor)
        "b": 2.5,
        "c": torch.tensor(0.1, dtype=torch.bfloat16),
        "d": torch.tensor([7.0]).sum(),
        "e": torch.tensor(float("nan")),
    }
    out = scalars(values)
    assert list(out) == list(values)
    for k in ("a", "c", "d"):
        assert out[k] == float(values[k]) and isinstance(out[k], float)
    assert out["b"] == 2.5 and np.isnan(out["e"])
    assert scalars({}) == {} and scalars({"x": 1.0}) == {"x": 1.0}


def test_guarded_step_reports_a_nonfinite_loss_without_stepping():
    layer = torch.nn.Linear(2, 1)
    params = list(layer.parameters())
    opt = make_optimizer(params, "adam", 0.1)
    before = [p.clone() for p in params]
    applied, norm = guarded_step(layer(torch.ones(1, 2)).sum() * float("inf"), opt, params, 1.0)
    assert not applied and not np.isfinite(norm)
    assert all(p.grad is None for p in params)
    assert all(torch.equal(a, b) for a, b in zip(before, params, strict=True))
