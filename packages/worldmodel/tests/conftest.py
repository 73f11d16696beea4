"""Shared fixtures: a small `EpisodeBatch` dataclass, recorded episodes and tiny model sizes.

Sizes are mutually distinct (T=5, B=4, N=3, O=7, S=11, A=6; Dh=16, Dy=12, X=5, Z=8) so a
swapped axis fails loudly. Episodes come from real envs through mmsa_envs: the deterministic
`dummy` env and LBF (lbforaging).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mmsa_worldmodel import WorldModel, WorldModelConfig

T, B, N, O, S, A = 5, 4, 3, 7, 11, 6  # noqa: E741 (the design's axis letters)

SMALL = WorldModelConfig(
    deter_dim=16,
    stoch_per_agent=4,
    hidden=32,
    embed_dim=24,
    vae1_latent_dim=5,
    sale_zs_dim=8,
    sale_hidden=20,
    phi_dim=9,
)


@dataclass(frozen=True)
class Batch:
    """Satisfies `mmsa_worldmodel.EpisodeBatch` (the fields of docs/design.md §3.5)."""

    obs: torch.Tensor
    state: torch.Tensor
    avail_actions: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    mask: torch.Tensor


@dataclass
class Episode:
    obs: list[np.ndarray]
    state: list[np.ndarray]
    avail: list[np.ndarray]
    action: list[np.ndarray]
    reward: list[float]
    terminated: bool


def stack_episodes(episodes: list[Episode], length: int | None = None) -> Batch:
    """Pad episodes to the longest (or `length`) transitions: zeros past the end, mask 0."""
    t = length or max(len(e.action) for e in episodes)
    first = episodes[0]
    obs = np.zeros((t + 1, len(episodes), *first.obs[0].shape), np.float32)
    state = np.zeros((t + 1, len(episodes), *first.state[0].shape), np.float32)
    avail = np.zeros((t + 1, len(episodes), *first.avail[0].shape), bool)
    action = np.zeros((t, len(episodes), *first.action[0].shape), first.action[0].dtype)
    reward = np.zeros((t, len(episodes)), np.float32)
    terminated = np.zeros((t, len(episodes)), np.float32)
    mask = np.zeros((t, len(episodes)), np.float32)
    for b, e in enumerate(episodes):
        n = len(e.action)
        obs[: n + 1, b], state[: n + 1, b], avail[: n + 1, b] = e.obs, e.state, e.avail
        action[:n, b], reward[:n, b], mask[:n, b] = e.action, e.reward, 1.0
        terminated[n - 1, b] = float(e.terminated)
    return Batch(
        *(torch.as_tensor(x) for x in (obs, state, avail, action, reward, terminated, mask))
    )


def record(env_id: str, episodes: int, seed: int, **env_kwargs: object) -> Batch:
    """Random-policy episodes of a real mmsa_envs env (uniform over the available actions, or
    uniform in the bounds for continuous actions), padded into a `Batch`."""
    from mmsa_envs import make

    env = make(env_id, **env_kwargs)
    spec = env.spec
    rng = np.random.default_rng(seed)
    out = []
    for i in range(episodes):
        step = env.reset(seed=seed * 1000 + i)
        ep = Episode([step.obs], [step.state], [step.avail_actions], [], [], False)
        while not step.done:
            if spec.discrete:
                logits = rng.random(step.avail_actions.shape) * step.avail_actions
                act = logits.argmax(-1).astype(np.int64)
            else:
                low, high = np.asarray(spec.action_low), np.asarray(spec.action_high)
                act = rng.uniform(low, high, (spec.n_agents, spec.n_actions)).astype(np.float32)
            step = env.step(act)
            ep.obs.append(step.obs)
            ep.state.append(step.state)
            ep.avail.append(step.avail_actions)
            ep.action.append(act)
            ep.reward.append(step.reward)
            ep.terminated = step.terminated
        out.append(ep)
    env.close()
    return stack_episodes(out)


def record_dummy(episodes: int, seed: int, action_kind: str = "discrete") -> Batch:
    """Episodes of mmsa_envs' deterministic dummy env (N=3, O=7, S=11, A=6, T<=5)."""
    return record("dummy" if action_kind == "discrete" else "dummy:continuous", episodes, seed)


def random_batch(
    generator: torch.Generator, *, t: int = T, b: int = B, action_kind: str = "discrete"
) -> Batch:
    """Unstructured data of the right shapes; the first episode ends two steps early."""
    action = (
        torch.randint(0, A, (t, b, N), generator=generator)
        if action_kind == "discrete"
        else torch.rand(t, b, N, A, generator=generator) * 2 - 1
    )
    mask = torch.ones(t, b)
    terminated = torch.zeros(t, b)
    if t >= 3:
        mask[t - 2 :, 0] = 0.0
        terminated[t - 3, 0] = 1.0
    return Batch(
        obs=torch.randn(t + 1, b, N, O, generator=generator),
        state=torch.randn(t + 1, b, S, generator=generator),
        avail_actions=torch.rand(t + 1, b, N, A, generator=generator) > 0.3,
        action=action,
        reward=torch.randn(t, b, generator=generator),
        terminated=terminated,
        mask=mask,
    )


def make_model(action_kind: str = "discrete", **overrides: object) -> WorldModel:
    config = replace(SMALL, **overrides)  # type: ignore[arg-type]
    return WorldModel(
        n_agents=N, obs_dim=O, state_dim=S, n_actions=A, action_kind=action_kind, config=config
    )


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    """Small tensors: one thread is fastest and immune to oversubscription on shared CPUs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def wm() -> SimpleNamespace:
    """The helpers of this file (test modules cannot import conftest under importlib mode)."""
    torch.manual_seed(0)
    return SimpleNamespace(
        T=T,
        B=B,
        N=N,
        O=O,
        S=S,
        A=A,
        SMALL=SMALL,
        Batch=Batch,
        make_model=make_model,
        random_batch=random_batch,
        record_dummy=record_dummy,
        record=record,
        stack_episodes=stack_episodes,
    )


@pytest.fixture
def generator() -> torch.Generator:
    torch.manual_seed(0)
    return torch.Generator().manual_seed(0)
