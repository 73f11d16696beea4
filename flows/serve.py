"""A local Prefect server and one `serve` process with the project's deployments.

    python -m flows.serve start     # `make serve`
    prefect deployment run mmsa-train/lbf-smoke --watch
    python -m flows.serve status
    python -m flows.serve stop      # `make serve-stop`

`start` launches `prefect server start` in the background (its own process group, pid and log in
PREFECT_HOME: `.prefect/server.pid`, `.prefect/server.log`), waits until `/api/health` answers,
activates a Prefect profile pointing the client at it (so `prefect deployment run ...` from the
repo root reaches it), then launches `python -m flows.serve serve` (`.prefect/serve.pid`,
`.prefect/serve.log`) and waits until every deployment is registered. `stop` ends both process
groups (SIGTERM, then SIGKILL after a grace period) and switches the profile back.

Host, port and home come from Prefect's settings: `prefect.toml` in the repo root, overridden by
PREFECT_SERVER_API_HOST / PREFECT_SERVER_API_PORT / PREFECT_HOME (the tests use a free port and
a temporary home).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "DEPLOYMENTS",
    "PROFILE_NAME",
    "ServerState",
    "deployments",
    "main",
    "smoke_parameters",
    "start",
    "status",
    "stop",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
PROFILE_NAME = "mmsa-local-server"
DEPLOYMENTS = (
    "mmsa-train/lbf-smoke",
    "mmsa-train/default",
    "mmsa-ablate/lbf-smoke",
    "mmsa-evaluate/default",
    "mmsa-render/default",
    "mmsa-report/default",
)


def smoke_parameters() -> dict[str, Any]:
    """The smoke profile of the DVC pipeline (flows/conf/profile/smoke.yaml), as flow parameters:
    its first task's env, steps and overrides, its algos and seeds. One home for those settings."""
    import yaml

    from .stages import CONF_DIR
    from .training import merge_overrides

    profile = yaml.safe_load((CONF_DIR / "profile" / "smoke.yaml").read_text())
    task = profile["task_defs"][profile["tasks"][0]]
    return {
        "env": task["env"],
        "steps": int(task["steps"]),
        "overrides": merge_overrides(profile["train"]["overrides"] or {}, task["overrides"] or {}),
        "variants": {
            name: {"algo": profile["algo_defs"][name]["algo"],
                   "overrides": profile["algo_defs"][name].get("overrides") or {}}
            for name in profile["algos"]
        },
        "seeds": list(profile["seeds"]),
    }  # fmt: skip


def deployments() -> list[Any]:
    """The served deployments (names in DEPLOYMENTS); parameters given here are only defaults."""
    from prefect.deployments.runner import EntrypointType

    from .flows import ablate_flow, evaluate_flow, render_flow, report_flow, train_flow

    # Module entrypoints (`flows.flows:train_flow`): the runs import the package normally.
    # A file entrypoint (`flows/flows.py:train_flow`) would make Prefect load flows.py as a
    # top-level module with flows/ on sys.path, where a module named like a standard-library one
    # (flows.tensorboard once was flows.logging) would shadow it in every process the run spawns.
    module = EntrypointType.MODULE_PATH
    smoke = smoke_parameters()
    train_smoke = {k: smoke[k] for k in ("env", "steps", "overrides")}
    return [
        train_flow.to_deployment(
            name="lbf-smoke",
            parameters={**train_smoke, "algo": "qmix", "seed": 0},
            description=(
                f"QMIX on {smoke['env']} for {smoke['steps']} env steps (the smoke profile's "
                "settings; minutes on CPU)."
            ),
            tags=["smoke"],
            entrypoint_type=module,
        ),
        train_flow.to_deployment(
            name="default",
            description="One training run; unset parameters take TrainConfig's.",
            entrypoint_type=module,
        ),
        ablate_flow.to_deployment(
            name="lbf-smoke",
            parameters={**train_smoke, "variants": smoke["variants"], "seeds": smoke["seeds"]},
            description=(
                f"{', '.join(smoke['variants'])} x seeds {smoke['seeds']} on {smoke['env']} "
                "(the smoke profile), then a report."
            ),
            tags=["smoke"],
            entrypoint_type=module,
        ),
        evaluate_flow.to_deployment(
            name="default",
            description="Greedy evaluation of a run directory (run_dir=...).",
            entrypoint_type=module,
        ),
        render_flow.to_deployment(
            name="default",
            description="A GIF of a run's greedy policy (run_dir=...), shown as an artifact.",
            entrypoint_type=module,
        ),
        report_flow.to_deployment(
            name="default",
            parameters={"runs": ["runs"], "out_dir": "runs/report"},
            description="Report of every run under runs/ into runs/report/.",
            entrypoint_type=module,
        ),
    ]


# --------------------------------------------------------------------------- state
@dataclass(frozen=True)
class ServerState:
    home: Path
    host: str
    port: int

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    def pid_file(self, name: str) -> Path:
        return self.home / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.home / f"{name}.log"


