"""The dummy env: sizes, solvability, both kinds of end, masks."""

from __future__ import annotations

import pytest

from mmsa_envs import DummyEnv, check_env, make


@pytest.mark.parametrize("env_id", ["dummy", "dummy:discrete", "dummy:continuous"])
def test_dummy_passes_contract(env_id: str) -> None:
    check_env(make(env_id), episodes=3)


def test_dummy_sizes_are_mutually_distinct() -> None:
    spec = make("dummy").spec
    sizes = [spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions, spec.episode_limit]
    assert sizes == [3, 7, 11, 6, 5]


def test_dummy_optimal_policy_terminates_early_with_full_reward() -> None:
    env = DummyEnv(terminate_after=2)
    step = env.reset(seed=3)
    total = 0.0
    while not step.done:
        step = env.step(step.obs[:, :6].argmax(axis=1))  # the target is one-hot in the obs
        total += step.reward
    assert step.terminated and not step.truncated
    assert env.elapsed_steps == 2 and total == 2.0


def test_dummy_wrong_policy_is_truncated_with_zero_reward() -> None:
    env = DummyEnv(terminate_after=2)
    step = env.reset(seed=3)
    rewards = []
    while not step.done:
        wrong = (step.obs[:, :6].argmax(axis=1) + 1) % 6
        wrong[0] = wrong[0] if step.avail_actions[0, wrong[0]] else (wrong[0] + 1) % 6
        step = env.step(wrong)
        rewards.append(step.reward)
    assert step.truncated and not step.terminated
    assert len(rewards) == 5 and max(rewards) < 1.0


def test_dummy_seed_changes_offset() -> None:
    env = DummyEnv()
    firsts = {int(env.reset(seed=s).obs[0, :6].argmax()) for s in range(20)}
    assert len(firsts) > 1


def test_dummy_unknown_kind() -> None:
    with pytest.raises(ValueError, match="action_kind='multi'"):
        DummyEnv(action_kind="multi")
