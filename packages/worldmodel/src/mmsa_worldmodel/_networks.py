"""Small building blocks of the world model: MLPs, VAE-1 and the decoders read from `m_t`.

VAE-1 (docs/design.md §4.3 step 2, the MBVD pair's first VAE): `u_t -> q(x_t | u_t)` Gaussian,
`x_t -> u'_t`.
The decoders (DreamerV2's heads) read the model-state features `m_t = [h_t, y_t]` and predict the
global state, every agent's observation, the available-action logits, the team reward and the
continue logit. Outputs of all agents come from one joint head (`[..., N*O]` reshaped to
`[..., N, O]`), so no Python loop runs over agents.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from ._gaussian import Gaussian, GaussianHead

__all__ = ["MLP", "GaussianMLP", "VAE1", "Decoders", "pack_rnn"]

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "elu": F.elu,
    "relu": F.relu,
    "silu": F.silu,
    "tanh": F.tanh,
}


def pack_rnn(rnn: nn.RNNBase) -> None:
    """Put a CUDA RNN's weights into the one buffer cuDNN reads, unless they are there already.

    A copied module (``copy.deepcopy``: target networks, a copied learner) holds them in
    separate chunks, which cuDNN would compact, and warn about, at every call.
    ``nn.RNNBase.flatten_parameters`` re-packs them, but into a *new* buffer each time it runs,
    moving every weight; calling it only when the weights are apart keeps them where they are
    (a CUDA graph that reads them relies on that). A no-op on the CPU.
    """
    weights = list(rnn.parameters())
    if weights and weights[0].is_cuda:
        if len({w.untyped_storage().data_ptr() for w in weights}) > 1:
            rnn.flatten_parameters()


class MLP(nn.Module):
    """`in -> hidden -> ... -> out`, activation after every hidden layer, none on the output."""

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        out_dim: int,
        layers: int,
        activation: str,
        layer_norm: bool = False,
    ):
        super().__init__()
        sizes = [in_dim] + [hidden] * layers
        self.hidden_layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        # DreamerV3: LayerNorm before every hidden activation keeps the scales in check.
        self.norms = nn.ModuleList(
            nn.LayerNorm(b) if layer_norm else nn.Identity() for b in sizes[1:]
        )
        self.out = nn.Linear(sizes[-1], out_dim)
        self.activation = _ACTIVATIONS[activation]

    def forward(self, x: Tensor) -> Tensor:
        for layer, norm in zip(self.hidden_layers, self.norms, strict=True):
            x = self.activation(norm(layer(x)))
        return self.out(x)


class GaussianMLP(nn.Module):
    """`in -> hidden -> (mean, std)` over `[..., out]` (DreamerV2's prior and posterior nets)."""

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        out_dim: int,
        activation: str,
        min_std: float,
        layer_norm: bool = False,
    ):
        super().__init__()
        self.hidden = nn.Linear(in_dim, hidden)
        self.norm = nn.LayerNorm(hidden) if layer_norm else nn.Identity()
        self.head = GaussianHead(hidden, out_dim, min_std)
        self.activation = _ACTIVATIONS[activation]

    def forward(self, x: Tensor) -> Gaussian:
        return self.head(self.activation(self.norm(self.hidden(x))))


class VAE1(nn.Module):
    """`u [..., U] -> q(x | u)` over `[..., X]`, and `x -> u' [..., U]`."""

    def __init__(
        self,
        u_dim: int,
        x_dim: int,
        hidden: int,
        activation: str,
        min_std: float,
        layer_norm: bool = False,
    ):
        super().__init__()
        self.encoder = GaussianMLP(u_dim, hidden, x_dim, activation, min_std, layer_norm)
        self.decoder = MLP(x_dim, hidden, u_dim, 1, activation, layer_norm)

    def encode(self, u: Tensor) -> Gaussian:
        return self.encoder(u)

    def decode(self, x: Tensor) -> Tensor:
        return self.decoder(x)


class Decoders(nn.Module):
    """Heads on the model-state features `[..., D]` (DreamerV2: one MLP per quantity)."""

    def __init__(
        self,
        *,
        feature_dim: int,
        n_agents: int,
        obs_dim: int,
        state_dim: int,
        n_actions: int,
        discrete: bool,
        hidden: int,
        activation: str,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        self.n_agents, self.obs_dim, self.n_actions = n_agents, obs_dim, n_actions

        def head(out_dim: int) -> MLP:
            return MLP(feature_dim, hidden, out_dim, 2, activation, layer_norm)

        self.state = head(state_dim)
        self.obs = head(n_agents * obs_dim)
        # Continuous actions are always available: no head, the mask is all true.
        self.avail = head(n_agents * n_actions) if discrete else None
        self.reward = head(1)
        self.cont = head(1)

    def state_mean(self, features: Tensor) -> Tensor:
        """`[..., D] -> [..., S]` mean of the global state."""
        return self.state(features)

    def obs_mean(self, features: Tensor) -> Tensor:
        """`[..., D] -> [..., N, O]` mean of every agent's observation."""
        return self.obs(features).unflatten(-1, (self.n_agents, self.obs_dim))

    def avail_logits(self, features: Tensor) -> Tensor | None:
        """`[..., D] -> [..., N, A]` Bernoulli logits of available actions (None: continuous)."""
        if self.avail is None:
            return None
        return self.avail(features).unflatten(-1, (self.n_agents, self.n_actions))

    def reward_mean(self, features: Tensor) -> Tensor:
        """`[..., D] -> [...]` team reward of the transition that led to this model state."""
        return self.reward(features).squeeze(-1)

    def continue_logit(self, features: Tensor) -> Tensor:
        """`[..., D] -> [...]` logit of "the episode goes on after this model state"."""
        return self.cont(features).squeeze(-1)
