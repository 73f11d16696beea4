"""Value-decomposition mixers: `Q_tot = mix(Q_1..Q_N ; conditioning)`.

`Mixer.forward` checks the shape contract once; subclasses implement `mix`. Leading axes are free
(`[T, B]` in training, `[B]` when acting): `q [..., N]`, `state [..., S]`, `extra [..., C]`.

- `VDN` (Sunehag et al. 2018): `Q_tot = sum_i Q_i`.
- `QMIX` (Rashid et al. 2018): a two-layer mixing network whose weights come from hypernetworks
  of the conditioning `[s, extra]`, made non-negative with `abs`, so `dQ_tot / dQ_i >= 0` and each
  agent's argmax is the joint argmax. `extra` is where MMSA's rollout code enters
  (docs/design.md §4.4).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

__all__ = ["Mixer", "VDN", "QMIX"]


class Mixer(nn.Module):
    """Base class: validates `q [..., N]`, `state [..., S]`, `extra [..., C] | None`."""

    def __init__(self, n_agents: int, state_dim: int, extra_cond_dim: int = 0) -> None:
        super().__init__()
        if n_agents < 1:
            raise ValueError(f"{type(self).__name__}: n_agents={n_agents} must be >= 1")
        if state_dim < 0 or extra_cond_dim < 0:
            raise ValueError(
                f"{type(self).__name__}: state_dim={state_dim} and extra_cond_dim="
                f"{extra_cond_dim} must be >= 0"
            )
        self.n_agents = n_agents
        self.state_dim = state_dim
        self.extra_cond_dim = extra_cond_dim

    def forward(self, q: Tensor, state: Tensor, extra: Tensor | None = None) -> Tensor:
        """`q [..., N]`, `state [..., S]`, `extra [..., C]` -> `q_tot [...]`."""
        name = type(self).__name__
        if q.shape[-1:] != (self.n_agents,):
            raise ValueError(f"{name}: q must end in N={self.n_agents}, got {tuple(q.shape)}")
        lead = q.shape[:-1]
        if state.shape != (*lead, self.state_dim):
            raise ValueError(
                f"{name}: state must have shape {(*lead, self.state_dim)} (q is {tuple(q.shape)}),"
                f" got {tuple(state.shape)}"
            )
        if self.extra_cond_dim:
            if extra is None or extra.shape != (*lead, self.extra_cond_dim):
                got = None if extra is None else tuple(extra.shape)
                raise ValueError(
                    f"{name}: extra must have shape {(*lead, self.extra_cond_dim)}, got {got}"
                )
        elif extra is not None:
            raise ValueError(f"{name}: built with extra_cond_dim=0 but extra was given")
        out = self.mix(q, state, extra)
        assert out.shape == lead, (out.shape, lead)
        return out

    def mix(self, q: Tensor, state: Tensor, extra: Tensor | None) -> Tensor:
        raise NotImplementedError


class VDN(Mixer):
    """`Q_tot = sum_i Q_i` (no parameters; the state is ignored)."""

    def __init__(self, n_agents: int, state_dim: int = 0, extra_cond_dim: int = 0) -> None:
        super().__init__(n_agents, state_dim, extra_cond_dim)

    def mix(self, q: Tensor, state: Tensor, extra: Tensor | None) -> Tensor:
        return q.sum(dim=-1)


class QMIX(Mixer):
    """Monotonic mixing network with hypernetworks of `[state, extra]` (QMIX, PyMARL layout)."""

    def __init__(
        self,
        n_agents: int,
        state_dim: int,
        embed_dim: int = 32,
        hypernet_hidden: int = 64,
        extra_cond_dim: int = 0,
    ) -> None:
        super().__init__(n_agents, state_dim, extra_cond_dim)
        cond = state_dim + extra_cond_dim
        if cond < 1:
            raise ValueError("QMIX needs state_dim + extra_cond_dim >= 1 to condition on")
        if embed_dim < 1 or hypernet_hidden < 1:
            raise ValueError(
                f"QMIX embed_dim={embed_dim} and hypernet_hidden={hypernet_hidden} must be >= 1"
            )
        self.embed_dim = embed_dim
        # Two-layer hypernetworks for the weights, one layer for the first bias and a two-layer
        # state value V(s) for the last bias (QMIX paper, appendix; PyMARL hypernet_layers=2).
        self.hyper_w1 = nn.Sequential(
            nn.Linear(cond, hypernet_hidden),
            nn.ReLU(),
            nn.Linear(hypernet_hidden, embed_dim * n_agents),
        )
        self.hyper_w2 = nn.Sequential(
            nn.Linear(cond, hypernet_hidden), nn.ReLU(), nn.Linear(hypernet_hidden, embed_dim)
        )
        self.hyper_b1 = nn.Linear(cond, embed_dim)
        self.value = nn.Sequential(nn.Linear(cond, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))
        # Departure from PyMARL's init: the state-only paths (first bias, V(s)) start at zero, so
        # Q_tot starts near sum-like values of the Q_i whatever the scale of the raw state. With
        # the default init and raw LBF states Q_tot starts near 9; as truncation is bootstrapped,
        # that offset only decays by gamma per target period and a terminal reward of 1 then
        # looks worse than carrying on (measured: greedy return 0 after 20k steps, see README).
        for layer in (self.hyper_b1, self.value[-1]):
            assert isinstance(layer, nn.Linear)
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def mix(self, q: Tensor, state: Tensor, extra: Tensor | None) -> Tensor:
        cond = state if extra is None else torch.cat([state, extra], dim=-1)
        lead = q.shape[:-1]
        # abs keeps every mixing weight non-negative: monotonic in each Q_i.
        w1 = self.hyper_w1(cond).abs().reshape(*lead, self.n_agents, self.embed_dim)
        b1 = self.hyper_b1(cond)
        hidden = F.elu((q.unsqueeze(-1) * w1).sum(dim=-2) + b1)
        w2 = self.hyper_w2(cond).abs()
        return (hidden * w2).sum(dim=-1) + self.value(cond).squeeze(-1)
