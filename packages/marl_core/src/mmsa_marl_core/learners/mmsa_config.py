"""`MMSAConfig`: every hyper-parameter of the discrete MMSA learner, and its ablations.

It extends `QLearnerConfig` so that MMSA and the QMIX/VDN baselines share one home for what they
share (gamma, learning rate, target-update interval, epsilon schedule, agent and mixer widths):
a comparison at "the same settings" is then the same config object apart from MMSA's own fields.
World-model sizes, the KL balance alpha, the imagination horizon H and the per-term world-model
loss scales live in the nested `WorldModelConfig` (their one home); `b_kl`, `b_rec` and `b_sale`
weigh the groups of docs/design.md §4.5 on top of them.

Ablations (docs/design.md §4.6) are one field, `ablation`, so each variant is the same learner:

- `none`     the full method;
- `no_wm`    no world model and no rollout code: the mixer sees `s_t` only;
- `no_sale`  the agent head reads the raw recurrent state (`Q = Linear(h)`, no encoders, no
             agent SALE loss) and the world model embeds `(s, a)` without SALE;
- `no_klb`   plain KL in the world model: alpha = 0.5, the KL term scaled by 2 so its gradient is
             exactly that of `KL(q || p)` (balanced KL at 0.5 halves both sides' gradients);
- `no_gs`    the mixer is conditioned on the rollout code `c_t` without the true state `s_t`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from mmsa_worldmodel import WorldModelConfig

from ..networks.sale_agent import HEADS
from .q_learner import QLearnerConfig

__all__ = ["ABLATIONS", "AblationSwitches", "MMSAConfig", "check_fields"]

ABLATIONS = ("none", "no_wm", "no_sale", "no_klb", "no_gs")
"""Allowed values of `MMSAConfig.ablation` (docs/design.md §4.6)."""


def check_fields(config: Any, names: tuple[str, ...], ok: Callable[[Any], bool], what: str) -> None:
    """ValueError ``<Config>.<name>=<value> must be <what>`` for the first of `names` whose value
    is a bool or fails `ok`."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not ok(value):
            raise ValueError(f"{type(config).__name__}.{name}={value!r} must be {what}")


def positive_int(v: Any) -> bool:
    return isinstance(v, int) and v >= 1


