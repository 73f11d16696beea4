"""EnvSpec validation, Step.done and the action checks of MultiAgentEnv."""

from __future__ import annotations

import numpy as np
import pytest

from mmsa_envs import EnvSpec, Step, make


def _spec(**kw: object) -> EnvSpec:
    base: dict[str, object] = dict(
        id="t:x",
        n_agents=3,
        obs_dim=7,
        state_dim=11,
        action_kind="discrete",
        n_actions=6,
        episode_limit=5,
    )
    base.update(kw)
    return EnvSpec(**base)  # type: ignore[arg-type]


def test_spec_defaults_agent_obs_dims_and_discrete() -> None:
    spec = _spec()
    assert spec.agent_obs_dims == (7, 7, 7)
    assert spec.discrete
    assert not _spec(
        action_kind="continuous", action_low=(-1.0,) * 6, action_high=(1.0,) * 6
    ).discrete


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"action_kind": "multi"}, "action_kind='multi'"),
        ({"n_agents": 0}, "n_agents=0"),
        ({"obs_dim": 2.5}, "obs_dim=2.5"),
        ({"agent_obs_dims": (7, 8, 7)}, "agent_obs_dims"),
        ({"agent_obs_dims": (7, 7)}, "3 entries"),
        ({"action_kind": "continuous"}, "needs action_low"),
        ({"action_kind": "continuous", "action_low": (0.0,), "action_high": (1.0,)}, "6 entries"),
    ],
)
def test_spec_rejects_bad_values_by_name(kw: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        _spec(**kw)


def test_step_done_is_terminated_or_truncated() -> None:
    obs, state, avail = (
        np.zeros((3, 7), np.float32),
        np.zeros(11, np.float32),
        np.ones((3, 6), bool),
    )
    assert not Step(obs, state, avail).done
    assert Step(obs, state, avail, terminated=True).done
    assert Step(obs, state, avail, truncated=True).done


def test_validate_discrete_actions_names_agent_and_value() -> None:
    env = make("dummy")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"agent 2 action 6 is out of range \[0, 5\]"):
        env.validate_actions(np.array([0, 1, 6]))
    with pytest.raises(ValueError, match="must be integers"):
        env.validate_actions(np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        env.validate_actions(np.array([[0, 1, 2]]))
    assert env.validate_actions([1, 2, 3]).dtype == np.int64


def test_validate_unavailable_action_lists_allowed() -> None:
    env = make("dummy")
    step = env.reset(seed=0)
    step = env.step(np.zeros(3, np.int64))  # t=1: agent 0 may not use action 0
    assert not step.avail_actions[0, 0]
    with pytest.raises(
        ValueError, match=r"agent 0 action 0 is not available now; available actions: \[1, 2"
    ):
        env.step(np.zeros(3, np.int64))


def test_validate_continuous_actions_bounds_and_nan() -> None:
    env = make("dummy:continuous")
    env.reset(seed=0)
    acts = np.zeros((3, 6), np.float32)
    acts[1, 4] = 1.5
    with pytest.raises(ValueError, match=r"agent 1 action dim 4 = 1.5 is outside \[-1, 1\]"):
        env.validate_actions(acts)
    acts[1, 4] = np.nan
    with pytest.raises(ValueError, match="agent 1 action dim 4 = nan"):
        env.validate_actions(acts)
    with pytest.raises(ValueError, match="must be floats"):
        env.validate_actions(np.zeros((3, 6), np.int64))
    assert env.validate_actions(np.zeros((3, 6), np.float64)).dtype == np.float32


def test_step_before_reset_and_after_end_raise() -> None:
    env = make("dummy", terminate_after=0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(3, np.int64))
    step = env.reset(seed=1)
    while not step.done:
        step = env.step(np.flatnonzero(step.avail_actions[0])[:1].repeat(3))
    assert step.truncated and env.elapsed_steps == 5
    with pytest.raises(RuntimeError, match="finished"):
        env.step(np.ones(3, np.int64))


def test_context_manager_closes() -> None:
    closed = []
    env = make("dummy")
    env.close = lambda: closed.append(True)  # type: ignore[method-assign]
    with env:
        pass
    assert closed == [True]


def _layout(**kw: object) -> object:
    from mmsa_envs import EntityLayout

    base: dict[str, object] = dict(
        own=((6, 7),), n_allies=2, ally_start=0, ally_dim=1, n_enemies=2, enemy_start=2,
        enemy_dim=2, attack_actions=(4, 5),
    )  # fmt: skip
    base.update(kw)
    return EntityLayout(**base)  # type: ignore[arg-type]


def test_entity_layout_fits_the_spec_and_is_plain_data() -> None:
    import json

    layout = _layout()
    spec = _spec(entities=layout)
    assert spec.entities is layout and layout.own_indices == (6,) and layout.own_dim == 1
    assert json.loads(json.dumps(dict(layout)))["attack_actions"] == [4, 5]
    assert _spec().entities is None


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"attack_actions": (4,)}, "2 distinct"),
        ({"attack_actions": (4, 4)}, "2 distinct"),
        ({"attack_actions": (4, 6)}, r"lie in \[0, 5\]"),
        ({"enemy_start": 1}, "overlap"),
        ({"own": ((6, 8),)}, "reaches index 8 > O=7"),
        ({"n_enemies": 0, "attack_actions": ()}, "n_enemies must be >= 1"),
        ({"own": ((3, 3),)}, "start < stop"),
    ],
)
def test_entity_layout_rejects_what_does_not_fit(kw: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        _spec(entities=_layout(**kw))
