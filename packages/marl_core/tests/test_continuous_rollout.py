"""Tests of imagination with the deterministic actors (continuous rollout features)."""

from __future__ import annotations

import pytest
import torch

from mmsa_marl_core.imagination.continuous_rollout import (
    ActorImaginationPolicy,
    continuous_imagined_features,
)
from mmsa_marl_core.networks.policy import DeterministicActor
from mmsa_marl_core.networks.sale_agent import SALEAgent
from mmsa_worldmodel import WorldModel, WorldModelConfig

T, B, N, O, S, A, H, Z = 5, 4, 3, 7, 11, 6, 9, 8  # noqa: E741 - axis letters (STYLE.md)
IN = O + N  # agents that do not read their last action


def _nets(last: int = 0) -> tuple[SALEAgent, DeterministicActor]:
    agent = SALEAgent(input_dim=O + last + N, n_actions=A, hidden_dim=H, use_sale=False)
    actor = DeterministicActor(
        input_dim=O + last + N,
        hidden_dim=H,
        action_low=(-1.0,) * A,
        action_high=(1.0,) * A,
        width=10,
        use_sale=False,
    )
    return agent, actor


def test_public_surface() -> None:
    import mmsa_marl_core.imagination.continuous_rollout as module

    assert sorted(module.__all__) == ["ActorImaginationPolicy", "continuous_imagined_features"]


@pytest.mark.parametrize("last", [0, A])
def test_policy_carries_hidden_state_and_last_action(last: int) -> None:
    torch.manual_seed(0)
    agent, actor = _nets(last)
    hidden0 = torch.zeros(B, N, H)
    policy = ActorImaginationPolicy(agent, actor, None, hidden0, torch.zeros(B, N, last))
    obs = torch.randn(B, N, O)
    avail = torch.ones(B, N, A, dtype=torch.bool)
    first = policy(obs, avail)
    second = policy(obs, avail)
    assert first.shape == (B, N, A) and policy.calls == 2
    assert bool((first.abs() <= 1).all())
    # Same observation twice, different actions: the GRU state moved on between the calls.
    assert not torch.allclose(first, second)
    assert policy.last_action.shape == (B, N, last)
    if last:
        assert torch.equal(policy.last_action, second)


def test_obs_transform_is_applied_to_decoded_observations() -> None:
    agent, actor = _nets()
    seen: list[torch.Tensor] = []

    def transform(obs: torch.Tensor) -> torch.Tensor:
        seen.append(obs)
        return obs * 0

    policy = ActorImaginationPolicy(
        agent, actor, None, torch.zeros(B, N, H), torch.zeros(B, N, 0), transform
    )
    a1 = policy(torch.randn(B, N, O), torch.ones(B, N, A, dtype=torch.bool))
    policy2 = ActorImaginationPolicy(agent, actor, None, torch.zeros(B, N, H), torch.zeros(B, N, 0))
    a2 = policy2(torch.zeros(B, N, O), torch.ones(B, N, A, dtype=torch.bool))
    assert len(seen) == 1 and torch.allclose(a1, a2)


def test_features_from_every_real_step_with_a_real_world_model() -> None:
    torch.manual_seed(1)
    config = WorldModelConfig(
        deter_dim=12, stoch_per_agent=2, hidden=16, embed_dim=10, vae1_latent_dim=4,
        sale_zs_dim=8, sale_hidden=16, phi_dim=8,
    )  # fmt: skip
    wm = WorldModel(
        n_agents=N, obs_dim=O, state_dim=S, n_actions=A, action_kind="continuous", config=config
    )
    agent, actor = _nets()
    batch_shape = (T + 1, B)
    posterior = wm.initial(batch_shape)
    posterior = type(posterior)(*(torch.randn_like(leaf) for leaf in posterior))
    features = continuous_imagined_features(
        wm, posterior, agent, actor, None,
        torch.randn(T + 1, B, N, H), torch.zeros(T + 1, B, N, 0), horizon=3,
    )  # fmt: skip
    assert features.shape == (4, (T + 1) * B, wm.feature_dim)
    assert not features.requires_grad
    # Row 0 is the start state itself, start-major as the inputs.
    torch.testing.assert_close(features[0], wm.features(posterior).reshape((T + 1) * B, -1))
    with pytest.raises(ValueError, match="horizon"):
        continuous_imagined_features(
            wm, posterior, agent, actor, None,
            torch.randn(T + 1, B, N, H), torch.zeros(T + 1, B, N, 0), horizon=0,
        )  # fmt: skip
