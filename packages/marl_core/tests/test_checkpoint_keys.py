"""Checkpoints written by earlier versions keep loading: the learner state of every algorithm
has exactly the keys, and each tensor the shape, recorded in `data/checkpoint_keys.json`, and
each `algo_config` (part of a checkpoint's fingerprint) exactly its recorded field names.

A change to a learner's state layout or a config's fields makes old checkpoints unloadable or
refused as "a different run"; if such a change is meant, write the file again with
`python packages/marl_core/tests/test_checkpoint_keys.py` and say so in the CHANGELOG.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mmsa_envs import make_vector_env
from mmsa_marl_core import (
    EpisodeBuffer,
    config_from_dict,
    config_to_dict,
    get_algo,
    run_episodes,
)
from mmsa_marl_core.training.checkpoint import load_checkpoint, save_checkpoint

KEYS_FILE = Path(__file__).parent / "data" / "checkpoint_keys.json"
SMALL = {"agent_hidden": 12, "mixer_embed_dim": 6, "hypernet_hidden": 10}
SALE = {"zs_dim": 8, "sale_hidden": 16, "phi_dim": 8, "code_dim": 4}
CONTINUOUS = SMALL | {"width": 16, "random_steps": 0}
# algo: (env id, env_kwargs, small algo_config)
ALGOS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "qmix": ("dummy", {}, SMALL),
    "vdn": ("dummy", {}, SMALL),
    "hpn_qmix": ("dummy", {"entities": True}, SMALL),
    "mmsa": ("dummy", {}, SMALL | SALE),
    "facmac": ("dummy:continuous", {}, CONTINUOUS),
    "mmsa_continuous": ("dummy:continuous", {}, CONTINUOUS | SALE),
    "mmsa_on_continuous": ("dummy:continuous", {}, SMALL | SALE),
}


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """`dotted key -> shape` (tensors) or type name (other leaves) of nested dicts and lists."""
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}
    if isinstance(tree, list):
        return {k: v for i, sub in enumerate(tree) for k, v in _flat(sub, f"{prefix}{i}.").items()}
    if isinstance(tree, torch.Tensor):
        return {prefix[:-1]: list(tree.shape)}
    return {prefix[:-1]: type(tree).__name__}


def _keys_of(tree: Any) -> Any:
    """The field names of a config as plain data, nested configs as nested lists."""
    if isinstance(tree, dict):
        return {k: _keys_of(v) for k, v in tree.items() if isinstance(v, dict)} | {
            "__fields__": list(tree)
        }
    return None


def build(name: str) -> tuple[Any, Any]:
    """A small learner of `name` after one update on its own exploring episodes, and its
    algo config."""
    env, env_kwargs, overrides = ALGOS[name]
    algo = "mmsa" if name == "mmsa_on_continuous" else name
    torch.manual_seed(0)
    config = config_from_dict(
        {"env": env, "env_kwargs": env_kwargs, "algo": algo, "algo_config": overrides}
    ).algo_config
    rng = np.random.default_rng(0)
    device = torch.device("cpu")
    with make_vector_env(env, 2, seed=0, env_kwargs=env_kwargs, processes=False) as envs:
        learner = get_algo(algo).factory(envs.spec, config, device)
        buffer = EpisodeBuffer(envs.spec, 8, envs.spec.episode_limit)
        while len(buffer) < 4:
            episodes = run_episodes(envs, learner, explore=True, env_steps=0, rng=rng)
            buffer.add_episodes(**episodes.buffer_arrays())
    learner.update(buffer.sample(4, rng, device=device))
    return learner, config


def record(name: str, directory: Path) -> dict[str, Any]:
    """What `name`'s checkpoint holds, read back from a real checkpoint file."""
    learner, config = build(name)
    path = save_checkpoint(directory, 1, {"learner": learner.state_dict()}, keep=1)
    learner.load_state_dict(load_checkpoint(path)["learner"])  # weights_only round trip
    return {
        "learner": _flat(load_checkpoint(path)["learner"]),
        "algo_config": _keys_of(config_to_dict(config)),
    }


@pytest.mark.parametrize("name", sorted(ALGOS))
def test_checkpoint_keys_unchanged(name, tmp_path):
    expected = json.loads(KEYS_FILE.read_text())[name]
    got = record(name, tmp_path)
    assert sorted(got["learner"]) == sorted(expected["learner"])
    assert got["learner"] == expected["learner"]
    assert got["algo_config"] == expected["algo_config"]


if __name__ == "__main__":
    import tempfile

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        out = {name: record(name, Path(tmp) / name) for name in sorted(ALGOS)}
    KEYS_FILE.parent.mkdir(exist_ok=True)
    KEYS_FILE.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {KEYS_FILE} ({', '.join(out)})", file=sys.stderr)
