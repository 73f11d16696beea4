from __future__ import annotations

from dataclasses import dataclass

import pytest

from mmsa_marl_core import QLearner, QLearnerConfig, algo_names, get_algo, register_algo


def test_builtin_algorithms_are_registered(dummy_spec):
    assert {"qmix", "vdn"} <= set(algo_names())
    entry = get_algo("vdn")
    assert entry.config_cls is QLearnerConfig
    learner = entry.factory(dummy_spec, QLearnerConfig(agent_hidden=8), "cpu")
    assert isinstance(learner, QLearner) and type(learner.mixer).__name__ == "VDN"


def test_unknown_algo_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown algo 'qmx'.*qmix"):
        get_algo("qmx")


def test_register_a_new_algorithm():
    @dataclass(frozen=True)
    class ToyConfig:
        width: int = 3
        """A documented field."""

    register_algo("toy-test", lambda spec, cfg, device: None, ToyConfig)  # type: ignore[arg-type,return-value]
    assert "toy-test" in algo_names() and get_algo("toy-test").config_cls is ToyConfig
    with pytest.raises(TypeError, match="dataclass"):
        register_algo("bad", lambda *a: None, dict)  # type: ignore[arg-type,return-value]