def _state() -> ServerState:
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    home = Path(settings.home).expanduser()
    home = (home if home.is_absolute() else Path.cwd() / home).resolve()
    return ServerState(home=home, host=settings.server.api.host, port=settings.server.api.port)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def _read_pid(path: Path) -> int | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    pid = int(data["pid"])
    # Guard against a reused pid: the process must still run the command we started.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return None
    # An empty command line: the process is between fork and exec (just spawned); it is ours.
    return pid if (not cmdline or data["marker"] in cmdline) and _alive(pid) else None


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError):
        return 0, ""


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _spawn(state: ServerState, name: str, argv: list[str], marker: str, env: dict[str, str]) -> int:
    log = state.log_file(name).open("ab")
    process = subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stop() ends its children too
    )
    log.close()
    state.pid_file(name).write_text(json.dumps({"pid": process.pid, "marker": marker}) + "\n")
    return process.pid


def _wait(what: str, ready: Any, state: ServerState, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if _read_pid(state.pid_file(name)) is None:
            raise RuntimeError(
                f"{name} process exited before {what}; last lines of {state.log_file(name)}:\n"
                + _tail(state.log_file(name))
            )
        time.sleep(0.5)
    raise TimeoutError(
        f"{what} did not happen within {timeout:.0f} s; see {state.log_file(name)}:\n"
        + _tail(state.log_file(name))
    )


# --------------------------------------------------------------------------- profile
def _use_profile(api_url: str | None) -> None:
    """Point the Prefect client at `api_url` through a profile of our own, or (None) drop that
    profile and go back to the default ephemeral one. Other profiles in the file are kept."""
    from prefect.settings import PREFECT_API_URL, load_profiles, save_profiles

    profiles = load_profiles(include_defaults=True)
    if api_url is not None:
        profiles.update_profile(PROFILE_NAME, {PREFECT_API_URL: api_url})
        profiles.set_active(PROFILE_NAME)
    elif PROFILE_NAME in profiles.names:
        if profiles.active_name == PROFILE_NAME:
            profiles.set_active("ephemeral")
        profiles.remove_profile(PROFILE_NAME)
    save_profiles(profiles)


# --------------------------------------------------------------------------- commands
def start(*, timeout: float = 180.0) -> ServerState:
    """Start the server and the serve process (no-op for whichever already runs)."""
    state = _state()
    state.home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env |= {
        "PREFECT_HOME": str(state.home),
        "PREFECT_SERVER_API_HOST": state.host,
        "PREFECT_SERVER_API_PORT": str(state.port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    health = f"{state.api_url}/health"
    began = time.monotonic()
    if _read_pid(state.pid_file("server")) is None:
        if _port_in_use(state.host, state.port):
            raise RuntimeError(
                f"port {state.port} on {state.host} is already in use by another process; "
                "choose another with PREFECT_SERVER_API_PORT=<port> (or in prefect.toml)"
            )
        argv = [sys.executable, "-m", "prefect", "server", "start"]
        argv += ["--host", state.host, "--port", str(state.port)]
        _spawn(state, "server", argv, "server start", env)
        print(f"Prefect server starting at {state.api_url} (log: {state.log_file('server')})")
    _wait(
        "the server answered /api/health", lambda: _get(health)[0] == 200, state, "server", timeout
    )
    print(f"server healthy after {time.monotonic() - began:.0f} s")
    _use_profile(state.api_url)
    since = datetime.min.replace(tzinfo=timezone.utc)
    if _read_pid(state.pid_file("serve")) is None:
        since = datetime.now(timezone.utc)
        argv = [sys.executable, "-m", "flows.serve", "serve"]
        _spawn(state, "serve", argv, "flows.serve serve", env | {"PREFECT_API_URL": state.api_url})
        print(f"serving deployments (log: {state.log_file('serve')})")

    def polled() -> bool:
        # Ready = the serve process has polled each deployment for runs since it started, not
        # merely "the deployment exists" (it stays in the database from an earlier session).
        for name in DEPLOYMENTS:
            code, body = _get(f"{state.api_url}/deployments/name/{name}")
            last = json.loads(body).get("last_polled") if code == 200 else None
            if not last or datetime.fromisoformat(last.replace("Z", "+00:00")) < since:
                return False
        return True

    _wait("every deployment was polled by the serve process", polled, state, "serve", timeout)
    print(f"deployments ready after {time.monotonic() - began:.0f} s")
    print(f"Prefect UI: http://{state.host}:{state.port}  deployments: {', '.join(DEPLOYMENTS)}")
    return state


def stop(*, grace: float = 20.0) -> list[str]:
    """Stop the serve process, then the server; returns the names of what was stopped."""
    state = _state()
    stopped = []
    for name in ("serve", "server"):
        pid = _read_pid(state.pid_file(name))
        if pid is not None:
            _kill_group(pid, grace)
            stopped.append(name)
        state.pid_file(name).unlink(missing_ok=True)
    _use_profile(None)
    return stopped


def _kill_group(pid: int, grace: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)  # whatever is left of the group, leader included
    except ProcessLookupError:
        pass


def status() -> dict[str, Any]:
    state = _state()
    return {
        "api_url": state.api_url,
        "server_pid": _read_pid(state.pid_file("server")),
        "serve_pid": _read_pid(state.pid_file("serve")),
        "healthy": _get(f"{state.api_url}/health")[0] == 200,
    }


def _serve_forever() -> None:
    from prefect import serve

    serve(*deployments())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.serve", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["start", "stop", "status", "serve"])
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait at start")
    args = parser.parse_args(argv)
    if args.command == "start":
        try:
            start(timeout=args.timeout)
        except (RuntimeError, TimeoutError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            stop()
            return 1
    elif args.command == "stop":
        stopped = stop()
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    elif args.command == "status":
        print(json.dumps(status(), indent=2))
    else:
        _serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
