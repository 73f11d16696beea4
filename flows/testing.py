"""Test helpers: a real local Prefect server with the project's deployments, on a free port.

`served(tmp)` runs `python -m flows.serve start` exactly as `make serve` does, but with a
temporary PREFECT_HOME (database, logs, pid files, profiles) and a free loopback port, and
`python -m flows.serve stop` on exit, then checks that both process groups are gone. Test modules
share one server through `shared_served` (reference counted: the last user stops it), since a
server takes ~15-25 s to start on a small machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from .serve import REPO_ROOT

__all__ = ["Served", "free_port", "served", "shared_served"]


def free_port(host: str = "127.0.0.1") -> int:
    """A loopback port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Served:
    home: Path
    port: int
    env: dict[str, str]
    """Environment for subprocesses (prefect CLI, python) that should talk to this server."""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def pids(self) -> dict[str, int]:
        out = {}
        for name in ("server", "serve"):
            path = self.home / f"{name}.pid"
            if path.is_file():
                out[name] = int(json.loads(path.read_text())["pid"])
        return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@contextmanager
def served(tmp: Path, *, timeout: float = 240.0) -> Iterator[Served]:
    """Start server + serve process in `tmp`; stop both on exit and check they are gone."""
    home = Path(tmp) / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(home),
        "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # The web UI is for people; tests use the API, and the server starts ~5 s sooner.
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
    }
    handle = Served(home=home, port=port, env=env)
    command = [sys.executable, "-m", "flows.serve"]
    try:
        subprocess.run(
            [*command, "start", "--timeout", str(timeout)],
            cwd=REPO_ROOT,
            env=env,
            check=True,
            timeout=timeout + 30,
        )
        yield handle
    finally:
        pids = handle.pids()
        subprocess.run([*command, "stop"], cwd=REPO_ROOT, env=env, check=False, timeout=120)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(p) for p in pids.values()):
            time.sleep(0.2)
        left = {name: pid for name, pid in pids.items() if _alive(pid)}
        if left:
            raise RuntimeError(f"processes still alive after `flows.serve stop`: {left}")


class _Shared:
    users = 0
    handle: Served | None = None
    context: AbstractContextManager[Served] | None = None


@contextmanager
def shared_served(tmp: Path) -> Iterator[Served]:
    """`served`, shared by every caller in this process until the last one exits."""
    if _Shared.users == 0:
        starting = served(tmp)
        _Shared.handle = starting.__enter__()
        _Shared.context = starting
    _Shared.users += 1
    try:
        assert _Shared.handle is not None
        yield _Shared.handle
    finally:
        _Shared.users -= 1
        if _Shared.users == 0:
            ending, _Shared.context, _Shared.handle = _Shared.context, None, None
            if ending is not None:
                ending.__exit__(None, None, None)
