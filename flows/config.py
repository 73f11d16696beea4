"""Training configs from YAML files and `key=value` overrides, validated by
`mmsa_marl_core.config_from_dict` (unknown keys and wrong types are rejected by dotted name).

Layers, later wins key by key: `base` (e.g. the config stored in a run's `run.json` when
resuming) -> the YAML file -> explicit CLI flags (`--env`, `--algo`, `--steps`, `--seed`) ->
dotted overrides (`algo_config.lr=3e-4 n_envs=4`). Override values are parsed as YAML scalars
(`true`, `3`, `0.5`, `[1, 2]`), with `1e-3`-style floats accepted too.

A YAML file holds a `TrainConfig` as a mapping::

    env: lbf:Foraging-8x8-2p-2f-coop-v3
    algo: qmix
    steps: 500000
    algo_config:
      epsilon_anneal_steps: 100000
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["load_yaml", "parse_overrides", "merge", "build_train_config"]

_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)$")


def load_yaml(path: Path | str) -> dict[str, Any]:
    """A YAML file's top-level mapping (an empty file is an empty config)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"config file {path} is a directory; give a YAML file")
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ValueError(f"config file {path} is not valid YAML: {err}") from err
    except OSError as err:
        raise ValueError(f"config file {path} is unreadable: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    return dict(data)


def _parse_value(text: str) -> Any:
    if _FLOAT.match(text.strip()):
        return float(text)  # YAML 1.1 reads 1e-3 as a string
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """`["algo_config.lr=3e-4", "n_envs=4"]` -> `{"algo_config": {"lr": 3e-4}, "n_envs": 4}`."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ValueError(
                f"override {item!r} must look like key=value with a dotted key, "
                "e.g. algo_config.lr=3e-4"
            )
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"override {item!r} descends into {part!r}, which has a value")
            node = child
        node[parts[-1]] = _parse_value(raw)
    return out


def merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge mappings, later layers winning key by key."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
                out[key] = merge(out[key], value)
            elif isinstance(value, Mapping):
                out[key] = merge(value)
            else:
                out[key] = value
    return out


def build_train_config(
    *,
    config_file: Path | str | None = None,
    overrides: Iterable[str] = (),
    env: str | None = None,
    algo: str | None = None,
    steps: int | None = None,
    seed: int | None = None,
    base: Mapping[str, Any] | None = None,
) -> Any:
    """A validated `mmsa_marl_core.TrainConfig` from the layers in the module docstring."""
    from mmsa_marl_core import config_from_dict

    explicit = {"env": env, "algo": algo, "steps": steps, "seed": seed}
    layers: list[Mapping[str, Any]] = [dict(base or {})]
    if config_file is not None:
        layers.append(load_yaml(config_file))
    explicit_layer = {k: v for k, v in explicit.items() if v is not None}
    if "algo" in explicit_layer and base and explicit_layer["algo"] != base.get("algo"):
        # a different algorithm does not inherit the base's algo_config
        layers[0] = {k: v for k, v in layers[0].items() if k != "algo_config"}
    layers.append(explicit_layer)
    layers.append(parse_overrides(overrides))
    return config_from_dict(merge(*layers))
