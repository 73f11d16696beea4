"""One writer per run directory: `RunLock(run_dir)` holds an exclusive `fcntl.flock` on
`run_dir/.lock` while a run trains, and names the holder (pid, host, start time, command) in it.

The kernel drops a `flock` when its process ends, however it ends (SIGKILL included), so a crash
never leaves a stale lock: the next run takes the lock over and rewrites the holder. A second
writer gets `RunLockedError` at once (no waiting), naming the holder. The lock file is removed
when the lock is released; a run directory at rest has none.

`remove_run_dir` deletes a run directory to start it afresh, under the same lock: a directory
another process is writing is left as it is (`RunLockedError`), not pulled from under it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

__all__ = ["LOCK_FILE", "RunLock", "RunLockedError", "remove_run_dir"]

LOCK_FILE = ".lock"


class RunLockedError(RuntimeError):
    """Another process is writing to this run directory."""


class RunLock:
    """Exclusive lock of one run directory; a context manager (`with RunLock(d): ...`).

    `create=False` refuses a directory that does not exist instead of creating it.
    """

    def __init__(self, run_dir: Path | str, *, create: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.create = create
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RunLock")
        if self.create:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        elif not self.run_dir.is_dir():
            raise FileNotFoundError(f"run directory {self.run_dir} does not exist")
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunLockedError(
                    f"{self.run_dir} is in use by another mmsa process ({self._holder()}); "
                    "wait for it to end, or choose another run directory"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            # the holder we waited on may have removed the file as we opened it: then our
            # lock is on a file nobody else sees, and we try again on the new one
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                self._write_holder()
                return
            os.close(fd)
        raise RunLockedError(f"{self.run_dir}: could not take {self.path} (it keeps changing)")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding it (see acquire)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _write_holder(self) -> None:
        assert self._fd is not None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, (json.dumps(holder) + "\n").encode(), 0)

    def _holder(self) -> str:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
            return (
                f"pid {holder['pid']} on host {holder['host']}, since {holder['since']}, "
                f"lock file {self.path}"
            )
        except (OSError, ValueError, KeyError, TypeError):
            return f"holder not recorded yet, lock file {self.path}"


def remove_run_dir(run_dir: Path | str) -> None:
    """Delete `run_dir` and everything in it (nothing when it does not exist), holding its lock
    while the contents go: `RunLockedError`, naming the holder and changing nothing, when another
    process is writing to it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return
    with RunLock(run_dir, create=False):
        for child in run_dir.iterdir():
            if child.name == LOCK_FILE:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    try:
        run_dir.rmdir()  # empty once the lock file went with the release
    except OSError:  # a new writer took it in between: its directory now
        pass
