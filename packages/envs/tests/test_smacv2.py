"""smacv2 adapter, tested against the shipped fake of smacv2's wrapper (no StarCraft II here)."""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import pytest

from mmsa_envs import MissingBackendError, UnknownEnvError, check_env, make
from mmsa_envs._smacv2 import CAPABILITY_CONFIGS, ENV_ARGS, SMACv2Env, list_ids
from mmsa_envs.testing import FakeStarCraftCapabilityEnv


@pytest.mark.parametrize("name", ["protoss_5_vs_5", "terran_10_vs_10", "zerg_5_vs_5"])
def test_contract_against_the_fake(name: str) -> None:
    env = make(f"smacv2:{name}", env_factory=FakeStarCraftCapabilityEnv, seed=3)
    assert not env.reproducible_resets
    check_env(env, episodes=3)


def test_spec_follows_smacv2_sizes() -> None:
    env = make("smacv2:zerg_20_vs_20", env_factory=FakeStarCraftCapabilityEnv)
    spec = env.spec
    assert (spec.n_agents, spec.n_actions, spec.episode_limit) == (20, 6 + 20, 200)
    assert spec.has_win and spec.backend_versions["env_factory"] == "FakeStarCraftCapabilityEnv"
    assert list_ids()[:3] == ["protoss_5_vs_5", "protoss_10_vs_10", "protoss_20_vs_20"]


def test_wrapper_gets_smacv2s_config_and_it_stays_pristine() -> None:
    seen: dict[str, Any] = {}

    def factory(**kwargs: Any) -> FakeStarCraftCapabilityEnv:
        seen.update(kwargs)
        return FakeStarCraftCapabilityEnv(**kwargs)

    make("smacv2:terran_10_vs_10", env_factory=factory, obs_last_action=True)
    assert seen["map_name"] == "10gen_terran" and seen["obs_last_action"] is True
    cap = seen["capability_config"]
    assert (cap["n_units"], cap["n_enemies"]) == (10, 10)
    assert cap["team_gen"]["unit_types"] == ["marine", "marauder", "medivac"]
    assert cap["team_gen"]["exception_unit_types"] == ["medivac"]
    assert cap["start_positions"]["dist_type"] == "surrounded_and_reflect"
    assert {k: seen[k] for k in ENV_ARGS if k != "obs_last_action"} == {
        k: v for k, v in ENV_ARGS.items() if k != "obs_last_action"
    }
    assert "env_key" in cap["team_gen"]  # the wrapper wrote into its copy ...
    assert "env_key" not in CAPABILITY_CONFIGS["terran"]["team_gen"]  # ... not into ours


def _short_episodes(limit: int, **extra: Any) -> Any:
    def factory(**kwargs: Any) -> FakeStarCraftCapabilityEnv:
        env = FakeStarCraftCapabilityEnv(**{**kwargs, **extra})
        env.episode_limit = limit
        return env

    return factory


@pytest.mark.parametrize("continuing", [False, True])
def test_time_out_is_truncation(continuing: bool) -> None:
    env = SMACv2Env(
        "protoss_5_vs_5", env_factory=_short_episodes(4, continuing_episode=continuing), seed=1
    )
    step = env.reset()
    while not step.done:
        step = env.step(np.ones(5, np.int64))  # everyone stops: nobody dies in 4 steps
    assert step.truncated and not step.terminated and env.elapsed_steps == 4
    assert step.info["battle_won"] is False


def test_battle_end_is_termination_with_win_flag() -> None:
    env = make("smacv2:protoss_5_vs_5", env_factory=FakeStarCraftCapabilityEnv, seed=0)
    results = []
    for _ in range(8):
        step = env.reset()
        while not step.done:
            acts = [
                (np.flatnonzero(r[6:]) + 6)[0] if r[6:].any() else np.flatnonzero(r)[-1]
                for r in step.avail_actions
            ]
            step = env.step(np.array(acts))
        assert step.terminated and not step.truncated
        won = step.info["battle_won"]
        assert won == (step.info["dead_enemies"] == 5 and step.info["dead_allies"] < 5)
        results.append(won)
    assert any(results) and not all(results), results


def test_without_smacv2_the_error_says_what_to_install() -> None:
    with pytest.raises(MissingBackendError) as err:
        make("smacv2:protoss_5_vs_5")
    msg = str(err.value)
    for needle in ("git+https://github.com/oxwhirl/smacv2.git", "StarCraft II", "SC2PATH",
                   "SMAC_Maps", "4.10"):  # fmt: skip
        assert needle in msg


