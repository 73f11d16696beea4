"""CUDA-graph replay of the MMSA acting step, and the capture both MMSA graphs share.

Acting is one step of the SALE agent for every env row: the GRU, the fixed encoder's ``z^o`` and
``z^oa`` of every action, ``phi^oa`` and the Q head. On a GPU that is some forty tiny kernels per
env step, and with one or a few envs their launches, not their arithmetic, set the speed of data
collection. `ActingGraphs` captures the step once per batch shape and replays it as one launch.

The step draws no random numbers (exploration is numpy's, in ``epsilon_greedy``) and reads back
nothing, and the agent and the encoders are updated in place (the optimiser, ``load_state_dict``,
the TD7 encoder chain), so a replay gives what the eager step gives with the current weights.
Under autocast, on the CPU, with ``enabled=False``, or after a failed capture (a warning says
why), the step runs eagerly.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import torch
from torch import Tensor

from mmsa_sale import Encoder

from ..networks.sale_agent import SALEAgent, agent_inputs

__all__ = ["ActingGraphs", "GraphCache", "capture_graph"]

T = TypeVar("T")
G = TypeVar("G")


def capture_graph(fn: Callable[[], T], device: torch.device) -> tuple[torch.cuda.CUDAGraph, T]:
    """Capture ``fn()`` (which reads and writes only fixed buffers) as a CUDA graph.

    Warm-up runs on a side stream first, so cuBLAS/cuDNN handles and workspaces are made outside
    the graph; warm-up and capture run under `torch.random.fork_rng`, so they consume none of
    the run's random numbers. Returns the graph and the output of the captured call, whose
    memory each replay rewrites.
    """
    with torch.random.fork_rng(devices=[device]):
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(2):
                fn()
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = fn()
    return graph, out


class GraphCache(Generic[G]):
    """Captured graphs by key, and why a capture failed (then the owner runs eagerly)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._graphs: dict[Hashable, G] = {}
        self.failed: str | None = None
        """Why a capture failed (then every call runs eagerly); None while none has."""

    @property
    def captured(self) -> int:
        """How many graphs are held."""
        return len(self._graphs)

    def _graph(self, key: Hashable, capture: Callable[[], G]) -> G | None:
        """The graph for ``key``, captured on first use; None (with a warning, and from then on
        for every key) if the capture fails."""
        if self.failed is not None:
            return None
        graph = self._graphs.get(key)
        if graph is None:
            try:
                graph = capture()
            except RuntimeError as err:  # e.g. an operation that a capture does not allow
                self.failed = f"{type(err).__name__}: {err}"
                warnings.warn(
                    f"MMSA {self.what}: CUDA graph capture failed, running eagerly ({self.failed})",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return None
            self._graphs[key] = graph
        return graph


class ActingGraphs(GraphCache["_StepGraph"]):
    """One acting step of ``agent`` with ``encoder`` (module docstring): from obs ``[B, N, O]``,
    hidden ``[B, N, H]`` and last action ``[B, N, A]`` one-hot to ``(q [B, N, A], next hidden)``.

    Args:
        agent: the online SALE agent.
        encoder: the encoder copy it acts with (TD7's fixed copy), or None without SALE.
        enabled: False always runs eagerly (``MMSAConfig.cuda_graphs``).
    """

    def __init__(self, agent: SALEAgent, encoder: Encoder | None, *, enabled: bool = True) -> None:
        super().__init__("acting")
        self.agent, self.encoder, self.enabled = agent, encoder, enabled

    def __deepcopy__(self, memo: dict[int, Any]) -> ActingGraphs:
        # A copy acts with the copied modules and captures its own graphs.
        return ActingGraphs(
            copy.deepcopy(self.agent, memo), copy.deepcopy(self.encoder, memo), enabled=self.enabled
        )

    def __call__(self, obs: Tensor, hidden: Tensor, last_action: Tensor) -> tuple[Tensor, Tensor]:
        """``(q, next hidden)``, new tensors (a later call does not overwrite them)."""
        graph = None
        if self.enabled and obs.device.type == "cuda" and not torch.is_autocast_enabled("cuda"):
            # Hidden and action sizes are fixed by the agent: the obs shape is the whole key.
            graph = self._graph(tuple(obs.shape), lambda: self._capture(obs, hidden, last_action))
        if graph is None:
            return self._eager(obs, hidden, last_action)
        return graph.run(obs, hidden, last_action)

    def _eager(self, obs: Tensor, hidden: Tensor, last_action: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            return self.agent(agent_inputs(obs, last_action), hidden, self.encoder)

    def _capture(self, obs: Tensor, hidden: Tensor, last_action: Tensor) -> _StepGraph:
        static = (obs.clone(), hidden.clone(), last_action.clone())
        graph, out = capture_graph(lambda: self._eager(*static), obs.device)
        return _StepGraph(graph, static, out)


class _StepGraph:
    """One captured acting step: its static input buffers, the graph, its static outputs."""

    def __init__(
        self,
        graph: torch.cuda.CUDAGraph,
        static: tuple[Tensor, Tensor, Tensor],
        out: tuple[Tensor, Tensor],
    ) -> None:
        self.graph, self.static, self.out = graph, static, out

    def run(self, obs: Tensor, hidden: Tensor, last_action: Tensor) -> tuple[Tensor, Tensor]:
        for buf, t in zip(self.static, (obs, hidden, last_action), strict=True):
            buf.copy_(t)
        self.graph.replay()
        q, next_hidden = self.out
        return q.clone(), next_hidden.clone()
