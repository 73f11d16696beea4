"""Diagnostics that return plain numbers: open-loop prediction error, KL per step, collapse.

Use them on held-out episodes, in evaluation mode, e.g. every few thousand updates::

    errors = open_loop_error(model, held_out, horizon=3)   # {"state": [k=1, k=2, k=3], ...}
    kl = kl_per_step(model, held_out)                      # [T+1] nats
    collapse = posterior_collapse(model, held_out)         # {"y": 0.1, "x": 0.0}
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._batch import EpisodeBatch
from ._gaussian import kl_gaussian, kl_standard_normal
from ._model import WorldModel
from ._types import ModelState

__all__ = ["open_loop_error", "kl_per_step", "posterior_collapse"]


def _masked_mean(value: Tensor, weight: Tensor) -> float:
    total = float(weight.sum())
    return float((value * weight).sum()) / total if total > 0 else math.nan


@torch.no_grad()
def open_loop_error(model: WorldModel, batch: EpisodeBatch, horizon: int) -> dict[str, list[float]]:
    """k-step open-loop prediction error, k = 1..horizon, averaged over every start t.

    From each posterior state `m_t` the model rolls its prior forward with the recorded actions
    `a_t .. a_{t+k-1}` (decoded states feed SALE, as in imagination; means instead of samples)
    and is scored on `s_{t+k}`, `o_{t+k}` and `r_{t+k-1}` wherever that transition is real.

    Returns lists of length `horizon` (index k-1), mean squared error per entry:
    "state", "obs", "reward", and the copy-last baselines "state_copy" (`s_t` as the guess for
    `s_{t+k}`) and "obs_copy". NaN where no pair is real.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"open_loop_error: horizon={horizon!r} must be a positive int")
    seen = model._observe_all(batch, sample=False)
    posterior, data = seen.posterior, seen.data
    steps, size = data.real.shape
    real = F.pad(data.real.float(), (0, 0, 0, horizon))  # [T+H, B]
    action = data.action
    pad_action = torch.zeros((horizon, *action.shape[1:]), dtype=action.dtype, device=action.device)
    action = torch.cat([action, pad_action], dim=0)  # [T+H, B, N(, A)]
    state = torch.cat([data.state, data.state[-1:].expand(horizon, -1, -1)], dim=0)
    obs = torch.cat([data.obs, data.obs[-1:].expand(horizon, -1, -1, -1)], dim=0)
    reward = F.pad(data.reward, (0, 0, 0, horizon))
    # Start from m_0 .. m_{T-1}, flattened to [T*B, ...].
    start = ModelState(posterior.deter[:-1].flatten(0, 1), posterior.stoch[:-1].flatten(0, 1))

    def replay(step: int, obs_hat: Tensor, avail_hat: Tensor) -> Tensor:
        return action[step : step + steps].flatten(0, 1)

    rollout = model._rollout(start, horizon, replay, sample=False)
    features = rollout.features.unflatten(1, (steps, size))  # [H+1, T, B, D]
    out: dict[str, list[float]] = {
        k: [] for k in ("state", "obs", "reward", "state_copy", "obs_copy")
    }
    for k in range(1, horizon + 1):
        weight = real[k - 1 : k - 1 + steps]  # transition t+k-1 real => s_{t+k} real
        target_state, target_obs = state[k : k + steps], obs[k : k + steps]
        state_hat = model.decoders.state_mean(features[k])
        obs_hat = model.decoders.obs_mean(features[k])
        reward_hat = model.decoders.reward_mean(features[k])
        out["state"].append(_masked_mean((state_hat - target_state).pow(2).mean(-1), weight))
        out["obs"].append(_masked_mean((obs_hat - target_obs).pow(2).mean((-2, -1)), weight))
        out["reward"].append(
            _masked_mean((reward_hat - reward[k - 1 : k - 1 + steps]).pow(2), weight)
        )
        out["state_copy"].append(
            _masked_mean((data.state[:-1] - target_state).pow(2).mean(-1), weight)
        )
        out["obs_copy"].append(
            _masked_mean((data.obs[:-1] - target_obs).pow(2).mean((-2, -1)), weight)
        )
    return out


@torch.no_grad()
def kl_per_step(model: WorldModel, batch: EpisodeBatch) -> list[float]:
    """Mean `KL(q || p)` in nats of model state t = 0..T over the episodes where it is real
    (length T+1; NaN where no episode is that long)."""
    seen = model._observe_all(batch, sample=False)
    kl = kl_gaussian(seen.post_dist, seen.prior_dist).sum(-1)  # [T+1, B]
    weight = seen.data.real_state.float()
    count = weight.sum(1)
    per_step = (kl * weight).sum(1) / count.clamp(min=1.0)
    return [
        v if n > 0 else math.nan for v, n in zip(per_step.tolist(), count.tolist(), strict=True)
    ]


@torch.no_grad()
def posterior_collapse(
    model: WorldModel, batch: EpisodeBatch, threshold: float = 0.02
) -> dict[str, float]:
    """Fraction of latent dimensions whose mean KL is under `threshold` nats (unused dims).

    "y": dims of the transition latent with `KL(q(y|h, s, o) || p(y|h)) < threshold`;
    "x": dims of VAE-1's code with `KL(q(x|u) || N(0, I)) < threshold` (a collapsed VAE-1 would
    hide the action from the transition).
    """
    if not threshold > 0:
        raise ValueError(f"posterior_collapse: threshold={threshold!r} must be > 0")
    seen = model._observe_all(batch, sample=False)
    state_weight = seen.data.real_state.float().unsqueeze(-1)
    step_weight = seen.data.real.float().unsqueeze(-1)
    kl_y = (kl_gaussian(seen.post_dist, seen.prior_dist) * state_weight).sum((0, 1))
    kl_x = (kl_standard_normal(seen.x_dist) * step_weight).sum((0, 1))
    kl_y = kl_y / state_weight.sum().clamp(min=1.0)
    kl_x = kl_x / step_weight.sum().clamp(min=1.0)
    return {
        "y": float((kl_y < threshold).float().mean()),
        "x": float((kl_x < threshold).float().mean()),
    }
