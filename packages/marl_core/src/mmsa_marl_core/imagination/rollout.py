"""World-model imagination from every real time step, summarised into a rollout code ``c_t``.

docs/design.md §4.3 step 5 and §4.4 (paper; MBVD): from the posterior model state of a real batch
at every ``(t, b)``, the world model imagines ``H`` steps in which the *current* agents pick actions
greedily (no gradient) on the model's decoded observations and available-action predictions; a GRU
reads each imagined feature sequence ``[H+1, D]`` and its last state is the rollout code ``c_t``,
which the mixer reads next to ``s_t``.

All starts are imagined in ONE ``imagine`` call (the starts become the batch axis). The agents'
recurrent state starts from their real-data state just before ``t`` (after reading ``x_{t-1}``),
with ``a_{t-1}`` as the last action, so imagined step 0 sees what the agent saw on real data, with
the decoded ``o^_t`` in place of ``o_t``.

Shortcut (``first_actions``): the posterior ``m_t`` is inferred from the real ``(s_t, o_t)``, so
the learner may hand in the agents' greedy actions on the real ``o_t`` (which double Q needs
anyway) as the step-0 actions, together with the real-data hidden state after ``x_t``. That saves
one all-actions agent pass over every start; later steps always act on decoded observations.

Imagination runs under ``torch.no_grad``: the world model is trained by its own losses only, and
only the rollout GRU (and the mixer) learn from the TD error through ``c_t``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmsa_sale import Encoder
from mmsa_worldmodel import pack_rnn

from ..networks.sale_agent import SALEAgent, agent_inputs, masked_greedy
from ..ops.precision import low_precision

__all__ = ["GreedyImaginationPolicy", "RolloutEncoder", "imagined_features", "rollout_codes"]


class RolloutEncoder(nn.Module):
    """GRU over an imagined feature sequence: features ``[H+1, B', D]`` -> code ``[B', C]``."""

    def __init__(self, feature_dim: int, code_dim: int = 32) -> None:
        super().__init__()
        if feature_dim < 1 or code_dim < 1:
            raise ValueError(
                f"feature_dim={feature_dim} and code_dim={code_dim} must be positive integers"
            )
        self.feature_dim = feature_dim
        self.code_dim = code_dim
        self.gru = nn.GRU(feature_dim, code_dim)

    def forward(self, features: Tensor) -> Tensor:
        """features ``[H+1, ..., D]`` (``[H+1, B', D]`` or ``[H+1, T+1, B, D]``) -> ``[..., C]``."""
        if features.dim() < 3 or features.shape[-1] != self.feature_dim:
            raise ValueError(
                f"features {tuple(features.shape)} must be [H+1, ..., D={self.feature_dim}]"
            )
        lead = features.shape[1:-1]
        # The target copy (copy.deepcopy) holds its CUDA GRU weights in separate chunks, which
        # cuDNN would compact (and warn about) at every call; this re-packs them once.
        pack_rnn(self.gru)
        _, last = self.gru(features.reshape(features.shape[0], -1, self.feature_dim))
        return last[0].reshape(*lead, self.code_dim)


class GreedyImaginationPolicy:
    """The current agents as the ``policy`` callable of ``WorldModel.imagine``.

    Carries the agents' GRU state and last action between the ``H`` calls that one ``imagine``
    makes (in time order). hidden ``[B', N, H]`` (before reading step 0); last_action
    ``[B', N, A]`` one-hot. With ``first_actions [B', N]`` and ``first_hidden [B', N, H]`` the
    first call returns ``first_actions`` (chosen on real data) and moves to ``first_hidden``
    without running the agent.
    """

    def __init__(
        self,
        agent: SALEAgent,
        encoder: Encoder | None,
        hidden: Tensor,
        last_action: Tensor,
        *,
        first_actions: Tensor | None = None,
        first_hidden: Tensor | None = None,
    ) -> None:
        if (first_actions is None) != (first_hidden is None):
            raise ValueError("first_actions and first_hidden go together")
        self.agent = agent
        self.encoder = encoder
        self.hidden = hidden
        self.last_action = last_action
        self.first_actions = first_actions
        self.first_hidden = first_hidden
        self.calls = 0

    def __call__(self, obs: Tensor, avail: Tensor) -> Tensor:
        """obs ``[B', N, O]``, avail ``[B', N, A]`` bool -> greedy actions ``[B', N]`` int64."""
        if self.calls == 0 and self.first_actions is not None and self.first_hidden is not None:
            actions, self.hidden = self.first_actions, self.first_hidden
        else:
            inputs = agent_inputs(obs, self.last_action)
            q, self.hidden = self.agent(inputs, self.hidden, self.encoder)
            # A predicted mask with nothing available would make argmax meaningless: allow all.
            avail = avail | ~avail.any(dim=-1, keepdim=True)
            actions = masked_greedy(q, avail)
        self.last_action = F.one_hot(actions, self.agent.n_actions).to(obs.dtype)
        self.calls += 1
        return actions


def imagined_features(
    world_model: Any,
    start: Any,
    agent: SALEAgent,
    encoder: Encoder | None,
    hidden_before: Tensor,
    last_action: Tensor,
    horizon: int,
    *,
    first_actions: Tensor | None = None,
    first_hidden: Tensor | None = None,
    check_actions: bool = True,
) -> Tensor:
    """Imagine ``H`` steps from ``B'`` start states at once, without gradient.

    Args:
        world_model: an ``mmsa_worldmodel.WorldModel``.
        start: its ``ModelState`` with leaves ``[B', ...]`` (e.g. real-step posteriors).
        agent: the current (online) agent network; encoder: the copy it acts with (the TD7
            fixed copy; None without SALE).
        hidden_before: agents' GRU state before reading ``x_t``, ``[B', N, H]``.
        last_action: ``a_{t-1}`` one-hot (zeros at t=0), ``[B', N, A]``.
        horizon: ``H`` imagined steps.
        first_actions, first_hidden: optional step-0 shortcut (module docstring), ``[B', N]``
            greedy actions on the real ``o_t`` and ``[B', N, H]`` hidden state after ``x_t``.
        check_actions: False skips the range check of the greedy actions (argmax indices, in
            range by construction), the one read-back of the rollout (``imagination_graph``).

    Returns: imagined features ``[H+1, B', D]`` (row 0 is the start state itself).
    """
    if horizon < 1:
        raise ValueError(f"horizon={horizon} must be >= 1")
    size = start[0].shape[0]
    if hidden_before.dim() != 3 or hidden_before.shape[:-1] != last_action.shape[:-1]:
        raise ValueError(
            f"hidden_before {tuple(hidden_before.shape)} and last_action "
            f"{tuple(last_action.shape)} must be [B', N, H] and [B', N, A]"
        )
    if hidden_before.shape[0] != size:
        raise ValueError(f"hidden_before has {hidden_before.shape[0]} rows, start has {size}")
    with torch.no_grad(), low_precision(hidden_before.device):
        policy = GreedyImaginationPolicy(
            agent,
            encoder,
            hidden_before,
            last_action,
            first_actions=first_actions,
            first_hidden=first_hidden,
        )
        features: Tensor = world_model.imagine_features(
            start, policy, horizon, check_actions=check_actions
        )
    return features.float()


def rollout_codes(
    world_model: Any,
    posterior: Any,
    agent: SALEAgent,
    encoder: Encoder | None,
    hidden_before: Tensor,
    last_action: Tensor,
    horizon: int,
    rollout_encoder: RolloutEncoder,
) -> Tensor:
    """Rollout code at every real step, ``c [T+1, B, C]``, from the posterior ``[T+1, B, ...]``,
    ``hidden_before [T+1, B, N, H]`` and ``last_action [T+1, B, N, A]``: ``imagined_features`` over
    every ``(t, b)`` summarised by ``rollout_encoder`` (the only part that carries gradient)."""
    if hidden_before.dim() != 4:
        raise ValueError(f"hidden_before {tuple(hidden_before.shape)} must be [T+1, B, N, H]")
    lead = hidden_before.shape[:2]
    start = type(posterior)(*(leaf.flatten(0, 1) for leaf in posterior))
    features = imagined_features(
        world_model,
        start,
        agent,
        encoder,
        hidden_before.flatten(0, 1),
        last_action.flatten(0, 1),
        horizon,
    )
    return rollout_encoder(features.unflatten(1, lead))
