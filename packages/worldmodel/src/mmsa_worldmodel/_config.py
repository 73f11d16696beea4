"""`WorldModelConfig`: the one home of every world-model default and loss scale.

Sizes follow docs/design.md §4.7 (world model hidden 128, latent 16 per agent, SALE z 64-256, H = 3,
alpha = 0.8); the stochastic-latent details (softplus std with a floor, free nats) follow
DreamerV2/V3; the SALE sizes follow TD7 scaled down to the world model's width.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["WorldModelConfig"]

_ACTIVATIONS = ("elu", "relu", "silu", "tanh")


@dataclass(frozen=True)
class WorldModelConfig:
    """Sizes, switches and loss scales of :class:`mmsa_worldmodel.WorldModel`."""

    # ------------------------------------------------------------------ sizes
    deter_dim: int = 128
    """Size `Dh` of the deterministic GRU state `h_t` (docs/design.md §4.7: world model
    hidden 128)."""
    stoch_per_agent: int = 16
    """Size of the Gaussian latent `y_t` per agent; `Dy = stoch_per_agent * N`
    (docs/design.md §4.7)."""
    hidden: int = 128
    """Width of every MLP (decoders, prior, posterior, VAE-1, observation encoder)."""
    embed_dim: int = 128
    """Size of `enc(s_{t+1}, o_{t+1})`, the embedding of the real data the posterior reads."""
    vae1_latent_dim: int = 32
    """Size `X` of VAE-1's Gaussian code `x_t`."""
    sale_zs_dim: int = 64
    """Size `Z` of the joint SALE embeddings `z^s` and `z^{sa}` (docs/design.md §4.7: 64;
    TD7: 256)."""
    sale_hidden: int = 128
    """Hidden width of the SALE encoders `f_w`, `g_w` (TD7: 256)."""
    phi_dim: int = 64
    """Size of `phi^{sa} = AvgL1Norm(Linear([s, a]))`. `u_t` has `U = 2 * sale_zs_dim + phi_dim`
    entries, with or without SALE."""
    activation: str = "elu"
    """Activation of every hidden layer: one of elu, relu, silu, tanh (TD7 and DreamerV2: elu)."""
    layer_norm: bool = True
    """LayerNorm before every hidden activation of the MLPs (DreamerV3); the SALE encoders keep
    TD7's plain layers. On LBF it halves the posterior reconstruction error after 500 updates."""
    min_std: float = 0.1
    """Floor of the standard deviation of every Gaussian (prior, posterior, VAE-1): std =
    softplus(raw) + min_std (DreamerV1/V2), which keeps the KL finite."""

    # ------------------------------------------------------------------ switches
    use_sale: bool = True
    """Embed `(s_t, a_t)` with joint SALE, `u_t = [z^{sa}, z^s, phi^{sa}]`. False is the No-SALE
    ablation: `u_t = Linear([s_t, a_t])` of the same size `U` (no AvgL1Norm, no SALE encoders,
    no "sale" loss; VAE-1, VAE-2 and the decoders are unchanged)."""
    detach_sale: bool = False
    """True: as TD7's value function, the model reads `z^s`, `z^{sa}` without gradient, so the
    SALE encoders learn only from their prediction loss. False (default): the model's losses
    also shape them; on LBF this predicts the next state better (README). `phi^{sa}` always
    learns from the model."""
    kl_balance: float = 0.8
    """alpha of the balanced KL `alpha KL(sg(q)||p) + (1-alpha) KL(q||sg(p))` (DreamerV2: 0.8);
    0.5 is the plain KL scaled by 1/2 in its gradients (the No-KLB ablation,
    docs/design.md §4.6)."""
    free_nats: float = 0.0
    """Per-step floor of the transition KL, `max(KL, free_nats)`, so steps under it give no
    gradient (DreamerV3 uses 1.0). 0 disables it."""
    horizon: int = 3
    """Default imagination horizon `H` (docs/design.md §4.3); `imagine` takes it as an argument."""

    # ------------------------------------------------------------------ loss scales
    state_scale: float = 1.0
    """Scale of the global-state reconstruction loss "state"."""
    obs_scale: float = 1.0
    """Scale of the per-agent observation reconstruction loss "obs"."""
    avail_scale: float = 1.0
    """Scale of the available-action (Bernoulli) loss "avail" (discrete actions only)."""
    reward_scale: float = 1.0
    """Scale of the team-reward loss "reward"."""
    continue_scale: float = 1.0
    """Scale of the continue-flag (Bernoulli) loss "continue"."""
    vae1_rec_scale: float = 1.0
    """Scale of VAE-1's reconstruction of `u_t`, "vae1_rec"."""
    vae1_kl_scale: float = 0.1
    """Scale of VAE-1's KL of `x_t` to N(0, I), "vae1_kl" (a beta-VAE): `x_t` is the only path of
    `(s_t, a_t)` into `h_{t+1}`, and at 1.0 it lets too little through (README)."""
    kl_scale: float = 1.0
    """Scale of VAE-2's balanced transition KL, "kl" (docs/design.md §4.5: b_kl = 1)."""
    sale_scale: float = 1.0
    """Scale of the joint SALE prediction loss "sale" (docs/design.md §4.5: b_sale = 1)."""

    def __post_init__(self) -> None:
        for name in (
            "deter_dim",
            "stoch_per_agent",
            "hidden",
            "embed_dim",
            "vae1_latent_dim",
            "sale_zs_dim",
            "sale_hidden",
            "phi_dim",
            "horizon",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"WorldModelConfig.{name}={value!r} must be a positive int")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"WorldModelConfig.activation={self.activation!r} is not allowed; "
                f"use one of {', '.join(_ACTIVATIONS)}"
            )
        if not 0.0 < self.kl_balance < 1.0:
            raise ValueError(
                f"WorldModelConfig.kl_balance={self.kl_balance!r} must lie strictly between 0 and 1"
            )
        if not self.min_std > 0.0:
            raise ValueError(f"WorldModelConfig.min_std={self.min_std!r} must be > 0")
        if not self.free_nats >= 0.0:
            raise ValueError(f"WorldModelConfig.free_nats={self.free_nats!r} must be >= 0")
        for f in fields(self):
            if f.name.endswith("_scale") and not getattr(self, f.name) >= 0.0:
                raise ValueError(
                    f"WorldModelConfig.{f.name}={getattr(self, f.name)!r} must be >= 0"
                )

    def loss_scales(self) -> dict[str, float]:
        """Loss name -> scale, for every loss `WorldModel.losses` can return."""
        return {
            "state": self.state_scale,
            "obs": self.obs_scale,
            "avail": self.avail_scale,
            "reward": self.reward_scale,
            "continue": self.continue_scale,
            "vae1_rec": self.vae1_rec_scale,
            "vae1_kl": self.vae1_kl_scale,
            "kl": self.kl_scale,
            "sale": self.sale_scale,
        }
