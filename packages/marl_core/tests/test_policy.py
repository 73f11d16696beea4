"""Tests of the continuous-control networks (docs/design.md §4.2)."""

from __future__ import annotations

import pytest
import torch

from mmsa_envs import make
from mmsa_marl_core.networks.policy import ActionScale, DeterministicActor, MLPCritic

T, B, N, O, A, H, Z = 5, 4, 3, 7, 6, 9, 8  # noqa: E741 - axis letters (STYLE.md)
IN = O + A + N


def _actor(use_sale: bool = True, low=(-1.0,) * A, high=(1.0,) * A) -> DeterministicActor:
    return DeterministicActor(
        input_dim=IN,
        hidden_dim=H,
        action_low=low,
        action_high=high,
        zs_dim=Z,
        width=10,
        use_sale=use_sale,
    )


def test_public_surface() -> None:
    import mmsa_marl_core.networks.policy as module

    assert sorted(module.__all__) == ["ActionScale", "DeterministicActor", "MLPCritic"]


@pytest.mark.parametrize("use_sale", [True, False])
def test_actor_shapes(use_sale: bool) -> None:
    torch.manual_seed(0)
    actor = _actor(use_sale)
    x, h, zs = torch.randn(T, B, N, IN), torch.randn(T, B, N, H), torch.randn(T, B, N, Z)
    action = actor(x, h, zs if use_sale else None)
    assert action.shape == (T, B, N, A)
    assert actor.unit_action(x, h, zs if use_sale else None).shape == (T, B, N, A)


def test_actor_respects_asymmetric_bounds_when_saturated() -> None:
    low = (-2.0, 0.0, -0.5, 1.0, -3.0, -1.0)
    high = (1.0, 0.5, 0.5, 4.0, 3.0, -0.5)
    torch.manual_seed(3)
    actor = _actor(True, low, high)
    with torch.no_grad():
        actor.body[-1].weight.mul_(1e3)  # drive tanh into saturation
    x = torch.randn(64, N, IN)
    action = actor(x, torch.randn(64, N, H), torch.randn(64, N, Z))
    lo, hi = torch.tensor(low), torch.tensor(high)
    assert bool(((action >= lo) & (action <= hi)).all())
    # Saturated tanh: both ends of the box are reached, not just the middle.
    assert bool((action <= lo + 1e-3).any()) and bool((action >= hi - 1e-3).any())


def test_actor_sale_needs_zs_and_checks_shapes() -> None:
    actor = _actor(True)
    with pytest.raises(ValueError, match="needs zs"):
        actor(torch.randn(B, N, IN), torch.randn(B, N, H))
    with pytest.raises(ValueError, match="Z=8"):
        actor(torch.randn(B, N, IN), torch.randn(B, N, H), torch.randn(B, N, Z + 1))
    with pytest.raises(ValueError, match="H=9"):
        actor(torch.randn(B, N, IN), torch.randn(B, N, H + 2), torch.randn(B, N, Z))


def test_actor_reads_zs_only_with_sale() -> None:
    torch.manual_seed(1)
    x, h = torch.randn(B, N, IN), torch.randn(B, N, H)
    sale = _actor(True)
    assert not torch.allclose(sale(x, h, torch.randn(B, N, Z)), sale(x, h, torch.randn(B, N, Z)))
    plain = _actor(False)
    assert plain.body[0].in_features == 10  # no zs slot in the plain FACMAC actor


def test_action_scale_round_trip_and_bad_bounds() -> None:
    scale = ActionScale([-2.0, 0.0], [2.0, 1.0])
    unit = torch.tensor([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]])
    action = scale.from_unit(unit)
    assert torch.allclose(action, torch.tensor([[-2.0, 0.0], [0.0, 0.5], [2.0, 1.0]]))
    assert torch.allclose(scale.to_unit(action), unit)
    with pytest.raises(ValueError, match="high > low"):
        ActionScale([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        ActionScale([0.0], [float("inf")])
    with pytest.raises(ValueError, match="A=2"):
        scale.from_unit(torch.zeros(3))


def test_noise_is_clipped_and_actions_stay_in_bounds() -> None:
    scale = ActionScale([-1.0] * A, [3.0] * A)  # half range 2
    action = torch.full((20_000, A), 1.0)  # the middle of the box
    gen = torch.Generator().manual_seed(0)
    smoothed = scale.add_noise(action, std=0.2, clip=0.5, generator=gen)
    # Target policy smoothing: noise in unit scale is clipped at 0.5 -> at most 1.0 here.
    assert float((smoothed - action).abs().max()) == pytest.approx(1.0)
    assert float((smoothed - action).std()) == pytest.approx(0.2 * 2, rel=0.03)
    explored = scale.add_noise(torch.full((20_000, A), 2.9), std=0.1, generator=gen)
    assert float(explored.max()) == 3.0 and float(explored.min()) >= -1.0
    # The same generator seed gives the same noise (exact resume).
    a1 = scale.add_noise(action, 0.1, generator=torch.Generator().manual_seed(3))
    a2 = scale.add_noise(action, 0.1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2)
    with pytest.raises(ValueError, match="std"):
        scale.add_noise(action, -0.1)


def test_mlp_critic_shapes_and_action_dependence() -> None:
    torch.manual_seed(2)
    critic = MLPCritic(input_dim=IN, hidden_dim=H, action_dim=A, width=10)
    x, h = torch.randn(T, B, N, IN), torch.randn(T, B, N, H)
    q1 = critic(x, h, torch.randn(T, B, N, A))
    q2 = critic(x, h, torch.randn(T, B, N, A))
    assert q1.shape == (T, B, N)
    assert not torch.allclose(q1, q2)
    with pytest.raises(ValueError, match="A=6"):
        critic(x, h, torch.randn(T, B, N, A - 1))


def test_actor_on_dummy_continuous_spec() -> None:
    env = make("dummy:continuous")
    spec = env.spec
    assert spec.action_low is not None and spec.action_high is not None
    actor = DeterministicActor(
        input_dim=spec.obs_dim + spec.n_actions + spec.n_agents,
        hidden_dim=H,
        action_low=spec.action_low,
        action_high=spec.action_high,
        zs_dim=Z,
        width=10,
    )
    step = env.reset(seed=0)
    obs = torch.as_tensor(step.obs)
    x = torch.cat([obs, torch.zeros(spec.n_agents, spec.n_actions), torch.eye(spec.n_agents)], -1)
    action = actor(x, torch.zeros(spec.n_agents, H), torch.randn(spec.n_agents, Z))
    env.step(action.detach().numpy())  # the env validates shape and bounds


def test_unit_action_is_tanh_of_pre_activation() -> None:
    torch.manual_seed(4)
    actor = _actor(True)
    x, h, zs = torch.randn(B, N, IN), torch.randn(B, N, H), torch.randn(B, N, Z)
    pre = actor.pre_activation(x, h, zs)
    assert pre.shape == (B, N, A)
    torch.testing.assert_close(actor.unit_action(x, h, zs), torch.tanh(pre))
