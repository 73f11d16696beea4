"""Datasets of whole episodes (warm-up data, evaluation sets, random baselines) saved as `.npz`.

`collect_episodes(env_id, episodes=E, seed=s, policy=...)` plays E episodes, episode `e` reset with
`mmsa_envs.episode_seed(s, 0, e)` (the seeding scheme the training loop uses), and returns padded,
episode-major arrays (`T` = the env's episode limit):

| key | shape | meaning |
|---|---|---|
| `obs` | `[E, T+1, N, O]` f32 | row `t` = observation before action `t`; row `len` = final one |
| `state` | `[E, T+1, S]` f32 | global state, same rows |
| `avail_actions` | `[E, T+1, N, A]` bool | available actions, same rows |
| `action` | `[E, T, N]` int64 or `[E, T, N, A]` f32 | joint action taken at `t` |
| `reward` | `[E, T]` f32 | team reward after action `t` |
| `terminated` | `[E, T]` bool | true end (not a time limit) after action `t` |
| `mask` | `[E, T]` bool | a real transition happens at `t` |
| `episode_return`, `episode_length` | `[E]` | sum of rewards, number of steps |
| `won` | `[E]` bool | `info["battle_won"]` at the end (all false where the env has no win flag) |
| `meta` | `()` str | JSON: env id, env spec, seed, policy name, package versions |

A policy is any callable `(obs [N, O], avail_actions [N, A], rng) -> actions`; `random_policy`
samples uniformly among the available actions (discrete) or inside the action bounds.
`collect_from_run(run_dir, ...)` plays the policy of a trained run's checkpoint instead (greedy,
or exploring as in training), batched over a `VectorEnv` with `mmsa_marl_core.run_episodes`, and
returns the same arrays.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Policy",
    "collect_episodes",
    "collect_from_run",
    "load_dataset",
    "random_policy",
    "save_dataset",
]

Policy = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]


def random_policy(spec: Any) -> Policy:
    """Uniform random actions for `spec` (an `mmsa_envs.EnvSpec`), respecting the action mask."""
    if spec.discrete:

        def act(obs: np.ndarray, avail: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            # Gumbel-max over the available actions: one vectorised uniform draw per agent.
            noise = rng.random(avail.shape)
            return np.where(avail, noise, -1.0).argmax(axis=-1).astype(np.int64)

        return act
    low = np.asarray(spec.action_low, dtype=np.float32)
    high = np.asarray(spec.action_high, dtype=np.float32)

    def act_continuous(obs: np.ndarray, avail: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = rng.random((spec.n_agents, spec.n_actions), dtype=np.float32)
        return (low + u * (high - low)).astype(np.float32)

    return act_continuous


def collect_episodes(
    env_id: str,
    *,
    episodes: int,
    seed: int = 0,
    policy: Policy | None = None,
    policy_name: str = "random",
    env_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Play `episodes` episodes of `env_id` with `policy` (random by default); see module doc."""
    from mmsa_envs import episode_seed, make

    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be >= 1")
    if seed < 0:
        raise ValueError(f"seed={seed} must be >= 0")
    env = make(env_id, **dict(env_kwargs or {}))
    try:
        spec = env.spec
        act = policy or random_policy(spec)
        rng = np.random.default_rng(seed)
        n, o, s, a, limit = (
            spec.n_agents,
            spec.obs_dim,
            spec.state_dim,
            spec.n_actions,
            spec.episode_limit,
        )
        data = {
            "obs": np.zeros((episodes, limit + 1, n, o), np.float32),
            "state": np.zeros((episodes, limit + 1, s), np.float32),
            "avail_actions": np.zeros((episodes, limit + 1, n, a), bool),
            "action": np.zeros((episodes, limit, n), np.int64)
            if spec.discrete
            else np.zeros((episodes, limit, n, a), np.float32),
            "reward": np.zeros((episodes, limit), np.float32),
            "terminated": np.zeros((episodes, limit), bool),
            "mask": np.zeros((episodes, limit), bool),
            "episode_return": np.zeros(episodes, np.float64),
            "episode_length": np.zeros(episodes, np.int64),
            "won": np.zeros(episodes, bool),
        }
        for e in range(episodes):
            step = env.reset(seed=episode_seed(seed, 0, e))
            t = 0
            while True:
                data["obs"][e, t], data["state"][e, t] = step.obs, step.state
                data["avail_actions"][e, t] = step.avail_actions
                if step.done or t == limit:
                    break
                actions = act(step.obs, step.avail_actions, rng)
                step = env.step(actions)
                data["action"][e, t], data["reward"][e, t] = actions, step.reward
                data["terminated"][e, t], data["mask"][e, t] = step.terminated, True
                data["episode_return"][e] += step.reward
                t += 1
            data["episode_length"][e] = t
            data["won"][e] = bool(step.info.get("battle_won", False))
    finally:
        env.close()
    meta = {
        "env": env_id,
        "env_kwargs": dict(env_kwargs or {}),
        "env_spec": _jsonable(dataclasses.asdict(spec)),
        "seed": seed,
        "episodes": episodes,
        "policy": policy_name,
        "versions": {**dict(spec.backend_versions), **_versions("mmsa-envs", "numpy")},
    }
    data["meta"] = np.array(json.dumps(meta))
    return data


