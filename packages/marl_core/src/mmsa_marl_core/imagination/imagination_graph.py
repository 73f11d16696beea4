"""CUDA-graph replay of the discrete learner's imagination (`rollout.imagined_features`).

On a GPU the MMSA update is bound by the host: most of its kernels are tiny, and the time goes
to launching them, not to running them (on an H200 the GPU is busy about a quarter of an update).
The imagination — ``H`` steps of the world model and the agents from every real posterior state,
without gradient — is several hundred of those launches. `ImaginationGraphs` captures it once per
batch size and replays it as one launch.

What the capture relies on, arranged here:

- fixed shapes: the ``M`` start rows are padded up to a multiple of ``bucket`` (one graph per
  padded size); the padding rows are finite and dropped from the output;
- nothing read back inside: the per-step range check of the policy's actions is skipped
  (`WorldModel.imagine_features(check_actions=False)`); the greedy policy returns argmax indices,
  in range by construction;
- stable memory: the world model, the agent and the encoder are updated in place (the optimiser,
  ``load_state_dict``, the TD7 encoder chain), and a replay reads their current weights;
- random draws: warm-up and capture run under `torch.random.fork_rng` (`acting_graph.capture_graph`,
  shared with the acting step's graphs), so they consume none of the run's random numbers; each
  replay draws from the CUDA generator and advances it, like an eager call, so a killed and
  resumed run replays the same numbers as a straight one;
- float32 only: under a ``bf16`` `update_precision` (autocast) the imagination runs eagerly.

If a capture fails, a warning says why and the imagination runs eagerly from then on; the results
differ from the graph's only in which random numbers the latents draw. On the CPU it always runs
eagerly (and gives exactly the eager results).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor

from mmsa_sale import Encoder
from mmsa_worldmodel import ModelState

from ..networks.sale_agent import SALEAgent
from ..ops.precision import low_precision_dtype
from .acting_graph import GraphCache, capture_graph
from .rollout import imagined_features

__all__ = ["ImaginationGraphs"]


class ImaginationGraphs(GraphCache["_Graph"]):
    """`imagined_features` for one world model, agent and encoder; replayed from CUDA graphs on
    a GPU (module docstring), eager elsewhere.

    Args:
        world_model: an ``mmsa_worldmodel.WorldModel``.
        agent: the online agent that acts greedily in imagination.
        encoder: the encoder copy it acts with (TD7's fixed copy), or None without SALE.
        horizon: ``H``.
        enabled: False always runs eagerly (``MMSAConfig.cuda_graphs``).
        bucket: the padded batch sizes are multiples of this.

    ``captured`` counts one graph per padded batch size and step-0 shortcut.
    """

    def __init__(
        self,
        world_model: Any,
        agent: SALEAgent,
        encoder: Encoder | None,
        horizon: int,
        *,
        enabled: bool = True,
        bucket: int = 256,
    ) -> None:
        if bucket < 1:
            raise ValueError(f"bucket={bucket} must be a positive integer")
        super().__init__("imagination")
        self.world_model, self.agent, self.encoder = world_model, agent, encoder
        self.horizon, self.enabled, self.bucket = horizon, enabled, bucket

    def __deepcopy__(self, memo: dict[int, Any]) -> ImaginationGraphs:
        # A copy (of a learner) imagines with the copied modules and captures its own graphs:
        # the graphs held here read this object's memory.
        return ImaginationGraphs(
            copy.deepcopy(self.world_model, memo),
            copy.deepcopy(self.agent, memo),
            copy.deepcopy(self.encoder, memo),
            self.horizon,
            enabled=self.enabled,
            bucket=self.bucket,
        )

    def __call__(
        self,
        start: Any,
        hidden_before: Tensor,
        last_action: Tensor,
        *,
        first_actions: Tensor | None = None,
        first_hidden: Tensor | None = None,
    ) -> Tensor:
        """`imagined_features(world_model, start, agent, encoder, hidden_before, last_action,
        horizon, first_actions=..., first_hidden=...)`: features ``[H+1, M, D]``."""
        inputs = _Inputs(
            start[0], start[1], hidden_before, last_action, first_actions, first_hidden
        )
        m = inputs.deter.shape[0]
        device = inputs.deter.device
        if not self.enabled or device.type != "cuda" or low_precision_dtype() is not None or m == 0:
            return self._eager(inputs, check_actions=True)
        size = self.bucket * math.ceil(m / self.bucket)
        key = (size, first_actions is not None)
        graph = self._graph(key, lambda: self._capture(inputs, size))
        if graph is None:
            return self._eager(inputs, check_actions=True)
        return graph.run(inputs)

    def _eager(self, inputs: _Inputs, *, check_actions: bool) -> Tensor:
        return imagined_features(
            self.world_model,
            ModelState(inputs.deter, inputs.stoch),
            self.agent,
            self.encoder,
            inputs.hidden_before,
            inputs.last_action,
            self.horizon,
            first_actions=inputs.first_actions,
            first_hidden=inputs.first_hidden,
            check_actions=check_actions,
        )

    def _capture(self, example: _Inputs, size: int) -> _Graph:
        static = example.padded(size)
        graph, out = capture_graph(
            lambda: self._eager(static, check_actions=False), example.deter.device
        )
        return _Graph(graph, static, out)


class _Inputs:
    """The tensors one imagination reads, ``[M, ...]`` each (the last two optional)."""

    def __init__(
        self,
        deter: Tensor,
        stoch: Tensor,
        hidden_before: Tensor,
        last_action: Tensor,
        first_actions: Tensor | None,
        first_hidden: Tensor | None,
    ) -> None:
        self.deter, self.stoch = deter, stoch
        self.hidden_before, self.last_action = hidden_before, last_action
        self.first_actions, self.first_hidden = first_actions, first_hidden

    def tensors(self) -> list[Tensor | None]:
        return [
            self.deter,
            self.stoch,
            self.hidden_before,
            self.last_action,
            self.first_actions,
            self.first_hidden,
        ]

    def padded(self, size: int) -> _Inputs:
        """New buffers of ``size`` rows: these rows first, zeros after (finite, and action 0)."""

        def pad(t: Tensor) -> Tensor:
            buf = t.new_zeros(size, *t.shape[1:])
            buf[: t.shape[0]].copy_(t)
            return buf

        return _Inputs(
            pad(self.deter),
            pad(self.stoch),
            pad(self.hidden_before),
            pad(self.last_action),
            None if self.first_actions is None else pad(self.first_actions),
            None if self.first_hidden is None else pad(self.first_hidden),
        )


class _Graph:
    """One captured imagination: static input buffers, the graph, its static output."""

    def __init__(self, graph: torch.cuda.CUDAGraph, static: _Inputs, out: Tensor) -> None:
        self.graph, self.static, self.out = graph, static, out

    def run(self, inputs: _Inputs) -> Tensor:
        m = inputs.deter.shape[0]
        for buf, t in zip(self.static.tensors(), inputs.tensors(), strict=True):
            if buf is not None and t is not None:
                buf[:m].copy_(t)
        self.graph.replay()
        # The next replay overwrites the static output: hand out a copy of the real rows.
        return self.out[:, :m].clone()
