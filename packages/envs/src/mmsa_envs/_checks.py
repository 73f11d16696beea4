"""`check_env`: the contract test every adapter passes.

It plays a few episodes with random available actions and checks, with a message that says what
broke: shapes, dtypes and writability of every `Step`'s arrays, consistency with `EnvSpec`, zero
padding beyond each agent's true observation size, reproducibility under the same reset seed,
bad actions rejected with a `ValueError` naming the agent and the value (and the env still usable
afterwards), stepping a finished episode refused, every episode ending within `episode_limit`,
and truncation used only for the time limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._core import EnvSpec, MultiAgentEnv, Step

__all__ = ["check_env"]


def check_env(env: MultiAgentEnv, *, episodes: int = 2, seed: int = 0) -> None:
    """Raise `AssertionError` (with a message) if `env` breaks the `MultiAgentEnv` contract.

    Plays `episodes` episodes (seeds `seed, seed + 1, ...`), replays the first one with the same
    seed and actions (skipped when `env.reproducible_resets` is False), and probes bad actions
    during the replay so that a probe that corrupts the env state shows up as a mismatch.
    """
    spec = env.spec
    _check_spec(spec)
    rng = np.random.default_rng(seed)
    first: list[Step] = []
    first_actions: list[np.ndarray] = []
    for episode in range(episodes):
        steps, actions = _play(env, seed + episode, rng)
        if episode == 0:
            first, first_actions = steps, actions
    if getattr(env, "reproducible_resets", True):
        _replay(env, seed, first, first_actions)
    else:
        _probe_bad_actions(env, env.reset(seed=seed))


# ---------------------------------------------------------------------- spec
def _check_spec(spec: EnvSpec) -> None:
    assert isinstance(spec, EnvSpec), f"env.spec must be an EnvSpec, got {type(spec).__name__}"
    assert ":" in spec.id or spec.id == "dummy", f"spec.id={spec.id!r} must be 'backend:name'"
    assert len(spec.agent_obs_dims) == spec.n_agents, "one agent_obs_dims entry per agent"
    assert max(spec.agent_obs_dims) == spec.obs_dim, (
        f"{spec.id}: obs_dim={spec.obs_dim} must equal the largest agent_obs_dims "
        f"{spec.agent_obs_dims} (padding beyond every agent is wasted)"
    )
    assert spec.backend_versions, f"{spec.id}: backend_versions must name the backend packages"
    for name, version in spec.backend_versions.items():
        assert isinstance(name, str) and isinstance(version, str), (
            f"{spec.id}: backend_versions must map str -> str, got {name!r}: {version!r}"
        )
    if not spec.discrete:
        assert spec.action_low is not None and spec.action_high is not None
        assert all(lo < hi for lo, hi in zip(spec.action_low, spec.action_high, strict=True)), (
            f"{spec.id}: action_low {spec.action_low} must be below action_high {spec.action_high}"
        )


def _check_step(spec: EnvSpec, step: Step, where: str) -> None:
    n, o, s, a = spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions
    assert isinstance(step, Step), f"{where}: expected a Step, got {type(step).__name__}"
    for name, arr, shape, dtype in (
        ("obs", step.obs, (n, o), np.float32),
        ("state", step.state, (s,), np.float32),
        ("avail_actions", step.avail_actions, (n, a), np.bool_),
    ):
        assert isinstance(arr, np.ndarray), f"{where}: {name} must be a numpy array"
        assert arr.shape == shape, f"{where}: {name} shape {arr.shape}, spec says {shape}"
        assert arr.dtype == dtype, f"{where}: {name} dtype {arr.dtype}, expected {dtype}"
        # Read-only views of a backend's buffers make torch warn on every conversion and
        # break callers that edit what they were given.
        assert arr.flags.writeable, f"{where}: {name} is a read-only array"
    assert np.isfinite(step.obs).all(), f"{where}: obs has non-finite values"
    assert np.isfinite(step.state).all(), f"{where}: state has non-finite values"
    for i, true_dim in enumerate(spec.agent_obs_dims):
        pad = step.obs[i, true_dim:]
        assert not pad.any(), (
            f"{where}: agent {i} obs beyond its true size {true_dim} must be zero padding, "
            f"got {pad}"
        )
    if spec.discrete:
        none = np.flatnonzero(~step.avail_actions.any(axis=1))
        assert none.size == 0, f"{where}: agent {int(none[0]) if none.size else -1} has no action"
    else:
        assert step.avail_actions.all(), (
            f"{where}: continuous envs must mark every action available"
        )
    assert isinstance(step.reward, float | np.floating), (
        f"{where}: reward must be a float, got {type(step.reward).__name__}"
    )
    assert np.isfinite(step.reward), f"{where}: reward {step.reward} is not finite"
    for name in ("terminated", "truncated"):
        value = getattr(step, name)
        assert isinstance(value, bool | np.bool_), f"{where}: {name} must be a bool, got {value!r}"
    assert not (step.terminated and step.truncated), f"{where}: terminated and truncated both set"
    assert isinstance(step.info, Mapping), f"{where}: info must be a Mapping"
    if spec.has_win and step.done:
        assert "battle_won" in step.info, f"{where}: has_win env must report info['battle_won']"


# ---------------------------------------------------------------------- episodes
def _random_actions(spec: EnvSpec, avail: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if spec.discrete:
        return np.array([rng.choice(np.flatnonzero(row)) for row in avail], dtype=np.int64)
    assert spec.action_low is not None and spec.action_high is not None
    low = np.asarray(spec.action_low, np.float32)
    high = np.asarray(spec.action_high, np.float32)
    return rng.uniform(low, high, size=(spec.n_agents, spec.n_actions)).astype(np.float32)


def _play(
    env: MultiAgentEnv, seed: int, rng: np.random.Generator
) -> tuple[list[Step], list[np.ndarray]]:
    spec = env.spec
    step = env.reset(seed=seed)
    where = f"{spec.id} seed {seed} reset"
    _check_step(spec, step, where)
    assert step.reward == 0.0, f"{where}: reward after reset must be 0, got {step.reward}"
    assert not step.done, f"{where}: an episode must not be over at reset"
    steps, actions = [step], []
    t = 0
    while not step.done:
        assert t < spec.episode_limit, (
            f"{spec.id} seed {seed}: episode still running after episode_limit="
            f"{spec.episode_limit} steps"
        )
        act = _random_actions(spec, step.avail_actions, rng)
        step = env.step(act)
        t += 1
        where = f"{spec.id} seed {seed} step {t}"
        _check_step(spec, step, where)
        assert env.elapsed_steps == t, f"{where}: elapsed_steps={env.elapsed_steps}, expected {t}"
        if step.truncated:
            assert t == spec.episode_limit, (
                f"{where}: truncated before the time limit {spec.episode_limit}; truncation "
                "is only for time limits"
            )
        if t == spec.episode_limit:
            assert step.done, f"{where}: episode not over at episode_limit={spec.episode_limit}"
        steps.append(step)
        actions.append(act)
    try:
        env.step(actions[-1])
    except RuntimeError:
        pass
    else:
        raise AssertionError(f"{spec.id}: step() after the episode ended must raise RuntimeError")
    return steps, actions


def _replay(env: MultiAgentEnv, seed: int, steps: list[Step], actions: list[np.ndarray]) -> None:
    spec = env.spec
    step = env.reset(seed=seed)
    _probe_bad_actions(env, step)
    _assert_same(spec.id, 0, steps[0], step)
    for t, act in enumerate(actions, start=1):
        step = env.step(act)
        _assert_same(spec.id, t, steps[t], step)


def _assert_same(env_id: str, t: int, want: Step, got: Step) -> None:
    where = f"{env_id}: replay with the same seed and actions differs at step {t}"
    for name in ("obs", "state", "avail_actions"):
        a, b = getattr(want, name), getattr(got, name)
        assert np.array_equal(a, b), f"{where} in {name}"
    assert want.reward == got.reward, f"{where} in reward ({want.reward} vs {got.reward})"
    assert (want.terminated, want.truncated) == (got.terminated, got.truncated), f"{where} in ends"


# ---------------------------------------------------------------------- bad input
def _expect_value_error(env: MultiAgentEnv, actions: Any, must_name: list[str], what: str) -> None:
    try:
        env.step(actions)
    except ValueError as err:
        msg = str(err)
        missing = [m for m in must_name if m not in msg]
        assert not missing, f"{env.spec.id}: ValueError for {what} must mention {missing}: {msg!r}"
    else:
        raise AssertionError(f"{env.spec.id}: {what} must raise ValueError")


def _probe_bad_actions(env: MultiAgentEnv, step: Step) -> None:
    spec = env.spec
    n, last = spec.n_agents, spec.n_agents - 1
    if spec.discrete:
        good = np.array([np.flatnonzero(row)[0] for row in step.avail_actions], np.int64)
        bad = good.copy()
        bad[last] = spec.n_actions
        _expect_value_error(
            env, bad, [f"agent {last}", str(spec.n_actions)], "an out-of-range action"
        )
        bad[last] = -1
        _expect_value_error(env, bad, [f"agent {last}", "-1"], "a negative action")
        _expect_value_error(env, good.astype(np.float32), ["dtype"], "float discrete actions")
        _expect_value_error(env, good[:-1], ["shape"], "too few actions")
        unavailable = np.argwhere(~step.avail_actions)
        if unavailable.size:
            i, a = (int(v) for v in unavailable[0])
            bad = good.copy()
            bad[i] = a
            _expect_value_error(env, bad, [f"agent {i}", str(a)], "an unavailable action")
        return
    assert spec.action_high is not None
    good = np.zeros((n, spec.n_actions), np.float32)
    good += np.clip(0.0, spec.action_low, spec.action_high).astype(np.float32)
    bad = good.copy()
    bad[last, 0] = spec.action_high[0] + 1.0
    _expect_value_error(env, bad, [f"agent {last}", str(bad[last, 0])], "an action above bounds")
    bad[last, 0] = np.nan
    _expect_value_error(env, bad, [f"agent {last}", "nan"], "a NaN action")
    _expect_value_error(env, good[:, :-1] if spec.n_actions > 1 else good[:-1], ["shape"], "shape")
    _expect_value_error(env, np.zeros(good.shape, np.int64), ["dtype"], "int continuous actions")
