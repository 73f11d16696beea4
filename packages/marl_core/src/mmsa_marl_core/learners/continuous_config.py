"""Configs of the continuous-action learners: ``FACMACConfig`` and ``MMSAContinuousConfig``.

``FACMACConfig`` holds every hyper-parameter of the mixed actor-critic (FACMAC, Peng et al. 2021;
TD3/TD7 exploration, target policy smoothing, policy delay and target networks).
``MMSAContinuousConfig`` extends it with SALE, the world model, the unified-loss weights and the
ablation switch, so each default has one home and FACMAC vs MMSA differ only in MMSA's own fields.
Field names shared with the discrete learners (``gamma``, ``agent_hidden``, ``mixer_embed_dim``,
``grad_norm_clip``, ``ablation``, ``b_kl`` ...) mean the same thing there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from mmsa_worldmodel import WorldModelConfig

from .mmsa_config import AblationSwitches, check_fields, finite_number, positive_int

__all__ = ["FACMACConfig", "MMSAContinuousConfig", "continuous_config_from"]


@dataclass(frozen=True)
class FACMACConfig:
    """Hyper-parameters of the mixed actor-critic (the ``facmac`` algorithm)."""

    gamma: float = 0.99
    """Discount factor (docs/design.md §4.7)."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor (TD7: 3e-4)."""
    critic_lr: float = 3e-4
    """Adam learning rate of the agent GRU, critic head, mixer and rollout encoder (TD7: 3e-4)."""
    agent_hidden: int = 64
    """Size of the shared agent GRU state ``h_i`` (docs/design.md §4.7: agent hidden 64)."""
    width: int = 128
    """Width of the hidden layers of the actor and the critic head (TD7: 256, halved here for
    the small per-agent inputs)."""
    mixer_embed_dim: int = 32
    """QMIX mixing-network width (docs/design.md §4.7)."""
    hypernet_hidden: int = 64
    """QMIX hypernetwork hidden width (docs/design.md §4.7)."""
    obs_last_action: bool = False
    """Feed ``a_{t-1}`` to the agents, as the discrete agents do (docs/design.md §4.1). Off for
    continuous control (FACMAC's MaMuJoCo setting): with gamma = 0.99 any spurious dependence of
    the learned value on ``a_{t-1}`` is amplified ~1/(1-gamma) and the actor exploits it
    (measured on dummy:continuous: the actions saturate at the bounds)."""
    normalize_inputs: bool = True
    """Standardise observations and the mixer's state with running statistics (see
    ``input_norm``: raw MaMuJoCo velocities make QMIX's initial weights ~10x too large)."""
    exploration_std: float = 0.1
    """Std of the Gaussian exploration noise in half-action-range units (TD7: 0.1)."""
    random_steps: int = 10_000
    """Env steps at the start that act uniformly at random within the bounds (TD3
    start_timesteps: 10k; TD7: 25k). 0 disables the warm-up."""
    target_noise_std: float = 0.2
    """Std of the target policy smoothing noise, half-range units (TD3/TD7: 0.2)."""
    target_noise_clip: float = 0.5
    """Clip of the target policy smoothing noise, half-range units (TD3/TD7: 0.5)."""
    policy_delay: int = 2
    """The actor is updated on every ``policy_delay``-th update only (TD3/TD7: 2)."""
    actor_regularization: float = 1e-3
    """Weight of the mean squared unit-scale action in the actor loss (FACMAC's
    ``(pi ** 2).mean() * 1e-3``): keeps the tanh out of saturation while the critic is poor."""
    target_tau: float = 0.005
    """Polyak rate of the soft target update made on every actor update (TD3: 0.005). 0 selects
    hard copies every ``target_update_interval`` updates (TD7)."""
    target_update_interval: int = 250
    """Updates between TD7's hard copies online -> fixed -> fixed target of the SALE encoders
    (TD7: 250), and between hard target copies when ``target_tau`` is 0."""
    grad_norm_clip: float = 10.0
    """Gradient-norm clip of the actor and of the critic group, each on its own
    (docs/design.md §4.5: 10)."""

    def __post_init__(self) -> None:
        check_fields(
            self,
            (
                "agent_hidden",
                "width",
                "mixer_embed_dim",
                "hypernet_hidden",
                "policy_delay",
                "target_update_interval",
            ),
            positive_int,
            "a positive int",
        )
        check_fields(
            self, ("random_steps",), lambda v: isinstance(v, int) and v >= 0, "an int >= 0"
        )
        check_fields(
            self,
            ("actor_lr", "critic_lr", "grad_norm_clip"),
            lambda v: finite_number(v) and v > 0,
            "a positive number",
        )
        check_fields(
            self,
            ("exploration_std", "target_noise_std", "target_noise_clip", "actor_regularization"),
            lambda v: finite_number(v) and v >= 0,
            "a number >= 0",
        )
        check_fields(
            self, ("gamma", "target_tau"), lambda v: finite_number(v) and 0 <= v <= 1, "in [0, 1]"
        )


@dataclass(frozen=True)
class MMSAContinuousConfig(FACMACConfig, AblationSwitches):
    """``FACMACConfig`` plus SALE, the world model, the loss weights and the ablation."""

    ablation: str = "none"
    """Which part to remove: one of none, no_wm, no_sale, no_klb, no_gs (docs/design.md §4.6; the
    same meanings as the discrete ``MMSAConfig.ablation``)."""
    zs_dim: int = 64
    """Size ``Z`` of the agent embeddings ``z^o``, ``z^oa`` (docs/design.md §4.7: 64)."""
    sale_hidden: int = 128
    """Hidden width of the agent SALE encoders (TD7: 256)."""
    phi_dim: int = 64
    """Size of ``phi^oa = AvgL1Norm(Linear([h, a]))``."""
    encoder_lr: float = 3e-4
    """Adam learning rate of the online agent encoder (TD7: 3e-4)."""
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    """World-model sizes, alpha (``kl_balance``), horizon ``H`` and per-term loss scales."""
    world_model_lr: float = 3e-4
    """Adam learning rate of the world model."""
    world_model_grad_clip: float = 100.0
    """Gradient-norm clip of the world-model and encoder groups, each on its own (DreamerV2:
    100), so their larger gradients never shrink the actor-critic step."""
    code_dim: int = 32
    """Size ``C`` of the rollout code ``c_t``."""
    b_kl: float = 1.0
    """Weight of the KL group: VAE-2's balanced KL and VAE-1's KL (docs/design.md §4.5)."""
    b_rec: float = 1.0
    """Weight of the reconstruction group: VAE-1 and the decoder heads (docs/design.md §4.5)."""
    b_sale: float = 1.0
    """Weight of the SALE group: agent SALE loss plus world-model SALE loss
    (docs/design.md §4.5)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_mmsa_fields()


def continuous_config_from(config: Any) -> MMSAContinuousConfig:
    """An ``MMSAContinuousConfig`` carrying every same-named field of ``config`` (e.g. the
    discrete ``MMSAConfig``: ``ablation``, ``gamma``, SALE and world-model settings), the rest
    at their defaults. Lets one ``mmsa`` config drive both action kinds. ``obs_last_action`` is
    not carried: the discrete agents need it, the continuous ones are better without it."""
    if isinstance(config, MMSAContinuousConfig):
        return config
    names = {f.name for f in fields(MMSAContinuousConfig)} - {"obs_last_action"}
    shared = {f.name: getattr(config, f.name) for f in fields(config) if f.name in names}
    return MMSAContinuousConfig(**shared)
