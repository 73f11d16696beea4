"""The training loop and everything around a run: `TrainConfig` (`config`), `train` (`train`),
the checks made before a run writes anything (`preflight`), episode collection and greedy
evaluation (`collect`, `evaluate`), exact resume and checkpoint files (`resume`, `checkpoint`),
the run directory (`run_info`, `run_lock`, `metrics`) and the process settings (`host_memory`,
`reproducible`).

Knows the algorithms only through `mmsa_marl_core.registry` (the `Learner` protocol and
`get_algo`); may import `data`, `ops` and `mmsa_envs`; never `learners`, `imagination` or
`networks`."""
