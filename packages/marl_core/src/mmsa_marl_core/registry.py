"""The `Learner` protocol the training loop drives, and the algorithm registry.

A learner owns its networks, optimiser and exploration; the loop owns envs, buffer, RNGs,
evaluation and checkpoints. The loop talks to a learner only through this protocol, so a new
algorithm (MMSA, FACMAC-style) plugs in by registering a factory — the loop never changes::

    learner = get_algo(config.algo).factory(env.spec, config.algo_config, device)
    for iteration in ...:
        state = learner.initial_state(n_envs)                 # episode start: recurrent state 0
        step = envs.reset()
        while not all episodes done:
            actions, state = learner.act(step.obs, step.avail_actions, state,
                                         env_steps=env_steps, explore=True, rng=rng)
            step = envs.step(actions)                         # numpy in, numpy out
        buffer.add_episodes(...)
        for _ in range(n_updates):
            metrics = learner.update(buffer.sample(batch_size, rng, device=device))
        if learner.nonfinite_updates > max_nonfinite_updates: stop with an error
        checkpoint["learner"] = learner.state_dict()          # exact resume
        learner.load_state_dict(checkpoint["learner"])

Rules a learner follows so that resume is exact and devices stay the caller's choice:
- `act` takes and returns numpy; all its randomness comes from the `rng` it is given.
- `update` uses no global RNG other than torch's (the loop saves and restores torch's RNG state).
- `state_dict()` holds tensors, numbers, strings and nested dicts/lists only (`weights_only` load),
  including optimiser state and every counter (updates done, target-update phase, normalisers).
- A non-finite loss or gradient skips the optimiser step and increments `nonfinite_updates`.

Register an algorithm (at import of its module) with::

    register_algo("qmix", factory=_qmix, config_cls=QLearnerConfig)

`factory(spec: EnvSpec, algo_config: config_cls instance, device: torch.device) -> Learner`.
One name can have a learner per action kind, registered by different modules with the same
config class; the entry's factory then picks by `spec.action_kind` (``mmsa``: the discrete
`MMSALearner`, the continuous `MMSAContinuousLearner`)::

    register_algo("mmsa", MMSALearner.build, MMSAConfig, action_kind="discrete")
    register_algo("mmsa", build_from_mmsa_config, MMSAConfig, action_kind="continuous")

The registry imports the project's algorithm modules lazily (`_ALGO_MODULES`), so
`get_algo("mmsa")` works without the caller importing the module first. This module imports
no other part of the package than `data`: the loop (`training`) and the algorithms
(`learners`) both import it, and it imports neither.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, is_dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from mmsa_envs import ActionKind, EnvSpec

from .data.batch import Batch

__all__ = ["Learner", "AlgoEntry", "register_algo", "get_algo", "algo_names"]


@runtime_checkable
class Learner(Protocol):
    """What the training loop needs from an algorithm (see the module docstring)."""

    nonfinite_updates: int
    """Updates skipped because the loss or gradient norm was NaN/inf (never reset)."""

    def initial_state(self, batch_size: int) -> Any:
        """Acting state of `batch_size` envs at episode start (e.g. zero GRU state, no last
        action). Opaque to the loop; never checkpointed (checkpoints fall between episodes)."""
        ...

    def act(
        self,
        obs: np.ndarray,
        avail_actions: np.ndarray,
        state: Any,
        *,
        env_steps: int,
        explore: bool,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, Any]:
        """One decentralised step for B envs: `obs [B, N, O]` f32, `avail_actions [B, N, A]` bool
        -> actions `[B, N]` int64 (discrete) or `[B, N, A]` f32 (continuous), next state.
        `explore=False` is the greedy evaluation policy; `env_steps` drives annealing."""
        ...

    def exploration_rate(self, env_steps: int) -> float:
        """Current exploration level for logging (epsilon, or the noise scale)."""
        ...

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient update on a batch (already on the learner's device) -> metrics."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything for exact resume (models, target models, optimisers, counters)."""
        ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Inverse of `state_dict`; raises ValueError naming the mismatch on wrong shapes."""
        ...


LearnerFactory = Callable[[EnvSpec, Any, torch.device], Learner]


@dataclass(frozen=True)
class AlgoEntry:
    """A registered algorithm."""

    name: str
    factory: LearnerFactory
    """`factory(spec, algo_config, device) -> Learner`."""
    config_cls: type
    """Frozen dataclass of the algorithm's hyper-parameters (every default documented)."""
    action_kinds: tuple[str, ...] = ()
    """The action kinds with a learner of their own (`register_algo(..., action_kind=...)`),
    which `factory` chooses from; empty when one factory serves every env."""


