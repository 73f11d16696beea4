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
