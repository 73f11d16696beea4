"""``SALEConfig``: the one home of the SALE defaults (TD7, Fujimoto et al. 2023, Table 3)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._encoder import ACTIVATIONS
from ._shapes import check_positive_int

__all__ = ["SALEConfig"]


@dataclass(frozen=True)
class SALEConfig:
    """Hyperparameters of the SALE encoders; every default is TD7's.

    Build the encoder with :meth:`mmsa_sale.Encoder.from_config`; ``encoder_lr`` and
    ``target_update_rate`` are read by the training loop that owns the optimiser and calls
    :meth:`mmsa_sale.FixedEncoders.sync`.
    """

    zs_dim: int = 256
    """Size ``Z`` of the embeddings ``zs`` and ``zsa`` (TD7 ``zs_dim``: 256)."""

    hidden: int = 256
    """Width of the hidden layers of both encoder MLPs (TD7 ``enc_hdim``: 256)."""

    activation: str = "elu"
    """Hidden-layer activation of the encoders, one of ``mmsa_sale.ACTIVATIONS``
    (TD7 ``enc_activ``: ELU)."""

    encoder_lr: float = 3e-4
    """Adam learning rate of the online encoder (TD7 ``encoder_lr``: 3e-4)."""

    target_update_rate: int = 250
    """Updates between two :meth:`FixedEncoders.sync` calls; TD7 syncs the encoders together with
    its target networks every 250 updates (``target_update_rate``)."""

    def __post_init__(self) -> None:
        check_positive_int("SALEConfig.zs_dim", self.zs_dim)
        check_positive_int("SALEConfig.hidden", self.hidden)
        check_positive_int("SALEConfig.target_update_rate", self.target_update_rate)
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ValueError(
                f"SALEConfig.activation must be one of {', '.join(sorted(ACTIVATIONS))}, "
                f"got {self.activation!r}"
            )
        lr = self.encoder_lr
        if (
            isinstance(lr, bool)
            or not isinstance(lr, int | float)
            or not math.isfinite(lr)
            or lr <= 0
        ):
            raise ValueError(f"SALEConfig.encoder_lr must be a positive finite float, got {lr!r}")
