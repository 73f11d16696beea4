"""The Prefect flows: mmsa-collect, mmsa-train, mmsa-evaluate, mmsa-render, mmsa-ablate,
mmsa-report.

Each flow is thin: typed parameters (Prefect validates them with pydantic before the flow starts,
so `steps=-1` or `device="gpu"` fails with a validation error naming the parameter), then tasks
that call the plain functions of `flows.training`, `flows.collect` and `flows.report`, and a
markdown artifact for the UI. Values left `None` (env, algo, steps, seed of mmsa-train) fall back
to `mmsa_marl_core.TrainConfig`, the one home of every default.

A flow runs with or without a server: `python -c "from flows.flows import train_flow;
train_flow(steps=2000)"` uses a temporary local API; `make serve` serves them as deployments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

from .config import load_yaml
from .runners import RunnerKind, gpu_annotation, make_task_runner

__all__ = [
    "Variant",
    "ablate_flow",
    "collect_flow",
    "evaluate_flow",
    "render_flow",
    "report_flow",
    "train_flow",
]

Device = Literal["auto", "cpu", "cuda"]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


class Variant(BaseModel):
    """One variant of an ablation: an algorithm and its config overrides (dotted keys)."""

    model_config = ConfigDict(extra="forbid")
    algo: str
    overrides: dict[str, Any] = Field(default_factory=dict)


# --------------------------------------------------------------------------- tasks
@task(name="validate-config", cache_policy=NO_CACHE)
def validate_config(
    env: str | None,
    algo: str | None,
    steps: int | None,
    seed: int | None,
    config_file: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The resolved config as a dict (raises, naming the bad key, on unknown keys/wrong types)."""
    from mmsa_marl_core import config_to_dict

    from .training import build_config

    base = load_yaml(config_file) if config_file else {}
    config = build_config(
        env=env, algo=algo, steps=steps, seed=seed, base=base, overrides=overrides
    )
    return config_to_dict(config)


@task(name="train", cache_policy=NO_CACHE)
def train_task(
    config: dict[str, Any],
    run_dir: str,
    device: str = "auto",
    resume: bool = False,
    task_label: str | None = None,
    variant: str | None = None,
    torch_threads: int | None = 1,
) -> str:
    from mmsa_marl_core import config_from_dict

    from .training import run_training

    out = run_training(
        config_from_dict(config),
        Path(run_dir),
        device=device,
        resume=resume,
        task=task_label,
        variant=variant,
        torch_threads=torch_threads,
    )
    return str(out)


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_task(
    run_dir: str, episodes: int, device: str, checkpoint: str | None
) -> dict[str, float]:
    from .training import run_evaluation

    return run_evaluation(
        Path(run_dir),
        episodes=episodes,
        device=device,
        checkpoint=Path(checkpoint) if checkpoint else None,
    )


@task(name="report", cache_policy=NO_CACHE)
def report_task(
    runs: list[str], out_dir: str, baselines: dict[str, str], title: str, reps: int, seed: int
) -> str:
    from .report import ReportConfig, build_report, write_report
    from .runs import find_runs

    run_dirs = find_runs(Path(r) for r in runs)
    if not run_dirs:
        raise ValueError(f"no run directory (holding run.json) under {runs}")
    report = build_report(
        run_dirs,
        baselines={k: Path(v) for k, v in baselines.items()},
        config=ReportConfig(reps=reps, seed=seed),
    )
    paths = write_report(report, Path(out_dir), title=title)
    return str(paths["markdown"])


@task(name="render", cache_policy=NO_CACHE)
def render_task(
    run_dir: str, episodes: int, out: str, fps: float, device: str, checkpoint: str | None
) -> dict[str, Any]:
    from .render import render_run

    shown = render_run(
        run_dir, episodes=episodes, out=out, fps=fps, device=device,
        checkpoint=Path(checkpoint) if checkpoint else None,
    )  # fmt: skip
    return {
        "out": str(shown.out), "frames": shown.frames, "returns": shown.returns,
        "checkpoint": str(shown.checkpoint),
    }  # fmt: skip


ARTIFACT_IMAGE_BYTES = 4_000_000
"""A GIF up to this size is embedded in the mmsa-render artifact (a data URI the Prefect UI
draws); a larger one is named by its path only."""


