"""The package's public surface: `mmsa_marl_core.__all__`, name for name, and what each name is."""

from __future__ import annotations

import importlib

import pytest

import mmsa_marl_core

# name: the qualified name of the object it is (None for the one constant)
PUBLIC = {
    "AlgoEntry": "AlgoEntry",
    "Batch": "Batch",
    "CheckpointError": "CheckpointError",
    "CheckpointMismatchError": "CheckpointMismatchError",
    "ConfigError": "ConfigError",
    "DEFAULT_ENV": None,
    "EpisodeBuffer": "EpisodeBuffer",
    "Episodes": "Episodes",
    "JsonlMetrics": "JsonlMetrics",
    "Learner": "Learner",
    "LinearSchedule": "LinearSchedule",
    "MetricsLogger": "MetricsLogger",
    "Mixer": "Mixer",
    "NonFiniteLossError": "NonFiniteLossError",
    "QLearner": "QLearner",
    "QLearnerConfig": "QLearnerConfig",
    "QMIX": "QMIX",
    "RNNAgent": "RNNAgent",
    "RunningMeanStd": "RunningMeanStd",
    "TrainConfig": "TrainConfig",
    "TrainResult": "TrainResult",
    "VDN": "VDN",
    "algo_names": "algo_names",
    "config_from_dict": "config_from_dict",
    "config_to_dict": "config_to_dict",
    "epsilon_greedy": "epsilon_greedy",
    "evaluate": "evaluate",
    "evaluate_policy": "evaluate_policy",
    "gather_actions": "gather_actions",
    "get_algo": "get_algo",
    "greedy": "greedy",
    "guarded_step": "guarded_step",
    "make_optimizer": "make_optimizer",
    "masked_argmax": "masked_argmax",
    "masked_mean": "masked_mean",
    "onehot_last_actions": "onehot_last_actions",
    "read_metrics": "read_metrics",
    "register_algo": "register_algo",
    "run_episodes": "run_episodes",
    "td_targets": "td_targets",
    "train": "train",
}


def test_all_is_exactly_the_public_names():
    assert sorted(mmsa_marl_core.__all__) == sorted(PUBLIC)
    assert len(set(mmsa_marl_core.__all__)) == len(mmsa_marl_core.__all__)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_each_public_name_resolves(name):
    obj = getattr(mmsa_marl_core, name)
    namespace: dict[str, object] = {}
    exec(f"from mmsa_marl_core import {name}", namespace)
    assert namespace[name] is obj
    if PUBLIC[name] is None:
        assert obj == "lbf:Foraging-5x5-2p-1f-coop-v3"
        return
    assert obj.__qualname__ == PUBLIC[name]
    # it is the object of the module that defines it, not a copy
    assert getattr(importlib.import_module(obj.__module__), PUBLIC[name]) is obj