_REGISTRY: dict[str, AlgoEntry] = {}
_BY_ACTION_KIND: dict[str, dict[str, LearnerFactory]] = {}

# Modules that register algorithms when imported. Missing ones are skipped (they arrive in
# later versions); any other import error propagates.
_ALGO_MODULES = (
    "mmsa_marl_core.learners.q_learner",
    "mmsa_marl_core.learners.hpn",
    "mmsa_marl_core.learners.mmsa_learner",
    "mmsa_marl_core.learners.facmac",
    "mmsa_marl_core.learners.mmsa_continuous",
)
_loaded = False


def register_algo(
    name: str,
    factory: LearnerFactory,
    config_cls: type,
    *,
    action_kind: ActionKind | None = None,
) -> None:
    """Make `name` available to `TrainConfig.algo`. Re-registering the same name replaces it.

    With `action_kind` ("discrete" or "continuous"), `factory` builds `name`'s learner for envs
    of that kind only, next to the other kind's (same `config_cls`); the entry's `factory`
    dispatches on `spec.action_kind` and refuses a config that is not a `config_cls`. Without
    it, `factory` serves every env and replaces any per-kind ones.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"algorithm name must be a non-empty str, got {name!r}")
    if not (isinstance(config_cls, type) and is_dataclass(config_cls)):
        raise TypeError(f"config_cls of {name!r} must be a dataclass type, got {config_cls!r}")
    if action_kind is None:
        _BY_ACTION_KIND.pop(name, None)
        _REGISTRY[name] = AlgoEntry(name=name, factory=factory, config_cls=config_cls)
        return
    if action_kind not in ("discrete", "continuous"):
        raise ValueError(
            f"action_kind of {name!r} must be 'discrete' or 'continuous', got {action_kind!r}"
        )
    factories = _BY_ACTION_KIND.setdefault(name, {})
    if factories and _REGISTRY[name].config_cls is not config_cls:
        raise ValueError(
            f"{name!r} is registered with config_cls {_REGISTRY[name].config_cls.__name__}; its "
            f"{action_kind} learner must take the same, not {config_cls.__name__}"
        )
    factories[action_kind] = factory
    _REGISTRY[name] = AlgoEntry(
        name=name,
        factory=_by_action_kind(name, config_cls, factories),
        config_cls=config_cls,
        action_kinds=tuple(sorted(factories)),
    )


def _by_action_kind(
    name: str, config_cls: type, factories: dict[str, LearnerFactory]
) -> LearnerFactory:
    """The factory of a name registered per action kind: the one for `spec.action_kind`."""

    def factory(spec: EnvSpec, config: Any, device: torch.device) -> Learner:
        if not isinstance(config, config_cls):
            raise TypeError(f"{name} needs a {config_cls.__name__}, got {type(config).__name__}")
        if spec.action_kind not in factories:
            raise ValueError(
                f"{name} has no learner for {spec.action_kind} actions (env {spec.id!r}); "
                f"it has one for {' and '.join(sorted(factories))} actions"
            )
        return factories[spec.action_kind](spec, config, device)

    return factory


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _ALGO_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise


def algo_names() -> list[str]:
    """Every registered algorithm name."""
    _load_builtin()
    return sorted(_REGISTRY)


def get_algo(name: str) -> AlgoEntry:
    """The registered algorithm `name`; ValueError listing the known names otherwise."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"unknown algo {name!r}; registered algorithms: {', '.join(algo_names())}")
    return _REGISTRY[name]
