"""The graph cache both MMSA graphs use: one capture per key, and a failed capture falls back to
eager for good with a warning that says why (the CUDA replays themselves are in test_cuda)."""

from __future__ import annotations

import pytest

from mmsa_marl_core.imagination.acting_graph import GraphCache


def test_captures_once_per_key():
    cache: GraphCache[str] = GraphCache("acting")
    calls = []

    def capture(name):
        def run():
            calls.append(name)
            return f"graph {name}"

        return run

    assert cache._graph((1, 2), capture("a")) == "graph a"
    assert cache._graph((1, 2), capture("b")) == "graph a"  # held, not captured again
    assert cache._graph((8, 2), capture("c")) == "graph c"
    assert calls == ["a", "c"] and cache.captured == 2 and cache.failed is None


def test_a_failed_capture_warns_and_runs_eagerly_from_then_on():
    cache: GraphCache[str] = GraphCache("imagination")

    def broken():
        raise RuntimeError("operation not permitted when stream is capturing")

    with pytest.warns(RuntimeWarning, match="MMSA imagination: CUDA graph capture failed.*"
                      "operation not permitted"):  # fmt: skip
        assert cache._graph("k", broken) is None
    assert cache.failed == "RuntimeError: operation not permitted when stream is capturing"
    # No further capture is tried, for any key.
    assert cache._graph("other", lambda: pytest.fail("captured after a failure")) is None
    assert cache.captured == 0
