"""`known_noise_dropped`: drop the messages a backend prints that are known to say nothing about
the run, and let every other message through once.

MuJoCo writes its compiler warnings straight to file descriptor 2 (one per model compiled, i.e.
per env, per worker), and gymnasium-robotics prints a notice about environments this package
never builds at import. Both flood a run's output without telling the user anything about it.
What a backend writes meanwhile is captured at the descriptor level and, after the block, every
line that matches none of `KNOWN_NOISE` is written back to stderr, each distinct line once per
process: a new or real warning is never hidden, only its repeats.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["KNOWN_NOISE", "known_noise_dropped"]

KNOWN_NOISE: tuple[str, ...] = (
    # MuJoCo >= 3.3 about the `settotalmass` attribute of gymnasium-robotics' bundled XML models;
    # the models compile and behave as before.
    "compiler attribute 'settotalmass' is deprecated",
    # gymnasium-robotics' import-time notice about its Adroit hand environments' rewards.
    "AdroitHandRelocateDense-v1, AdroitHandHammerDense-v1, AdroitHandDoorDense-v1",
)
"""Substrings of lines that are dropped: each names a message and why it is harmless."""

_said: set[str] = set()


@contextlib.contextmanager
def known_noise_dropped(known: tuple[str, ...] = KNOWN_NOISE) -> Iterator[None]:
    """Capture stderr (descriptor 2 and `sys.stderr`) during the block; afterwards write back
    each line matching none of `known` that this process has not written back already."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no descriptor 2: nothing to capture
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            kept = []
            for line in text.splitlines():
                if not line.strip() or any(k in line for k in known) or line in _said:
                    continue
                _said.add(line)
                kept.append(line)
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()
