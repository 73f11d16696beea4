"""mmsa_marl_core: value-based cooperative MARL — episode buffer, agents, mixers, QMIX/VDN, the
`Learner` protocol with an algorithm registry, and a resumable training loop.

>>> from mmsa_marl_core import QMIX
>>> import torch
>>> QMIX(n_agents=3, state_dim=11)(torch.zeros(5, 4, 3), torch.zeros(5, 4, 11)).shape
torch.Size([5, 4])
"""

from .data.batch import Batch
from .data.buffer import EpisodeBuffer
from .learners.q_learner import QLearner, QLearnerConfig
from .networks.agent import LinearSchedule, RNNAgent, epsilon_greedy, greedy, onehot_last_actions
from .networks.mixers import QMIX, VDN, Mixer
from .ops.optim import RunningMeanStd, guarded_step, make_optimizer
from .ops.td import gather_actions, masked_argmax, masked_mean, td_targets
from .registry import AlgoEntry, Learner, algo_names, get_algo, register_algo
from .training.checkpoint import CheckpointError, CheckpointMismatchError
from .training.collect import Episodes, run_episodes
from .training.config import DEFAULT_ENV, ConfigError, TrainConfig, config_from_dict, config_to_dict
from .training.evaluate import evaluate
from .training.metrics import JsonlMetrics, MetricsLogger, read_metrics
from .training.train import NonFiniteLossError, TrainResult, evaluate_policy, train

__all__ = [
    "AlgoEntry",
    "Batch",
    "CheckpointError",
    "CheckpointMismatchError",
    "ConfigError",
    "DEFAULT_ENV",
    "EpisodeBuffer",
    "Episodes",
    "JsonlMetrics",
    "Learner",
    "LinearSchedule",
    "MetricsLogger",
    "Mixer",
    "NonFiniteLossError",
    "QLearner",
    "QLearnerConfig",
    "QMIX",
    "RNNAgent",
    "RunningMeanStd",
    "TrainConfig",
    "TrainResult",
    "VDN",
    "algo_names",
    "config_from_dict",
    "config_to_dict",
    "epsilon_greedy",
    "evaluate",
    "evaluate_policy",
    "gather_actions",
    "get_algo",
    "greedy",
    "guarded_step",
    "make_optimizer",
    "masked_argmax",
    "masked_mean",
    "onehot_last_actions",
    "read_metrics",
    "register_algo",
    "run_episodes",
    "td_targets",
    "train",
]
__version__ = "0.1.0"
