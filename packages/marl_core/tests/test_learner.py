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


def test_one_name_with_a_learner_per_action_kind():
    from mmsa_envs import make

    @dataclass(frozen=True)
    class KindConfig:
        width: int = 3
        """A documented field."""

    built = []
    for kind in ("discrete", "continuous"):
        register_algo(
            "kinds-test",
            lambda spec, cfg, device, kind=kind: built.append(kind),  # type: ignore[misc]
            KindConfig,
            action_kind=kind,
        )
    entry = get_algo("kinds-test")
    assert entry.action_kinds == ("continuous", "discrete") and entry.config_cls is KindConfig
    entry.factory(make("dummy").spec, KindConfig(), "cpu")  # type: ignore[arg-type]
    entry.factory(make("dummy:continuous").spec, KindConfig(), "cpu")  # type: ignore[arg-type]
    assert built == ["discrete", "continuous"]
    with pytest.raises(TypeError, match="kinds-test needs a KindConfig, got QLearnerConfig"):
        entry.factory(make("dummy").spec, QLearnerConfig(), "cpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must take the same"):
        register_algo("kinds-test", lambda *a: None, QLearnerConfig, action_kind="discrete")  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="action_kind"):
        register_algo("kinds-test", lambda *a: None, KindConfig, action_kind="hybrid")  # type: ignore[arg-type]

    register_algo("kinds-test-one", lambda *a: None, KindConfig, action_kind="discrete")  # type: ignore[arg-type,return-value]
    spec = make("dummy:continuous").spec
    with pytest.raises(ValueError, match="no learner for continuous actions.*one for discrete"):
        get_algo("kinds-test-one").factory(spec, KindConfig(), "cpu")  # type: ignore[arg-type]
    # registering without a kind replaces the per-kind learners
    register_algo("kinds-test", lambda *a: None, KindConfig)  # type: ignore[arg-type,return-value]
    assert get_algo("kinds-test").action_kinds == ()


def test_mmsa_is_registered_per_action_kind():
    from mmsa_marl_core.learners.mmsa_config import MMSAConfig

    entry = get_algo("mmsa")
    assert entry.config_cls is MMSAConfig and entry.action_kinds == ("continuous", "discrete")
