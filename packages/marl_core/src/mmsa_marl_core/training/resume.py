"""Exact-resume state of a training run: the loop's counters, the fingerprint a checkpoint must
match, and the checkpoint payload that saves and restores everything else.

`train` checkpoints between episodes, so an exact resume needs only: models and optimisers (the
learner's `state_dict`), the episode buffer, every RNG state (numpy Generator, Python `random`,
torch CPU and CUDA), the envs' per-episode seed counters, the loop's `Progress` and the byte
offset of `metrics.jsonl`. `restore_payload` puts all of it back, so a resumed run ends with the
same parameters, bit for bit on CPU, as one that was never interrupted.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mmsa_envs import EnvSpec

from ..data.buffer import EpisodeBuffer
from ..registry import Learner
from .collect import AnyVectorEnv
from .config import TrainConfig, config_to_dict
from .host_memory import resident_memory_mb

__all__ = [
    "Progress",
    "comparable_fingerprint",
    "run_fingerprint",
    "checkpoint_payload",
    "restore_payload",
    "PAYLOAD_KEYS",
]

PAYLOAD_KEYS = (
    "env_steps",
    "fingerprint",
    "progress",
    "learner",
    "buffer",
    "rng",
    "env_counters",
    "eval_env_counters",
    "metrics_offset",
)
"""What a resume reads from a checkpoint; one that lacks any of them is skipped as incomplete."""


@dataclass
class Progress:
    """Counters of the loop; all of it goes into every checkpoint."""

    env_steps: int = 0
    episodes: int = 0
    updates: int = 0
    dropped_episodes: int = 0
    update_credit: float = 0.0
    next_log: int = 0
    next_eval: int = 0
    next_checkpoint: int = 0
    wall_s: float = 0.0
    # since the last train line:
    returns: list[float] = dataclasses.field(default_factory=list)
    metric_sums: dict[str, float] = dataclasses.field(default_factory=dict)
    metric_count: int = 0
    metric_counts: dict[str, int] = dataclasses.field(default_factory=dict)
    """Updates that reported each metric (a diagnostic may come every k-th update only); a
    checkpoint written before it existed averages every metric over `metric_count`."""

    def train_line(self, learner: Learner, buffer: EpisodeBuffer) -> dict[str, float]:
        """The next `train` metrics line: each metric's mean over the updates that reported it
        since the last line, the returns of the episodes collected since then, exploration,
        skipped updates, dropped episodes, env steps per second and memory."""
        line: dict[str, float] = {
            name: total / self.metric_counts.get(name, self.metric_count)
            for name, total in self.metric_sums.items()
        }
        if self.returns:
            line["return_mean"] = float(np.mean(self.returns))
            line["return_std"] = float(np.std(self.returns))
        line["n_episodes"] = float(len(self.returns))
        line["exploration"] = learner.exploration_rate(self.env_steps)
        line["nonfinite_updates"] = float(learner.nonfinite_updates)
        line["dropped_episodes"] = float(self.dropped_episodes)
        line["steps_per_s"] = self.env_steps / max(self.wall_s, 1e-9)
        line["buffer_mb"] = buffer.nbytes_filled / 2**20  # what the replay adds to rss_mb
        line |= resident_memory_mb()  # measured, like wall_s: differs between identical runs
        return line


EXECUTION_KEYS = frozenset({"cuda_graphs"})
"""`algo_config` keys that choose how the same computation runs, not what it computes: like the
device and the precision, they may change between a checkpoint and its resume, and a checkpoint
written before such a key existed still matches."""


def comparable_fingerprint(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """`fingerprint` without the `EXECUTION_KEYS` of its `algo_config`: the part a resume
    compares. `run_fingerprint` applies it, and `train` applies it to a checkpoint's stored
    fingerprint too, so a checkpoint that recorded such a key still matches."""
    out = dict(fingerprint)
    if isinstance(out.get("algo_config"), Mapping):
        out["algo_config"] = {
            k: v for k, v in out["algo_config"].items() if k not in EXECUTION_KEYS
        }
    return out


def run_fingerprint(config: TrainConfig, spec: EnvSpec) -> dict[str, Any]:
    """What must match for a checkpoint to continue this run (the step budget may grow).

    The update cadence enters as resolved for `spec` (`auto` and what it stands for match), and
    only where it is `step` (with `updates_per_step`): an episode-cadence run has the
    fingerprint it had before the cadence existed, so its older checkpoints still continue."""
    cadence: dict[str, Any] = {}
    if config.update_cadence(spec) == "step":
        cadence = {"update_every": "step", "updates_per_step": config.updates_per_step}
    return comparable_fingerprint(
        {
            "env": config.env,
            "env_kwargs": dict(config.env_kwargs),
            "algo": config.algo,
            "algo_config": config_to_dict(config.algo_config),
            "seed": config.seed,
            "n_envs": config.n_envs,
            "batch_size": config.batch_size,
            "buffer_size": config.buffer_size,
            "updates_per_episode": config.updates_per_episode,
            **cadence,
            "env_spec": {
                k: getattr(spec, k)
                for k in (
                    "n_agents",
                    "obs_dim",
                    "state_dim",
                    "action_kind",
                    "n_actions",
                    "episode_limit",
                )
            },  # fmt: skip
        }
    )


def checkpoint_payload(
    prog: Progress,
    fingerprint: dict[str, Any],
    config: TrainConfig,
    learner: Learner,
    buffer: EpisodeBuffer,
    rng: np.random.Generator,
    envs: AnyVectorEnv,
    eval_envs: AnyVectorEnv,
    metrics_offset: int,
) -> dict[str, Any]:
    """Everything an exact resume needs, as a `torch.save`-able dict (see the module docstring)."""
    rng_states: dict[str, Any] = {
        "numpy": rng.bit_generator.state,
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        rng_states["torch_cuda"] = torch.cuda.get_rng_state_all()
    return {
        "env_steps": prog.env_steps,
        "fingerprint": fingerprint,
        "config": config_to_dict(config) | {"algo": config.algo},
        "progress": dataclasses.asdict(prog),
        "learner": learner.state_dict(),
        "buffer": buffer.state_dict(),
        "rng": rng_states,
        "env_counters": torch.from_numpy(envs.episode_counters),
        "eval_env_counters": torch.from_numpy(eval_envs.episode_counters),
        "metrics_offset": metrics_offset,
    }


def restore_payload(
    payload: dict[str, Any],
    learner: Learner,
    buffer: EpisodeBuffer,
    rng: np.random.Generator,
    envs: AnyVectorEnv,
    eval_envs: AnyVectorEnv,
    device: torch.device,
) -> Progress:
    """Load a `checkpoint_payload` back into the run's parts (in place); returns its counters."""
    learner.load_state_dict(_to_device(payload["learner"], device))
    buffer.load_state_dict(payload["buffer"])
    rng.bit_generator.state = payload["rng"]["numpy"]
    random.setstate(_as_tuple(payload["rng"]["python"]))
    torch.set_rng_state(payload["rng"]["torch"])
    if "torch_cuda" in payload["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["rng"]["torch_cuda"])
    envs.episode_counters = payload["env_counters"].numpy()
    eval_envs.episode_counters = payload["eval_env_counters"].numpy()
    return Progress(**payload["progress"])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, list | tuple) else x


def _to_device(tree: Any, device: torch.device) -> Any:
    """Model tensors go to the learner's device; optimiser `step` counters stay as they are."""
    if isinstance(tree, torch.Tensor):
        return tree.to(device) if tree.dim() > 0 else tree
    if isinstance(tree, dict):
        return {k: _to_device(v, device) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_to_device(v, device) for v in tree]
    return tree
