"""Tests of the FACMAC pieces (frozen critic, mixed actor loss, Polyak targets, exploration,
grouped step) and of the registered ``facmac`` baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmsa_envs import make
from mmsa_marl_core.learners.continuous import (
    explore_actions,
    frozen,
    mixed_actor_loss,
    soft_update,
)
from mmsa_marl_core.learners.facmac import FACMACConfig, build_facmac
from mmsa_marl_core.networks.mixers import QMIX
from mmsa_marl_core.ops.optim import grouped_step
from mmsa_marl_core.registry import get_algo

T, B, N, A, S = 5, 4, 3, 6, 11


def test_public_surface() -> None:
    import mmsa_marl_core.learners.continuous as continuous
    import mmsa_marl_core.learners.facmac as facmac

    assert sorted(facmac.__all__) == ["FACMACConfig", "build_facmac"]
    assert sorted(continuous.__all__) == [
        "explore_actions",
        "frozen",
        "mixed_actor_loss",
        "soft_update",
    ]


def test_frozen_blocks_parameter_grads_but_not_input_grads() -> None:
    torch.manual_seed(0)
    mixer = QMIX(N, S)
    q = torch.randn(T, B, N, requires_grad=True)
    with frozen(mixer, None):
        out = mixer(q, torch.randn(T, B, S)).sum()
    out.backward()
    assert q.grad is not None and float(q.grad.abs().sum()) > 0
    assert all(p.grad is None for p in mixer.parameters())
    assert all(p.requires_grad for p in mixer.parameters())  # restored
    with pytest.raises(RuntimeError, match="boom"), frozen(mixer):
        raise RuntimeError("boom")
    assert all(p.requires_grad for p in mixer.parameters())


def test_mixed_actor_loss_against_hand_computation_and_mask() -> None:
    q_tot = torch.tensor([[1.0, 2.0], [3.0, 100.0]])  # [T=2, B=2]
    pre = torch.zeros(2, 2, N, A)
    pre[0, 0] = 2.0  # mean square 4 at (0, 0)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])  # (1, 1) is padding
    loss = mixed_actor_loss(q_tot, pre, mask, regularization=0.5)
    expected = ((-1.0 + 0.5 * 4.0) + (-2.0) + (-3.0)) / 3
    assert float(loss) == pytest.approx(expected)
    with pytest.raises(ValueError, match="pre_action"):
        mixed_actor_loss(q_tot, torch.zeros(2, 2, A), mask, 0.0)


def test_soft_update_is_polyak_averaging() -> None:
    online, target = nn.Linear(3, 2), nn.Linear(3, 2)
    before = target.weight.detach().clone()
    soft_update(target, online, 0.25)
    torch.testing.assert_close(target.weight, 0.75 * before + 0.25 * online.weight.detach())
    soft_update(target, online, 1.0)
    torch.testing.assert_close(target.weight, online.weight.detach())
    with pytest.raises(ValueError, match="tau"):
        soft_update(target, online, 1.5)


def test_explore_actions_bounds_warmup_and_reproducibility() -> None:
    spec = make("dummy:continuous").spec
    action = np.full((64, N, A), 0.95, np.float32)
    noisy = explore_actions(action, spec, 0.1, False, np.random.default_rng(0))
    assert noisy.dtype == np.float32 and noisy.max() <= 1.0 and noisy.min() >= -1.0
    assert 0.03 < float(np.abs(noisy - action).mean()) < 0.1  # noise, clipped at the top
    uniform = explore_actions(action, spec, 0.1, True, np.random.default_rng(0))
    assert uniform.min() < -0.9 and uniform.max() > 0.9  # ignores the policy's action
    again = explore_actions(action, spec, 0.1, False, np.random.default_rng(0))
    assert np.array_equal(noisy, again)


def test_grouped_step_clips_each_group_and_skips_nonfinite() -> None:
    big, small = nn.Linear(2, 1), nn.Linear(2, 1)
    opt = torch.optim.SGD([*big.parameters(), *small.parameters()], lr=1.0)
    groups = {"big": (list(big.parameters()), 1.0), "small": (list(small.parameters()), 1.0)}
    x = torch.ones(1, 2)
    before = small.weight.detach().clone()
    loss = 1e4 * big(x).sum() + 1e-2 * small(x).sum()
    applied, norms = grouped_step(loss, opt, groups)
    assert applied and norms["big"] > 1e3 and norms["small"] < 1.0
    # The small group's step is not shrunk by the big group's norm (a global clip would).
    torch.testing.assert_close(small.weight.detach(), before - 1e-2)
    weights = big.weight.detach().clone()
    applied, _ = grouped_step(big(x).sum() * float("nan"), opt, groups)
    assert not applied and torch.equal(big.weight.detach(), weights)
    assert all(p.grad is None for p in big.parameters())


def test_facmac_is_registered_without_sale_or_world_model() -> None:
    entry = get_algo("facmac")
    assert entry.config_cls is FACMACConfig and entry.factory is build_facmac
    spec = make("dummy:continuous").spec
    learner = entry.factory(spec, FACMACConfig(), torch.device("cpu"))
    assert learner.encoders is None and learner.world_model is None  # type: ignore[attr-defined]
    assert learner.plain_critic is not None  # type: ignore[attr-defined]
    assert learner.mixer.extra_cond_dim == 0  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="FACMACConfig"):
        build_facmac(spec, object(), torch.device("cpu"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="continuous"):
        build_facmac(make("dummy").spec, FACMACConfig(), torch.device("cpu"))
