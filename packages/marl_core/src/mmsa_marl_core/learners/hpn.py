"""HPN-QMIX: QMIX with the hyper-policy-network agent over entities (Hao et al., ICLR 2023).

`HPNQLearner` is `QLearner`'s QMIX (TD, double Q, target copies, optimiser, epsilon) with the
`networks.hpn_agent.HPNAgent` in place of the recurrent agent; `HPNQLearnerConfig` holds
pymarl3's `hpn_qmix` settings where they differ from QMIX's. Registered as `hpn_qmix`; an env
without an entity layout (`EnvSpec.entities`) is refused naming the algorithm and the env.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmsa_envs import EntityLayout, EnvSpec

from ..networks.hpn_agent import HPNAgent
from ..registry import register_algo
from .q_learner import QLearner, QLearnerConfig

__all__ = ["HPNQLearner", "HPNQLearnerConfig", "require_entities"]


@dataclass(frozen=True)
class HPNQLearnerConfig(QLearnerConfig):
    """HPN-QMIX hyper-parameters: QMIX's, with pymarl3's `hpn_qmix.yaml` values where they
    differ from QMIX's defaults (see the package README for where this departs from it)."""

    lr: float = 1e-3
    """Learning rate (pymarl3 hpn_qmix: 0.001)."""
    obs_last_action: bool = False
    """Feed the previous action to the agent (pymarl3 hpn_qmix: False; see `networks.hpn_agent`)."""
    epsilon_anneal_steps: int = 100_000
    """Env steps over which epsilon falls from start to finish (pymarl3 hpn_qmix: 100000)."""
    hpn_hyper_hidden: int = 64
    """Hidden width of the entity hypernetworks (pymarl3 `hpn_hyper_dim`: 64)."""
    hpn_heads: int = 1
    """Hypernetwork heads, merged by a softmax-weighted sum (pymarl3 `hpn_head_num`: 1)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("hpn_hyper_hidden", "hpn_heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"HPNQLearnerConfig.{name}={value!r} is out of range (allowed: int >= 1)"
                )


def require_entities(spec: EnvSpec, algo: str = "hpn_qmix") -> EntityLayout:
    """`spec.entities`, or a ValueError naming `algo` and the env."""
    if spec.entities is None:
        raise ValueError(
            f"{algo} needs an entity layout (EnvSpec.entities: own, ally and enemy features and "
            f"the attack action of each enemy), and env {spec.id!r} has none; smax:<map> "
            "(unit_list observations) and smacv2:<race>_N_vs_N have one"
        )
    return spec.entities


class HPNQLearner(QLearner):
    """QMIX (`QLearner`) with the `HPNAgent`; implements `Learner`."""

    def __init__(
        self, spec: EnvSpec, config: HPNQLearnerConfig, device: torch.device | str
    ) -> None:
        layout = require_entities(spec)
        super().__init__(spec, config, device, mixer="qmix")
        # QLearner built the plain RNN agent (and the mixer after it, from the same seed); swap
        # in HPN's.
        self.use_agent(
            HPNAgent(
                layout,
                spec.obs_dim,
                spec.n_actions,
                spec.n_agents,
                config.agent_hidden,
                config.hpn_hyper_hidden,
                config.hpn_heads,
                last_action=config.obs_last_action,
                agent_id=config.obs_agent_id,
            )
        )


def _hpn_qmix(spec: EnvSpec, config: HPNQLearnerConfig, device: torch.device) -> HPNQLearner:
    return HPNQLearner(spec, config, device)


register_algo("hpn_qmix", _hpn_qmix, HPNQLearnerConfig)