def test_without_starcraft_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    smacv2 = types.ModuleType("smacv2")
    smacv2_env = types.ModuleType("smacv2.env")
    smacv2_env.StarCraftCapabilityEnvWrapper = FakeStarCraftCapabilityEnv  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "smacv2", smacv2)
    monkeypatch.setitem(sys.modules, "smacv2.env", smacv2_env)
    monkeypatch.setitem(sys.modules, "pysc2", None)
    with pytest.raises(MissingBackendError, match="StarCraft II was not found.*SC2PATH"):
        make("smacv2:protoss_5_vs_5")


def test_bad_ids_and_fake_arguments() -> None:
    with pytest.raises(UnknownEnvError, match="smacv2:protoss_5_vs_5"):
        make("smacv2:protos_5_vs_5", env_factory=FakeStarCraftCapabilityEnv)
    with pytest.raises(TypeError, match="obs_everything"):
        make("smacv2:protoss_5_vs_5", env_factory=FakeStarCraftCapabilityEnv, obs_everything=1)


@pytest.mark.parametrize(
    ("name", "unit"),  # smacv2: enemy/ally = 4 + health + shield (protoss) + 3 unit-type bits
    [("protoss_5_vs_5", 9), ("terran_5_vs_5", 8), ("zerg_10_vs_10", 8)],
)
def test_entity_layout_follows_smacv2s_documented_order(name: str, unit: int) -> None:
    """smacv2's `get_obs_agent` order: move (4), enemies, allies, own (health, shield, unit
    type, position); the attack actions come after no-op, stop and the four moves."""
    env = SMACv2Env(name, env_factory=FakeStarCraftCapabilityEnv)
    n = env.spec.n_agents
    shield = unit - 8
    own = 1 + shield + 3 + 2  # obs_own_pos is on in smacv2's configs
    layout = env.spec.entities
    assert layout is not None
    assert (layout.n_enemies, layout.enemy_start, layout.enemy_dim) == (n, 4, unit)
    assert (layout.n_allies, layout.ally_start, layout.ally_dim) == (n - 1, 4 + n * unit, unit)
    assert layout.own == ((0, 4), (4 + (2 * n - 1) * unit, env.spec.obs_dim))
    assert layout.own_dim == 4 + own and env.spec.obs_dim == 4 + (2 * n - 1) * unit + own
    assert layout.attack_actions == tuple(range(6, 6 + n))
    assert dict(layout)["attack_actions"] == layout.attack_actions  # plain data for run.json


def test_entity_layout_reads_the_fakes_units() -> None:
    """Against the fake's hidden state: each enemy block starts with that enemy's attack flag
    and holds its health, each ally block the other ally's, the own block the agent's."""
    env = SMACv2Env("protoss_5_vs_5", env_factory=FakeStarCraftCapabilityEnv, seed=1)
    fake, layout = env._env, env.spec.entities
    assert layout is not None
    n, m, checked = env.spec.n_agents, layout.n_enemies, 0
    step, rng = env.reset(), np.random.default_rng(0)
    for _ in range(30):
        for i in range(n):
            obs = step.obs[i]
            if fake.health[i] <= 0:
                continue
            np.testing.assert_array_equal(obs[0:4], step.avail_actions[i, 2:6])
            own = obs[list(layout.own_indices)]
            assert own[4] == np.float32(fake.health[i] / fake.health_max[i])
            allies = [k for k in range(n) if k != i]
            for e in range(m):
                block = obs[layout.enemy_start + e * layout.enemy_dim :][: layout.enemy_dim]
                assert block[0] == step.avail_actions[i, layout.attack_actions[e]]
                if block.any():
                    assert block[4] == np.float32(fake.health[n + e] / fake.health_max[n + e])
                    checked += 1
            for k, j in enumerate(allies):
                block = obs[layout.ally_start + k * layout.ally_dim :][: layout.ally_dim]
                if block.any():
                    assert block[4] == np.float32(fake.health[j] / fake.health_max[j])
                    checked += 1
        acts = [rng.choice(np.flatnonzero(row)) for row in step.avail_actions]
        step = env.step(np.array(acts, np.int64))
        if step.done:
            step = env.reset()
    assert checked > 0