def finite_number(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


class AblationSwitches:
    """What the discrete and the continuous MMSA configs share beyond their base configs: the
    switches an `ablation` field implies and the ablated world-model config, derived on read,
    never stored (configs are not mutated), and the checks of their common MMSA fields."""

    ablation: str
    world_model: WorldModelConfig

    @property
    def use_sale(self) -> bool:
        """SALE agent head (and actor input) and SALE world-model embedding (off in no_sale)."""
        return self.ablation != "no_sale"

    @property
    def use_world_model(self) -> bool:
        """World model, imagination and rollout code (off in no_wm)."""
        return self.ablation != "no_wm"

    @property
    def use_global_state(self) -> bool:
        """Mixer conditioned on `s_t` (off in no_gs)."""
        return self.ablation != "no_gs"

    @property
    def ablated_world_model(self) -> WorldModelConfig:
        """`world_model` with the ablation applied: no SALE embedding in no_sale, alpha = 0.5
        (plain KL) in no_klb."""
        wm = self.world_model
        if self.ablation == "no_sale":
            wm = replace(wm, use_sale=False)
        if self.ablation == "no_klb":
            wm = replace(wm, kl_balance=0.5)
        return wm

    def check_mmsa_fields(self) -> None:
        """ValueError (TypeError for `world_model`) naming the first bad common MMSA field:
        `ablation`, the SALE and rollout-code sizes, the encoder and world-model learning rates
        and clip, the loss-group weights."""
        if self.ablation not in ABLATIONS:
            raise ValueError(
                f"{type(self).__name__}.ablation={self.ablation!r} is not allowed; use one of "
                f"{', '.join(ABLATIONS)}"
            )
        check_fields(
            self, ("zs_dim", "sale_hidden", "phi_dim", "code_dim"), positive_int, "a positive int"
        )
        check_fields(
            self,
            ("encoder_lr", "world_model_lr", "world_model_grad_clip"),
            lambda v: finite_number(v) and v > 0,
            "a positive number",
        )
        check_fields(
            self,
            ("b_kl", "b_rec", "b_sale"),
            lambda v: finite_number(v) and v >= 0,
            "a number >= 0",
        )
        if not isinstance(self.world_model, WorldModelConfig):
            raise TypeError(
                f"{type(self).__name__}.world_model must be a WorldModelConfig, "
                f"got {self.world_model!r}"
            )


@dataclass(frozen=True)
class MMSAConfig(QLearnerConfig, AblationSwitches):
    """`QLearnerConfig` (shared with QMIX/VDN) plus SALE, the world model and the unified loss."""

    ablation: str = "none"
    """Which part to remove: one of none, no_wm, no_sale, no_klb, no_gs (docs/design.md §4.6)."""
    zs_dim: int = 64
    """Size `Z` of the agent embeddings `z^o`, `z^oa` (docs/design.md §4.7: 64; TD7: 256)."""
    sale_hidden: int = 64
    """Hidden width of the agent SALE encoders `f`, `g` (TD7: 256 for MuJoCo states; per-agent
    inputs here are 10-100 numbers, and 64 instead of 128 makes the all-actions pass, run three
    times per update, 35% cheaper)."""
    phi_dim: int = 64
    """Size of `phi^oa = AvgL1Norm(Linear([h, onehot(a)]))`."""
    head_hidden: int = 64
    """Width of the two hidden ELU layers of the Q head over `[z^o, z^oa, phi^oa]` (TD7 critic)."""
    agent_head: str = "residual"
    """How `Q_i` reads its inputs (`sale_agent.HEADS`): `residual` (default) is QMIX's per-action
    read-out of the recurrent state plus the SALE head,
    `Q_i(a) = Linear(h)[a] + head([z^o, z^oa(a), phi^oa(a)])`, the SALE head's last layer
    initialised at zero, so the agent starts as the PyMARL agent and the SALE head learns a
    correction; `sale` is the SALE head alone, `Q_i(a) = head([z^o, z^oa(a), phi^oa(a)])` (TD7's
    critic, no per-action output weights), which learns more slowly per update (package README,
    "MMSA learner: measurements"). No effect in no_sale (`Q = Linear(h)`); discrete learner
    only (the continuous critic keeps the SALE head)."""
    encoder_update_interval: int = 0
    """Applied updates between two refreshes of the fixed encoder (`fixed <- online`); 0 refreshes
    it at every target update (`target_update_interval`, TD7's coupling). The fixed-target copy
    always moves at target updates (`fixed_target <- fixed`, before a refresh due at the same
    update), so the target agent reads the encoder the online agent was trained on when it was
    copied. TD7: 250 updates at one update per env step."""
    encoder_lr: float = 3e-4
    """Adam learning rate of the online agent encoder (TD7: 3e-4)."""
    sale_task_weight: float = 0.0
    """Weight of task targets for the agent embedding (MR.Q's reading of SALE: its encoder also
    predicts reward and termination). With a weight above 0 a linear read-out of the online
    encoder's `z^oa(x_t, a_t)` predicts the team reward `r_t` (as the TD loss sees it, i.e.
    standardised when `standardise_rewards`) by squared error and the termination flag by
    logistic loss, for every agent; the weight times their sum is the term `sale_agent_task` of
    the SALE group. 0 keeps TD7's objective, the next embedding only. Discrete learner only."""
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    """World-model sizes, alpha (`kl_balance`, 0.8), horizon H (3) and per-term loss scales."""
    world_model_lr: float = 3e-4
    """Adam learning rate of the world model."""
    world_model_grad_clip: float = 100.0
    """Gradient-norm clip of the world-model and encoder parameters, each group on its own
    (DreamerV2: 100), so their larger gradients never shrink the TD step, whose parameters keep
    `grad_norm_clip` (10)."""
    imagination_warmup_updates: int = 0
    """For this many applied updates the mixer reads a zero rollout code (no imagination runs,
    the rollout GRU gets no gradient) while the world model already trains on its own losses, so
    early TD targets are not conditioned on rollouts of an untrained model; 0 imagines from the
    first update."""
    imagination_fraction: float = 0.25
    """Fraction of the batch's episodes whose real steps are imagined from at each update (drawn
    anew every update with torch's generator, at least one episode); the other episodes' rows
    get a zero rollout code, in the online and the target mixer alike, and their TD errors still
    train the agents and the mixer. The imagination's cost scales with it: a quarter makes an
    update about 1.5x faster on a CPU and learned as well on LBF 2s-8x8 at 200k steps (package
    README, "MMSA learner: measurements"). 1.0 imagines from every real step, as the paper does;
    a value in (0, 1] is allowed. Discrete learner only."""
    code_dim: int = 32
    """Size `C` of the rollout code `c_t` (the rollout GRU's state)."""
    b_kl: float = 1.0
    """Weight of the KL group: VAE-2's balanced transition KL and VAE-1's KL
    (docs/design.md §4.5)."""
    b_rec: float = 1.0
    """Weight of the reconstruction group: VAE-1's reconstruction and the decoder heads (state,
    observations, available actions, reward, continue flag) (docs/design.md §4.5)."""
    b_sale: float = 1.0
    """Weight of the SALE group: agent SALE loss plus world-model SALE loss
    (docs/design.md §4.5)."""
    first_action_from_data: bool = True
    """Imagination's first action from each real step is the agents' greedy action on the real
    `o_t` (which the posterior `m_t` encodes, and which the double-Q target computes anyway)
    instead of on the decoded `o^_t`; later steps act on decoded observations. Saves one
    all-actions agent pass per update. False: every imagined step acts on decoded observations."""
    cuda_graphs: bool = True
    """On a GPU, replay the imagination (float32 updates) and the acting step from CUDA graphs
    (one launch instead of hundreds, or some forty; `imagination_graph`, `acting_graph`). No
    effect on the CPU; False runs both eagerly everywhere."""
    diagnostics_every: int = 200
    """Every this many updates, log diagnostics computed on the update's batch before its step:
    world-model k-step open-loop error, KL per step and posterior collapse (`diag_*`), and the
    spread and effective rank of the fixed encoder's `z^o` (`diag_zs_spread`, `diag_zs_erank`);
    0 turns them off. The fixed encoder's age and the Q head's gradient norm are logged at
    every update."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_mmsa_fields()
        if not (self.obs_last_action and self.obs_agent_id):
            raise ValueError(
                "MMSAConfig.obs_last_action and obs_agent_id must be True: the SALE agent's input "
                "is x = [o, onehot(a_prev), onehot(i)] (docs/design.md §4.1)"
            )
        check_fields(self, ("head_hidden",), positive_int, "a positive int")
        if self.agent_head not in HEADS:
            raise ValueError(
                f"MMSAConfig.agent_head={self.agent_head!r} must be one of {', '.join(HEADS)}"
            )
        check_fields(
            self,
            ("encoder_update_interval", "imagination_warmup_updates"),
            lambda v: isinstance(v, int) and v >= 0,
            "an int >= 0",
        )
        check_fields(
            self, ("sale_task_weight",), lambda v: finite_number(v) and v >= 0, "a number >= 0"
        )
        check_fields(
            self,
            ("imagination_fraction",),
            lambda v: finite_number(v) and 0 < v <= 1,
            "a number in (0, 1]",
        )
        if isinstance(self.diagnostics_every, bool) or self.diagnostics_every < 0:
            raise ValueError(
                f"MMSAConfig.diagnostics_every={self.diagnostics_every!r} must be an int >= 0"
            )
