"""The ``phi`` embedding of raw inputs: ``phi(x, a) = AvgL1Norm(Linear([x, a]))`` (TD7, sec. 4.1).

TD7's critic normalises its first layer over ``[state, action]`` with AvgL1Norm before
concatenating ``zsa`` and ``zs`` (``q01`` in TD7's ``Critic``); :class:`Phi` is that layer as a
module. docs/design.md §4.1 uses it per agent on ``[h_t^i, onehot(a)]`` and §4.3 on ``[s, a]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._norm import avg_l1_norm
from ._shapes import broadcast_leading, check_features, check_positive_int

__all__ = ["Phi"]


class Phi(nn.Module):
    """``AvgL1Norm(Linear([x, action]))``.

    Args:
        in_dim: size of ``x`` (a state, an observation, a recurrent hidden state ...).
        action_dim: size of the action vector (one-hot count or continuous dims).
        out_dim: size of the embedding.

    Leading axes of ``x`` and ``action`` broadcast like :meth:`mmsa_sale.Encoder.zsa`:
    ``x [..., N, 1, F]`` with ``action [..., N, A, A_dim]`` gives ``[..., N, A, out_dim]``.
    """

    def __init__(self, in_dim: int, action_dim: int, out_dim: int) -> None:
        super().__init__()
        self.in_dim = check_positive_int("Phi: in_dim", in_dim)
        self.action_dim = check_positive_int("Phi: action_dim", action_dim)
        self.out_dim = check_positive_int("Phi: out_dim", out_dim)
        self.linear = nn.Linear(in_dim + action_dim, out_dim)

    def forward(self, x: Tensor, action: Tensor) -> Tensor:
        """``[..., in_dim] + [..., action_dim] -> [..., out_dim]`` (leading axes broadcast)."""
        check_features("Phi", "x", x, self.in_dim, "in_dim")
        check_features("Phi", "action", action, self.action_dim, "action_dim")
        broadcast_leading("Phi", ("x", "action"), x, action)
        # Split weight == Linear on the concatenation, but lets the leading axes broadcast.
        weight = self.linear.weight
        y = F.linear(x, weight[:, : self.in_dim]) + F.linear(
            action, weight[:, self.in_dim :], self.linear.bias
        )
        return avg_l1_norm(y)

    def all_actions(self, x: Tensor) -> Tensor:
        """``phi`` of every one-hot action at once: ``[..., in_dim] -> [..., A, out_dim]``."""
        check_features("Phi.all_actions", "x", x, self.in_dim, "in_dim")
        one_hots = torch.eye(self.action_dim, dtype=x.dtype, device=x.device)  # [A, A]
        return self(x.unsqueeze(-2), one_hots)

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, action_dim={self.action_dim}, out_dim={self.out_dim}"
