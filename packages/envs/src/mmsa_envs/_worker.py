"""The slots a `VectorEnv` steps: some of its envs in a worker process, or in this process.

A slot holds the envs of some rows and answers three requests (`reset`, `step`, `close`) for
a list of its rows at once, through `send` then `recv`; the vector env sends to every slot
first and then collects, so worker processes step in parallel. Several envs per worker keep
the per-step messages (and context switches) to one per worker, which is what lets B envs on
2 cores beat one env. Requests, observations, actions, rewards and ends travel through shared
arrays (`Buffers`); the pipe carries a one-byte request and the pickled infos back. A worker
that dies shows up as `WorkerCrashed` from `recv` (its pipe reaches EOF); `restart()` starts a
fresh one with fresh envs.

With auto-reset, a `step` request carries the episode counter to use if the episode ends, and
the worker resets at once with `episode_seed(seed, row, counter)`: one round trip per step.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import traceback
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ._buffers import Buffers
from ._core import EnvSpec, MultiAgentEnv
from ._seeding import episode_seed

__all__ = ["CLOSE", "RESET", "STEP", "LocalSlot", "ProcessSlot", "RemoteError", "WorkerCrashed"]

RESET, STEP, CLOSE = b"r", b"s", b"c"
"""Requests: reset every row of the slot (seeds in `Buffers`), step its active rows, stop."""


class WorkerCrashed(RuntimeError):
    """The worker process of a slot died (killed, segfault, out of memory)."""


class RemoteError(RuntimeError):
    """The env inside a worker raised; carries the original exception and its traceback."""

    def __init__(self, rows: list[int], error: BaseException, tb: str) -> None:
        super().__init__(
            f"an env of rows {rows} raised {type(error).__name__}: {error}\nworker {tb}"
        )
        self.error = error


def _plain(info: Mapping[str, Any]) -> dict[str, Any]:
    """`info` with numpy scalars as Python ones: they pickle ~10x faster."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in info.items()}


