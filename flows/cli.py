"""`mmsa`: the command line.

    mmsa train [--env ID] [--algo qmix|vdn|...] [--steps N] [--seed S] [--device auto|cpu|cuda]
               [--config FILE.yaml] [--run-dir DIR] [--resume] [key=value ...]
    mmsa evaluate RUN_DIR [--episodes N] [--device ...]
    mmsa envs [--all]

`mmsa train` with no arguments trains QMIX on the embedded default LBF map (minutes on a CPU)
and prints where the results are. Commands call plain functions (`run_train`, `run_evaluate`,
`list_envs`), so other front ends (Prefect flows, notebooks) share the same path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_PRESET",
    "main",
    "run_train",
    "run_evaluate",
    "list_envs",
    "resolve_device",
    "default_run_dir",
    "train_config_from_args",
    "build_parser",
]

DEFAULT_PRESET: dict[str, Any] = {
    "env": "lbf:Foraging-5x5-2p-1f-v3",
    "steps": 25_000,
    "n_envs": 8,
    "eval_every": 5_000,
    "log_every": 2_500,
    "checkpoint_every": 10_000,
    "algo_config": {"gamma": 0.9, "target_update_interval": 50, "epsilon_anneal_steps": 10_000},
}
"""What `mmsa train` runs when neither --config nor --env is given: QMIX/VDN on a small LBF map
that learns in minutes on one CPU core (greedy return ~0.8-0.95 vs ~0.55 for random actions).
LBF's reward is one terminal payoff and its time limit is bootstrapped, so gamma 0.9 and fast
target updates (see the mmsa_marl_core README) instead of the generic 0.99 / 200."""


def _positive_int(text: str) -> int:
    """argparse type: an int >= 1, or an error naming the value."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _thread_count(text: str) -> int:
    """argparse type of --threads: 1 .. the CPU cores this process may run on."""
    value = _positive_int(text)
    cores = _available_cores()
    if value > cores:
        raise argparse.ArgumentTypeError(
            f"{text!r} is more than the {cores} CPU core(s) this process may use; use 1 to {cores}"
        )
    return value


class _Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line: `mmsa train: error: ...`."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu' (`flows.training.choose_device`)."""
    from .training import choose_device

    return choose_device(device)


def default_run_dir(
    env: str, algo: str, seed: int, root: Path | str = "runs", label: str | None = None
) -> Path:
    """`runs/<env>/<label or algo>/seed<seed>-<UTC timestamp>`, env ids made path-safe: the
    layout of the flows and `mmsa report-runs` (`flows.training.default_run_dir`)."""
    from .training import default_run_dir as nested

    return nested(Path(root), env, algo, seed, label)


def run_train(
    config: Any,
    run_dir: Path | str | None = None,
    *,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    tensorboard: bool = True,
    torch_threads: int | None = 1,
) -> Any:
    """Train `config` (a `TrainConfig`) into `run_dir` -> `TrainResult`, through the same entry
    point as the flows (`flows.training.train_run`): TensorBoard, `results.parquet`, labels."""
    from .training import train_run

    if run_dir is None:
        run_dir = default_run_dir(config.env, config.algo, config.seed)
    return train_run(
        config,
        Path(run_dir),
        device=device,
        resume=resume,
        progress=progress,
        tensorboard=tensorboard,
        torch_threads=torch_threads,
    )


def run_evaluate(run_dir: Path | str, *, episodes: int = 32, device: str = "auto") -> dict:
    """Greedy evaluation of a run's latest checkpoint, also written to `RUN_DIR/evaluation.json`
    (`flows.training.run_evaluation`: pinned kernels for a reproducible run)."""
    from .training import run_evaluation

    return run_evaluation(Path(run_dir), episodes=episodes, device=device)


NOT_ON_PYPI = {
    "smacv2": "not installed (smacv2 is not on PyPI: pip install "
    "'git+https://github.com/oxwhirl/smacv2', with StarCraft II 4.10 and the SMAC maps)",
}
"""Backends whose package no extra of mmsa-envs can install, and how to get them."""
INSTALL_FROM_CLONE = (
    "pip install -c constraints.txt -e 'packages/envs[{}]' from the repository root"
)
"""How to install an extra of mmsa-envs (not on PyPI) from a clone, as `mmsa_envs` says too."""
PATTERNS = {"lbf": "lbf:Foraging-[2s-]<W>x<H>-<P>p-<F>f[-coop]-v3"}
"""Backends whose ids follow a pattern: `--all` prints it and a few examples, not every id."""


