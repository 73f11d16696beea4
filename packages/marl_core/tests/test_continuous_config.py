"""Tests of the continuous-control configs and their registration."""

from __future__ import annotations

import pytest

from mmsa_marl_core.learners.continuous_config import (
    FACMACConfig,
    MMSAContinuousConfig,
    continuous_config_from,
)
from mmsa_marl_core.learners.mmsa_config import MMSAConfig
from mmsa_marl_core.training.config import ConfigError, config_from_dict, config_to_dict
from mmsa_worldmodel import WorldModelConfig


def test_public_surface() -> None:
    import mmsa_marl_core.learners.continuous_config as module

    assert sorted(module.__all__) == [
        "FACMACConfig",
        "MMSAContinuousConfig",
        "continuous_config_from",
    ]


def test_defaults_are_td7_and_facmac_values() -> None:
    c = FACMACConfig()
    assert (c.exploration_std, c.target_noise_std, c.target_noise_clip, c.policy_delay) == (
        0.1,
        0.2,
        0.5,
        2,
    )
    m = MMSAContinuousConfig()
    assert m.use_sale and m.use_world_model and m.use_global_state
    assert not MMSAContinuousConfig(ablation="no_sale").use_sale
    assert not MMSAContinuousConfig(ablation="no_wm").use_world_model
    assert not MMSAContinuousConfig(ablation="no_gs").use_global_state


@pytest.mark.parametrize(
    ("cls", "field", "value", "match"),
    [
        (FACMACConfig, "policy_delay", 0, "policy_delay"),
        (FACMACConfig, "exploration_std", -0.1, "exploration_std"),
        (FACMACConfig, "gamma", 1.5, "gamma"),
        (FACMACConfig, "target_tau", -0.1, "target_tau"),
        (FACMACConfig, "actor_lr", 0.0, "actor_lr"),
        (FACMACConfig, "random_steps", -1, "random_steps"),
        (FACMACConfig, "width", True, "width"),
        (MMSAContinuousConfig, "ablation", "no_foo", "no_foo"),
        (MMSAContinuousConfig, "b_kl", -1.0, "b_kl"),
        (MMSAContinuousConfig, "code_dim", 0, "code_dim"),
    ],
)
def test_bad_values_are_named(cls: type, field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(**{field: value})


def test_from_discrete_mmsa_config_carries_shared_fields() -> None:
    discrete = MMSAConfig(ablation="no_klb", gamma=0.9, zs_dim=16, code_dim=8)
    cont = continuous_config_from(discrete)
    assert (cont.ablation, cont.gamma, cont.zs_dim, cont.code_dim) == ("no_klb", 0.9, 16, 8)
    assert cont.world_model == discrete.world_model
    assert not cont.obs_last_action  # the discrete agents' True is not carried over
    assert continuous_config_from(cont) is cont


def test_config_from_dict_round_trip_through_the_registry() -> None:
    d = {
        "env": "dummy:continuous",
        "algo": "mmsa_continuous",
        "algo_config": {"ablation": "no_gs", "world_model": {"deter_dim": 16}, "width": 32},
    }
    config = config_from_dict(d)
    assert isinstance(config.algo_config, MMSAContinuousConfig)
    assert config.algo_config.world_model == WorldModelConfig(deter_dim=16)
    assert config_from_dict(config_to_dict(config)) == config
    facmac = config_from_dict({"algo": "facmac", "algo_config": {"policy_delay": 3}})
    assert type(facmac.algo_config) is FACMACConfig
    with pytest.raises(ConfigError, match="algo_config.zs_dim"):
        config_from_dict({"algo": "facmac", "algo_config": {"zs_dim": 3}})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ablation", "no_mixer", "ablation='no_mixer' is not allowed; use one of none, no_wm"),
        ("zs_dim", 0, "zs_dim=0 must be a positive int"),
        ("code_dim", True, "code_dim=True must be a positive int"),
        ("encoder_lr", float("nan"), "encoder_lr=nan must be a positive number"),
        ("world_model_lr", True, "world_model_lr=True must be a positive number"),
        ("b_sale", -1.0, "b_sale=-1.0 must be a number >= 0"),
    ],
)
def test_discrete_and_continuous_mmsa_check_their_common_fields_alike(field, value, message):
    for cls in (MMSAConfig, MMSAContinuousConfig):
        with pytest.raises(ValueError, match=f"^{cls.__name__}.{message}"):
            cls(**{field: value})
    for cls in (MMSAConfig, MMSAContinuousConfig):
        with pytest.raises(TypeError, match=f"{cls.__name__}.world_model must be a"):
            cls(world_model={"horizon": 3})  # type: ignore[arg-type]


def test_ablated_world_model() -> None:
    for cls in (MMSAConfig, MMSAContinuousConfig):
        assert cls().ablated_world_model == cls().world_model
        assert cls(ablation="no_sale").ablated_world_model.use_sale is False
        assert cls(ablation="no_klb").ablated_world_model.kl_balance == 0.5
