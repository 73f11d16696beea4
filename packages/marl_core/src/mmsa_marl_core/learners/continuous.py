"""What the continuous-action learners share: the FACMAC/TD3 pieces of their update that are
pure tensor code (docs/design.md §4.2, §4.8).

FACMAC (Peng et al. 2021) trains per-agent critics combined by a QMIX mixer and lets every actor
ascend the *mixed* ``Q_tot`` with the other agents' actions from their current policies:

- ``frozen(*modules)``: build a graph in which the modules' parameters get no gradient, so one
  backward pass of ``L_TD + L_actor`` trains the critic only from ``L_TD`` while the actor's
  gradient still flows *through* critic and mixer into the actions;
- ``mixed_actor_loss``: ``mean(-Q_tot(pi) + lambda |pi|^2)`` over real steps (FACMAC's actor loss
  with its action penalty);
- ``soft_update``: Polyak averaging of target networks (TD3: ``tau = 0.005``);
- ``explore_actions``: TD3/TD7 exploration (uniform warm-up, then Gaussian noise, clipped).

The one backward pass with a gradient-norm clip per parameter group is ``ops.optim.grouped_step``.
``mmsa_continuous.MMSAContinuousLearner`` (continuous MMSA, and the ``facmac`` baseline of
``facmac``) is built from these.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

from mmsa_envs import EnvSpec

from ..ops.td import masked_mean

__all__ = ["explore_actions", "frozen", "mixed_actor_loss", "soft_update"]


@contextmanager
def frozen(*modules: nn.Module | None) -> Iterator[None]:
    """Inside the block, the parameters of ``modules`` (None entries skipped) do not require
    gradient; graphs built there carry gradient to the *inputs* of those modules only. The
    ``requires_grad`` flags are restored on exit, also after an exception."""
    params = [p for m in modules if m is not None for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def mixed_actor_loss(
    q_tot: Tensor, pre_action: Tensor, mask: Tensor, regularization: float
) -> Tensor:
    """FACMAC's actor loss over real steps.

    Args:
        q_tot: ``[T, B]`` mixed value of the current policies' joint action.
        pre_action: ``[T, B, N, A]`` the policies' outputs *before* tanh.
        mask: ``[T, B]`` 1 on real transitions.
        regularization: weight of the mean squared pre-tanh output.

    Returns: scalar ``masked_mean(-q_tot + regularization * mean_{N,A} pre_action^2)``.

    FACMAC penalises the squared action after tanh, whose gradient vanishes exactly where the
    actor saturates; penalising the pre-tanh output keeps a pull back from the bounds (measured:
    on random HalfCheetah data the FACMAC actor saturates 87% of its outputs within 150 updates,
    as the critic overestimates the unvisited corners of the action box).
    """
    if q_tot.shape != mask.shape or pre_action.shape[:2] != mask.shape or pre_action.dim() != 4:
        raise ValueError(
            f"mixed_actor_loss: q_tot {tuple(q_tot.shape)} and mask {tuple(mask.shape)} must be "
            f"[T, B] and pre_action {tuple(pre_action.shape)} [T, B, N, A]"
        )
    penalty = pre_action.pow(2).mean(dim=(-2, -1))
    return masked_mean(-q_tot + regularization * penalty, mask)


@torch.no_grad()
def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``target <- (1 - tau) target + tau online`` for every parameter and floating buffer."""
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"soft_update: tau={tau!r} must lie in [0, 1]")
    target_state = target.state_dict()
    for name, value in online.state_dict().items():
        if name not in target_state:
            raise ValueError(f"soft_update: target has no entry {name!r}")
        if value.is_floating_point():
            target_state[name].lerp_(value, tau)
        else:
            target_state[name].copy_(value)


def explore_actions(
    action: np.ndarray,
    spec: EnvSpec,
    std: float,
    uniform: bool,
    rng: np.random.Generator,
) -> np.ndarray:
    """TD3/TD7 exploration of deterministic actions ``[..., A]`` within ``spec``'s bounds.

    ``uniform=True`` (the warm-up) draws uniform actions in the box; otherwise adds
    ``N(0, std)`` in half-range units and clips. All randomness comes from ``rng``.
    """
    if spec.action_low is None or spec.action_high is None:
        raise ValueError(f"explore_actions: {spec.id} has no action bounds")
    low = np.asarray(spec.action_low, np.float32)
    high = np.asarray(spec.action_high, np.float32)
    if uniform:
        out = rng.uniform(low, high, size=action.shape)
    else:
        noise = rng.normal(0.0, std, size=action.shape)
        out = np.clip(action + noise * (high - low) / 2, low, high)
    return out.astype(np.float32)
