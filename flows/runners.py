"""Where fanned-out runs execute: Prefect's local task runners, or an existing Dask cluster.

- `processes` (mmsa-ablate's default): Prefect's `ProcessPoolTaskRunner`, one worker process per
  concurrent run. Runs do not share the interpreter, its torch thread pool or torch's global
  random generator, which `mmsa_marl_core.train` seeds: each run is reproducible from its seed.
- `threads`: Prefect's `ThreadPoolTaskRunner` in the flow's own process. No process start-up
  (seconds sooner), but concurrent runs interleave their draws from torch's global generator,
  so a run's result can depend on its neighbours' timing.
- `dask`: prefect-dask's `DaskTaskRunner` connected to a scheduler that already runs
  (`dask scheduler` + `dask worker ... --resources GPU=1` on each GPU host). The project never
  starts a cluster of its own for users; when `gpus_per_run > 0` each run is submitted with the
  Dask resource annotation `{"GPU": gpus_per_run}`, so the scheduler places at most as many
  concurrent runs on a worker as it has GPUs.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

__all__ = ["RunnerKind", "gpu_annotation", "make_task_runner"]

RunnerKind = Literal["threads", "processes", "dask"]


def make_task_runner(
    kind: RunnerKind = "threads",
    *,
    max_workers: int | None = None,
    dask_address: str | None = None,
) -> Any:
    """The Prefect task runner for `kind`; `dask` needs the address of a running scheduler."""
    if max_workers is not None and max_workers < 1:
        raise ValueError(f"max_workers={max_workers} must be >= 1 (or None for the default)")
    if kind == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=max_workers)
    if kind == "processes":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=max_workers)
    if kind == "dask":
        if not dask_address:
            raise ValueError(
                "runner='dask' needs dask_address, the address of a running Dask scheduler "
                "(e.g. 'tcp://10.0.0.5:8786')"
            )
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=dask_address)
    raise ValueError(f"runner={kind!r} is not allowed; use 'threads', 'processes' or 'dask'")


def gpu_annotation(kind: RunnerKind, gpus_per_run: float) -> AbstractContextManager[Any]:
    """Context in which submitted runs ask Dask workers for `gpus_per_run` GPUs (else a no-op)."""
    if gpus_per_run < 0:
        raise ValueError(f"gpus_per_run={gpus_per_run} must be >= 0")
    if kind != "dask" or gpus_per_run == 0:
        return nullcontext()
    import dask

    return dask.annotate(resources={"GPU": gpus_per_run})
