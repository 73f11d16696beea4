from __future__ import annotations

import pytest
import torch

from mmsa_marl_core import RunningMeanStd, guarded_step, make_optimizer


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
