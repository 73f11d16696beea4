"""The ``facmac`` baseline (docs/design.md §4.2, §4.8).

FACMAC (Peng et al. 2021) is ``MMSAContinuousLearner`` given the base ``FACMACConfig``: a plain
recurrent critic ``Q_i = MLP([x_i, h_i, a_i])``, a plain actor ``tanh(MLP([x_i, h_i]))``, QMIX on
the global state, no SALE and no world model. Same code as MMSA, the parts switched off, so the
comparison differs only where it should (docs/design.md §4.8); its update's FACMAC/TD3 pieces
are in ``continuous``::

    mmsa train --algo facmac --env mamujoco:HalfCheetah-2x3
"""

from __future__ import annotations

import torch

from mmsa_envs import EnvSpec

from ..registry import Learner, register_algo
from .continuous_config import FACMACConfig
from .mmsa_continuous import MMSAContinuousLearner

__all__ = ["FACMACConfig", "build_facmac"]


def build_facmac(spec: EnvSpec, config: FACMACConfig, device: torch.device) -> Learner:
    """The ``facmac`` factory: the continuous learner without SALE and world model."""
    if type(config) is not FACMACConfig:
        raise TypeError(f"facmac needs a FACMACConfig, got {type(config).__name__}")
    return MMSAContinuousLearner(spec, config, device)


register_algo("facmac", factory=build_facmac, config_cls=FACMACConfig)
