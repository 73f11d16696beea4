"""smax adapter and SMAXVectorEnv over the real JaxMARL SMAX (CPU jax).

Compiling SMAX's step takes ~10-15 s per map and shape, so the tests share module-scoped envs:
one single env per map and one vector env.
"""

from __future__ import annotations

import numpy as np
import pytest

from mmsa_envs import UnknownEnvError, VecStep, check_env, episode_seed, make

pytest.importorskip("jaxmarl")
from mmsa_envs._smax import SMAXEnv  # noqa: E402
from mmsa_envs._smax_vector import SMAXVectorEnv  # noqa: E402


@pytest.fixture(scope="module")
def smacv2_5() -> SMAXEnv:
    return make("smax:smacv2_5_units")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def three_m() -> SMAXEnv:
    return make("smax:3m")  # type: ignore[return-value]


def _attack_policy(avail: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Attack a random enemy in range, else move or stop at random."""
    acts = []
    for row in avail:
        attacks = np.flatnonzero(row[5:]) + 5
        choices = attacks if attacks.size else np.flatnonzero(row)
        acts.append(rng.choice(choices))
    return np.array(acts, np.int64)


def _focus_fire(avail: np.ndarray) -> np.ndarray:
    """Every ally shoots the lowest-numbered enemy in range, else moves: wins some 3m battles."""
    acts = []
    for row in avail:
        attacks = np.flatnonzero(row[5:]) + 5
        acts.append(attacks[0] if attacks.size else (1 if row[1] else np.flatnonzero(row)[-1]))
    return np.array(acts, np.int64)


def test_contract_smacv2_5_units(smacv2_5: SMAXEnv) -> None:
    spec = smacv2_5.spec
    assert (spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions) == (5, 127, 120, 10)
    assert spec.has_win and spec.episode_limit == 101  # SMAX ends on step max_steps + 1
    check_env(smacv2_5, episodes=2)


def test_contract_3m(three_m: SMAXEnv) -> None:
    check_env(three_m, episodes=2)


def test_win_flag_matches_the_battle(three_m: SMAXEnv) -> None:
    outcomes = []
    for seed in range(12):
        step = three_m.reset(seed=seed)
        while not step.done:
            step = three_m.step(_focus_fire(step.avail_actions))
        alive = np.asarray(three_m._state.state.unit_alive)
        won = not alive[3:].any() and alive[:3].any()
        assert step.info["battle_won"] == won
        assert step.terminated == (not alive[3:].any() or not alive[:3].any())
        if won:
            assert step.reward >= 1.0  # the +1 battle bonus is in the last reward
        outcomes.append(won)
    assert any(outcomes) and not all(outcomes), outcomes


def test_state_is_scaled_like_smacv2s(three_m: SMAXEnv) -> None:
    """Positions about the map centre over half its size, cooldowns over the unit type's and
    floored at 0, dead units zero; the rest is JaxMARL's world state (`raw_state=True`)."""
    inner = three_m._core.env._env
    n_units, per = inner.num_agents, len(inner.own_features)
    rng = np.random.default_rng(5)
    step, negative_raw_cooldown, dead_seen = three_m.reset(seed=2), False, False
    for _ in range(60):
        st = three_m._state.state
        raw = np.asarray(inner.get_world_state(st))
        alive, types = np.asarray(st.unit_alive), np.asarray(st.unit_types)
        units, raw_units = step.state[: n_units * per].reshape(n_units, per), raw[: n_units * per]
        raw_units = raw_units.reshape(n_units, per)
        half = np.array([inner.map_width, inner.map_height]) / 2
        cd = np.asarray(inner.unit_type_weapon_cooldowns)[types]
        for u in range(n_units):
            if not alive[u]:
                dead_seen = True
                assert not units[u].any()
                continue
            np.testing.assert_allclose(units[u, 1:3], (raw_units[u, 1:3] - half) / half, atol=1e-6)
            np.testing.assert_allclose(units[u, 3], max(raw_units[u, 3], 0) / cd[u], atol=1e-6)
            np.testing.assert_array_equal(
                units[u, [0, *range(4, per)]], raw_units[u, [0, *range(4, per)]]
            )
            negative_raw_cooldown |= bool(raw_units[u, 3] < -1)
        np.testing.assert_array_equal(step.state[n_units * per :], raw[n_units * per :])
        assert np.abs(units[:, 1:3]).max() <= 1 and units[:, 3].min() >= 0
        step = three_m.step(_attack_policy(step.avail_actions, rng))
        if step.done:
            step = three_m.reset(seed=3)
    assert negative_raw_cooldown and dead_seen  # the raw state needed the scaling here


def test_raw_state_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match=r"raw_state='no' must be true or false"):
        make("smax:3m", raw_state="no")


def test_unknown_map_lists_close_matches() -> None:
    with pytest.raises(UnknownEnvError, match="smax:smacv2_5_units"):
        make("smax:smacv2_5_unit")


@pytest.fixture(scope="module")
def vector() -> SMAXVectorEnv:
    # max_steps=10: episodes reach the step limit, so truncation shows up quickly
    return SMAXVectorEnv("smax:3m", 3, seed=9, env_kwargs={"max_steps": 10})