def render_markdown(shown: dict[str, Any], run_dir: str) -> str:
    """The mmsa-render artifact: the animation itself (a GIF as a data URI) and what it shows."""
    import base64

    out = Path(shown["out"])
    returns = ", ".join(f"{r:.3f}" for r in shown["returns"])
    lines = [
        f"# Greedy policy of `{run_dir}`",
        "",
        f"{len(shown['returns'])} episode(s), returns {returns}; {shown['frames']} frames from "
        f"`{shown['checkpoint']}`; written to `{out.resolve()}`.",
        "",
    ]
    if out.suffix.lower() == ".gif" and out.stat().st_size <= ARTIFACT_IMAGE_BYTES:
        data = base64.b64encode(out.read_bytes()).decode("ascii")
        lines.append(f"![greedy episodes](data:image/gif;base64,{data})")
    else:
        lines.append(f"(the animation, {out.stat().st_size} bytes, is not embedded: open the file)")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- flows
@flow(name="mmsa-collect", log_prints=True)
def collect_flow(
    env: str | None = None,
    episodes: PositiveInt = 32,
    seed: NonNegativeInt = 0,
    out: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    policy_run: str | None = None,
    explore: bool = False,
    device: Device = "auto",
) -> str:
    """Save `episodes` episodes as `.npz` (see flows.collect): random-policy episodes of `env`
    (default: TrainConfig's env), or, with `policy_run`, episodes of that run's latest
    checkpoint (greedy unless `explore`); `out` defaults to data/<env>/<policy>/seed<s>-<time>."""
    from .collect import collect_episodes, collect_from_run, save_dataset
    from .training import choose_device, default_run_dir

    if policy_run:
        data = collect_from_run(
            Path(policy_run),
            episodes=episodes,
            seed=seed,
            explore=explore,
            device=choose_device(device),
        )
        env = json.loads(str(data["meta"]))["env"]
        label = "explore" if explore else "greedy"
    else:
        if env is None:
            from mmsa_marl_core import DEFAULT_ENV

            env = DEFAULT_ENV
        data = collect_episodes(env, episodes=episodes, seed=seed, env_kwargs=env_kwargs)
        label = "random"
    target = (Path(out) if out else default_run_dir(Path("data"), env, label, seed)).with_suffix(
        ".npz"
    )
    save_dataset(data, target)
    returns = data["episode_return"]
    create_markdown_artifact(
        key="mmsa-collect",
        markdown=(
            f"# Dataset {env}\n\n{episodes} episodes ({label} policy), seed {seed}: mean return "
            f"{returns.mean():.4f} (std {returns.std():.4f}), mean length "
            f"{data['episode_length'].mean():.1f}.\n\nFile: `{target.resolve()}`\n"
        ),
        description=f"{label}-policy dataset of {env}",
    )
    return str(target)


@flow(name="mmsa-train", log_prints=True)
def train_flow(
    env: str | None = None,
    algo: str | None = None,
    steps: PositiveInt | None = None,
    seed: NonNegativeInt | None = None,
    device: Device = "auto",
    config: str | None = None,
    overrides: dict[str, Any] | None = None,
    run_dir: str | None = None,
    runs_root: str = "runs",
    resume: bool = False,
    torch_threads: PositiveInt | None = 1,
) -> str:
    """Train one run; returns its run directory. `None` values take TrainConfig's defaults.

    `config` is a YAML file of TrainConfig keys, `overrides` dotted keys applied on top
    (e.g. `{"algo_config.lr": 0.001}`); `run_dir` defaults to runs_root/<env>/<algo>/seed<s>-<time>.
    `torch_threads` (default 1: the small MARL networks run fastest on one thread) sets torch's
    intra-op threads; None leaves torch's default.
    """
    from .markdown import run_markdown
    from .training import default_run_dir

    resolved = validate_config(env, algo, steps, seed, config, overrides)
    target = run_dir or str(
        default_run_dir(Path(runs_root), resolved["env"], resolved["algo"], resolved["seed"])
    )
    out = train_task(resolved, target, device=device, resume=resume, torch_threads=torch_threads)
    create_markdown_artifact(
        key="mmsa-train",
        markdown=run_markdown(Path(out)),
        description=f"{resolved['algo']} on {resolved['env']}, seed {resolved['seed']}",
    )
    return out


@flow(name="mmsa-evaluate", log_prints=True)
def evaluate_flow(
    run_dir: str,
    episodes: PositiveInt = 32,
    device: Device = "auto",
    checkpoint: str | None = None,
) -> dict[str, float]:
    """Greedy evaluation of a run's final (or given) checkpoint, saved as evaluation.json."""
    from .markdown import run_markdown

    metrics = evaluate_task(run_dir, episodes, device, checkpoint)
    create_markdown_artifact(
        key="mmsa-evaluate",
        markdown=run_markdown(Path(run_dir)),
        description=f"evaluation of {run_dir} over {episodes} episodes",
    )
    return metrics


