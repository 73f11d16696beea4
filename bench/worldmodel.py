"""Benchmark of mmsa_worldmodel on CPU: one update, and imagination from every posterior state.

Sizes are those of an LBF task with 3 agents (`Foraging-10x10-3p-3f`: N=3, O=18, S=18, A=6),
batches of 32 episodes x 50 steps, the default `WorldModelConfig` (h 128, y 16 per agent,
SALE z 64, H=3). Inputs are random tensors of those shapes: the cost does not depend on values.

1. update: `loss(batch)` (observe + every loss), backward, Adam step.
2. imagine: `observe(batch)` then `imagine` of H=3 steps from all (T+1)*B = 1632 posterior states
   at once, without gradient, with a uniform policy over the decoded available actions (what a
   learner's rollout does, minus its agent network).
3. the same two at torch threads 1 and 2; and a profile of the update's top operators.
4. `--ablate`: the accuracy behind the README's departures from docs/design.md. Random-policy
   episodes of real LBF (`lbf:Foraging-5x5-2p-1f-v3`, 25 steps, through mmsa_envs; 256 to train,
   32 held out), 500 updates of 16 episodes, hidden 64 (the learning test's setting), one seed per
   variant; figure: 1-step open-loop state MSE on the held-out episodes against copying `s_t`.

Reported figures are medians over `--repeats` timed runs after warm-up. The machine is shared:
compare figures from one run only.

Usage: .venv/bin/python bench/worldmodel.py [--repeats 20] [--quick] [--ablate]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _provenance import command, machine, now, versions

from mmsa_worldmodel import ModelState, WorldModel, WorldModelConfig, open_loop_error

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "worldmodel.json"
T, B, N, O, S, A, H = 50, 32, 3, 18, 18, 6, 3  # noqa: E741 (the design's axis letters)


@dataclass(frozen=True)
class Batch:
    """Satisfies `mmsa_worldmodel.EpisodeBatch`."""

    obs: torch.Tensor
    state: torch.Tensor
    avail_actions: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    mask: torch.Tensor


def make_batch(seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(T, B)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    mask[torch.arange(T)[:, None] >= lengths[None, :]] = 0.0
    return Batch(
        obs=torch.randn(T + 1, B, N, O, generator=g),
        state=torch.randn(T + 1, B, S, generator=g),
        avail_actions=torch.rand(T + 1, B, N, A, generator=g) > 0.2,
        action=torch.randint(0, A, (T, B, N), generator=g),
        reward=torch.randn(T, B, generator=g),
        terminated=torch.zeros(T, B),
        mask=mask,
    )


def uniform_policy(obs: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    return torch.multinomial(avail.flatten(0, 1).float(), 1).view(avail.shape[:2])


def train_step(model: WorldModel, optimizer: torch.optim.Optimizer, batch: Batch) -> None:
    """One update: `loss(batch)` (observe + every loss), backward, optimiser step."""
    total, _ = model.loss(batch)
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()


def posterior_starts(model: WorldModel, batch: Batch) -> ModelState:
    """Every posterior state of `batch` as a start of imagination, `[(T+1)*B, ...]`."""
    with torch.no_grad():
        posterior, _ = model.observe(batch)
    return ModelState(posterior.deter.flatten(0, 1), posterior.stoch.flatten(0, 1))


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return {
        "median_ms": round(statistics.median(times), 2),
        "min_ms": round(min(times), 2),
        "repeats": repeats,
    }


def bench_threads(threads: int, repeats: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = WorldModel(n_agents=N, obs_dim=O, state_dim=S, n_actions=A, action_kind="discrete")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    batch = make_batch(0)

    def imagine_from(start: ModelState) -> None:
        with torch.no_grad():
            model.imagine(start, uniform_policy, H)

    start_states = posterior_starts(model, batch)
    return {
        "threads": threads,
        "update": median_ms(lambda: train_step(model, optimizer, batch), repeats),
        "observe_and_imagine": median_ms(
            lambda: imagine_from(posterior_starts(model, batch)), repeats
        ),
        "imagine_only": median_ms(lambda: imagine_from(start_states), repeats),
    }


def profile_update(rows: int = 12) -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    model = WorldModel(n_agents=N, obs_dim=O, state_dim=S, n_actions=A, action_kind="discrete")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    batch = make_batch(1)
    for _ in range(3):
        train_step(model, optimizer, batch)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            train_step(model, optimizer, batch)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    return [
        {
            "op": e.key,
            "self_ms_per_update": round(e.self_cpu_time_total / 5e3, 2),
            "calls_per_update": e.count // 5,
        }
        for e in events[:rows]
    ]


# ---------------------------------------------------------------------- ablation
ABLATE_ENV = "lbf:Foraging-5x5-2p-1f-v3"
ABLATE_BASE = WorldModelConfig(
    deter_dim=64,
    stoch_per_agent=8,
    hidden=64,
    embed_dim=64,
    vae1_latent_dim=16,
    sale_zs_dim=32,
    sale_hidden=64,
    phi_dim=32,
    state_scale=10.0,
    obs_scale=10.0,
)
ABLATE_VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "detach_sale=True (TD7-style)": {"detach_sale": True},
    "vae1_kl_scale=1.0": {"vae1_kl_scale": 1.0},
    "layer_norm=False": {"layer_norm": False},
    "state_scale=obs_scale=1": {"state_scale": 1.0, "obs_scale": 1.0},
    "kl_balance=0.5 (No-KLB)": {"kl_balance": 0.5},
    "use_sale=False (No-SALE)": {"use_sale": False},
}


def record(env_id: str, episodes: int, seed: int) -> Batch:
    """Random-policy episodes (uniform over available actions) through mmsa_envs, padded."""
    from mmsa_envs import make

    env = make(env_id, max_episode_steps=25)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(episodes):
        step = env.reset(seed=seed * 1000 + i)
        obs, state, avail, action, reward = [step.obs], [step.state], [step.avail_actions], [], []
        while not step.done:
            act = (rng.random(step.avail_actions.shape) * step.avail_actions).argmax(-1)
            step = env.step(act)
            obs.append(step.obs)
            state.append(step.state)
            avail.append(step.avail_actions)
            action.append(act)
            reward.append(step.reward)
        rows.append((obs, state, avail, action, reward, step.terminated))
    env.close()
    t = max(len(r[3]) for r in rows)
    out = {
        "obs": torch.zeros(t + 1, episodes, *rows[0][0][0].shape),
        "state": torch.zeros(t + 1, episodes, *rows[0][1][0].shape),
        "avail_actions": torch.zeros(t + 1, episodes, *rows[0][2][0].shape, dtype=torch.bool),
        "action": torch.zeros(t, episodes, len(rows[0][3][0]), dtype=torch.int64),
        "reward": torch.zeros(t, episodes),
        "terminated": torch.zeros(t, episodes),
        "mask": torch.zeros(t, episodes),
    }
    for b, (obs, state, avail, action, reward, terminated) in enumerate(rows):
        n = len(action)
        out["obs"][: n + 1, b] = torch.as_tensor(np.stack(obs))
        out["state"][: n + 1, b] = torch.as_tensor(np.stack(state))
        out["avail_actions"][: n + 1, b] = torch.as_tensor(np.stack(avail))
        out["action"][:n, b] = torch.as_tensor(np.stack(action))
        out["reward"][:n, b] = torch.as_tensor(reward)
        out["terminated"][n - 1, b] = float(terminated)
        out["mask"][:n, b] = 1.0
    return Batch(**out)


def ablate(updates: int = 500) -> dict[str, Any]:
    torch.set_num_threads(1)
    train, held_out = record(ABLATE_ENV, 256, seed=1), record(ABLATE_ENV, 32, seed=2)
    _, _, n_agents, obs_dim = train.obs.shape
    results = {}
    for name, overrides in ABLATE_VARIANTS.items():
        torch.manual_seed(0)
        model = WorldModel(
            n_agents=n_agents,
            obs_dim=obs_dim,
            state_dim=train.state.shape[-1],
            n_actions=train.avail_actions.shape[-1],
            action_kind="discrete",
            config=replace(ABLATE_BASE, **overrides),
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        rng = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        for _ in range(updates):
            rows = torch.randint(0, train.mask.shape[1], (16,), generator=rng)
            batch = Batch(*(getattr(train, f.name)[:, rows] for f in fields(train)))
            train_step(model, optimizer, batch)
        model.eval()
        errors = open_loop_error(model, held_out, horizon=3)
        results[name] = {
            "overrides": overrides,
            "state_mse_k1_k2_k3": [round(v, 4) for v in errors["state"]],
            "copy_last_mse_k1_k2_k3": [round(v, 4) for v in errors["state_copy"]],
            "train_s": round(time.perf_counter() - start, 1),
        }
        print(f"{name:32s} 1-step {errors['state'][0]:.3f} (copy {errors['state_copy'][0]:.3f})")
    return {
        "env": ABLATE_ENV,
        "train_episodes": 256,
        "held_out_episodes": 32,
        "updates": updates,
        "base_config": asdict(ABLATE_BASE),
        "variants": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 repeats, no profile")
    parser.add_argument("--ablate", action="store_true", help="also run the accuracy ablation")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    result: dict[str, Any] = {
        "benchmark": "mmsa_worldmodel update and imagination on CPU",
        "command": command(),
        "date": now(),
        "machine": machine(),
        "versions": versions(("torch", "numpy", "mmsa-worldmodel", "mmsa-sale")),
        "sizes": {"T": T, "B": B, "N": N, "O": O, "S": S, "A": A, "H": H},
        "config": asdict(WorldModelConfig()),
        "results": [bench_threads(threads, repeats) for threads in (1, 2)],
    }
    if not args.quick:
        result["update_profile_top_ops"] = profile_update()
    if args.ablate:
        result["ablation"] = ablate()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for row in result["results"]:
        print(
            f"threads={row['threads']}: update {row['update']['median_ms']} ms, "
            f"observe+imagine {row['observe_and_imagine']['median_ms']} ms, "
            f"imagine only {row['imagine_only']['median_ms']} ms"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
