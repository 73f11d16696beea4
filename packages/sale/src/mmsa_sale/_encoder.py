"""The SALE encoder pair ``zs = f(s)``, ``zsa = g(zs, a)`` (TD7, Fujimoto et al. 2023, sec. 4.1).

Both are 3-layer MLPs as in TD7's ``Encoder``: ``f`` ends in AvgL1Norm, ``g`` has no normalisation
(its output is regressed onto the next ``zs``, see :func:`mmsa_sale.encoder_loss`).

Broadcasting. Every leading axis broadcasts, so the same encoder serves one state ``[F]``, a batch
``[B, F]``, per-agent inputs ``[T, B, N, F]`` (parameters shared over agents) and "every action at
once" ``[..., N, A, F]``. In :meth:`Encoder.zsa` the leading axes of ``zs`` and ``action`` broadcast
against each other (numpy rules), so ``zs [..., N, 1, Z]`` with ``action [..., N, A, A_dim]`` gives
``zsa [..., N, A, Z]`` while the ``zs`` half of the first layer is computed once per state, not
once per action. :meth:`Encoder.zsa_all_actions` does exactly that for one-hot discrete actions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._norm import avg_l1_norm
from ._shapes import broadcast_leading, check_features, check_positive_int

if TYPE_CHECKING:
    from ._config import SALEConfig

__all__ = ["ACTIVATIONS", "Encoder", "activation_fn"]

#: Activation names accepted by :class:`Encoder` (TD7's encoder uses ``elu``).
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "elu": F.elu,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "silu": F.silu,
    "gelu": F.gelu,
    "tanh": torch.tanh,
}


def activation_fn(name: str) -> Callable[[Tensor], Tensor]:
    """Return the activation function called ``name``; ``ValueError`` lists the allowed names."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; allowed: {', '.join(sorted(ACTIVATIONS))}"
        ) from None


class Encoder(nn.Module):
    """TD7's state encoder ``f`` and state-action encoder ``g`` in one module.

    Args:
        in_dim: size ``F`` of the encoded input (an observation, a state, or an agent's input
            ``[o, onehot(a_prev), onehot(i)]``).
        action_dim: size of the action vector (number of actions for one-hot discrete actions,
            action dimensions for continuous ones).
        zs_dim: embedding size ``Z`` of ``zs`` and ``zsa`` (TD7: 256).
        hidden: width of the hidden layers (TD7: 256).
        activation: hidden-layer activation, one of :data:`ACTIVATIONS` (TD7: ``"elu"``).

    The parameter names (``zs1..zs3``, ``zsa1..zsa3``) follow TD7, and ``zsa1`` takes
    ``[zs, action]`` in that order, so weights map one-to-one onto TD7's encoder.
    """

    def __init__(
        self,
        in_dim: int,
        action_dim: int,
        zs_dim: int = 256,
        hidden: int = 256,
        activation: str = "elu",
    ) -> None:
        super().__init__()
        self.in_dim = check_positive_int("Encoder: in_dim", in_dim)
        self.action_dim = check_positive_int("Encoder: action_dim", action_dim)
        self.zs_dim = check_positive_int("Encoder: zs_dim", zs_dim)
        self.hidden = check_positive_int("Encoder: hidden", hidden)
        self.activation = activation
        self._activ = activation_fn(activation)
        # f: state encoder, ends in AvgL1Norm (TD7 Encoder.zs)
        self.zs1 = nn.Linear(in_dim, hidden)
        self.zs2 = nn.Linear(hidden, hidden)
        self.zs3 = nn.Linear(hidden, zs_dim)
        # g: state-action encoder, no normalisation (TD7 Encoder.zsa)
        self.zsa1 = nn.Linear(zs_dim + action_dim, hidden)
        self.zsa2 = nn.Linear(hidden, hidden)
        self.zsa3 = nn.Linear(hidden, zs_dim)

    @classmethod
    def from_config(cls, in_dim: int, action_dim: int, config: SALEConfig) -> Encoder:
        """Build an encoder with the sizes and activation of ``config``."""
        return cls(
            in_dim,
            action_dim,
            zs_dim=config.zs_dim,
            hidden=config.hidden,
            activation=config.activation,
        )

    def zs(self, x: Tensor) -> Tensor:
        """State embedding ``zs = AvgL1Norm(MLP(x))``: ``[..., in_dim] -> [..., zs_dim]``."""
        check_features("Encoder.zs", "x", x, self.in_dim, "in_dim")
        h = self._activ(self.zs1(x))
        h = self._activ(self.zs2(h))
        return avg_l1_norm(self.zs3(h))

    def zsa(self, zs: Tensor, action: Tensor) -> Tensor:
        """State-action embedding ``zsa = MLP([zs, action])``: ``[..., Z] + [..., A] -> [..., Z]``.

        The leading axes of ``zs`` and ``action`` broadcast (numpy rules); the result has the
        broadcast leading shape. Example: ``zs [T, B, N, 1, Z]`` with ``action [A, A]`` (every
        one-hot action) gives ``[T, B, N, A, Z]``.
        """
        check_features("Encoder.zsa", "zs", zs, self.zs_dim, "Z")
        check_features("Encoder.zsa", "action", action, self.action_dim, "action_dim")
        broadcast_leading("Encoder.zsa", ("zs", "action"), zs, action)
        # Linear([zs, a]) == W_z zs + W_a a + b. Splitting the weight instead of concatenating lets
        # the leading axes broadcast and computes W_z zs once per state when evaluating all actions.
        weight = self.zsa1.weight
        h = F.linear(zs, weight[:, : self.zs_dim]) + F.linear(
            action, weight[:, self.zs_dim :], self.zsa1.bias
        )
        h = self._activ(h)
        h = self._activ(self.zsa2(h))
        return self.zsa3(h)

    def zsa_all_actions(self, zs: Tensor) -> Tensor:
        """``zsa`` of every one-hot action at once: ``[..., Z] -> [..., A, Z]``, ``A = action_dim``.

        Row ``k`` of the new ``A`` axis is ``zsa(zs, onehot(k))``; e.g. per-agent
        ``zs [T, B, N, Z]`` gives ``[T, B, N, A, Z]``, ready for a Q head over all actions.
        """
        check_features("Encoder.zsa_all_actions", "zs", zs, self.zs_dim, "Z")
        one_hots = torch.eye(self.action_dim, dtype=zs.dtype, device=zs.device)  # [A, A]
        return self.zsa(zs.unsqueeze(-2), one_hots)

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, action_dim={self.action_dim}, zs_dim={self.zs_dim}, "
            f"hidden={self.hidden}, activation={self.activation!r}"
        )