def collect_from_run(
    run_dir: Path,
    *,
    episodes: int,
    seed: int = 0,
    explore: bool = False,
    checkpoint: Path | None = None,
    device: str = "cpu",
    n_envs: int = 8,
) -> dict[str, np.ndarray]:
    """Play `episodes` episodes with the policy of a run's checkpoint (default: its latest).

    `explore=False` acts greedily; `explore=True` acts as during training at the checkpoint's
    env step (epsilon-greedy or action noise). Env episodes are seeded from `seed` (VectorEnv's
    per-episode seeds), so choose a seed other than the run's to get unseen episodes.
    """
    import torch

    from mmsa_envs import VectorEnv
    from mmsa_marl_core import get_algo, run_episodes
    from mmsa_marl_core.training.evaluate import run_checkpoint

    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be >= 1")
    config, checkpoint, payload = run_checkpoint(run_dir, checkpoint, purpose="play")
    rng = np.random.default_rng(seed)
    parts = []
    with VectorEnv(
        config.env,
        min(n_envs, episodes),
        seed=seed,
        env_kwargs=config.env_kwargs,
        processes=False,
    ) as envs:
        learner = get_algo(config.algo).factory(envs.spec, config.algo_config, torch.device(device))
        learner.load_state_dict(payload["learner"])
        spec, got = envs.spec, 0
        while got < episodes:
            batch = run_episodes(
                envs, learner, explore=explore, env_steps=int(payload["env_steps"]), rng=rng
            )
            parts.append(batch)
            got += len(batch.lengths)

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])[:episodes]

    lengths = cat("lengths")
    data = {
        "obs": cat("obs"),
        "state": cat("state"),
        "avail_actions": cat("avail_actions"),
        "action": cat("action"),
        "reward": cat("reward"),
        "terminated": cat("terminated"),
        "mask": np.arange(spec.episode_limit)[None, :] < lengths[:, None],
        "episode_return": cat("reward").sum(axis=1).astype(np.float64),
        "episode_length": lengths,
        "won": cat("won"),
    }
    info = {
        "env": config.env,
        "env_kwargs": dict(config.env_kwargs),
        "env_spec": _jsonable(dataclasses.asdict(spec)),
        "seed": seed,
        "episodes": episodes,
        "policy": f"{'exploring' if explore else 'greedy'} policy of {run_dir} ({checkpoint})",
        "versions": {**dict(spec.backend_versions), **_versions("mmsa-envs", "mmsa-marl-core")},
    }
    data["meta"] = np.array(json.dumps(info))
    return data


def save_dataset(data: Mapping[str, np.ndarray], path: Path) -> Path:
    """Write a dataset atomically (temp file + rename) as compressed `.npz`."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"dataset path {path} must end in .npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **data)  # type: ignore[arg-type]
    tmp.replace(path)
    return path


def load_dataset(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a dataset back: (arrays, meta dict)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k != "meta"}
        meta = json.loads(str(f["meta"]))
    return arrays, meta


def _versions(*names: str) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
