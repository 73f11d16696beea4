"""mmsa_envs: multi-agent environments behind one numpy contract.

>>> from mmsa_envs import make
>>> env = make("dummy")
>>> step = env.reset(seed=0)
>>> step.obs.shape, step.state.shape, step.avail_actions.shape
((3, 7), (11,), (3, 6))
"""

from ._checks import check_env
from ._core import ActionKind, EntityLayout, EnvSpec, MultiAgentEnv, Step
from ._dummy import DummyEnv
from ._registry import MissingBackendError, UnknownEnvError, backends, make, registered
from ._seeding import episode_seed
from ._smax_vector import SMAXVectorEnv
from ._vector import VecStep, VectorEnv
from ._vector_factory import make_vector_env

__all__ = [
    "ActionKind",
    "DummyEnv",
    "EntityLayout",
    "EnvSpec",
    "MissingBackendError",
    "MultiAgentEnv",
    "SMAXVectorEnv",
    "Step",
    "UnknownEnvError",
    "VecStep",
    "VectorEnv",
    "backends",
    "check_env",
    "episode_seed",
    "make_vector_env",
    "make",
    "registered",
]
__version__ = "0.1.0"