def list_envs(show_all: bool = False) -> list[str]:
    """One line per backend (its ids, or how to install it); with `show_all` every id under
    its backend, or the id pattern and examples where ids follow one."""
    from mmsa_envs import backends, registered

    installed = registered(installed_only=True)
    lines = []
    for backend in backends():
        ids = [i for i in installed if i == backend or i.startswith(backend + ":")]
        if not ids:
            hint = NOT_ON_PYPI.get(backend, f"not installed ({INSTALL_FROM_CLONE.format(backend)})")
            lines.append(f"{backend:<12} {hint}")
            continue
        examples = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
        lines.append(f"{backend:<12} {len(ids):>5} ids  e.g. {examples}")
        if show_all and backend in PATTERNS:
            lines.append(f"    any id of the form {PATTERNS[backend]}, e.g.")
            lines.extend(f"    {i}" for i in ids[:6])
        elif show_all:
            lines.extend(f"    {i}" for i in ids)
    return lines


def list_deployments() -> list[str]:
    """The deployments `make serve` serves (`FLOW/DEPLOYMENT`, what `prefect deployment run`
    takes) with their descriptions."""
    from .serve import deployments

    rows = [(f"{d.flow_name}/{d.name}", d.description or "") for d in deployments()]
    width = max(len(name) for name, _ in rows)
    return [f"{name:<{width}}  {text}" for name, text in rows]


# ---------------------------------------------------------------------- argparse front end
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mmsa", description="MMSA: train and evaluate MARL.")
    sub = parser.add_subparsers(dest="command", required=True)

    tr = sub.add_parser("train", help="train an algorithm on an env")
    tr.add_argument("--env", help="env id backend:name (default: the embedded LBF map)")
    tr.add_argument("--algo", help="qmix, vdn, or any registered algorithm (default qmix)")
    tr.add_argument("--steps", type=int, help="total env steps")
    tr.add_argument("--seed", type=int, help="run seed")
    tr.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    tr.add_argument("--config", type=Path, help="YAML file with TrainConfig keys")
    tr.add_argument(
        "--run-dir", type=Path, help="default runs/<env>/<algo[-ablation]>/seed<seed>-<time>"
    )
    tr.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard event files")
    tr.add_argument(
        "--threads",
        type=_thread_count,
        default=1,
        help="torch intra-op threads (default 1: the small MARL networks run fastest on one; "
        "MMSA's CPU update is ~1.6x faster on 2)",
    )
    tr.add_argument(
        "--reproducible",
        action="store_true",
        help="pin CPU kernels and threads: the same numbers on any x86-64 CPU (slower; CPU "
        "only; same as reproducible=true)",
    )
    tr.add_argument(
        "--ablation",
        choices=("none", "no_wm", "no_sale", "no_klb", "no_gs"),
        help="MMSA ablation (same as algo_config.ablation=...; only with --algo mmsa)",
    )
    tr.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. algo_config.lr=3e-4")

    ev = sub.add_parser("evaluate", help="greedy evaluation of a run's latest checkpoint")
    ev.add_argument("run_dir", type=Path)
    ev.add_argument("--episodes", type=int, default=32)
    ev.add_argument("--device", default="auto")

    en = sub.add_parser("envs", help="list env backends and ids")
    en.add_argument("--all", action="store_true", help="list the ids of every backend")

    sub.add_parser("deployments", help="list the Prefect deployments `make serve` serves")

    rd = sub.add_parser("render", help="draw a run's greedy policy into a GIF (or MP4)")
    rd.add_argument("run_dir", type=Path)
    rd.add_argument("--episodes", type=_positive_int, default=2, help="episodes (default 2)")
    rd.add_argument("--out", type=Path, default=Path("episode.gif"), help=".gif or .mp4")
    rd.add_argument("--fps", type=float, default=4.0, help="frames per second (default 4)")
    rd.add_argument("--device", default="cpu", help="where the policy runs (default cpu)")
    return parser


