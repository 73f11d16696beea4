"""Plain-Python training and evaluation steps shared by the Prefect flows and the DVC stages.

Nothing here imports Prefect: a DVC stage or a test calls these functions directly, and the flows
in `flows.flows` wrap them as tasks. They are the thin edge of the design: build and validate the
config, choose the device and the paths, call `mmsa_marl_core.train` / `evaluate`, log to
TensorBoard, write `results.parquet`, `labels.json` and `evaluation.json`.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .config import merge
from .runs import EVALUATION_FILE, write_labels, write_results

__all__ = [
    "ProgressLines",
    "build_config",
    "choose_device",
    "default_run_dir",
    "merge_overrides",
    "nest",
    "run_evaluation",
    "run_training",
]


def choose_device(device: str) -> str:
    """`auto` -> `cuda` when torch sees a GPU, else `cpu`; `cuda` without a GPU is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" or re.fullmatch(r"cuda(:\d+)?", device):
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was asked for but torch sees no CUDA device")
        return device
    raise ValueError(f"device={device!r} is not allowed; use 'auto', 'cpu' or 'cuda[:N]'")


def nest(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Turn dotted keys into nested dicts: {"algo_config.lr": 1e-3} -> {"algo_config": {"lr": ..}}.

    Nested dict values are merged, so {"a.b": 1, "a": {"c": 2}} gives {"a": {"b": 1, "c": 2}}.
    """
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise ValueError(f"override key {key!r} must be a dotted name like 'algo_config.lr'")
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"override {key!r} descends into {part!r}, which is a value")
            node = child
        leaf = parts[-1]
        if isinstance(value, Mapping):
            existing = node.setdefault(leaf, {})
            if not isinstance(existing, dict):
                raise ValueError(f"override {key!r} merges a mapping into a value")
            existing.update(nest({k: v for k, v in value.items()}))
        else:
            node[leaf] = value
    return out


def merge_overrides(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Nest each layer's dotted keys and merge them, later layers winning key by key."""
    return merge(*(nest(layer) for layer in layers))


def build_config(
    *,
    env: str | None = None,
    algo: str | None = None,
    steps: int | None = None,
    seed: int | None = None,
    base: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Any:
    """A validated `mmsa_marl_core.TrainConfig`.

    Layers, later wins key by key, in the order of the `mmsa train` CLI (flows.config): `base`
    (e.g. a YAML file's mapping), the explicit `env`/`algo`/`steps`/`seed` when given, then the
    `overrides` (dotted or nested keys). Unknown keys and wrong types are rejected by
    `config_from_dict` with the dotted path of the bad key.
    """
    from mmsa_marl_core import config_from_dict

    explicit = {"env": env, "algo": algo, "steps": steps, "seed": seed}
    explicit = {k: v for k, v in explicit.items() if v is not None}
    return config_from_dict(merge(dict(base or {}), explicit, nest(overrides or {})))


def default_run_dir(
    runs_root: Path, env: str, algo: str, seed: int, label: str | None = None
) -> Path:
    """`runs_root/<env>/<label or algo>/seed<seed>-<UTC timestamp>`; env ids become path-safe."""
    safe_env = re.sub(r"[^A-Za-z0-9._-]+", "_", env)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return Path(runs_root) / safe_env / (label or algo) / f"seed{seed}-{stamp}"


class ProgressLines:
    """A metrics logger printing one line per `train` / `eval` event (every `log_every` /
    `eval_every` env steps): where a run without a progress bar is (DVC stages, Prefect runs,
    whose `log_prints` puts the lines in the UI's logs), its return and speed, and the time left.
    """

    def __init__(self, config: Any) -> None:
        self.total = int(config.steps)
        self.name = f"{config.algo} {config.env} seed {config.seed}"
        self.began = time.monotonic()
        self.first_steps: int | None = None

    def log(self, kind: str, env_steps: int, metrics: Any) -> None:
        if self.first_steps is None:
            self.first_steps = env_steps  # a resumed run counts its speed from here
        done = min(env_steps / max(self.total, 1), 1.0)
        if kind == "eval":
            print(
                f"[{self.name}] eval at {env_steps:,} env steps: greedy return "
                f"{metrics.get('return_mean', float('nan')):.3f}",
                flush=True,
            )
            return
        if kind != "train":
            return
        elapsed = time.monotonic() - self.began
        rate = (env_steps - self.first_steps) / elapsed if elapsed > 0 else 0.0
        left = (self.total - env_steps) / rate if rate > 0 else float("nan")
        ret = metrics.get("return_mean")
        shown = f"return {ret:.3f}, " if ret is not None else ""
        eta = f"{left / 60:.1f} min left" if math.isfinite(left) else "time left unknown"
        print(
            f"[{self.name}] {env_steps:,}/{self.total:,} env steps ({done:.0%}), {shown}"
            f"{rate:.0f} env steps/s, {eta}",
            flush=True,
        )

    def close(self) -> None:
        pass


def run_training(
    config: Any,
    run_dir: Path,
    *,
    device: str = "auto",
    resume: bool = False,
    progress: bool = False,
    task: str | None = None,
    variant: str | None = None,
    torch_threads: int | None = None,
) -> Path:
    """`train_run` for the flows and DVC stages: returns the run directory."""
    return train_run(
        config,
        run_dir,
        device=device,
        resume=resume,
        progress=progress,
        task=task,
        variant=variant,
        torch_threads=torch_threads,
    ).run_dir


def train_run(
    config: Any,
    run_dir: Path,
    *,
    device: str = "auto",
    resume: bool = False,
    progress: bool = False,
    tensorboard: bool = True,
    task: str | None = None,
    variant: str | None = None,
    torch_threads: int | None = None,
) -> Any:
    """Train `config` into `run_dir` (TensorBoard logger, `labels.json`, `results.parquet`).

    The one training entry point of the flows layer: `mmsa train`, the Prefect flows and the DVC
    stages all come here, so every run directory has the same files. Returns the `TrainResult`.
    `task`/`variant` name the run's groups in reports (default: env id and algo).
    `torch_threads` sets torch's intra-op threads for this process (None: leave it): the small
    networks of MARL run fastest on one thread, and runs side by side then do not oversubscribe.
    A `reproducible` config trains on the CPU in a fresh process whose kernels are pinned
    (`mmsa_marl_core.training.reproducible.run_pinned`), unless this one already is.
    """
    import torch

    from mmsa_marl_core import train
    from mmsa_marl_core.training.reproducible import run_pinned, unpinned_settings

    if getattr(config, "reproducible", False):
        device = "cpu" if device == "auto" else device
        if unpinned_settings():
            return run_pinned(
                train_run,
                config,
                run_dir,
                device=device,
                resume=resume,
                progress=progress,
                tensorboard=tensorboard,
                task=task,
                variant=variant,
                torch_threads=1,
            )
        torch_threads = 1

    from .tensorboard import TensorBoardLogger

    if torch_threads is not None:
        if torch_threads < 1:
            raise ValueError(f"torch_threads={torch_threads} must be >= 1 (or None)")
        torch.set_num_threads(torch_threads)
    run_dir = Path(run_dir)
    loggers: list[Any] = []

    def start() -> list[Any]:
        # called by `train` once the run is accepted: a refused command writes nothing
        write_labels(run_dir, task=task or config.env, variant=variant or config.algo)
        if tensorboard:
            loggers.append(TensorBoardLogger(run_dir / "tb"))
        if not progress:  # no tqdm bar: one line per train/eval event instead
            loggers.append(ProgressLines(config))
        return loggers

    try:
        result = train(
            config,
            run_dir,
            device=choose_device(device),
            resume=resume,
            progress=progress,
            on_start=start,
        )
    finally:
        for logger in loggers:
            logger.close()
    write_results(run_dir)
    return result


def run_evaluation(
    run_dir: Path,
    *,
    episodes: int = 32,
    device: str = "auto",
    checkpoint: Path | None = None,
    out: Path | None = None,
) -> dict[str, float]:
    """Greedy evaluation of a run's final (or given) checkpoint, saved as JSON to `out`
    (default: `evaluation.json` in the run directory, where reports look for it)."""
    from mmsa_marl_core import evaluate

    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be >= 1")
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory: it has no run.json")
    if _is_reproducible(run_dir):
        from mmsa_marl_core.training.reproducible import run_pinned, unpinned_settings

        device = "cpu" if device == "auto" else device
        if unpinned_settings():
            return run_pinned(
                run_evaluation,
                run_dir,
                episodes=episodes,
                device=device,
                checkpoint=checkpoint,
                out=out,
            )
    metrics = evaluate(
        run_dir, episodes=episodes, device=choose_device(device), checkpoint=checkpoint
    )
    record = {k: float(v) for k, v in metrics.items()} | {
        "episodes": episodes,
        "checkpoint": str(checkpoint) if checkpoint else None,
    }
    target = Path(out) if out else run_dir / EVALUATION_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record, indent=2) + "\n")
    return dict(metrics)


def _is_reproducible(run_dir: Path) -> bool:
    """Whether the run in `run_dir` was trained in reproducible mode (its run.json says so):
    its evaluation then runs pinned too, so that it reproduces as well."""
    try:
        meta = json.loads((Path(run_dir) / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return bool((meta.get("config") or {}).get("reproducible", False))
