"""`MMSALearner`: discrete-action MMSA — SALE agents, world-model rollout codes, QMIX, one loss.

`update(batch)` reads top to bottom (docs/design.md §4.1-§4.5):
1. agents: unroll the shared GRU over all `T+1` rows; `Q_i` of every action in one pass from the
   TD7 *fixed* encoder copy (`SALEAgent.q_values`);
2. world model: its unreduced named losses on the batch, and the posterior states they were
   computed on (one pass; detached);
3. imagination: `H` steps from every posterior state at once (of a drawn fraction of the
   episodes with `imagination_fraction` < 1, the others' code being zero), the current agents
   acting greedily on decoded observations and availabilities; the rollout GRU turns each
   imagined sequence into `c_t` (online and target copies read the same imagined features);
4. TD: `Q_tot = QMIX(Q_i ; [s_t, c_t])`; double-Q target `r + gamma (1 - term) Q_tot^-(t+1)`
   with target agent (fixed-target encoder), target mixer and target rollout GRU; truncation
   bootstraps;
5. the one loss `L = L_TD + b_kl L_KL + b_rec L_rec + b_sale (L_SALE^agent + L_SALE^world)`
   (`L_SALE^agent` with reward and termination read-outs when `sale_task_weight` > 0), one
   backward pass, per-group gradient-norm clip, one Adam step; every term in the metrics;
6. every `target_update_interval` applied updates: hard copy online -> target and
   `fixed_target <- fixed`; every `encoder_update_interval` applied updates (0: at the target
   updates, TD7's coupling) `fixed <- online`: TD7's `online -> fixed -> fixed_target` chain.

Logged next to the losses: `fixed_encoder_age` (applied updates since the fixed encoder was last
refreshed, at this update, before any refresh), `grad_norm_q_head` (the Q head's gradient norm
before clipping: the SALE MLP head, or the linear head without SALE; `grad_norm_q_linear` for the
residual head's linear read-out), and every `diagnostics_every` updates `diag_zs_spread` /
`diag_zs_erank` (`sale_agent.embedding_stats` of the fixed encoder's `z^o` on the batch).

Ablations are switches of this one learner (`MMSAConfig.ablation`, see `mmsa_config`). The world
model's share of steps 2-3 and 5 (loss terms, rollout codes, loss groups) is in `mmsa_world`.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmsa_envs import EnvSpec
from mmsa_sale import Encoder, FixedEncoders
from mmsa_worldmodel import WorldModel

from ..data.batch import Batch
from ..imagination.acting_graph import ActingGraphs
from ..imagination.imagination_graph import ImaginationGraphs
from ..imagination.mmsa_world import (
    imagined_rows,
    loss_groups,
    model_param_groups,
    rollout_code_pair,
    world_model_and_rollout,
    world_model_diagnostics,
    world_model_terms,
)
from ..imagination.rollout import RolloutEncoder
from ..networks.agent import onehot_last_actions
from ..networks.mixers import QMIX
from ..networks.sale_agent import (
    SALEAgent,
    agent_inputs,
    agent_sale_terms,
    fixed_embedding_stats,
    q_of_action,
)
from ..ops.optim import (
    RunningMeanStd,
    grouped_step,
    optimizer_groups,
    pre_clip_grad_norms,
    present_modules,
    scalars,
)
from ..ops.precision import low_precision
from ..ops.td import Rows, masked_argmax, masked_mean, td_metrics, td_targets
from ..registry import Learner, register_algo
from .mmsa_config import MMSAConfig
from .q_learner import EpsilonGreedyActing

__all__ = ["MMSALearner"]


class MMSALearner(EpsilonGreedyActing):
    """The discrete MMSA learner; implements `mmsa_marl_core.Learner`."""

    def __init__(self, spec: EnvSpec, config: MMSAConfig, device: torch.device | str) -> None:
        if not spec.discrete:
            raise ValueError(
                f"MMSALearner needs discrete actions; env {spec.id!r} is {spec.action_kind} "
                "(use the continuous 'mmsa' learner for MaMuJoCo)"
            )
        self.spec, self.config, self.device = spec, config, torch.device(device)
        cfg = config
        n, a = spec.n_agents, spec.n_actions
        input_dim = spec.obs_dim + a + n
        # ---------------------------------------------------------------- online networks
        self.agent = SALEAgent(
            input_dim=input_dim,
            n_actions=a,
            hidden_dim=cfg.agent_hidden,
            zs_dim=cfg.zs_dim,
            phi_dim=cfg.phi_dim,
            head_hidden=cfg.head_hidden,
            use_sale=cfg.use_sale,
            head=cfg.agent_head,
        )
        self.encoders: FixedEncoders | None = None
        if cfg.use_sale:
            self.encoders = FixedEncoders(
                Encoder(input_dim, a, zs_dim=cfg.zs_dim, hidden=cfg.sale_hidden)
            )
        # MR.Q-style task read-out of the online z^oa: [reward, termination logit].
        self.task_head: nn.Linear | None = None
        if cfg.use_sale and cfg.sale_task_weight > 0:
            self.task_head = nn.Linear(cfg.zs_dim, 2)
        self.world_model: WorldModel | None = None
        self.rollout_encoder: RolloutEncoder | None = None
        if cfg.use_world_model:
            self.world_model, self.rollout_encoder = world_model_and_rollout(spec, cfg)
        self.mixer = QMIX(
            n,
            spec.state_dim if cfg.use_global_state else 0,
            cfg.mixer_embed_dim,
            cfg.hypernet_hidden,
            extra_cond_dim=cfg.code_dim if cfg.use_world_model else 0,
        )
        self.online = present_modules(
            agent=self.agent, encoders=self.encoders, task_head=self.task_head,
            world_model=self.world_model, rollout_encoder=self.rollout_encoder, mixer=self.mixer,
        ).to(self.device)  # fmt: skip
        # ---------------------------------------------------------------- target networks
        # Everything the TD target reads; the encoders keep their own TD7 chain.
        self.target_agent = copy.deepcopy(self.agent).requires_grad_(False)
        self.target_mixer = copy.deepcopy(self.mixer).requires_grad_(False)
        self.target_rollout_encoder = copy.deepcopy(self.rollout_encoder)
        self.target = present_modules(
            agent=self.target_agent,
            rollout_encoder=self.target_rollout_encoder,
            mixer=self.target_mixer,
        ).requires_grad_(False)
        # ---------------------------------------------------------------- one optimiser
        td_params = [*self.agent.parameters(), *self.mixer.parameters()]
        if self.rollout_encoder is not None:
            td_params += list(self.rollout_encoder.parameters())
        model_groups = model_param_groups(self.encoders, self.world_model, cfg)
        if self.task_head is not None:  # trained with the encoder it reads
            model_groups["encoder"][0].extend(self.task_head.parameters())
        param_groups, self._groups = optimizer_groups(
            {"td": (td_params, cfg.lr, cfg.grad_norm_clip), **model_groups}
        )
        # The imagination (step 3), replayed from CUDA graphs on a GPU (imagination_graph).
        self.imagination: ImaginationGraphs | None = None
        if self.world_model is not None:
            self.imagination = ImaginationGraphs(
                self.world_model,
                self.agent,
                self._fixed,
                self.world_model.config.horizon,
                enabled=cfg.cuda_graphs,
            )
        # The acting step (agent + fixed encoder), from CUDA graphs on a GPU (acting_graph).
        self.acting = ActingGraphs(self.agent, self._fixed, enabled=cfg.cuda_graphs)
        self.optimizer = cfg.build_optimizer(param_groups)
        self.epsilon = cfg.build_epsilon()
        self.reward_stats = RunningMeanStd()
        self.updates = 0
        self.nonfinite_updates = 0
        self.encoder_refreshed_at = 0
        """Value of `updates` at the last `fixed <- online` refresh (0: the initial copy)."""

    # ================================================================== acting
    def initial_state(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """Zero GRU state `[B, N, H]` and no previous action `[B, N, A]`."""
        n, a = self.spec.n_agents, self.spec.n_actions
        hidden = self.agent.initial_hidden((batch_size, n), self.device)
        return hidden, torch.zeros(batch_size, n, a, device=self.device)

    def q_values(
        self, obs: np.ndarray, state: tuple[Tensor, Tensor]
    ) -> tuple[np.ndarray, tuple[Tensor, Tensor]]:
        """Agent Q-values `[B, N, A]` for one step (`act` is `EpsilonGreedyActing`'s) and the next
        recurrent state; the agents read `z^o, z^oa` from the fixed encoder copy, as in the TD
        loss (TD7)."""
        hidden, last_action = state
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        q, hidden = self.acting(obs_t, hidden, last_action)
        return q.cpu().numpy(), (hidden, last_action)

    @property
    def _fixed(self) -> Encoder | None:
        return None if self.encoders is None else self.encoders.fixed

    # ================================================================== learning
    def update(self, batch: Batch) -> dict[str, float]:
        """One update of every part on a batch of episodes (see the module docstring)."""
        cfg, metrics = self.config, {}
        reward, mask, terminated = batch.reward, batch.mask, batch.terminated
        # Real transitions [T, B] and rows holding a real observation [T+1, B], as indices: one
        # device sync each here instead of one per boolean-mask use below (td.Rows).
        real_mask = mask > 0
        real, rows = Rows(real_mask), Rows(torch.cat([real_mask[:1], real_mask]))
        if cfg.standardise_rewards:
            self.reward_stats.update(real.take(reward))
            reward = self.reward_stats.normalise(reward)
        if cfg.diagnostics_every and (self.updates + 1) % cfg.diagnostics_every == 0:
            metrics.update(self.diagnostics(batch))

        # --- 1. agents (docs/design.md §4.1): the GRU over every row; the SALE head reads the fixed
        # encoder copy (TD7). Rows without a real observation (padding) are skipped.
        n_actions = self.spec.n_actions
        last_action = onehot_last_actions(batch.action, n_actions)  # [T+1, B, N, A]
        x = agent_inputs(batch.obs, last_action)  # [T+1, B, N, O+A+N]
        hidden = self.agent.unroll(x)  # [T+1, B, N, H], after reading x_t
        # Q_i(o_t, a_t) with gradient: only the taken action of real transitions.
        q_taken = real.put(
            q_of_action(
                self.agent, real.take(x), real.take(hidden), real.take(batch.action), self._fixed
            )
        )  # [T, B, N], zeros on padding
        # Greedy actions on every real row, all actions in one pass, no gradient: they serve
        # the double-Q target at t+1 and the imagination's first step.
        with torch.no_grad(), low_precision(self.device):
            q_rows = self.agent.q_values(rows.take(x), rows.take(hidden), self._fixed)  # [M, N, A]
            greedy = rows.put(masked_argmax(q_rows, rows.take(batch.avail_actions)))  # [T+1,B,N]

        # --- 2-3. world model losses; imagination from every real posterior state in one call;
        # the rollout GRU turns each imagined sequence into c_t (online and target copies)
        terms: dict[str, Tensor] = {}
        code = target_code = None
        if self.world_model is not None and self.rollout_encoder is not None:
            assert self.target_rollout_encoder is not None and self.imagination is not None
            terms, wm_metrics, posterior = world_model_terms(self.world_model, batch, real_mask)
            metrics.update(wm_metrics)
            if self.updates < cfg.imagination_warmup_updates:  # warm-up: a zero rollout code
                code = x.new_zeros(*x.shape[:2], cfg.code_dim)
                target_code = code
            else:
                code, target_code = rollout_code_pair(
                    posterior, imagined_rows(real_mask, rows, cfg.imagination_fraction),
                    self.imagination, hidden, last_action, greedy,
                    (self.rollout_encoder, self.target_rollout_encoder),
                    first_action_from_data=cfg.first_action_from_data,
                )  # fmt: skip

        # --- 4. double-Q TD target: target agent (fixed-target encoder), target mixer
        state = batch.state if cfg.use_global_state else batch.state[..., :0]
        with torch.no_grad():
            target_fixed = None if self.encoders is None else self.encoders.fixed_target
            with low_precision(self.device):  # bf16 for the target agent only, not the mixer
                # rows t+1 of the real steps t
                target_hidden = real.take(self.target_agent.unroll(x), shift=1)
                next_x = real.take(x, shift=1)
                if cfg.double_q:
                    next_greedy = real.take(greedy, shift=1)
                    q_next = q_of_action(
                        self.target_agent, next_x, target_hidden, next_greedy, target_fixed
                    )
                else:
                    q_all = self.target_agent.q_values(next_x, target_hidden, target_fixed)
                    next_avail = real.take(batch.avail_actions, shift=1)
                    q_next = q_all.masked_fill(~next_avail, float("-inf")).amax(dim=-1)
            target_q = real.put(q_next.to(q_taken.dtype))  # [T, B, N]
            next_extra = None if target_code is None else target_code[1:]
            next_q_tot = self.target_mixer(target_q, state[1:], next_extra)
            targets = td_targets(reward, terminated, next_q_tot, cfg.gamma)
        q_tot = self.mixer(q_taken, state[:-1], None if code is None else code[:-1])
        td_error = q_tot - targets
        td_loss = masked_mean(td_error**2, mask)

        # --- 5. agent SALE loss (TD7: ||g(f(x_t), a_t) - sg(f(x_{t+1}))||^2 on real steps)
        if self.encoders is not None:
            terms |= agent_sale_terms(
                self.encoders.online, self.task_head, cfg.sale_task_weight, real.take(x),
                real.take(last_action, 1), real.take(x, 1), real.take(reward),
                real.take(terminated),
            )  # fmt: skip

        # --- the one loss: L_TD + b_kl L_KL + b_rec L_rec + b_sale L_SALE
        groups = loss_groups(terms, cfg.ablation, self.device)
        loss = (
            td_loss
            + cfg.b_kl * groups["kl_loss"]
            + cfg.b_rec * groups["rec_loss"]
            + cfg.b_sale * groups["sale_loss"]
        )
        applied, norms = self._step(loss)
        head_norms = (
            pre_clip_grad_norms(
                {"grad_norm_q_head": self.agent.head, "grad_norm_q_linear": self.agent.linear_head},
                cfg.grad_norm_clip, norms["td"],
            )
            if applied
            else {}
        )  # fmt: skip

        # --- 6. targets and the TD7 encoder chain
        age = float(self.updates - self.encoder_refreshed_at)
        if applied:
            self.updates += 1
            if self.updates % cfg.target_update_interval == 0:
                self.update_targets()
            interval = cfg.encoder_update_interval or cfg.target_update_interval
            if self.updates % interval == 0:
                self.refresh_encoder()
        else:
            self.nonfinite_updates += 1

        values: dict[str, Tensor | float] = {
            "loss": loss,
            "td_loss": td_loss,
            **groups,
            **{f"loss_{k}": v for k, v in terms.items()},
            **td_metrics(td_error, q_tot, targets, mask),
            "skipped": 0.0 if applied else 1.0,
            **{f"grad_norm_{k}": v for k, v in norms.items()},
            **head_norms,
        }
        if self.encoders is not None:
            values["fixed_encoder_age"] = age
        if code is not None:
            values["rollout_code_abs"] = code.detach().abs().mean()
        metrics.update(scalars(values))  # one device sync for all of them
        return metrics

    def _step(self, loss: Tensor) -> tuple[bool, dict[str, float]]:
        """One backward pass, a gradient-norm clip per parameter group, one optimiser step —
        skipped (gradients cleared) when the loss or a gradient norm is NaN/inf."""
        return grouped_step(loss, self.optimizer, self._groups)

    def update_targets(self) -> None:
        """Hard copy online -> target (QMIX) and `fixed_target <- fixed`; with
        `encoder_update_interval=0`, `refresh_encoder` follows at the same update (TD7's chain
        online -> fixed -> fixed_target, the target taking the old fixed weights)."""
        for name, module in self.target.items():
            module.load_state_dict(self.online[name].state_dict())
        if self.encoders is not None:
            self.encoders.fixed_target.load_state_dict(self.encoders.fixed.state_dict())

    def refresh_encoder(self) -> None:
        """`fixed <- online`: the agents' SALE inputs move to the trained encoder."""
        if self.encoders is not None:
            self.encoders.fixed.load_state_dict(self.encoders.online.state_dict())
            self.encoder_refreshed_at = self.updates

    def diagnostics(self, batch: Batch) -> dict[str, float]:
        """World-model diagnostics on `batch` (`mmsa_world.world_model_diagnostics`) and the
        spread / effective rank of the fixed encoder's `z^o` on its real rows; {} without either."""
        out = {} if self.world_model is None else world_model_diagnostics(self.world_model, batch)
        if self.encoders is not None:
            out |= fixed_embedding_stats(
                self.encoders.fixed, batch.obs, batch.action, batch.mask, self.spec.n_actions
            )
        return out

    # ================================================================== resume
    def state_dict(self) -> dict[str, Any]:
        return {
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "reward_stats": self.reward_stats.state_dict(),
            "updates": self.updates,
            "nonfinite_updates": self.nonfinite_updates,
            "encoder_refreshed_at": self.encoder_refreshed_at,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        missing = [k for k in ("online", "target", "optimizer", "updates") if k not in state_dict]
        if missing:
            raise ValueError(f"MMSALearner checkpoint lacks {missing}")
        try:
            self.online.load_state_dict(state_dict["online"])
            self.target.load_state_dict(state_dict["target"])
            # deepcopy: Optimizer.load_state_dict keeps references to the given tensors.
            self.optimizer.load_state_dict(copy.deepcopy(state_dict["optimizer"]))
        except (RuntimeError, ValueError, KeyError) as err:
            raise ValueError(
                f"MMSALearner checkpoint does not match this learner "
                f"(ablation={self.config.ablation!r}): {err}"
            ) from err
        self.reward_stats.load_state_dict(state_dict["reward_stats"])
        self.updates = int(state_dict["updates"])
        self.nonfinite_updates = int(state_dict["nonfinite_updates"])
        # Checkpoints from before the decoupled refresh: refreshes happened at target updates.
        interval = self.config.encoder_update_interval or self.config.target_update_interval
        self.encoder_refreshed_at = int(
            state_dict.get("encoder_refreshed_at", self.updates - self.updates % interval)
        )

    @classmethod
    def build(cls, spec: EnvSpec, config: MMSAConfig, device: torch.device) -> Learner:
        """Registry factory of ``mmsa`` on discrete actions (continuous ones get the actor-critic
        learner of ``mmsa_continuous``, registered there for the same name)."""
        if not isinstance(config, MMSAConfig):
            raise TypeError(f"MMSALearner needs an MMSAConfig, got {type(config).__name__}")
        return cls(spec, config, device)


register_algo("mmsa", MMSALearner.build, MMSAConfig, action_kind="discrete")