class _Envs:
    """The envs of one slot, by row, and the requests on them.

    Requests and results go through `buffers`; `handle` returns the infos of the rows it
    touched (in row order), or None when they are all empty.
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: Mapping[str, Any],
        seed: int,
        rows: Sequence[int],
        buffers: Buffers,
    ) -> None:
        self.seed = seed
        self.rows = list(rows)
        self.buffers = buffers
        self.envs = {row: _make(env_id, env_kwargs) for row in self.rows}
        self.spec: EnvSpec = self.envs[self.rows[0]].spec

    def handle(self, cmd: bytes) -> list[dict[str, Any]] | None:
        buf = self.buffers
        arr = buf.arrays
        infos: list[dict[str, Any]] = []
        if cmd == RESET:  # every row of the slot, with the seeds in the buffers
            for row in self.rows:
                step = self.envs[row].reset(seed=int(arr["seed"][row]))
                buf.write(row, step)
                buf.write(row, step, final=True)
                infos.append(_plain(step.info))
        elif cmd == STEP:  # the active rows; counter >= 0 means: reset with it if it ends
            actions, counters, active = arr["actions"], arr["counter"], arr["active"]
            for row in self.rows:
                if not active[row]:
                    continue
                env = self.envs[row]
                step = env.step(actions[row].copy())  # the shared row is rewritten next step
                counter = int(counters[row])
                reset = step.done and counter >= 0
                if counter >= 0:
                    buf.write(row, step, final=True)
                if reset:
                    buf.write(row, env.reset(seed=episode_seed(self.seed, row, counter)))
                else:
                    buf.write(row, step)
                arr["reward"][row] = step.reward
                arr["terminated"][row] = step.terminated
                arr["truncated"][row] = step.truncated
                arr["reset"][row] = reset
                infos.append(_plain(step.info))
        else:
            raise ValueError(f"unknown request {cmd!r}")
        return infos if any(infos) else None

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


def _make(env_id: str, env_kwargs: Mapping[str, Any]) -> MultiAgentEnv:
    from ._registry import make

    return make(env_id, **env_kwargs)


def worker_main(
    conn: Connection,
    env_id: str,
    env_kwargs: Mapping[str, Any],
    seed: int,
    rows: list[int],
    buffers: Buffers,
) -> None:
    """Body of a worker process: build the envs of `rows`, then answer requests until `close`."""
    # Ctrl-C goes to the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        envs = _Envs(env_id, env_kwargs, seed, rows, buffers)
    except BaseException as err:  # report construction errors instead of dying silently
        conn.send(("error", (_picklable(err), traceback.format_exc())))
        return
    conn.send(("ok", envs.spec))
    while True:
        try:
            cmd = conn.recv_bytes()
        except (EOFError, OSError):
            break
        if cmd == CLOSE:
            envs.close()
            conn.send(("ok", None))
            break
        try:
            conn.send(("ok", envs.handle(cmd)))
        except Exception as err:
            conn.send(("error", (_picklable(err), traceback.format_exc())))
    conn.close()


def _picklable(err: BaseException) -> BaseException:
    import pickle

    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")


class LocalSlot:
    """Envs in this process; `send` runs the request, `recv` returns its result."""

    pid: int | None = None

    def __init__(
        self,
        env_id: str,
        env_kwargs: Mapping[str, Any],
        seed: int,
        rows: Sequence[int],
        buffers: Buffers,
    ) -> None:
        self.rows = list(rows)
        self._envs = _Envs(env_id, env_kwargs, seed, self.rows, buffers)
        self.spec: EnvSpec = self._envs.spec
        self._result: Any = None

    def send(self, cmd: bytes) -> None:
        self._result = self._envs.handle(cmd)

    def recv(self) -> Any:
        result, self._result = self._result, None
        return result

    def restart(self) -> None:  # an in-process env cannot crash without taking us with it
        raise WorkerCrashed("in-process envs are never restarted")

    def close(self) -> None:
        self._envs.close()


class ProcessSlot:
    """Envs in a worker process, talked to through a pipe and shared arrays."""

    def __init__(
        self,
        env_id: str,
        env_kwargs: Mapping[str, Any],
        seed: int,
        rows: Sequence[int],
        buffers: Buffers,
        context: mp.context.BaseContext,
    ) -> None:
        self.rows = list(rows)
        self._args = (env_id, dict(env_kwargs), seed, self.rows, buffers)
        self._context = context
        self._crashed = False
        self._start()

    def _start(self) -> None:
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(  # type: ignore[attr-defined]
            target=worker_main,
            args=(child, *self._args),
            name=f"mmsa-envs-{self.rows[0]}-{self.rows[-1]}",
            daemon=True,
        )
        process.start()
        child.close()  # only the worker holds the child end, so its death gives us EOF
        self._conn, self._process = parent, process
        self._crashed = False
        kind, payload = self._receive()
        if kind == "error":
            self._process.join(timeout=5)
            error, tb = payload
            raise RemoteError(self.rows, error, tb) from error
        self.spec: EnvSpec = payload

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def _receive(self) -> tuple[str, Any]:
        try:
            return self._conn.recv()  # type: ignore[no-any-return]
        except (EOFError, ConnectionResetError, BrokenPipeError, OSError) as err:
            raise WorkerCrashed(
                f"env worker of rows {self.rows} (pid {self._process.pid}) died, "
                f"exit code {self._process.exitcode}"
            ) from err

    def send(self, cmd: bytes) -> None:
        try:
            self._conn.send_bytes(cmd)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self._crashed = True  # reported by the matching recv()

    def recv(self) -> Any:
        if self._crashed:
            raise WorkerCrashed(f"env worker of rows {self.rows} (pid {self._process.pid}) died")
        kind, payload = self._receive()
        if kind == "error":
            error, tb = payload
            raise RemoteError(self.rows, error, tb) from error
        return payload

    def restart(self) -> None:
        self._kill()
        self._start()

    def _kill(self) -> None:
        self._conn.close()
        if self._process.is_alive():
            self._process.kill()
        self._process.join(timeout=5)

    def close(self) -> None:
        if self._process.is_alive() and not self._crashed:
            try:
                self._conn.send_bytes(CLOSE)
                if self._conn.poll(5):
                    self._conn.recv()
            except (EOFError, OSError):
                pass
            self._process.join(timeout=5)
        self._kill()
