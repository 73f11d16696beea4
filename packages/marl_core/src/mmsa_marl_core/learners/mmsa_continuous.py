"""Continuous MMSA: SALE actors and critics, QMIX-mixed, world-model rollout codes, one loss.

docs/design.md §4.2-§4.5 for continuous actions (MaMuJoCo). Per agent ``i`` (parameters shared,
input ``x_i = [o_i, onehot(i)]`` with ``o_i`` standardised), ``h_i`` the shared agent GRU::

    Q_i    = head([z^o, z^oa(a_i), phi^oa(h_i, a_i)])                 SALEAgent.action_values
    pi_i   = scale(tanh(MLP([AvgL1Norm(Linear(x_i ++ h_i)), z^o])))   DeterministicActor
    Q_tot  = QMIX(Q_1..Q_N ; [s_t, c_t])                               c_t: rollout code (§4.4)
    y_t    = r_t + gamma (1 - term_t) Q_tot^-(t+1, pi^-(t+1) + clip(N(0, 0.2), 0.5))   TD3/TD7
    L      = L_TD + L_actor [every 2nd update] + b_kl L_KL + b_rec L_rec + b_sale L_SALE   (§4.5)

One backward pass: the actor term, which must not train the critic (TD3/FACMAC step them apart for
that reason), is built under ``continuous.frozen(critic, mixer)``, so its gradient reaches the
actions through critic and mixer and lands on the actor only; the price is that the actor ascends
the critic of before this update's critic step (a one-update lag). The actor reads ``h_i`` detached:
the agent GRU learns from the TD error, as the SALE encoder learns from its own loss (TD7).
Targets follow by Polyak averaging on actor updates (TD3), the SALE fixed encoders by TD7's hard
chain (see ``FACMACConfig.target_tau``). Given the base ``FACMACConfig`` this is the ``facmac``
baseline; ``MMSAContinuousConfig.ablation`` removes one part at a time (docs/design.md §4.6).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmsa_envs import EnvSpec
from mmsa_sale import Encoder, FixedEncoders, encoder_loss
from mmsa_worldmodel import WorldModel

from ..data.batch import Batch
from ..imagination.continuous_rollout import continuous_imagined_features
from ..imagination.mmsa_world import (
    loss_groups,
    model_param_groups,
    world_model_and_rollout,
    world_model_terms,
)
from ..imagination.rollout import RolloutEncoder
from ..networks.mixers import QMIX
from ..networks.policy import DeterministicActor, MLPCritic
from ..networks.sale_agent import SALEAgent, agent_inputs
from ..ops.input_norm import RunningNormalizer
from ..ops.optim import grouped_step, optimizer_groups
from ..ops.precision import low_precision
from ..ops.td import masked_mean, td_targets
from ..registry import Learner, register_algo
from .continuous import explore_actions, frozen, mixed_actor_loss, soft_update
from .continuous_config import FACMACConfig, MMSAContinuousConfig, continuous_config_from
from .mmsa_config import MMSAConfig

__all__ = ["MMSAContinuousLearner", "build_from_mmsa_config"]


class MMSAContinuousLearner:
    """The continuous MMSA / FACMAC learner; implements ``mmsa_marl_core.Learner``."""

    def __init__(self, spec: EnvSpec, config: FACMACConfig, device: torch.device | str) -> None:
        if spec.action_kind != "continuous" or spec.action_low is None or spec.action_high is None:
            raise ValueError(
                f"{spec.id} has action_kind={spec.action_kind!r}; the continuous learner needs "
                "'continuous' actions with bounds (use qmix/vdn/mmsa for discrete actions)"
            )
        self.spec, self.config, self.device = spec, config, torch.device(device)
        # The base FACMACConfig is the facmac baseline: no SALE, no world model.
        mmsa = config if isinstance(config, MMSAContinuousConfig) else None
        self.use_sale = mmsa is not None and mmsa.use_sale
        self.use_global_state = mmsa is None or mmsa.use_global_state
        cfg, n, a = config, spec.n_agents, spec.n_actions
        # x = [o, a_{t-1} (if obs_last_action), onehot(i)]
        self._last_dim = a if cfg.obs_last_action else 0
        in_dim = spec.obs_dim + self._last_dim + n
        zs_dim = mmsa.zs_dim if mmsa is not None else 1  # unused without SALE
        # ---------------------------------------------------------------- online networks
        self.obs_norm = RunningNormalizer(spec.obs_dim)
        self.state_norm = RunningNormalizer(spec.state_dim)
        self.agent = SALEAgent(
            input_dim=in_dim,
            n_actions=a,
            hidden_dim=cfg.agent_hidden,
            zs_dim=zs_dim,
            phi_dim=mmsa.phi_dim if mmsa is not None else 1,
            head_hidden=cfg.width,
            use_sale=self.use_sale,
        )
        # Without SALE: critic MLP([x, h, a]), SALEAgent only the GRU trunk (its head unused).
        self.plain_critic = (
            None
            if self.use_sale
            else MLPCritic(
                input_dim=in_dim, hidden_dim=cfg.agent_hidden, action_dim=a, width=cfg.width
            )
        )
        self.actor = DeterministicActor(
            input_dim=in_dim,
            hidden_dim=cfg.agent_hidden,
            action_low=spec.action_low,
            action_high=spec.action_high,
            zs_dim=zs_dim,
            width=cfg.width,
            use_sale=self.use_sale,
        )
        self.encoders: FixedEncoders | None = None
        self.world_model: WorldModel | None = None
        self.rollout_encoder: RolloutEncoder | None = None
        if mmsa is not None and self.use_sale:
            self.encoders = FixedEncoders(
                Encoder(in_dim, a, zs_dim=mmsa.zs_dim, hidden=mmsa.sale_hidden)
            )
        if mmsa is not None and mmsa.use_world_model:
            self.world_model, self.rollout_encoder = world_model_and_rollout(spec, mmsa)
        self.mixer = QMIX(
            n,
            spec.state_dim if self.use_global_state else 0,
            cfg.mixer_embed_dim,
            cfg.hypernet_hidden,
            extra_cond_dim=0 if self.rollout_encoder is None else self.rollout_encoder.code_dim,
        )
        self.online = _module_dict(
            obs_norm=self.obs_norm,
            state_norm=self.state_norm,
            agent=self.agent,
            plain_critic=self.plain_critic,
            actor=self.actor,
            encoders=self.encoders,
            world_model=self.world_model,
            rollout_encoder=self.rollout_encoder,
            mixer=self.mixer,
        ).to(self.device)
        # ---------------------------------------------------------------- target networks
        # Everything the TD target reads; the encoders keep their own TD7 chain.
        self.target_agent = copy.deepcopy(self.agent)
        self.target_plain_critic = copy.deepcopy(self.plain_critic)
        self.target_actor = copy.deepcopy(self.actor)
        self.target_mixer = copy.deepcopy(self.mixer)
        self.target_rollout_encoder = copy.deepcopy(self.rollout_encoder)
        self.target = _module_dict(
            agent=self.target_agent,
            plain_critic=self.target_plain_critic,
            actor=self.target_actor,
            mixer=self.target_mixer,
            rollout_encoder=self.target_rollout_encoder,
        ).requires_grad_(False)
        # ---------------------------------------------------------------- one optimiser
        critic_modules = [self.agent, self.plain_critic, self.mixer, self.rollout_encoder]
        critic = [p for m in critic_modules if m is not None for p in m.parameters()]
        param_groups, self._groups = optimizer_groups(
            {
                "actor": (list(self.actor.parameters()), cfg.actor_lr, cfg.grad_norm_clip),
                "critic": (critic, cfg.critic_lr, cfg.grad_norm_clip),
                **model_param_groups(self.encoders, self.world_model, mmsa),
            }
        )
        self.optimizer = torch.optim.Adam(param_groups)
        self.updates = 0
        self.nonfinite_updates = 0

    # ==================================================================== acting
    def initial_state(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """Zero GRU state ``[B, N, H]``, zero last action ``[B, N, A]`` (or ``[B, N, 0]``)."""
        n = self.spec.n_agents
        hidden = self.agent.initial_hidden((batch_size, n), self.device)
        return hidden, torch.zeros(batch_size, n, self._last_dim, device=self.device)

    def act(
        self,
        obs: np.ndarray,
        avail_actions: np.ndarray,
        state: tuple[Tensor, Tensor],
        *,
        env_steps: int,
        explore: bool,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, tuple[Tensor, Tensor]]:
        """``obs [B, N, O]`` -> actions ``[B, N, A]`` float32 within the bounds, next state.

        Exploration (TD3/TD7): uniform actions for the first ``random_steps`` env steps, then the
        deterministic action plus ``N(0, exploration_std)`` half-ranges, clipped to the bounds.
        """
        hidden, last_action = state
        with torch.no_grad():
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
            x = agent_inputs(self._obs(obs_t), last_action)  # last_action [B, N, A or 0]
            hidden = self.agent.recurrent(x, hidden)
            zs = self.encoders.fixed.zs(x) if self.encoders is not None else None
            action = self.actor(x, hidden, zs).cpu().numpy()
        if explore:
            uniform = env_steps < self.config.random_steps
            action = explore_actions(action, self.spec, self.config.exploration_std, uniform, rng)
        last = torch.as_tensor(action[..., : self._last_dim], device=self.device)
        return action, (hidden, last)

    def exploration_rate(self, env_steps: int) -> float:
        """1 during the uniform warm-up, then the Gaussian noise std."""
        return 1.0 if env_steps < self.config.random_steps else self.config.exploration_std

    # ==================================================================== learning
    def _obs(self, obs: Tensor) -> Tensor:
        return self.obs_norm(obs) if self.config.normalize_inputs else obs

    def _critic(self, target: bool, x: Tensor, h: Tensor, action: Tensor) -> Tensor:
        """``Q_i``: x ``[..., N, In]``, h ``[..., N, H]``, action ``[..., N, A]`` -> ``[..., N]``;
        the target copies read the fixed-target encoder, the online ones the fixed encoder."""
        plain = self.target_plain_critic if target else self.plain_critic
        if plain is not None:
            return plain(x, h, action)
        agent = self.target_agent if target else self.agent
        enc = self.encoders
        encoder = None if enc is None else (enc.fixed_target if target else enc.fixed)
        return agent.action_values(x, h, action.unsqueeze(-2), encoder).squeeze(-1)

    def update(self, batch: Batch) -> dict[str, float]:
        """One update of every part on a batch of episodes (see the module docstring)."""
        cfg = self.config
        action, mask = batch.action, batch.mask
        if action.dim() != 4 or action.shape[-1] != self.spec.n_actions:
            raise ValueError(
                f"continuous learner needs actions [T, B, N, A={self.spec.n_actions}], "
                f"got {tuple(action.shape)}"
            )
        metrics: dict[str, float] = {}
        # --- 1. inputs: standardised observations and state, x = [o, a_{t-1}, id], agent GRU
        if cfg.normalize_inputs:
            self.obs_norm.update(batch.obs[:-1], mask)
            self.state_norm.update(batch.state[:-1], mask)
            state = self.state_norm(batch.state)
        else:
            state = batch.state
        state = state if self.use_global_state else state[..., :0]  # [T+1, B, S] (or S=0)
        last_action = torch.cat([torch.zeros_like(action[:1]), action])[..., : self._last_dim]
        x = agent_inputs(self._obs(batch.obs), last_action)  # [T+1, B, N, In]
        hidden = self.agent.unroll(x)  # [T+1, B, N, H]: h_t after reading x_t
        fixed = None if self.encoders is None else self.encoders.fixed

        # --- 2. world model losses and rollout codes from every real posterior state
        terms: dict[str, Tensor] = {}
        code = target_code = None
        if self.world_model is not None and self.rollout_encoder is not None:
            wm = self.world_model
            terms, wm_metrics, posterior = world_model_terms(wm, batch, mask)
            metrics.update(wm_metrics)
            hidden_before = torch.cat([torch.zeros_like(hidden[:1]), hidden[:-1]]).detach()
            features = continuous_imagined_features(
                wm,
                posterior,
                self.agent,
                self.actor,
                fixed,
                hidden_before,
                last_action,
                wm.config.horizon,
                obs_transform=self._obs,
            )  # [H+1, (T+1) B, D]
            lead = hidden.shape[:2]
            code = self.rollout_encoder(features).reshape(*lead, -1)  # [T+1, B, C]
            assert self.target_rollout_encoder is not None
            with torch.no_grad():
                target_code = self.target_rollout_encoder(features).reshape(*lead, -1)

        # --- 3. critic: TD3 target with target policy smoothing, through the target mixer
        q = self._critic(False, x[:-1], hidden[:-1], action)  # [T, B, N]
        q_tot = self.mixer(q, state[:-1], None if code is None else code[:-1])  # [T, B]
        with torch.no_grad():
            with low_precision(self.device):
                target_hidden = self.target_agent.unroll(x)[1:]
                target_fixed = None if self.encoders is None else self.encoders.fixed_target
                zs_next = None if target_fixed is None else target_fixed.zs(x[1:])
                next_action = self.target_actor(x[1:], target_hidden, zs_next).float()
                next_action = self.actor.scale.add_noise(
                    next_action, cfg.target_noise_std, cfg.target_noise_clip
                )
                next_q = self._critic(True, x[1:], target_hidden, next_action).float()
            next_extra = None if target_code is None else target_code[1:]
            next_q_tot = self.target_mixer(next_q, state[1:], next_extra)
            targets = td_targets(batch.reward, batch.terminated, next_q_tot, cfg.gamma)
        td_loss = masked_mean((q_tot - targets).pow(2), mask)

        # --- 4. agent SALE loss (TD7: ||g(f(x_t), a_t) - sg(f(x_{t+1}))||^2 on real steps)
        if self.encoders is not None:
            terms["sale_agent"] = encoder_loss(self.encoders.online, x[:-1], action, x[1:], mask)

        # --- 5. actor, every policy_delay-th update: ascend Q_tot through the frozen critic
        update_actor = (self.updates + 1) % cfg.policy_delay == 0
        actor_loss = torch.zeros((), device=self.device)
        if update_actor:
            with frozen(self.agent, self.plain_critic, self.mixer):
                h_actor = hidden[:-1].detach()
                zs = None if fixed is None else fixed.zs(x[:-1])
                pre_action = self.actor.pre_activation(x[:-1], h_actor, zs)
                policy_action = self.actor.scale.from_unit(torch.tanh(pre_action))
                q_pi = self._critic(False, x[:-1], h_actor, policy_action)
                extra = None if code is None else code[:-1].detach()
                q_tot_pi = self.mixer(q_pi, state[:-1], extra)
            actor_loss = mixed_actor_loss(q_tot_pi, pre_action, mask, cfg.actor_regularization)
            metrics["actor_loss"] = float(actor_loss.detach())

        # --- the one loss: L_TD + L_actor + b_kl L_KL + b_rec L_rec + b_sale L_SALE
        loss = td_loss + actor_loss
        if isinstance(cfg, MMSAContinuousConfig):
            parts = loss_groups(terms, cfg.ablation, self.device)
            kl, rec, sale = parts["kl_loss"], parts["rec_loss"], parts["sale_loss"]
            loss = loss + cfg.b_kl * kl + cfg.b_rec * rec + cfg.b_sale * sale
            metrics.update({k: float(v.detach()) for k, v in parts.items()})
        applied, norms = grouped_step(loss, self.optimizer, self._groups)
        metrics.update({f"grad_norm_{k}": v for k, v in norms.items()})

        # --- 6. targets (Polyak on actor updates, or hard copies) and TD7's encoder chain
        self.updates += 1
        if applied:
            if cfg.target_tau > 0:
                if update_actor:
                    for name, module in self.target.items():
                        soft_update(module, self.online[name], cfg.target_tau)
            elif self.updates % cfg.target_update_interval == 0:
                for name, module in self.target.items():
                    module.load_state_dict(self.online[name].state_dict())
            if self.encoders is not None and self.updates % cfg.target_update_interval == 0:
                self.encoders.sync()
        else:
            self.nonfinite_updates += 1
        metrics.update(
            loss=float(loss.detach()),
            td_loss=float(td_loss.detach()),
            q_tot=float(masked_mean(q_tot.detach(), mask)),
            target_mean=float(masked_mean(targets, mask)),
            skipped=float(not applied),
        )
        return metrics

    # ==================================================================== checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Online and target networks (incl. normaliser statistics), optimiser, counters."""
        return {
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
            "nonfinite_updates": self.nonfinite_updates,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        try:
            self.online.load_state_dict(state_dict["online"])
            self.target.load_state_dict(state_dict["target"])
            # Deep copy: Adam keeps loaded same-device tensors as they are (aliasing the source).
            self.optimizer.load_state_dict(copy.deepcopy(state_dict["optimizer"]))
            updates, nonfinite = int(state_dict["updates"]), int(state_dict["nonfinite_updates"])
        except (KeyError, RuntimeError, ValueError) as err:
            raise ValueError(f"state dict does not match this continuous learner: {err}") from err
        self.updates, self.nonfinite_updates = updates, nonfinite


def build_from_mmsa_config(spec: EnvSpec, config: Any, device: torch.device) -> Learner:
    """Registry factory of ``mmsa_continuous``, and of ``mmsa`` on continuous actions: it also
    takes the discrete ``MMSAConfig``, its same-named fields carried over
    (``continuous_config_from``)."""
    return MMSAContinuousLearner(spec, continuous_config_from(config), device)


def _module_dict(**modules: nn.Module | None) -> nn.ModuleDict:
    return nn.ModuleDict({k: m for k, m in modules.items() if m is not None})


register_algo("mmsa_continuous", build_from_mmsa_config, MMSAContinuousConfig)
# `mmsa` on continuous actions: this learner with the discrete config's shared fields.
register_algo("mmsa", build_from_mmsa_config, MMSAConfig, action_kind="continuous")
