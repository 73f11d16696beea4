from __future__ import annotations

import dataclasses
import typing

import pytest

from mmsa_marl_core import (
    ConfigError,
    QLearnerConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
)


def test_defaults_and_round_trip():
    c = TrainConfig()
    assert isinstance(c.algo_config, QLearnerConfig)
    d = config_to_dict(c)
    assert d["algo_config"]["gamma"] == 0.99
    assert config_from_dict(d) == c
    custom = config_from_dict(
        {"env": "dummy", "steps": 10, "algo": "vdn", "algo_config": {"lr": 1}}
    )
    assert custom.algo_config.lr == 1.0 and isinstance(custom.algo_config.lr, float)
    assert config_from_dict(config_to_dict(custom)) == custom


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"stepz": 1}, "unknown config key 'stepz'"),
        ({"steps": "10"}, "config key 'steps': expected int, got str"),
        ({"steps": True}, "config key 'steps': expected int, got bool"),
        ({"env_processes": 1}, "config key 'env_processes': expected bool"),
        ({"algo_config": {"lr": "fast"}}, "config key 'algo_config.lr': expected float"),
        ({"algo_config": {"hiden": 3}}, "unknown config key 'algo_config.hiden'"),
        ({"algo_config": {"optimizer": "sgd"}}, "'algo_config.optimizer': 'sgd' is not allowed"),
        ({"algo": "qmx"}, "config key 'algo': unknown algo 'qmx'"),
        ({"env_kwargs": 3}, "config key 'env_kwargs': expected a mapping"),
        ({"algo_config": 3}, "algo_config"),
        ({"steps": 0}, "steps=0 must be >= 1"),
        ({"batch_size": 64, "buffer_size": 32}, "batch_size=64 must not exceed buffer_size=32"),
        ({"algo_config": {"gamma": 1.5}}, "QLearnerConfig.gamma=1.5"),
    ],
)
def test_bad_config_is_rejected_by_name(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", "\\(")):
        config_from_dict(data)


def test_every_field_has_a_docstring():
    import inspect

    for cls in (TrainConfig, QLearnerConfig):
        source = inspect.getsource(cls)
        for f in dataclasses.fields(cls):
            after = source.split(f"\n    {f.name}:", 1)[1].split("\n", 2)[1]
            assert after.strip().startswith('"""'), f"{cls.__name__}.{f.name} has no docstring"
        assert typing.get_type_hints(cls)  # every field is typed
