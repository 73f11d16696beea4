"""pettingzoo adapter over real PettingZoo ParallelEnvs (mpe2, sisl)."""

from __future__ import annotations

import numpy as np
import pytest

from mmsa_envs import UnknownEnvError, check_env, make

pytest.importorskip("mpe2")


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("mpe2.simple_spread_v3", {}),
        ("mpe2.simple_spread_v3", {"continuous_actions": True}),
        ("mpe2.simple_speaker_listener_v4", {}),
        ("pettingzoo.sisl.pursuit_v5", {"max_cycles": 10}),
    ],
)
def test_contract(name: str, kw: dict[str, object]) -> None:
    check_env(make(f"pettingzoo:{name}", **kw), episodes=2)


def test_simple_spread_matches_the_raw_env() -> None:
    from mpe2 import simple_spread_v3

    env = make("pettingzoo:mpe2.simple_spread_v3")
    spec = env.spec
    assert (spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions) == (3, 18, 54, 5)
    assert spec.episode_limit == 25
    raw = simple_spread_v3.parallel_env()
    agents = raw.possible_agents
    step, (raw_obs, _) = env.reset(seed=5), raw.reset(seed=5)
    rng = np.random.default_rng(0)
    while True:
        np.testing.assert_array_equal(step.obs, np.stack([raw_obs[a] for a in agents]))
        np.testing.assert_array_equal(step.state, raw.state())
        if step.done:
            break
        act = rng.integers(0, 5, 3)
        step = env.step(act)
        raw_obs, rewards, _, truncs, _ = raw.step({a: int(act[i]) for i, a in enumerate(agents)})
        per_agent = np.array([rewards[a] for a in agents], np.float32)
        np.testing.assert_array_equal(step.info["per_agent_reward"], per_agent)
        assert step.reward == pytest.approx(float(per_agent.sum()))
    assert step.truncated and not step.terminated and env.elapsed_steps == 25
    assert all(truncs.values())


def test_heterogeneous_agents_are_padded_and_masked() -> None:
    env = make("pettingzoo:mpe2.simple_speaker_listener_v4")
    spec = env.spec
    assert spec.agent_obs_dims == (3, 11) and spec.obs_dim == 11 and spec.n_actions == 5
    step = env.reset(seed=0)
    # the speaker has 3 actions, the listener 5: the speaker's last two are never available
    np.testing.assert_array_equal(step.avail_actions, [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert not step.obs[0, 3:].any()
    with pytest.raises(ValueError, match="agent 0 action 4 is not available"):
        env.step(np.array([4, 0]))


def test_continuous_bounds_and_team_reward_mean() -> None:
    env = make("pettingzoo:mpe2.simple_spread_v3", continuous_actions=True, team_reward="mean")
    spec = env.spec
    assert spec.action_low == (0.0,) * 5 and spec.action_high == (1.0,) * 5
    env.reset(seed=0)
    step = env.step(np.full((3, 5), 0.5, np.float32))
    assert step.reward == pytest.approx(float(step.info["per_agent_reward"].mean()))
    with pytest.raises(ValueError, match=r"agent 2 action dim 1 = -0.5 is outside \[0, 1\]"):
        env.step(np.array([[0.5] * 5, [0.5] * 5, [0.5, -0.5, 0.5, 0.5, 0.5]], np.float32))


def test_bad_names_and_options() -> None:
    with pytest.raises(UnknownEnvError, match="pettingzoo:mpe2.simple_spread_v3"):
        make("pettingzoo:mpe2.simple_sprad_v3")
    with pytest.raises(UnknownEnvError, match="has no parallel_env"):
        make("pettingzoo:numpy")
    with pytest.raises(ValueError, match="team_reward='max'"):
        make("pettingzoo:mpe2.simple_spread_v3", team_reward="max")
