"""Pins the public surface: a change here is an API change (CHANGELOG + version)."""

from __future__ import annotations

import mmsa_marl_core

# Names this engineer's modules export; other modules of the package may add more.
CORE = {
    "AlgoEntry", "Batch", "CheckpointError", "CheckpointMismatchError", "ConfigError",
    "DEFAULT_ENV", "EpisodeBuffer", "Episodes", "JsonlMetrics", "LinearSchedule", "Learner",
    "MetricsLogger", "Mixer", "NonFiniteLossError", "QLearner", "QLearnerConfig", "QMIX",
    "RNNAgent", "RunningMeanStd", "TrainConfig", "TrainResult", "VDN", "algo_names",
    "config_from_dict", "config_to_dict", "epsilon_greedy", "evaluate", "evaluate_policy",
    "gather_actions", "get_algo", "greedy", "guarded_step", "make_optimizer", "masked_argmax",
    "masked_mean", "onehot_last_actions", "read_metrics", "register_algo", "run_episodes",
    "td_targets", "train",
}  # fmt: skip


def test_public_surface():
    exported = set(mmsa_marl_core.__all__)
    assert CORE <= exported, sorted(CORE - exported)
    for name in exported:
        assert hasattr(mmsa_marl_core, name), name
