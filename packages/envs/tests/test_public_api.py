"""The public surface of mmsa_envs is pinned: changing it is a deliberate act."""

from __future__ import annotations

import mmsa_envs
import mmsa_envs.testing


def test_public_names() -> None:
    assert sorted(mmsa_envs.__all__) == sorted([
        "ActionKind", "DummyEnv", "EntityLayout", "EnvSpec", "MissingBackendError", "MultiAgentEnv",
        "SMAXVectorEnv", "Step", "UnknownEnvError", "VecStep", "VectorEnv", "backends",
        "check_env", "episode_seed", "make", "make_vector_env", "registered",
    ])  # fmt: skip
    for name in mmsa_envs.__all__:
        assert hasattr(mmsa_envs, name), name
    assert mmsa_envs.testing.__all__ == ["FakeStarCraftCapabilityEnv"]


def test_make_vector_env_picks_the_backend_path() -> None:
    venv = mmsa_envs.make_vector_env("dummy", 2, processes=False)
    assert isinstance(venv, mmsa_envs.VectorEnv) and venv.num_envs == 2
    venv.close()