def train_config_from_args(args: argparse.Namespace) -> Any:
    """The `TrainConfig` of a `mmsa train` command line (see `flows.config` for the layers)."""
    from mmsa_marl_core.training.run_info import read_run_config

    from .config import build_train_config

    base = None
    if args.resume:
        if args.run_dir is None:
            raise ValueError("--resume needs --run-dir (the run to continue)")
        if not args.run_dir.is_dir():
            what = "is not a directory" if args.run_dir.exists() else "does not exist"
            raise FileNotFoundError(f"cannot resume {args.run_dir}: it {what}")
        if (args.run_dir / "run.json").exists():
            base = read_run_config(args.run_dir)
    if (
        base is None
        and args.config is None
        and args.env is None
        and args.algo
        in (
            None,
            "qmix",
            "vdn",
        )
    ):
        base = DEFAULT_PRESET
        print("mmsa train: no --env/--config given, using the embedded default preset")
    overrides = list(args.overrides)
    if getattr(args, "reproducible", False):
        overrides.append("reproducible=true")
    if args.ablation is not None:
        if args.algo != "mmsa":
            raise ValueError(
                f"--ablation {args.ablation} needs --algo mmsa, got --algo {args.algo}"
            )
        overrides.append(f"algo_config.ablation={args.ablation}")
    return build_train_config(
        config_file=args.config,
        overrides=overrides,
        env=args.env,
        algo=args.algo,
        steps=args.steps,
        seed=args.seed,
        base=base,
    )


def _train_command(args: argparse.Namespace) -> int:
    config = train_config_from_args(args)
    ablation = getattr(config.algo_config, "ablation", "none")
    label = config.algo if ablation in (None, "none") else f"{config.algo}-{ablation}"
    run_dir = args.run_dir or default_run_dir(config.env, config.algo, config.seed, label=label)
    reproducible = getattr(config, "reproducible", False)
    device = "cpu" if reproducible and args.device == "auto" else resolve_device(args.device)
    print(f"mmsa train: {config.algo} on {config.env}, {config.steps} steps, seed {config.seed}, "
          f"device {device} -> {run_dir}", flush=True)  # fmt: skip
    result = run_train(
        config,
        run_dir,
        device=device,
        resume=args.resume,
        progress=not args.no_progress,
        tensorboard=not args.no_tensorboard,
        torch_threads=args.threads,
    )
    final = ", ".join(f"{k} {v:.3f}" for k, v in result.final_eval.items())
    print(f"final evaluation: {final}")
    tb = "" if args.no_tensorboard else f", tb/ (tensorboard --logdir {run_dir})"
    print(f"results in {run_dir}/: run.json, metrics.jsonl, checkpoints/{tb}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mmsa` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train_command(args)
        if args.command == "evaluate":
            metrics = run_evaluate(args.run_dir, episodes=args.episodes, device=args.device)
            print(json.dumps(metrics, indent=2))
            print(f"written to {args.run_dir / 'evaluation.json'}", file=sys.stderr)
            return 0
        if args.command == "deployments":
            for line in list_deployments():
                print(line)
            return 0
        if args.command == "render":
            from .render import render_run

            shown = render_run(args.run_dir, episodes=args.episodes, out=args.out,
                               fps=args.fps, device=args.device)  # fmt: skip
            returns = ", ".join(f"{r:.3f}" for r in shown.returns)
            print(f"mmsa render: {shown.frames} frames of {shown.episodes} episode(s) "
                  f"(returns {returns}) from {shown.checkpoint} -> {shown.out}")  # fmt: skip
            return 0
        for line in list_envs(show_all=args.all):
            print(line)
        return 0
    except BaseException as err:
        code = _exit_status(err)
        if code is None:
            raise
        print(f"mmsa {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return code


def _exit_status(err: BaseException) -> int | None:
    """The exit status of an error `main` reports in one line (None: not one of them).

    2: bad input or a refused command (nothing was changed); 1: the run failed (NaN/inf);
    130 / 143: stopped by SIGINT / SIGTERM (run.json says `interrupted` / `terminated`)."""
    if isinstance(err, KeyboardInterrupt):
        return 130
    if isinstance(err, ValueError | FileNotFoundError | FileExistsError):
        return 2
    if "mmsa_marl_core" not in sys.modules:  # the errors below come from there
        return None
    from mmsa_envs import MissingBackendError
    from mmsa_marl_core import CheckpointError, NonFiniteLossError
    from mmsa_marl_core.training.run_lock import RunLockedError
    from mmsa_marl_core.training.train import RunTerminated

    if isinstance(err, RunTerminated):
        return 143
    if isinstance(err, CheckpointError | RunLockedError | MissingBackendError):
        return 2
    if isinstance(err, NonFiniteLossError):
        return 1
    return None


def _one_line(err: BaseException) -> str:
    if isinstance(err, KeyboardInterrupt):
        return "interrupted (run.json says status 'interrupted'; continue it with --resume)"
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    if type(err).__name__ == "RunTerminated":
        return f"{text} (run.json says status 'terminated'; continue it with --resume)"
    return text or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
