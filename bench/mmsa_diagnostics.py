"""Training diagnostics of one MMSA run, drawn: fixed-encoder age, spread and effective rank of
the fixed encoder's `z^o`, the agent SALE loss, the Q head's gradient norm, the world model's
k-step open-loop error, and the return.

Trains one run of the learning check's settings (`tests/test_learning_mmsa.py`: small LBF map,
8k env steps, `lbf_check.config` of tests/conftest.py) into `--run-dir`, unless that directory
already holds a finished run (then it only draws it; any MMSA run directory works), and writes

- `<out>.png`: one panel per diagnostic over env steps;
- `<out>.json`: the command, commit, machine, the run's config and every metrics line drawn.

    .venv/bin/python bench/mmsa_diagnostics.py                       # train + draw
    .venv/bin/python bench/mmsa_diagnostics.py --run-dir runs/x      # draw an existing run
    .venv/bin/python bench/mmsa_diagnostics.py --set agent_head='"sale"' --out /tmp/sale

Train lines average over their `log_every` window (`--log-every`, 200 env steps here): the age
is the mean age over the window's updates. The training loop divides every metric's window sum
by the window's number of updates, also for the `diag_*` metrics that only the diagnostic
updates (every `diagnostics_every`, 25 here) report, so the logged `diag_*` values are their
mean times (diagnostic updates / updates) in the window; `diag_means` undoes that from the lines'
`updates` counters, and the figure and the JSON's `diag_corrected` use the corrected values.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _provenance import record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PANELS: list[tuple[str, list[str], str]] = [
    ("fixed-encoder age (updates since refresh)", ["fixed_encoder_age"], "linear"),
    ("z^o spread (std over samples, mean over dims)", ["diag_zs_spread"], "linear"),
    ("z^o effective rank", ["diag_zs_erank"], "linear"),
    ("agent SALE loss", ["loss_sale_agent"], "log"),
    ("Q head gradient norm (before clip)", ["grad_norm_q_head", "grad_norm_q_linear"], "log"),
    ("world model k-step state error", ["diag_state_err_k1", "diag_state_err_k3"], "log"),
    ("TD loss", ["td_loss"], "log"),
    ("return", ["return_mean"], "linear"),
]
"""(title, metrics keys, y scale) of each panel; keys a run lacks are skipped."""


def learning_check() -> Any:
    """tests/test_learning_mmsa.py as a module (its `MMSA` settings and budget)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_lm", ROOT / "tests" / "test_learning_mmsa.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_config(seed: int, steps: int, upe: float, log_every: int, sets: dict[str, Any]) -> Any:
    """The learning check's config (tests/conftest.py + tests/test_learning_mmsa.py)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import LbfCheck

    algo = {**learning_check().MMSA, "diagnostics_every": 25, **sets}
    config = LbfCheck().config(algo, algo="mmsa", seed=seed, steps=steps, updates_per_episode=upe)
    config["log_every"] = log_every
    return config


def diag_means(lines: list[dict[str, Any]], every: int) -> list[dict[str, Any]]:
    """The train lines with each `diag_*` value rescaled to the mean over the window's diagnostic
    updates: logged value * (updates in the window) / (diagnostic updates in the window), the
    diagnostic updates being those whose count is a multiple of `every` (no skipped updates)."""
    out, previous = [], 0
    for line in lines:
        if line["kind"] != "train":
            continue
        updates = int(line["updates"])
        n_diag = updates // every - previous // every
        window = updates - previous
        fixed = dict(line)
        for key, value in line.items():
            if key.startswith("diag_") and n_diag > 0:
                fixed[key] = value * window / n_diag
        out.append(fixed)
        previous = updates
    return out


def draw(lines: list[dict[str, Any]], title: str, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [x for x in lines if x["kind"] == "train"]
    evals = [x for x in lines if x["kind"] == "eval"]
    fig, axes = plt.subplots(2, 4, figsize=(18, 7.5))
    for ax, (name, keys, scale) in zip(axes.flat, PANELS, strict=True):
        for key in keys:
            points = [(x["env_steps"], x[key]) for x in train if key in x]
            if points:
                ax.plot(*zip(*points, strict=True), marker=".", label=key)
        if name == "return" and evals:
            ax.plot(
                [x["env_steps"] for x in evals],
                [x["return_mean"] for x in evals],
                marker="o",
                label="greedy eval",
            )
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("env steps")
        if scale == "log" and any(ln.get_ydata().min() > 0 for ln in ax.get_lines()):
            ax.set_yscale("log")
        if ax.get_lines():
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _setting(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--set {text!r}: expected FIELD=JSON")
    return name, json.loads(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=Path("runs/bench_mmsa_diagnostics"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/mmsa_diagnostics")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=8_000)
    parser.add_argument("--updates-per-episode", type=float, default=None)
    parser.add_argument("--log-every", type=int, default=200)
    parser.add_argument("--set", type=_setting, action="append", default=[], metavar="FIELD=JSON")
    args = parser.parse_args()

    import torch

    from mmsa_marl_core import config_from_dict, read_metrics, train

    info = args.run_dir / "run.json"
    if not (info.exists() and json.loads(info.read_text()).get("status") == "finished"):
        torch.set_num_threads(1)
        if args.updates_per_episode is None:
            args.updates_per_episode = learning_check().UPDATES_PER_EPISODE
        config = check_config(
            args.seed, args.steps, args.updates_per_episode, args.log_every, dict(args.set)
        )
        train(config_from_dict(config), args.run_dir, progress=False)
    run = json.loads(info.read_text())
    lines = read_metrics(args.run_dir)
    cfg = run.get("config", {})
    title = (
        f"MMSA diagnostics: {cfg.get('env', '?')}, seed {cfg.get('seed', '?')}, "
        f"{lines[-1]['env_steps']} env steps, {lines[-1]['updates']} updates"
    )
    every = int(cfg.get("algo_config", {}).get("diagnostics_every", 200))
    corrected = diag_means(lines, every)
    draw(corrected + [x for x in lines if x["kind"] == "eval"], title, args.out.with_suffix(".png"))
    out = record("mmsa_diagnostics", ("torch", "numpy", "lbforaging")) | {
        "run_dir": str(args.run_dir),
        "config": cfg,
        "metrics": lines,
        "diag_corrected": corrected,
    }
    args.out.with_suffix(".json").write_text(json.dumps(out, indent=1))
    print(args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
