"""`TrainConfig`: every setting of a training run, with its default and a docstring, in one place.

`config_from_dict` builds it from plain data (YAML, JSON, CLI overrides) and rejects unknown keys
and wrong types by their dotted name (`algo_config.lr`); `algo_config` is validated against the
config class the algorithm registered (`register_algo(name, factory, config_cls)`).
`config_to_dict` is its inverse: `config_from_dict(config_to_dict(c)) == c`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Union

from ..ops.precision import PRECISIONS
from ..registry import get_algo

if TYPE_CHECKING:
    from mmsa_envs import EnvSpec

__all__ = [
    "TrainConfig",
    "ConfigError",
    "config_from_dict",
    "config_to_dict",
    "DEFAULT_ENV",
    "PRECISIONS",
    "UPDATE_CADENCES",
]

DEFAULT_ENV = "lbf:Foraging-5x5-2p-1f-coop-v3"
"""The embedded default task: a small cooperative LBF map QMIX learns in minutes on one CPU."""

UPDATE_CADENCES = ("auto", "episode", "step")
"""The values of `TrainConfig.update_every`."""


class ConfigError(ValueError):
    """A config key is unknown or its value has the wrong type or range."""


@dataclass(frozen=True)
class TrainConfig:
    """One training run: the task, the algorithm and the loop's schedule."""

    env: str = DEFAULT_ENV
    """Env id `backend:name` (see `mmsa envs`)."""
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments for `mmsa_envs.make`."""
    algo: str = "qmix"
    """Registered algorithm name (`qmix`, `vdn`, and any added with `register_algo`)."""
    algo_config: Any = None
    """Hyper-parameters of `algo` (an instance of its registered config class; None = defaults)."""
    steps: int = 200_000
    """Total env steps (real transitions) to train for."""
    seed: int = 0
    """Seed of the network initialisation, sampling, exploration and every env episode."""
    n_envs: int = 8
    """Episodes collected in parallel per iteration (synchronous batch, PyMARL-style)."""
    env_processes: bool = False
    """Run the envs in worker processes (worth it for slow envs) instead of in-process."""
    batch_size: int = 32
    """Episodes per gradient update."""
    buffer_size: int = 5000
    """Replay capacity in episodes."""
    updates_per_episode: float = 1.0
    """Gradient updates per collected episode (PyMARL: 1) under the `episode` cadence; fractions
    accumulate exactly."""
    update_every: str = "auto"
    """When the gradient updates run. `episode`: after each round of `n_envs` whole episodes,
    `updates_per_episode` per collected episode (PyMARL). `step`: after every vectorised env
    step of the collection, `updates_per_step` per env that stepped, interleaved with acting
    (TD3, FACMAC); the policy acts at the live env-step count, and the last round stops
    stepping once `steps` is reached (its cut episodes are stored as truncated). `auto`: `step`
    on envs with continuous actions, `episode` otherwise. Either way updates start once the
    buffer holds `batch_size` episodes."""
    updates_per_step: float = 1.0
    """Gradient updates per env step under the `step` cadence (TD3: 1); fractions accumulate
    exactly. Unused under the `episode` cadence."""
    log_every: int = 5_000
    """Write a `train` metrics line every this many env steps."""
    eval_every: int = 20_000
    """Greedy evaluation every this many env steps (and once at the end)."""
    eval_episodes: int = 32
    """Episodes per greedy evaluation."""
    checkpoint_every: int = 50_000
    """Checkpoint every this many env steps (and once at the end)."""
    keep_checkpoints: int = 3
    """How many of the latest checkpoints to keep."""
    max_nonfinite_updates: int = 10
    """Stop the run with an error once more updates than this had a NaN/inf loss or gradient."""
    precision: str = "fp32"
    """Arithmetic of the gradient updates: `fp32`, or `bf16`: the updates' passes without
    gradient (target networks, greedy action selection, world-model imagination) run under
    bfloat16 autocast, everything with gradient stays float32 (`mmsa_marl_core.ops.precision`).
    Acting and evaluation stay float32. Faster on GPUs and on CPUs with AVX512-BF16 or AMX;
    runs differ from fp32 ones, so compare algorithms at the same precision."""
    retain_freed_memory: bool = True
    """Keep freed host memory in the process (glibc `mallopt`,
    `mmsa_marl_core.training.host_memory`) instead of mapping large tensors afresh at every
    update: same results, MMSA's CPU update 5-10% faster. Process-wide; no effect off glibc or
    when `MALLOC_MMAP_THRESHOLD_` or `MALLOC_TRIM_THRESHOLD_` is set."""
    reproducible: bool = False
    """Pin the CPU kernel paths and threads so that this config gives the same numbers on any
    x86-64 CPU, not only on this machine (`mmsa_marl_core.training.reproducible`: ATen's default
    kernels, MKL's COMPATIBLE branch, one thread). The pins must be in place before torch
    loads: `mmsa train`, the flows and the DVC stages start a pinned process for such a run;
    `train` itself refuses to run unpinned. CPU only; slower (see the README's figure)."""

    def __post_init__(self) -> None:
        entry = get_algo(self.algo)
        if self.algo_config is None:
            object.__setattr__(self, "algo_config", entry.config_cls())
        elif not isinstance(self.algo_config, entry.config_cls):
            raise ConfigError(
                f"algo_config for algo={self.algo!r} must be a {entry.config_cls.__name__}, "
                f"got {type(self.algo_config).__name__}"
            )
        positive = (
            "steps",
            "n_envs",
            "batch_size",
            "buffer_size",
            "log_every",
            "eval_every",
            "eval_episodes",
            "checkpoint_every",
            "keep_checkpoints",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be >= 1")
        if not self.updates_per_episode >= 0:  # NaN too
            raise ConfigError(f"updates_per_episode={self.updates_per_episode!r} must be >= 0")
        if self.update_every not in UPDATE_CADENCES:
            raise ConfigError(
                f"update_every={self.update_every!r} is not allowed; use one of "
                f"{', '.join(UPDATE_CADENCES)}"
            )
        if not self.updates_per_step >= 0:  # NaN too
            raise ConfigError(f"updates_per_step={self.updates_per_step!r} must be >= 0")
        if self.max_nonfinite_updates < 0:
            raise ConfigError(f"max_nonfinite_updates={self.max_nonfinite_updates!r} must be >= 0")
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"batch_size={self.batch_size} must not exceed buffer_size={self.buffer_size}"
            )
        if self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be >= 0")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision={self.precision!r} is not allowed; use one of {', '.join(PRECISIONS)}"
            )

    def update_cadence(self, spec: EnvSpec) -> Literal["episode", "step"]:
        """`update_every` resolved for the env `spec`: `auto` is `step` where its actions are
        continuous, `episode` otherwise."""
        if self.update_every == "auto":
            return "step" if spec.action_kind == "continuous" else "episode"
        return "step" if self.update_every == "step" else "episode"


# ---------------------------------------------------------------------- from / to plain data
def config_from_dict(d: Mapping[str, Any]) -> TrainConfig:
    """Build a `TrainConfig` from plain data; missing keys take their defaults.

    Raises `ConfigError` naming the dotted key of any unknown key or wrong-typed value.
    """
    if not isinstance(d, Mapping):
        raise ConfigError(f"config must be a mapping, got {type(d).__name__}")
    data = dict(d)
    algo = data.get("algo", "qmix")
    if not isinstance(algo, str):
        raise ConfigError(f"config key 'algo': expected str, got {type(algo).__name__} {algo!r}")
    try:
        config_cls = get_algo(algo).config_cls
    except ValueError as err:
        raise ConfigError(f"config key 'algo': {err}") from None
    algo_config = data.get("algo_config")
    if algo_config is None or isinstance(algo_config, Mapping):
        data["algo_config"] = _build(config_cls, algo_config or {}, "algo_config.")
    return _build(TrainConfig, data, "")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as nested plain data (dicts, lists, numbers, strings)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        out[f.name] = _plain(getattr(config, f.name))
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"config key '{prefix.rstrip('.')}': expected a mapping, got {type(data).__name__}"
        )
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}'; allowed keys"
            f"{' under ' + repr(prefix.rstrip('.')) if prefix else ''}: {', '.join(sorted(known))}"
        )
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if name == "algo_config" and cls is TrainConfig:
            kwargs[name] = value  # already built against the algorithm's own config class
            continue
        kwargs[name] = _check(value, tp, prefix + name)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {err}") from None


def _check(value: Any, tp: Any, key: str) -> Any:
    """`value` converted to type `tp`, or ConfigError naming `key`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    def fail(expected: str) -> ConfigError:
        return ConfigError(
            f"config key '{key}': expected {expected}, got {type(value).__name__} {value!r}"
        )

    if tp is Any:
        return value
    if origin is Literal:
        if value not in args:
            raise ConfigError(
                f"config key '{key}': {value!r} is not allowed; use one of {list(args)}"
            )
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check(value, arg, key)
            except ConfigError:
                continue
        raise fail(" or ".join(_type_name(a) for a in args))
    if tp is bool:
        if not isinstance(value, bool):
            raise fail("bool")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("int")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail("float")
        if not math.isfinite(value):
            raise ConfigError(f"config key '{key}': {value!r} is not allowed; use a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise fail("str")
        return value
    if origin in (Mapping, dict, typing.Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise fail("a mapping")
        return dict(value)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise fail("a list")
        item = args[0] if args else Any
        return tuple(_check(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return _build(tp, value, key + ".")
    if isinstance(tp, type):
        if not isinstance(value, tp):
            raise fail(tp.__name__)
        return value
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))
