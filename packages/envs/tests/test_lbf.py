"""lbf adapter over the real lbforaging 2.0."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from mmsa_envs import MissingBackendError, UnknownEnvError, check_env, make
from mmsa_envs._lbf import LBFEnv, list_ids, parse_id

pytest.importorskip("lbforaging")

MAPS = [
    "Foraging-8x8-2p-2f-coop-v3",
    "Foraging-2s-8x8-2p-2f-coop-v3",
    "Foraging-10x10-3p-5f-v3",  # not registered by lbforaging: built by the adapter
    "Foraging-10x10-4p-3f-v3",
]


@pytest.mark.parametrize("name", MAPS)
def test_contract(name: str) -> None:
    check_env(make(f"lbf:{name}"), episodes=2)


def test_spec_and_state_layout() -> None:
    env = make("lbf:Foraging-10x10-4p-3f-v3")
    spec = env.spec
    assert (spec.n_agents, spec.n_actions, spec.episode_limit) == (4, 6, 50)
    assert spec.state_dim == 4 * spec.obs_dim
    assert {"lbforaging", "gymnasium"} <= set(spec.backend_versions)
    step = env.reset(seed=3)
    np.testing.assert_array_equal(step.state, step.obs.reshape(-1))


def test_unregistered_id_gets_the_requested_foods_and_sight() -> None:
    env = make("lbf:Foraging-2s-10x10-3p-5f-v3")
    assert isinstance(env, LBFEnv)
    env.reset(seed=0)
    raw = env._raw
    assert raw.max_num_food == 5 and raw.sight == 2 and len(raw.players) == 3
    assert int((raw.field > 0).sum()) == 5
    assert parse_id("Foraging-8x8-2p-2f-coop-v3")["force_coop"] is True


def test_reset_depends_only_on_the_seed() -> None:
    fresh = make("lbf:Foraging-8x8-2p-2f-coop-v3")
    used = make("lbf:Foraging-8x8-2p-2f-coop-v3")
    rng = np.random.default_rng(0)
    for seed in range(6):
        step = used.reset(seed=100 + seed)
        while not step.done:  # move the players around the field
            step = used.step(np.array([rng.choice(np.flatnonzero(r)) for r in step.avail_actions]))
        np.testing.assert_array_equal(used.reset(seed=seed).obs, fresh.reset(seed=seed).obs)


def test_mask_matches_lbforaging_valid_actions() -> None:
    env = make("lbf:Foraging-8x8-2p-2f-coop-v3")
    step = env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(30):
        raw = env._raw
        for i, player in enumerate(raw.players):
            want = np.zeros(6, bool)
            want[[a.value for a in raw._valid_actions[player]]] = True
            np.testing.assert_array_equal(step.avail_actions[i], want)
        if step.done:
            step = env.reset(seed=2)
        act = np.array([rng.choice(np.flatnonzero(r)) for r in step.avail_actions])
        step = env.step(act)


def test_time_limit_is_truncation_and_clearing_the_field_is_termination() -> None:
    env = make("lbf:Foraging-5x5-2p-1f-v3")
    rng = np.random.default_rng(0)
    ends: dict[str, list[tuple[int, float, bool]]] = {"terminated": [], "truncated": []}
    for seed in range(40):
        step, total, t = env.reset(seed=seed), 0.0, 0
        while not step.done:
            act = np.array([rng.choice(np.flatnonzero(r)) for r in step.avail_actions])
            step = env.step(act)
            total += step.reward
            t += 1
            np.testing.assert_allclose(step.reward, step.info["per_agent_reward"].sum(), rtol=1e-6)
        food_left = bool(env._raw.field.any())
        ends["terminated" if step.terminated else "truncated"].append((t, total, food_left))
    assert ends["terminated"] and ends["truncated"], ends  # random play meets both ends
    for t, total, food_left in ends["terminated"]:
        assert not food_left and total > 0.0 and t <= 50
    for t, _, food_left in ends["truncated"]:
        assert food_left and t == 50


@pytest.mark.parametrize(
    ("name", "limit"),
    [("Foraging-5x5-2p-1f-v3", 7), ("Foraging-10x10-3p-5f-v3", 63)],  # registered / built here
)
def test_max_episode_steps_sets_the_limit_and_the_truncation(name: str, limit: int) -> None:
    env = make(f"lbf:{name}", max_episode_steps=limit)
    assert env.spec.episode_limit == limit
    step, t = env.reset(seed=1), 0
    while not step.done:  # NONE is always available and never clears the field
        step = env.step(np.zeros(env.spec.n_agents, np.int64))
        t += 1
    assert (t, step.truncated, step.terminated) == (limit, True, False)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "50", True])
def test_bad_max_episode_steps_is_an_error_naming_the_key(bad: object) -> None:
    with pytest.raises(ValueError, match="max_episode_steps"):
        make("lbf:Foraging-5x5-2p-1f-v3", max_episode_steps=bad)


def test_unknown_ids_list_close_matches() -> None:
    with pytest.raises(UnknownEnvError, match="lbf:Foraging-8x8-2p-2f-coop-v3"):
        make("lbf:Foraging-8x8-2p-2f-coop-v2")
    with pytest.raises(UnknownEnvError, match="do not fit"):
        make("lbf:Foraging-3x3-5p-5f-v3")
    with pytest.raises(UnknownEnvError, match="did you mean 'lbf:'"):
        make("lbff:Foraging-8x8-2p-2f-coop-v3")


def test_list_ids_covers_registered_and_paper_maps() -> None:
    ids = list_ids()
    assert "Foraging-10x10-3p-5f-v3" in ids and "Foraging-2s-8x8-2p-2f-coop-v3" in ids
    assert len(ids) > 1000


def test_missing_lbforaging_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lbforaging", None)  # makes `import lbforaging` fail
    hint = r"pip install -c constraints.txt -e 'packages/envs\[lbf\]' \(from the repository root\)"
    with pytest.raises(MissingBackendError, match=hint):
        make("lbf:Foraging-8x8-2p-2f-coop-v3")


def test_vector_env_over_lbf_workers_matches_in_process() -> None:
    from mmsa_envs import VectorEnv

    env_id = "lbf:Foraging-8x8-2p-2f-coop-v3"
    outs = []
    for processes in (True, False):
        with VectorEnv(env_id, 2, seed=4, processes=processes) as venv:
            v, rewards = venv.reset(), []
            for _ in range(60):
                v = venv.step(np.zeros((2, 2), np.int64))  # NONE: always available
                rewards.append(v.reward)
            outs.append((v.obs, np.array(rewards), v.truncated))
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b)
    assert outs[0][2].all()  # standing still never clears the field: truncated at 50