@flow(name="mmsa-render", log_prints=True)
def render_flow(
    run_dir: str,
    episodes: PositiveInt = 2,
    out: str | None = None,
    fps: Annotated[float, Field(gt=0)] = 4.0,
    device: Device = "cpu",
    checkpoint: str | None = None,
) -> str:
    """The greedy policy of a run's latest (or given) checkpoint drawn into a GIF (default
    `RUN_DIR/episode.gif`), shown in the UI as an artifact."""
    from .training import choose_device

    target = out or str(Path(run_dir) / "episode.gif")
    shown = render_task(run_dir, episodes, target, fps, choose_device(device), checkpoint)
    create_markdown_artifact(
        key="mmsa-render",
        markdown=render_markdown(shown, run_dir),
        description=f"{episodes} greedy episode(s) of {run_dir}",
    )
    print(f"{shown['frames']} frames -> {shown['out']}")
    return str(shown["out"])


@flow(name="mmsa-fanout")
def fanout_flow(
    jobs: list[dict[str, Any]],
    device: str,
    gpus_per_run: float,
    runner: str,
    torch_threads: int | None = 1,
) -> list[str]:
    """Train every job concurrently on this flow's task runner (set by mmsa-ablate)."""
    with gpu_annotation(runner, gpus_per_run):  # type: ignore[arg-type]
        futures = [
            train_task.submit(device=device, torch_threads=torch_threads, **job) for job in jobs
        ]
    return [f.result() for f in futures]


@flow(name="mmsa-ablate", log_prints=True)
def ablate_flow(
    variants: dict[str, Variant],
    env: str | None = None,
    seeds: Annotated[list[NonNegativeInt], Field(min_length=1)] = [0, 1],  # noqa: B006
    steps: PositiveInt | None = None,
    overrides: dict[str, Any] | None = None,
    device: Device = "auto",
    runs_root: str = "runs/ablate",
    runner: RunnerKind = "processes",
    max_workers: PositiveInt | None = None,
    dask_address: str | None = None,
    gpus_per_run: Annotated[float, Field(ge=0)] = 0.0,
    report: bool = True,
    out_dir: str | None = None,
    torch_threads: PositiveInt | None = 1,
) -> list[str]:
    """Train every variant x seed (fanned out on `runner`), then report them together.

    All configs are validated before any training starts. `runner="processes"` (default) runs each
    training in its own worker process: `mmsa_marl_core.train` seeds torch's process-global RNG,
    so runs sharing a process (`runner="threads"`) are not reproducible run by run.
    `runner="dask"` connects to the running scheduler at `dask_address`; `gpus_per_run` then
    reserves that many `GPU` worker resources per run.
    """
    from .training import default_run_dir, merge_overrides

    if not variants:
        raise ValueError("variants must name at least one variant")
    jobs = []
    for name, variant in variants.items():
        for seed in seeds:
            merged = merge_overrides(overrides or {}, variant.overrides)
            resolved = validate_config(env, variant.algo, steps, seed, None, merged)
            label = env or resolved["env"]
            run_dir = default_run_dir(Path(runs_root), resolved["env"], variant.algo, seed, name)
            jobs.append(
                {
                    "config": resolved,
                    "run_dir": str(run_dir),
                    "task_label": label,
                    "variant": name,
                }
            )
    task_runner = make_task_runner(runner, max_workers=max_workers, dask_address=dask_address)
    fanout = fanout_flow.with_options(task_runner=task_runner)
    run_dirs = fanout(jobs, device, gpus_per_run, runner, torch_threads)
    if report:
        target = out_dir or str(Path(runs_root) / "report")
        report_flow(runs=run_dirs, out_dir=target, title="MMSA ablation")
    return run_dirs


@flow(name="mmsa-report", log_prints=True)
def report_flow(
    runs: Annotated[list[str], Field(min_length=1)] = ["runs"],  # noqa: B006
    out_dir: str = "runs/report",
    baselines: dict[str, str] | None = None,
    title: str = "MMSA results",
    reps: PositiveInt = 2000,
    seed: NonNegativeInt = 0,
) -> str:
    """Tables (IQM/mean/median, bootstrap 95% CI), curves and charts of every run under `runs`."""
    markdown = report_task(runs, out_dir, baselines or {}, title, reps, seed)
    text = Path(markdown).read_text()
    create_markdown_artifact(
        key="mmsa-report",
        markdown=text + f"\nWritten to `{Path(out_dir).resolve()}`.\n",
        description=f"report of {len(runs)} run root(s)",
    )
    return markdown
