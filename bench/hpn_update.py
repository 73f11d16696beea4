"""One HPN-QMIX update against one QMIX update on SMAX maps, side by side in one process.

For each map, QMIX and HPN-QMIX learners (default configs) update on the same batches of 32
random-policy episodes, timed in interleaved rounds so that a change of machine load hits both
alike. A third variant, `hpn_qmix_built_out_weights`, is HPN-QMIX with its entity input layer
computed the direct way, building every entity's hypernetwork weight `W(e_j)` `[D, F]` and
summing `e_j[d] W(e_j)[d, :]` (the same function as `hpn_agent._entity_sum`, which regroups the
sum so that no `W(e_j)` is built): the ratio between the two is what the regrouping buys.

    .venv/bin/python bench/hpn_update.py   # -> bench/results/hpn_update.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _provenance import command, git_commit, machine, now, versions
from _timing import median_ms, random_batches, time_interleaved
from torch import Tensor

import mmsa_marl_core.networks.hpn_agent as hpn_agent
from mmsa_envs import VectorEnv
from mmsa_marl_core import get_algo

MAPS = ("smax:3m", "smax:smacv2_5_units")
VARIANTS = ("qmix", "hpn_qmix", "hpn_qmix_built_out_weights")
REGROUPED = hpn_agent._entity_sum


def built_out_entity_sum(entities: Tensor, g: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """`_entity_sum` the direct way: every entity's `W(e_j) = reshape(weight @ g_j + bias)`."""
    d = entities.shape[-1]
    w = torch.nn.functional.linear(g, weight, bias)
    w = w.reshape(*w.shape[:-1], d, weight.shape[0] // d)
    return torch.einsum("...md,...mdf->...f", entities, w)


def measure(env_id: str, rounds: int, per_round: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    with VectorEnv(env_id, 8, seed=seed, processes=False) as envs:
        learners = {}
        for name in VARIANTS:
            entry = get_algo(name.removesuffix("_built_out_weights"))
            torch.manual_seed(seed)
            learners[name] = entry.factory(envs.spec, entry.config_cls(), "cpu")
        batches = random_batches(envs, learners["qmix"], rng, per_round)

    def run(name: str, batch: Any) -> None:
        hpn_agent._entity_sum = (  # type: ignore[assignment]
            built_out_entity_sum if name.endswith("_built_out_weights") else REGROUPED
        )
        learners[name].update(copy.copy(batch))

    for name in VARIANTS:  # warm-up
        run(name, batches[0])
    times = time_interleaved(run, VARIANTS, batches, rounds)
    hpn_agent._entity_sum = REGROUPED
    base = statistics.median(times["qmix"])
    return {
        "batch_obs_shape": list(batches[0].obs.shape),
        "real_steps_per_batch": [int(b.mask.sum()) for b in batches],
        "results": {
            name: {
                **median_ms(t),
                "ratio_to_qmix": round(statistics.median(t) / base, 2),
            }
            for name, t in times.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", nargs="+", default=list(MAPS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/hpn_update.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = machine()
    maps = {m: measure(m, args.rounds, args.per_round, args.seed) for m in args.maps}
    out = {
        "benchmark": "hpn_update",
        "command": command(),
        "commit": git_commit(),
        "threads": 1,
        "rounds": args.rounds,
        "per_round": args.per_round,
        "machine": started | {"load_average_at_end": list(os.getloadavg())},
        "versions": versions(("torch", "numpy", "jaxmarl", "jax")),
        "maps": maps,
        "finished": now(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    for env_id, m in maps.items():
        for name, r in m["results"].items():
            print(f"{env_id:22s} {name:28s} {r['update_ms']:7.1f} ms  x{r['ratio_to_qmix']}")


if __name__ == "__main__":
    main()
