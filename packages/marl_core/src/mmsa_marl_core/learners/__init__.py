"""The algorithms and their configs, each registered by name in `mmsa_marl_core.registry` when
its module is imported: QMIX/VDN (`q_learner`), HPN-QMIX (`hpn`), discrete MMSA (`mmsa_config`,
`mmsa_learner`), the continuous actor-critic behind `facmac` and continuous MMSA
(`continuous_config`, `continuous`, `mmsa_continuous`, `facmac`).

May import `registry`, `imagination`, `networks`, `ops`, `data` and the sibling packages;
never `training`."""
