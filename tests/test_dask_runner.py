"""The ablation fan-out on prefect-dask's DaskTaskRunner against a running 2-worker Dask cluster,
with GPUs as worker resources (each worker advertises GPU=1, each run asks for one)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.testing import Served, shared_served

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with shared_served(tmp_path_factory.mktemp("prefect")) as handle:
        yield handle


class Placement:
    """Scheduler plugin recording where each task ran and what resources it asked for."""

    name = "placement"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, float]]] = []

    def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish == "processing":
            task = self.scheduler.tasks[key]
            restrictions = dict(task.resource_restrictions or {})
            self.seen.append((str(key), task.processing_on.address, restrictions))


def test_ablation_fans_out_over_two_dask_workers(
    server: Served, tmp_path: Path, tiny_overrides: dict[str, int]
) -> None:
    from distributed import Client, LocalCluster
    from distributed.diagnostics.plugin import SchedulerPlugin
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.flows import ablate_flow

    plugin_cls = type("PlacementPlugin", (Placement, SchedulerPlugin), {})
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            resources={"GPU": 1},
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
        temporary_settings(updates={PREFECT_API_URL: server.api_url}),
    ):
        client.register_plugin(plugin_cls())
        workers = set(cluster.scheduler.workers)
        run_dirs = ablate_flow(
            variants={"qmix": {"algo": "qmix"}, "vdn": {"algo": "vdn"}},
            env="dummy",
            seeds=[0],
            steps=200,
            overrides=tiny_overrides,
            device="cpu",
            runs_root=str(tmp_path / "runs"),
            runner="dask",
            dask_address=cluster.scheduler_address,
            gpus_per_run=1,
            report=False,
        )
        placements = client.run_on_scheduler(
            lambda dask_scheduler: dask_scheduler.plugins["placement"].seen
        )
    assert len(workers) == 2
    trains = [p for p in placements if p[0].startswith("train_task")]
    assert len(trains) == 2
    # One run per worker: each asked for the worker's only GPU.
    assert {address for _, address, _ in trains} == workers
    assert all(resources == {"GPU": 1} for _, _, resources in trains)
    assert len(run_dirs) == 2
    for run in map(Path, run_dirs):
        meta = json.loads((run / "run.json").read_text())
        assert meta["status"] == "finished" and meta["env_steps"] >= 200
        assert (run / "results.parquet").is_file()
    assert {json.loads((Path(r) / "labels.json").read_text())["variant"] for r in run_dirs} == {
        "qmix",
        "vdn",
    }
