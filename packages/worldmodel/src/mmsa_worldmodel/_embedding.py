"""The input of the transition: `u_t`, the joint embedding of (state, joint action).

With SALE (docs/design.md §4.3 step 1, TD7 sec. 4.1): `z^s = f_w(s)`, `z^{sa} = g_w(z^s, a)`,
`phi^{sa} = AvgL1Norm(Linear([s, a]))` and `u_t = [z^{sa}, z^s, phi^{sa}]` (TD7's critic input
order). The joint action `a` is the concatenation over agents of one-hot (discrete) or raw
(continuous) actions, `[..., N * A]`.

Without SALE (the No-SALE ablation, docs/design.md §4.6): `u_t = Linear([s, a])` with the same
size `U`, no normalisation and no encoder loss, so everything after it is unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmsa_sale import Encoder, Phi

from ._config import WorldModelConfig

__all__ = ["JointEmbedding"]


class JointEmbedding(nn.Module):
    """`(state [..., S], joint action [..., N*A]) -> u [..., U]`, plus the SALE loss on data."""

    def __init__(self, state_dim: int, joint_action_dim: int, config: WorldModelConfig) -> None:
        super().__init__()
        self.use_sale = config.use_sale
        self.detach_sale = config.detach_sale
        self.out_dim = 2 * config.sale_zs_dim + config.phi_dim
        self.encoder: Encoder | None = None
        self.phi: Phi | None = None
        self.raw: nn.Linear | None = None
        if config.use_sale:
            self.encoder = Encoder(
                state_dim,
                joint_action_dim,
                zs_dim=config.sale_zs_dim,
                hidden=config.sale_hidden,
                activation=config.activation,
            )
            self.phi = Phi(state_dim, joint_action_dim, config.phi_dim)
        else:
            self.raw = nn.Linear(state_dim + joint_action_dim, self.out_dim)

    def _combine(self, zs: Tensor, zsa: Tensor, state: Tensor, action: Tensor) -> Tensor:
        assert self.phi is not None
        if self.detach_sale:
            # TD7: the encoder learns only from its own loss; its users read it without gradient.
            zs, zsa = zs.detach(), zsa.detach()
        return _cat(zsa, zs, self.phi(state, action))

    def forward(self, state: Tensor, action: Tensor) -> Tensor:
        """`u = [z^{sa}, z^s, phi^{sa}]` or `Linear([s, a])`: `[..., S] + [..., N*A] -> [..., U]`"""
        if self.raw is not None:
            return self.raw(_cat(state, action))
        assert self.encoder is not None
        zs = self.encoder.zs(state)
        return self._combine(zs, self.encoder.zsa(zs, action), state, action)

    def sequence(self, state: Tensor, action: Tensor) -> tuple[Tensor, Tensor | None]:
        """On data: `state [T+1, B, S]`, `action [T, B, N*A]` -> `u [T, B, U]` and the SALE
        prediction error `[T, B]` (None without SALE).

        The error is TD7's encoder loss per step, `mean_Z (g(f(s_t), a_t) - sg(f(s_{t+1})))^2`;
        `z^s` is computed once for all T+1 states and shared between `u_t` and the loss (its
        masked mean equals `mmsa_sale.encoder_loss(encoder, s_t, a_t, s_{t+1}, mask)`).
        """
        if self.raw is not None:
            return self.raw(_cat(state[:-1], action)), None
        assert self.encoder is not None
        zs_all = self.encoder.zs(state)  # [T+1, B, Z]
        zs, next_zs = zs_all[:-1], zs_all[1:].detach()  # TD7: the target is detached
        zsa = self.encoder.zsa(zs, action)
        sale_error = (zsa - next_zs).pow(2).mean(-1)
        return self._combine(zs, zsa, state[:-1], action), sale_error


def _cat(*parts: Tensor) -> Tensor:
    return torch.cat(parts, dim=-1)
