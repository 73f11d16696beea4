"""mamujoco adapter over the real gymnasium-robotics mamujoco_v1."""

from __future__ import annotations

import numpy as np
import pytest

from mmsa_envs import UnknownEnvError, check_env, make

mamujoco_v1 = pytest.importorskip("gymnasium_robotics").mamujoco_v1
pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        ("HalfCheetah-6x1", None),  # the full 1000-step episodes
        ("HalfCheetah-2x3", 100),
        ("Ant-2x4", 100),
        ("Hopper-3x1", 100),
        ("Walker2d-2x3", 100),
        ("Swimmer-2x1", 100),
    ],
)
def test_contract(name: str, limit: int | None) -> None:
    kw = {} if limit is None else {"max_episode_steps": limit}
    env = make(f"mamujoco:{name}", **kw)
    assert env.spec.episode_limit == (limit or 1000)
    check_env(env, episodes=1)


def test_heterogeneous_observations_are_padded() -> None:
    spec = make("mamujoco:HalfCheetah-6x1").spec
    assert spec.agent_obs_dims == (9, 9, 8, 9, 9, 8) and spec.obs_dim == 9
    assert (spec.state_dim, spec.n_actions) == (17, 1)
    assert spec.action_low == (-1.0,) and spec.action_high == (1.0,)
    assert make("mamujoco:Ant-2x4", agent_obsk=0).spec.agent_obs_dims == (61, 61)
    assert make("mamujoco:Ant-2x4").spec.agent_obs_dims == (63, 63)


@pytest.mark.parametrize(
    ("scenario", "conf", "obsk"),
    [("Hopper", "3x1", 1), ("HalfCheetah", "6x1", 1), ("Ant", "2x4", 0), ("Walker2d", "2x3", 2)],
)
def test_matches_the_raw_env_step_for_step(scenario: str, conf: str, obsk: int) -> None:
    # the adapter steps the MuJoCo env through a precomputed action map (see _mamujoco.py):
    # it must agree with parallel_env.step value for value
    env = make(f"mamujoco:{scenario}-{conf}", agent_obsk=obsk)
    raw = mamujoco_v1.parallel_env(scenario, conf, agent_obsk=obsk)
    agents = raw.possible_agents
    step = env.reset(seed=11)
    raw_obs, _ = raw.reset(seed=11)
    rng = np.random.default_rng(0)
    n, a = env.spec.n_agents, env.spec.n_actions
    for _ in range(40):
        for i, agent in enumerate(agents):
            o = raw_obs[agent]
            np.testing.assert_array_equal(step.obs[i, : o.shape[0]], o.astype(np.float32))
        np.testing.assert_array_equal(step.state, raw.state().astype(np.float32))
        act = rng.uniform(-1, 1, (n, a)).astype(np.float32)
        step = env.step(act)
        raw_obs, rewards, terms, truncs, infos = raw.step(
            {agent: act[i] for i, agent in enumerate(agents)}
        )
        assert step.reward == float(rewards[agents[0]])
        assert step.terminated == bool(terms[agents[0]])
        assert step.info == infos[agents[0]]
        if step.done:
            assert raw.agents == []
            break


def test_unhealthy_end_is_termination_and_time_limit_truncation() -> None:
    hopper = make("mamujoco:Hopper-3x1")
    step = hopper.reset(seed=0)
    while not step.done:  # full-force random actions topple the hopper long before 1000 steps
        step = hopper.step(
            np.sign(np.random.default_rng(1).uniform(-1, 1, (3, 1))).astype(np.float32)
        )
    assert step.terminated and not step.truncated and hopper.elapsed_steps < 1000
    cheetah = make("mamujoco:HalfCheetah-6x1", max_episode_steps=20)
    step = cheetah.reset(seed=0)
    while not step.done:
        step = cheetah.step(np.zeros((6, 1), np.float32))
    assert step.truncated and not step.terminated and cheetah.elapsed_steps == 20


def test_unknown_partition_lists_close_matches() -> None:
    with pytest.raises(UnknownEnvError, match="HalfCheetah-6x1, mamujoco:HalfCheetah-2x3"):
        make("mamujoco:HalfCheetah-3x2")  # MaMuJoCo has no 3x2 partition
    with pytest.raises(UnknownEnvError, match="Ant-2x4"):
        make("mamujoco:Antt-2x4")
    with pytest.raises(ValueError, match="agent_obsk=-1"):
        make("mamujoco:Ant-2x4", agent_obsk=-1)


def test_building_envs_prints_no_known_backend_noise() -> None:
    import subprocess
    import sys

    code = (
        "import mmsa_envs\n"
        "for _ in range(3):\n"
        "    mmsa_envs.make('mamujoco:HalfCheetah-2x3').close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # MuJoCo warns about the bundled XML once per model compiled, gymnasium-robotics prints an
    # Adroit notice at import: neither says anything about this run.
    assert "settotalmass" not in out.stderr and "AdroitHand" not in out.stderr, out.stderr


def test_other_backend_messages_pass_through_once(capfd: pytest.CaptureFixture[str]) -> None:
    import os

    from mmsa_envs._quiet import known_noise_dropped

    for _ in range(2):
        with known_noise_dropped(known=("harmless notice",)):
            os.write(2, b"WARNING: harmless notice about a model\n")
            os.write(2, b"ERROR: something real went wrong\n")
    err = capfd.readouterr().err
    assert "harmless notice" not in err
    assert err.count("ERROR: something real went wrong") == 1
