"""Diagnostics: open-loop error against a naive replay, KL per step, the collapse indicator."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from mmsa_worldmodel import kl_per_step, open_loop_error, posterior_collapse
from mmsa_worldmodel._gaussian import kl_gaussian


def test_open_loop_error_matches_a_naive_replay(
    wm: SimpleNamespace, generator: torch.Generator
) -> None:
    model = wm.make_model()
    batch = wm.random_batch(generator)
    horizon = 3
    errors = open_loop_error(model, batch, horizon)
    assert set(errors) == {"state", "obs", "reward", "state_copy", "obs_copy"}
    assert all(len(v) == horizon for v in errors.values())
    # Naive oracle: one start (t, b) at a time, stepping the model by hand with the means.
    seen = model._observe_all(batch, sample=False)
    sums = {k: [0.0] * horizon for k in ("state", "obs", "reward", "state_copy")}
    counts = [0] * horizon
    with torch.no_grad():
        for t in range(wm.T):
            for b in range(wm.B):
                deter, stoch = seen.posterior.deter[t, b], seen.posterior.stoch[t, b]
                for k in range(1, horizon + 1):
                    if t + k - 1 >= wm.T or batch.mask[t + k - 1, b] == 0:
                        break
                    features = torch.cat([deter, stoch])
                    state_hat = model.decoders.state_mean(features)
                    action = model.joint_action(batch.action[t + k - 1, b])
                    deter = model._transition(deter[None], state_hat[None], action[None], False)[0]
                    stoch = model.prior_net(deter).mean
                    features = torch.cat([deter, stoch])
                    target = batch.state[t + k, b]
                    sums["state"][k - 1] += float(
                        (model.decoders.state_mean(features) - target).pow(2).mean()
                    )
                    sums["obs"][k - 1] += float(
                        (model.decoders.obs_mean(features) - batch.obs[t + k, b]).pow(2).mean()
                    )
                    sums["reward"][k - 1] += float(
                        (model.decoders.reward_mean(features) - batch.reward[t + k - 1, b]) ** 2
                    )
                    sums["state_copy"][k - 1] += float((batch.state[t, b] - target).pow(2).mean())
                    counts[k - 1] += 1
    for name, per_k in sums.items():
        expected = [s / n for s, n in zip(per_k, counts, strict=True)]
        assert errors[name] == pytest.approx(expected, rel=1e-4), name


def test_open_loop_error_is_nan_beyond_every_episode(
    wm: SimpleNamespace, generator: torch.Generator
) -> None:
    batch = wm.random_batch(generator, t=2)
    errors = open_loop_error(wm.make_model(), batch, horizon=3)
    assert not math.isnan(errors["state"][1]) and math.isnan(errors["state"][2])
    with pytest.raises(ValueError, match="horizon=0"):
        open_loop_error(wm.make_model(), batch, horizon=0)


def test_kl_per_step(wm: SimpleNamespace, generator: torch.Generator) -> None:
    model = wm.make_model()
    batch = wm.random_batch(generator)
    kl = kl_per_step(model, batch)
    assert len(kl) == wm.T + 1 and all(v >= 0 for v in kl)
    # Episode 0 ends after T-2 transitions: the last rows average the other episodes only.
    seen = model._observe_all(batch, sample=False)
    per_state = kl_gaussian(seen.post_dist, seen.prior_dist).sum(-1).detach()
    assert kl[-1] == pytest.approx(float(per_state[-1, 1:].mean()), rel=1e-5)
    assert kl[0] == pytest.approx(float(per_state[0].mean()), rel=1e-5)


def test_collapse_indicator_sees_a_posterior_equal_to_its_prior(
    wm: SimpleNamespace, generator: torch.Generator
) -> None:
    model = wm.make_model()
    batch = wm.random_batch(generator)
    fresh = posterior_collapse(model, batch)
    assert set(fresh) == {"y", "x"} and all(0.0 <= v <= 1.0 for v in fresh.values())
    assert fresh["y"] < 1.0
    # Make q(y | h, e) ignore e and copy p(y | h): every dimension then carries 0 nats.
    post, prior = model.posterior_net, model.prior_net
    with torch.no_grad():
        post.hidden.weight.zero_()
        post.hidden.weight[:, : model.deter_dim] = prior.hidden.weight
        post.hidden.bias.copy_(prior.hidden.bias)
        post.norm.load_state_dict(prior.norm.state_dict())
        post.head.load_state_dict(prior.head.state_dict())
    assert posterior_collapse(model, batch)["y"] == 1.0
    assert max(kl_per_step(model, batch)) == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="threshold=0"):
        posterior_collapse(model, batch, threshold=0)
