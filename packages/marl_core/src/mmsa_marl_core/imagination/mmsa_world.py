"""The world model's share of the MMSA update (docs/design.md §4.3-§4.5).

- `world_model_terms`: its unreduced named losses, each scaled and averaged over real steps, and
  the posterior states they were computed on (one pass of the model over the batch);
- `rollout_code_pair`: imagination from every real posterior state in one call, summarised into
  the rollout code ``c_t`` by the online and the target rollout GRU (same imagined features);
- `loss_groups`: the ``b_kl`` / ``b_rec`` / ``b_sale`` groups of the one loss
  ``L = L_TD + b_kl L_KL + b_rec L_rec + b_sale (L_SALE^agent + L_SALE^world)``;
- `world_model_diagnostics`: k-step open-loop errors, KL per step, collapsed latent dimensions;
- `world_model_and_rollout`: the world model, ablated as the config says, and its rollout GRU;
- `model_param_groups`: the optimiser groups of the SALE encoder and the world model.

`MMSALearner` (``learners.mmsa_learner``) calls these; the continuous learner
(``learners.mmsa_continuous``) uses `world_model_terms`, `loss_groups` and `model_param_groups`
too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmsa_envs import EnvSpec
from mmsa_sale import FixedEncoders
from mmsa_worldmodel import ModelState, WorldModel, kl_per_step, open_loop_error, posterior_collapse

from ..ops.td import Rows
from .imagination_graph import ImaginationGraphs
from .rollout import RolloutEncoder

__all__ = [
    "KL_TERMS",
    "REC_TERMS",
    "world_model_terms",
    "rollout_code_pair",
    "imagined_rows",
    "loss_groups",
    "world_model_diagnostics",
    "world_model_and_rollout",
    "model_param_groups",
]

KL_TERMS = ("kl", "vae1_kl")
"""World-model losses in the `b_kl` group."""
REC_TERMS = ("state", "obs", "avail", "reward", "continue", "vae1_rec")
"""World-model losses in the `b_rec` group ("sale" is in the `b_sale` group)."""


def world_model_terms(
    wm: WorldModel, batch: Any, real: Tensor
) -> tuple[dict[str, Tensor], dict[str, float], ModelState]:
    """``({"wm_<name>": scaled loss averaged over real steps}, {"wm_<name>": metric},
    posterior)``; real ``[T, B]`` marks real transitions (bool, or the batch's 0/1 mask); the
    posterior ``[T+1, B, ...]`` (detached) is the one the losses were computed on, the
    imagination's start states."""
    wm_losses, wm_metrics, posterior = wm.losses_and_posterior(batch)
    metrics = {f"wm_{k}": v for k, v in wm_metrics.items()}
    count = real.sum().clamp(min=1)
    scales = wm.config.loss_scales()
    terms = {f"wm_{name}": scales[name] * value.sum() / count for name, value in wm_losses.items()}
    return terms, metrics, posterior


def imagined_rows(real_mask: Tensor, rows: Rows, fraction: float) -> Rows:
    """The real rows imagination starts from: all of `rows` (those of `real_mask [T, B]` with an
    observation), or with `fraction` below 1 those of ``max(1, ceil(fraction * B))`` episodes
    drawn without replacement (`MMSAConfig.imagination_fraction`)."""
    n_episodes = real_mask.shape[1]
    if fraction >= 1.0:
        return rows
    keep = max(1, math.ceil(fraction * n_episodes))
    chosen = torch.randperm(n_episodes, device=real_mask.device)[:keep]
    episodes = torch.zeros(n_episodes, dtype=torch.bool, device=real_mask.device)
    episodes[chosen] = True
    return Rows(torch.cat([real_mask[:1], real_mask]) & episodes)


def rollout_code_pair(
    posterior: ModelState,
    rows: Rows,
    imagine: ImaginationGraphs,
    hidden: Tensor,
    last_action: Tensor,
    greedy: Tensor,
    encoders: tuple[RolloutEncoder, RolloutEncoder],
    *,
    first_action_from_data: bool,
) -> tuple[Tensor, Tensor]:
    """Rollout codes ``c [T+1, B, C]`` (online, with gradient) and ``c^- [T+1, B, C]`` (target, no
    gradient) on every row holding a real observation (``rows`` of a ``[T+1, B]`` mask), zeros
    elsewhere, imagined by ``imagine`` (the learner's `ImaginationGraphs`) from the posterior
    ``[T+1, B, ...]`` of `world_model_terms`.

    hidden ``[T+1, B, N, H]`` is the agents' GRU state after reading ``x_t``, last_action
    ``[T+1, B, N, A]`` one-hot, greedy ``[T+1, B, N]`` the agents' greedy actions on real data
    (the step-0 shortcut of ``rollout`` when `first_action_from_data`).
    """
    online, target = encoders
    hidden_before = torch.cat([torch.zeros_like(hidden[:1]), hidden[:-1]])
    shortcut = first_action_from_data
    features = imagine(
        type(posterior)(*(rows.take(leaf) for leaf in posterior)),
        rows.take(hidden_before).detach(),
        rows.take(last_action),
        first_actions=rows.take(greedy) if shortcut else None,
        first_hidden=rows.take(hidden).detach() if shortcut else None,
    )  # [H+1, M, D]
    code = rows.put(online(features))  # [T+1, B, C]
    with torch.no_grad():
        target_code = rows.put(target(features))
    return code, target_code


def loss_groups(terms: dict[str, Tensor], ablation: str, device: torch.device) -> dict[str, Tensor]:
    """Sum the named terms into ``kl_loss``, ``rec_loss`` and ``sale_loss`` (zero when absent).
    With the no_klb ablation the KL term counts twice: balanced KL at 0.5 is plain KL / 2."""
    kl_mult = 2.0 if ablation == "no_klb" else 1.0
    return {
        "kl_loss": sum(
            (
                terms[f"wm_{k}"] * (kl_mult if k == "kl" else 1.0)
                for k in KL_TERMS
                if f"wm_{k}" in terms
            ),
            torch.zeros((), device=device),
        ),
        "rec_loss": sum(
            (terms[f"wm_{k}"] for k in REC_TERMS if f"wm_{k}" in terms),
            torch.zeros((), device=device),
        ),
        "sale_loss": sum(
            (terms[k] for k in ("sale_agent", "sale_agent_task", "wm_sale") if k in terms),
            torch.zeros((), device=device),
        ),
    }


def world_model_diagnostics(wm: WorldModel, batch: Any) -> dict[str, float]:
    """World-model diagnostics on `batch`: k-step open-loop errors (and copy-last baselines),
    mean KL per step, fraction of collapsed latent dimensions."""
    out: dict[str, float] = {}
    errors = open_loop_error(wm, batch, wm.config.horizon)
    for name, values in errors.items():
        for k, value in enumerate(values, start=1):
            out[f"diag_{name}_err_k{k}"] = value
    kl = [v for v in kl_per_step(wm, batch) if math.isfinite(v)]
    out["diag_kl_per_step_mean"] = float(np.mean(kl)) if kl else math.nan
    for name, value in posterior_collapse(wm, batch).items():
        out[f"diag_collapse_{name}"] = value
    return out


def world_model_and_rollout(spec: EnvSpec, config: Any) -> tuple[WorldModel, RolloutEncoder]:
    """The world model of `spec`'s agents, observations, state and actions with
    `config.ablated_world_model`, and the rollout GRU turning its features into a
    `config.code_dim` rollout code (built in this order)."""
    world_model = WorldModel(
        n_agents=spec.n_agents,
        obs_dim=spec.obs_dim,
        state_dim=spec.state_dim,
        n_actions=spec.n_actions,
        action_kind=spec.action_kind,
        config=config.ablated_world_model,
    )
    return world_model, RolloutEncoder(world_model.feature_dim, config.code_dim)


def model_param_groups(
    encoders: FixedEncoders | None, world_model: WorldModel | None, config: Any
) -> dict[str, tuple[list[nn.Parameter], float, float]]:
    """``{"encoder": ..., "world_model": ...}`` groups ``(params, lr, max_grad_norm)`` of the
    online SALE encoder and the world model (those present), at `config`'s ``encoder_lr`` and
    ``world_model_lr``, each clipped at ``world_model_grad_clip`` on its own."""
    groups: dict[str, tuple[list[nn.Parameter], float, float]] = {}
    if encoders is not None:
        groups["encoder"] = (
            list(encoders.online.parameters()),
            config.encoder_lr,
            config.world_model_grad_clip,
        )
    if world_model is not None:
        groups["world_model"] = (
            list(world_model.parameters()),
            config.world_model_lr,
            config.world_model_grad_clip,
        )
    return groups
