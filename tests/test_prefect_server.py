"""A real local Prefect server and serve process (as `make serve` starts them), one deployment run
to completion through the `prefect` CLI, its outputs and artifacts, and parameter validation."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from flows.serve import DEPLOYMENTS, REPO_ROOT
from flows.testing import Served, shared_served

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREFECT = [sys.executable, "-m", "prefect"]
# Small enough for a test: two collection rounds of 4 LBF episodes and two evaluations.
TINY = {"eval_every": 200, "log_every": 200, "eval_episodes": 4, "n_envs": 4, "batch_size": 4}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with shared_served(tmp_path_factory.mktemp("prefect")) as handle:
        yield handle


def prefect_cli(served: Served, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PREFECT, *args],
        cwd=REPO_ROOT,
        env=served.env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_every_deployment_is_served(server: Served) -> None:
    for name in DEPLOYMENTS:
        deployment = _api(server, f"deployments/name/{name}")
        assert deployment["status"] == "READY", name  # polled by the serve process
    # Clients find the server through the profile `flows.serve start` activated.
    profiles = (server.home / "profiles.toml").read_text()
    assert f'PREFECT_API_URL = "{server.api_url}"' in profiles


def test_train_deployment_runs_to_completion(server: Served, tmp_path: Path) -> None:
    runs_root = tmp_path / "runs"
    out = prefect_cli(
        server,
        "deployment",
        "run",
        "mmsa-train/lbf-smoke",
        "--param",
        "steps=400",
        "--param",
        f"overrides={json.dumps(TINY)}",
        "--param",
        f"runs_root={runs_root}",
        "--watch",
        "--watch-timeout",
        "200",
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Completed" in out.stdout
    run_dirs = [p.parent for p in runs_root.rglob("run.json")]
    assert len(run_dirs) == 1
    run = run_dirs[0]
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "finished" and meta["config"]["env"].startswith("lbf:Foraging-5x5")
    assert meta["env_steps"] >= 400
    results = pl.read_parquet(run / "results.parquet")
    assert set(results["kind"]) == {"train", "eval"} and set(results["algo"]) == {"qmix"}
    assert any((run / "tb").glob("events.out.tfevents.*"))

    # The markdown artifact of this flow run names the run directory.
    flow_run_id = re.search(r"flow-run/([0-9a-f-]{36})", out.stdout)
    assert flow_run_id, out.stdout
    artifacts = _artifacts(server, flow_run_id.group(1))
    markdown = [a for a in artifacts if a["type"] == "markdown" and a["key"] == "mmsa-train"]
    assert markdown and str(run.resolve()) in markdown[0]["data"]
    assert "final eval return" in markdown[0]["data"]


def test_bad_parameters_get_validation_errors(server: Served) -> None:
    out = prefect_cli(server, "deployment", "run", "mmsa-train/lbf-smoke", "--param", "steps=-5")
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "steps" in text and "minimum" in text  # the server's schema check, not a traceback
    assert "Traceback" not in text


def _api(served: Served, path: str, body: dict | None = None) -> dict | list:
    """GET (or POST `body` to) the server's REST API."""
    import urllib.request

    request = urllib.request.Request(
        f"{served.api_url}/{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def _artifacts(served: Served, flow_run_id: str) -> list[dict]:
    body = {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
    found = _api(served, "artifacts/filter", body)
    assert isinstance(found, list)
    return found


def test_start_refuses_a_port_in_use_and_stop_is_idempotent(tmp_path: Path) -> None:
    import os
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env |= {"PREFECT_HOME": str(tmp_path), "PREFECT_SERVER_API_PORT": str(port)}
        env["PREFECT_PROFILES_PATH"] = str(tmp_path / "profiles.toml")
        command = [sys.executable, "-m", "flows.serve"]
        out = subprocess.run(
            [*command, "start"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
        )
        assert out.returncode == 1
        assert f"port {port} on 127.0.0.1 is already in use" in out.stderr
        assert "PREFECT_SERVER_API_PORT" in out.stderr
        assert not (tmp_path / "server.pid").exists()
    out = subprocess.run([*command, "stop"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0 and "nothing was running" in out.stdout


def test_evaluate_collect_and_report_flows(server: Served, tmp_path: Path) -> None:
    """The other flows, called in-process against the server (as a script would)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.flows import collect_flow, evaluate_flow, render_flow, report_flow
    from flows.training import build_config, run_training

    tiny = {**TINY, "buffer_size": 64, "checkpoint_every": 100, "eval_every": 100}
    config = build_config(env="dummy", algo="vdn", steps=200, overrides=tiny)
    run = run_training(config, tmp_path / "run", device="cpu", torch_threads=1)
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        metrics = evaluate_flow(run_dir=str(run), episodes=4, device="cpu")
        random_set = collect_flow(env="dummy", episodes=6, out=str(tmp_path / "random"))
        greedy_set = collect_flow(policy_run=str(run), episodes=4, out=str(tmp_path / "greedy"))
        report = report_flow(
            runs=[str(run)],
            out_dir=str(tmp_path / "report"),
            baselines={"dummy": random_set},
            reps=100,
        )
        gif = render_flow(run_dir=str(run), episodes=1, device="cpu")
    assert (
        json.loads((run / "evaluation.json").read_text())["return_mean"] == metrics["return_mean"]
    )
    assert random_set.endswith("random.npz") and Path(greedy_set).is_file()
    text = Path(report).read_text()
    assert "## Random policy" in text and "| dummy | vdn | 1 |" in text
    artifacts = _api(server, "artifacts/filter", {"limit": 200})
    keys = {a["key"] for a in artifacts}
    assert {"mmsa-evaluate", "mmsa-collect", "mmsa-report", "mmsa-render"} <= keys
    # the render artifact carries the GIF itself, as the file on disk
    shown = next(a for a in artifacts if a["key"] == "mmsa-render")["data"]
    embedded = shown.split("(data:image/gif;base64,")[1].split(")")[0]
    assert base64.b64decode(embedded) == Path(gif).read_bytes()
    with Image.open(gif) as img:
        assert img.n_frames >= 2
