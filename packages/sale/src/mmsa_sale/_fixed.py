"""Fixed encoders (TD7, Fujimoto et al. 2023, sec. 4.1 and Algorithm 1).

TD7 keeps three copies of the encoder: the *online* one, trained every step by
:func:`mmsa_sale.encoder_loss`; a *fixed* copy whose ``zs``/``zsa`` feed the current value function
and policy; and a *fixed target* copy whose embeddings feed the TD target. At each target update
(every 250 updates in TD7) both move one step down the chain by hard copy::

    fixed_encoder_target.load_state_dict(fixed_encoder.state_dict())
    fixed_encoder.load_state_dict(encoder.state_dict())

so the critic's inputs change only at target updates and the target network's inputs lag by one
more period, keeping the inputs of each network stationary between updates.
"""

from __future__ import annotations

import copy

from torch import nn

from ._encoder import Encoder

__all__ = ["FixedEncoders"]


class FixedEncoders(nn.Module):
    """The online -> fixed -> fixed target chain of TD7's encoders.

    Args:
        online: the encoder trained by :func:`mmsa_sale.encoder_loss`. It is held, not copied:
            ``self.online is online``, so an optimiser over ``online.parameters()`` trains it.

    ``fixed`` and ``fixed_target`` start as deep copies of ``online`` (on its device and dtype),
    have ``requires_grad=False`` and stay in eval mode even when a parent module calls
    ``.train()``. Being an ``nn.Module``, the chain moves with ``.to(device)`` and its
    ``state_dict`` (keys ``online.*``, ``fixed.*``, ``fixed_target.*``) restores all three copies,
    also into a fresh object built with an encoder of the same sizes.

    Typical loop (TD7)::

        loss = encoder_loss(encoders.online, x, a, next_x)   # every update
        zs = encoders.fixed.zs(x)                             # inputs of the Q network
        with torch.no_grad():
            next_zs = encoders.fixed_target.zs(next_x)        # inputs of the TD target
        if updates % config.target_update_rate == 0:
            encoders.sync()                                   # with the target networks
    """

    online: Encoder
    fixed: Encoder
    fixed_target: Encoder

    def __init__(self, online: Encoder) -> None:
        if not isinstance(online, Encoder):
            raise TypeError(
                f"FixedEncoders: online must be an Encoder, got {type(online).__name__}"
            )
        super().__init__()
        self.online = online
        self.fixed = self._frozen_copy(online)
        self.fixed_target = self._frozen_copy(online)

    @staticmethod
    def _frozen_copy(encoder: Encoder) -> Encoder:
        clone = copy.deepcopy(encoder)
        for parameter in clone.parameters():
            parameter.requires_grad_(False)
            parameter.grad = None
        return clone.eval()

    def sync(self) -> None:
        """Hard copies down the chain: ``fixed_target <- fixed``, then ``fixed <- online``."""
        # Order matters (TD7): the target takes the *old* fixed weights before they are replaced.
        self.fixed_target.load_state_dict(self.fixed.state_dict())
        self.fixed.load_state_dict(self.online.state_dict())

    def train(self, mode: bool = True) -> FixedEncoders:
        """Set ``online`` to ``mode``; the fixed copies always stay in eval mode."""
        self.training = mode
        self.online.train(mode)
        self.fixed.eval()
        self.fixed_target.eval()
        return self
