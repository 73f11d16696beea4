"""mmsa_marl_core: value-based cooperative MARL — episode buffer, agents, mixers, QMIX/VDN, the
`Learner` protocol with an algorithm registry, and a resumable training loop.

>>> from mmsa_marl_core import QMIX
>>> import torch
>>> QMIX(n_agents=3, state_dim=11)(torch.zeros(5, 4, 3), torch.zeros(5, 4, 11)).shape
torch.Size([5, 4])
"""

from .agent import LinearSchedule, RNNAgent, epsilon_greedy, greedy, onehot_last_actions
from .batch import Batch
from .buffer import EpisodeBuffer
from .learner import AlgoEntry, Learner, algo_names, get_algo, register_algo
from .mixers import QMIX, VDN, Mixer
from .optim import RunningMeanStd, guarded_step, make_optimizer
from .q_learner import QLearner, QLearnerConfig
from .td import gather_actions, masked_argmax, masked_mean, td_targets

__all__ = [
    "AlgoEntry",
    "Batch",
    "EpisodeBuffer",
    "LinearSchedule",
    "Learner",
    "Mixer",
    "QLearner",
    "QLearnerConfig",
    "QMIX",
    "RNNAgent",
    "RunningMeanStd",
    "VDN",
    "algo_names",
    "epsilon_greedy",
    "gather_actions",
    "get_algo",
    "greedy",
    "guarded_step",
    "make_optimizer",
    "masked_argmax",
    "masked_mean",
    "onehot_last_actions",
    "register_algo",
    "td_targets",
]
__version__ = "0.1.0"
