"""mmsa_sale: state-action learned embeddings (SALE, TD7) for single- and multi-agent RL.

>>> import torch
>>> from mmsa_sale import Encoder, encoder_loss
>>> encoder = Encoder(in_dim=7, action_dim=6, zs_dim=8, hidden=16)
>>> x = torch.randn(5, 4, 3, 7)                                   # [T, B, N, O]
>>> zs = encoder.zs(x)                                            # [T, B, N, Z]
>>> encoder.zsa_all_actions(zs).shape                             # [T, B, N, A, Z]
torch.Size([5, 4, 3, 6, 8])
>>> a = torch.nn.functional.one_hot(torch.randint(6, (5, 4, 3)), 6).float()
>>> encoder_loss(encoder, x, a, torch.randn(5, 4, 3, 7)).shape
torch.Size([])
"""

from ._config import SALEConfig
from ._encoder import ACTIVATIONS, Encoder
from ._fixed import FixedEncoders
from ._loss import encoder_loss
from ._norm import avg_l1_norm
from ._phi import Phi

__all__ = [
    "ACTIVATIONS",
    "Encoder",
    "FixedEncoders",
    "Phi",
    "SALEConfig",
    "avg_l1_norm",
    "encoder_loss",
]
__version__ = "0.1.0"