def _rollout(venv: SMAXVectorEnv, steps: int, seed: int) -> tuple[list[VecStep], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    vs, acts = [venv.reset()], []
    for _ in range(steps):
        acts.append(np.stack([_attack_policy(a, rng) for a in vs[-1].avail_actions]))
        vs.append(venv.step(acts[-1]))
    return vs, acts


def test_vector_rows_replay_lone_envs(vector: SMAXVectorEnv, three_m: SMAXEnv) -> None:
    vector.autoreset = False
    vector.episode_counters = np.zeros(3, np.int64)
    vs, acts = _rollout(vector, 12, seed=1)
    assert vs[0].obs.shape == (3, 3, 75) and vs[0].avail_actions.dtype == bool
    for i in range(3):  # the lone 3m env has a longer limit: compare up to row i's end
        step = three_m.reset(seed=episode_seed(9, i, 0))
        for t, act in enumerate(acts, start=1):
            np.testing.assert_allclose(vs[t - 1].obs[i], step.obs, atol=1e-5)
            step = three_m.step(act[i])
            assert vs[t].reward[i] == pytest.approx(step.reward, abs=1e-6)
            if vs[t].done[i]:
                break
    last = vs[-1]
    assert last.done.all()  # max_steps=10: every row is over by step 11
    for i in range(3):
        end = next(t for t, v in enumerate(vs) if v.done[i])
        assert last.truncated[i] == (end == 11) and last.terminated[i] == (end < 11)
        assert vs[-1].reward[i] == 0.0 or end == len(vs) - 1  # finished rows wait with reward 0
    assert not last.dropped.any() and vector.dropped_episodes == 0


def test_vector_autoreset_starts_seeded_episodes(vector: SMAXVectorEnv, three_m: SMAXEnv) -> None:
    vector.autoreset = True
    vector.episode_counters = np.zeros(3, np.int64)
    vs, _ = _rollout(vector, 12, seed=2)
    assert all(v.final_obs is not None for v in vs)
    for v in vs:  # the caller owns what it gets: no read-only views of JAX buffers
        assert v.obs.flags.writeable and v.state.flags.writeable
        assert v.avail_actions.flags.writeable
    assert vector.episode_counters.min() >= 2  # every row ended once within 11 steps
    for i in range(3):
        end = next(t for t, v in enumerate(vs) if t > 0 and v.done[i])
        first_of_next = three_m.reset(seed=episode_seed(9, i, 1))
        np.testing.assert_allclose(vs[end].obs[i], first_of_next.obs, atol=1e-5)
        assert not np.array_equal(vs[end].final_obs[i], vs[end].obs[i])  # type: ignore[index]
    vector.autoreset = False


def test_vector_rejects_bad_actions(vector: SMAXVectorEnv) -> None:
    v = vector.reset()
    acts = np.stack([np.argmax(a, axis=-1) for a in v.avail_actions])
    bad = acts.copy()
    bad[1, 2] = 99
    with pytest.raises(ValueError, match="env 1: .*agent 2 action 99 is out of range"):
        vector.step(bad)
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        vector.step(acts[:2])
    with pytest.raises(ValueError, match="smax:<map> ids only"):
        SMAXVectorEnv("lbf:Foraging-8x8-2p-2f-v3", 2)


@pytest.mark.parametrize("env_name", ["smacv2_5", "three_m"])
def test_entity_layout_reads_the_units_smax_observes(
    env_name: str, request: pytest.FixtureRequest
) -> None:
    """Each ally/enemy block holds that unit's relative position and type, the own block the
    agent's position, and `attack_actions[e]` is available exactly when enemy e is in range."""
    env: SMAXEnv = request.getfixturevalue(env_name)
    layout = env.spec.entities
    assert layout is not None
    n, m = env.spec.n_agents, layout.n_enemies
    assert (layout.n_allies, layout.attack_actions) == (n - 1, tuple(range(5, 5 + m)))
    inner = env._core.env._env  # JaxMARL's SMAX under the heuristic-enemy wrapper
    rng = np.random.default_rng(3)
    step, checked = env.reset(seed=4), 0
    for _ in range(12):
        st = env._state.state
        pos, types = np.asarray(st.unit_positions), np.asarray(st.unit_types)
        alive = np.asarray(st.unit_alive)
        for i in range(n):
            if not alive[i]:
                continue
            obs, sight = step.obs[i], float(inner.unit_type_sight_ranges[types[i]])
            own = obs[list(layout.own_indices)]
            np.testing.assert_allclose(own[1:3], pos[i] / [inner.map_width, inner.map_height])
            others = [j for j in range(n) if j != i] + list(range(n, n + m))
            for k, j in enumerate(others):
                if k < layout.n_allies:
                    start = layout.ally_start + k * layout.ally_dim
                else:
                    start = layout.enemy_start + (k - layout.n_allies) * layout.enemy_dim
                block = obs[start : start + layout.enemy_dim]
                if not (alive[j] and np.linalg.norm(pos[j] - pos[i]) < sight):
                    assert not block.any()
                    continue
                np.testing.assert_allclose(block[1:3], (pos[j] - pos[i]) / sight, atol=1e-5)
                assert block[7 + types[j]] == 1 and block[7:].sum() == 1
                checked += 1
            for e in range(m):
                in_range = np.linalg.norm(pos[n + e] - pos[i]) < float(
                    inner.unit_type_attack_ranges[types[i]]
                )
                assert step.avail_actions[i, layout.attack_actions[e]] == (
                    in_range and alive[n + e]
                )
        step = env.step(_attack_policy(step.avail_actions, rng))
        if step.done:
            step = env.reset(seed=5)
    assert checked > 0  # some units were in sight, so the blocks were really compared


def test_conic_observations_have_no_entity_layout() -> None:
    assert make("smax:3m", observation_type="conic").spec.entities is None
