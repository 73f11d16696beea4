"""Imagination for continuous actions: the current deterministic actors act in the world model.

docs/design.md §4.3 step 5 and §4.4, the continuous twin of ``rollout.imagined_features`` (which
picks greedy discrete actions from Q): from the posterior model state at every real ``(t, b)`` the
world model imagines ``H`` steps in which the current actors (no exploration noise, no gradient) act
on the decoded observations; ``rollout.RolloutEncoder`` (shared with the discrete learner) then
summarises each imagined feature sequence ``[H+1, D]`` into the code ``c_t``.

All ``(T+1) * B`` starts go through ONE ``imagine`` call. The agents' GRU state starts from the
real-data state just before ``t`` with ``a_{t-1}`` as the last action, so imagined step 0 sees what
the agent saw on real data with the decoded ``o^_t`` in place of ``o_t``. Imagination runs under
``no_grad``: the world model learns from its own losses, the rollout GRU and the mixer from the TD
error through ``c_t``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from mmsa_sale import Encoder

from ..networks.policy import DeterministicActor
from ..networks.sale_agent import SALEAgent, agent_inputs
from ..ops.precision import low_precision

__all__ = ["ActorImaginationPolicy", "continuous_imagined_features"]


class ActorImaginationPolicy:
    """The current actors as the ``policy`` callable of ``WorldModel.imagine``.

    Carries the agents' GRU state ``[B', N, H]`` and last action ``[B', N, A]`` between the ``H``
    calls one ``imagine`` makes (in time order); ``calls`` counts them. ``obs_transform`` (e.g.
    the learner's observation normaliser) is applied to the decoded observations first.
    """

    def __init__(
        self,
        agent: SALEAgent,
        actor: DeterministicActor,
        encoder: Encoder | None,
        hidden: Tensor,
        last_action: Tensor,
        obs_transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        if hidden.shape[:-1] != last_action.shape[:-1]:
            raise ValueError(
                f"hidden {tuple(hidden.shape)} and last_action {tuple(last_action.shape)} must "
                "share leading axes [B', N]"
            )
        self.agent, self.actor, self.encoder = agent, actor, encoder
        self.hidden, self.last_action = hidden, last_action
        self.obs_transform = obs_transform
        self.calls = 0

    def __call__(self, obs: Tensor, avail: Tensor) -> Tensor:
        """obs ``[B', N, O]`` (decoded), avail ignored (continuous) -> actions ``[B', N, A]``."""
        if self.obs_transform is not None:
            obs = self.obs_transform(obs)  # the same input normalisation as on real data
        x = agent_inputs(obs, self.last_action)
        self.hidden = self.agent.recurrent(x, self.hidden)
        zs = self.encoder.zs(x) if self.encoder is not None else None
        action = self.actor(x, self.hidden, zs)
        # The agents' input carries a_{t-1} only if their last_action is not empty ([B', N, 0]).
        self.last_action = action[..., : self.last_action.shape[-1]]
        self.calls += 1
        return action


def continuous_imagined_features(
    world_model: Any,
    posterior: Any,
    agent: SALEAgent,
    actor: DeterministicActor,
    encoder: Encoder | None,
    hidden_before: Tensor,
    last_action: Tensor,
    horizon: int,
    obs_transform: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Imagined model features from every real step, one ``imagine`` call, no gradient.

    Args:
        world_model: an ``mmsa_worldmodel.WorldModel`` built with ``action_kind="continuous"``.
        posterior: its ``ModelState`` from ``observe(batch)``, leaves ``[T+1, B, ...]``.
        agent: the online agent network (its GRU carries ``h``); actor: the online actor.
        encoder: the fixed SALE encoder the actor reads ``z^o`` from (None without SALE).
        hidden_before: the agents' GRU state before reading ``x_t``, ``[T+1, B, N, H]``.
        last_action: ``a_{t-1}`` (zeros at t=0), ``[T+1, B, N, A]``, or ``[T+1, B, N, 0]`` for
            agents that do not read their last action.
        horizon: ``H`` imagined steps (>= 1).
        obs_transform: applied to decoded observations before the agents read them.

    Returns: features ``[H+1, (T+1) B, D]`` (detached), start-major as ``hidden_before``.
    """
    if horizon < 1:
        raise ValueError(f"horizon={horizon} must be >= 1")
    if hidden_before.shape[:-1] != last_action.shape[:-1] or hidden_before.dim() != 4:
        raise ValueError(
            f"hidden_before {tuple(hidden_before.shape)} and last_action "
            f"{tuple(last_action.shape)} must be [T+1, B, N, H] and [T+1, B, N, A]"
        )
    lead = hidden_before.shape[:2]
    starts = lead[0] * lead[1]
    with torch.no_grad(), low_precision(hidden_before.device):
        start = type(posterior)(*(leaf.reshape(starts, *leaf.shape[2:]) for leaf in posterior))
        policy = ActorImaginationPolicy(
            agent,
            actor,
            encoder,
            hidden_before.reshape(starts, *hidden_before.shape[2:]),
            last_action.reshape(starts, *last_action.shape[2:]),
            obs_transform,
        )
        features: Tensor = world_model.imagine_features(start, policy, horizon)
    return features.detach().float()
