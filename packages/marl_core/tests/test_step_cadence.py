"""The update cadence (`TrainConfig.update_every`): under `step` the gradient updates run after
every vectorised env step, interleaved with acting, `updates_per_step` per env that stepped, and
the run stops within one vectorised step of `steps`; `auto` is `step` on continuous actions and
leaves discrete runs on the `episode` cadence, exactly as before.

Runs are on `dummy:continuous` with `terminate_after=0`, so every episode runs to its limit of 5
steps and the number of updates is known in advance.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mmsa_envs import make, make_vector_env
from mmsa_marl_core import ConfigError, TrainConfig, config_from_dict, read_metrics, train
from mmsa_marl_core.registry import get_algo
from mmsa_marl_core.training import train as train_module
from mmsa_marl_core.training.checkpoint import list_checkpoints, load_checkpoint
from mmsa_marl_core.training.collect import run_episodes
from mmsa_marl_core.training.metrics import MEASURED
from mmsa_marl_core.training.resume import run_fingerprint
from mmsa_marl_core.training.train import check_update_budget

LIMIT, N_ENVS, BATCH = 5, 3, 4
FILLING = 2 * LIMIT  # vectorised steps before the buffer holds BATCH episodes (2 rounds of 3)

RUN: dict[str, Any] = {
    "env": "dummy:continuous",
    "env_kwargs": {"terminate_after": 0},
    "algo": "facmac",
    "algo_config": {"agent_hidden": 8, "mixer_embed_dim": 4, "hypernet_hidden": 8, "width": 16,
                    "random_steps": 20},
    "steps": 100,
    "n_envs": N_ENVS,
    "batch_size": BATCH,
    "buffer_size": 40,
    "log_every": 30,
    "eval_every": 60,
    "eval_episodes": 3,
    "checkpoint_every": 30,
    "keep_checkpoints": 2,
}  # fmt: skip
DISCRETE: dict[str, Any] = {
    "env": "dummy",
    "steps": 120,
    "n_envs": N_ENVS,
    "batch_size": BATCH,
    "buffer_size": 40,
    "eval_episodes": 3,
    "algo_config": {"agent_hidden": 8, "mixer_embed_dim": 4, "hypernet_hidden": 8},
}


def _config(base: dict[str, Any] = RUN, **overrides: Any) -> TrainConfig:
    return config_from_dict({**base, **overrides})


def _learner_state(run_dir: Path) -> dict[str, Any]:
    return load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])["learner"]


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}
    if isinstance(tree, list):
        return {k: v for i, sub in enumerate(tree) for k, v in _flat(sub, f"{prefix}{i}.").items()}
    return {prefix: tree}


def _same_state(a: dict[str, Any], b: dict[str, Any]) -> bool:
    fa, fb = _flat(a), _flat(b)
    assert fa.keys() == fb.keys()
    return all(
        torch.equal(fa[k], fb[k]) if isinstance(fa[k], torch.Tensor) else fa[k] == fb[k] for k in fa
    )


def _lines(run_dir: Path) -> list[dict[str, Any]]:
    return [{k: v for k, v in x.items() if k not in MEASURED} for x in read_metrics(run_dir)]


# ---------------------------------------------------------------------- the config
def test_auto_is_step_on_continuous_actions_and_episode_otherwise():
    continuous, discrete = make("dummy:continuous").spec, make("dummy").spec
    assert TrainConfig().update_every == "auto" and TrainConfig().updates_per_step == 1.0
    assert TrainConfig().update_cadence(continuous) == "step"
    assert TrainConfig().update_cadence(discrete) == "episode"
    for value in ("episode", "step"):
        config = TrainConfig(update_every=value)
        assert config.update_cadence(continuous) == config.update_cadence(discrete) == value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"update_every": "steps"},
         "update_every='steps' is not allowed; use one of auto, episode, step"),
        ({"update_every": "Step"},
         "update_every='Step' is not allowed; use one of auto, episode, step"),
        ({"update_every": 1}, "config key 'update_every': expected str, got int 1"),
        ({"updates_per_step": -1}, "updates_per_step=-1.0 must be >= 0"),
        ({"updates_per_step": "1"}, "config key 'updates_per_step': expected float, got str"),
        ({"updates_per_step": float("nan")}, "config key 'updates_per_step': nan is not allowed"),
    ],
)  # fmt: skip
def test_bad_cadence_values_are_refused_in_one_line(data, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_bad_cadence_values_are_refused_when_built_directly():
    with pytest.raises(ConfigError, match="^update_every='never' is not allowed; use one of"):
        TrainConfig(update_every="never")
    with pytest.raises(ConfigError, match="^updates_per_step=nan must be >= 0"):
        TrainConfig(updates_per_step=float("nan"))


def test_the_cadence_splits_a_run_only_where_it_is_step():
    """A discrete run's fingerprint is what it was before the cadence existed (its checkpoints
    continue); a step-cadence run's names the cadence and its rate, as resolved."""
    discrete, continuous = make("dummy").spec, make("dummy:continuous").spec
    plain = run_fingerprint(_config(DISCRETE), discrete)
    assert "update_every" not in plain and "updates_per_step" not in plain
    assert run_fingerprint(_config(DISCRETE, update_every="episode"), discrete) == plain
    assert run_fingerprint(_config(DISCRETE, updates_per_step=3.0), discrete) == plain
    step = run_fingerprint(_config(), continuous)
    assert (step["update_every"], step["updates_per_step"]) == ("step", 1.0)
    assert run_fingerprint(_config(update_every="step"), continuous) == step
    assert run_fingerprint(_config(updates_per_step=2.0), continuous) != step
    assert "update_every" not in run_fingerprint(_config(update_every="episode"), continuous)


# ---------------------------------------------------------------------- collection
def test_collection_calls_the_hook_after_every_step_and_cuts_at_the_budget():
    spec_kwargs = {"terminate_after": 0}
    with make_vector_env("dummy:continuous", N_ENVS, seed=0, env_kwargs=spec_kwargs) as envs:
        torch.manual_seed(0)
        learner = get_algo("facmac").factory(envs.spec, _config().algo_config, torch.device("cpu"))
        seen: list[tuple[int, int]] = []
        eps = run_episodes(
            envs, learner, explore=True, env_steps=100, rng=np.random.default_rng(0),
            on_step=lambda stepped, live: seen.append((stepped, live)), stop_at=107,
        )  # fmt: skip
    # three vectorised steps reach 107 (100 + 9): the episodes are cut there, not terminal
    assert seen == [(3, 103), (3, 106), (3, 109)]
    assert eps.lengths.tolist() == [3, 3, 3] and not eps.terminated.any()
    assert eps.obs.shape[1] == LIMIT + 1  # padded to the limit as always


class _FirstRowOnTarget:
    """Discrete dummy policy: row 0 picks every agent's target (its episode terminates after
    2 steps), the other rows each agent's first available action (never all on target)."""

    def initial_state(self, batch_size: int) -> None:
        return None

    def act(self, obs, avail, state, *, env_steps, explore, rng):
        actions = np.argmax(avail, axis=-1)
        actions[0] = np.argmax(obs[0, :, : avail.shape[-1]], axis=-1)
        return actions, None


def test_the_hook_counts_only_the_envs_that_stepped():
    seen: list[tuple[int, int]] = []
    with make_vector_env("dummy", N_ENVS, seed=0) as envs:
        eps = run_episodes(
            envs, _FirstRowOnTarget(), explore=True, env_steps=0, rng=np.random.default_rng(0),
            on_step=lambda stepped, live: seen.append((stepped, live)),
        )  # fmt: skip
    assert eps.lengths.tolist() == [2, 5, 5] and eps.terminated[0, 1]
    assert seen == [(3, 3), (3, 6), (2, 8), (2, 10), (2, 12)]


# ---------------------------------------------------------------------- the loop
class _Recorder:
    """Wraps a learner: records every exploring `act` (its env_steps and a checksum of the
    online networks) and every `update`, in order (greedy evaluation is left out)."""

    def __init__(self, inner: Any, events: list[tuple[str, int, float]]) -> None:
        self.inner, self.events = inner, events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _checksum(self) -> float:
        return float(sum(p.double().sum() for p in self.inner.state_dict()["online"].values()))

    def act(self, obs: np.ndarray, *args: Any, env_steps: int, explore: bool, **kw: Any) -> Any:
        if explore:
            self.events.append(("act", env_steps, self._checksum()))
        return self.inner.act(obs, *args, env_steps=env_steps, explore=explore, **kw)

    def update(self, batch: Any) -> dict[str, float]:
        self.events.append(("update", 0, 0.0))
        return self.inner.update(batch)


def _recorded_run(monkeypatch, tmp_path: Path, config: TrainConfig) -> tuple[Any, list]:
    events: list[tuple[str, int, float]] = []
    entry = get_algo(config.algo)
    recording = dataclasses.replace(
        entry, factory=lambda *args: _Recorder(entry.factory(*args), events)
    )
    monkeypatch.setattr(train_module, "get_algo", lambda name: recording)
    return train(config, tmp_path / "run", progress=False), events


def test_step_cadence_interleaves_updates_with_acting(monkeypatch, tmp_path):
    """After every vectorised step of a round `updates_per_step x 3` updates run, the fraction
    carried (0.5 x 3 = 1.5: one update, then two), and the actor the next step acts with has
    changed: the updates happen inside the episode, not after it."""
    config = _config(updates_per_step=0.5, steps=60)
    result, events = _recorded_run(monkeypatch, tmp_path, config)
    acts = [i for i, e in enumerate(events) if e[0] == "act"]
    between = [
        sum(e[0] == "update" for e in events[a + 1 : b])
        for a, b in zip(acts, [*acts[1:], len(events)], strict=True)
    ]
    assert len(acts) == 20  # 60 steps: 4 rounds of 5 vectorised steps, no more
    assert between[:FILLING] == [0] * FILLING  # until the buffer holds 4 episodes
    credit, expected = 0.0, []
    for _ in range(20 - FILLING):
        credit += 0.5 * N_ENVS
        expected.append(int(credit))
        credit -= int(credit)
    assert between[FILLING:] == expected == [1, 2] * 5
    assert result.updates == sum(expected) == 15
    # the policy acts at the live env-step count, and with the networks the updates after the
    # previous step made, also between two steps of one episode
    assert [events[i][1] for i in acts] == [3 * k for k in range(20)]
    checksums = [events[i][2] for i in acts]
    for k in range(FILLING, 19):
        if k // LIMIT == (k + 1) // LIMIT:  # steps k and k + 1 of one episode
            assert checksums[k] != checksums[k + 1], k
    assert len(set(checksums[: FILLING + 1])) == 1  # no update before the buffer is full


def test_episode_cadence_updates_only_between_rounds(monkeypatch, tmp_path):
    """The same run on `update_every=episode`: no update between two steps of a round, the policy
    acts at the round's starting count, and the run collects whole rounds (as before)."""
    config = _config(update_every="episode", steps=50)
    result, events = _recorded_run(monkeypatch, tmp_path, config)
    acts = [i for i, e in enumerate(events) if e[0] == "act"]
    assert len(acts) == 4 * LIMIT
    rounds = [acts[k : k + LIMIT] for k in range(0, len(acts), LIMIT)]
    for steps in rounds:
        assert all(b == a + 1 for a, b in zip(steps, steps[1:], strict=False))  # no update inside
        assert len({events[i][1] for i in steps}) == 1
    assert result.env_steps == 60 and result.updates == 3 * (4 - 1)  # from the round filling it


@pytest.mark.parametrize(("steps", "ups"), [(100, 1.0), (101, 0.5), (102, 2.0), (98, 0.25)])
def test_step_cadence_honours_the_budget_and_counts_its_updates(tmp_path, steps, ups):
    """The run ends at the first vectorised step at or past `steps` (at most n_envs - 1 more),
    stores the cut episodes as truncated ones (every collected step is in the buffer), and
    finishes normally; its updates are those the cadence predicts, in TrainResult and in the
    metrics lines."""
    result = train(_config(steps=steps, updates_per_step=ups), tmp_path, progress=False)
    vector_steps = -(-steps // N_ENVS)
    assert steps <= result.env_steps == N_ENVS * vector_steps <= steps + N_ENVS - 1
    assert result.updates == int(ups * N_ENVS * (vector_steps - FILLING))
    lines = read_metrics(tmp_path)
    assert lines[-1]["updates"] == result.updates and lines[-1]["env_steps"] == result.env_steps
    assert [x["kind"] for x in lines[-2:]] == ["train", "eval"]  # the final line and evaluation
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["status"] == "finished" and info["env_steps"] == result.env_steps
    payload = load_checkpoint(result.checkpoint)
    assert payload["env_steps"] == result.env_steps
    buffer = payload["buffer"]
    lengths = buffer["lengths"]
    assert int(lengths.sum()) == result.env_steps  # no collected step lost
    cut = vector_steps % LIMIT
    if cut:  # the last round's episodes end early, not terminal: learners bootstrap there
        assert lengths[-N_ENVS:].tolist() == [cut] * N_ENVS
        assert not buffer["data"]["terminated"][-N_ENVS:].any()
    assert result.episodes == len(lengths)


def test_discrete_default_is_the_episode_cadence_bit_for_bit(tmp_path):
    """`auto` on a discrete env is the episode cadence: same parameters and metrics as
    `update_every=episode`, and not those of `update_every=step`."""
    runs = {}
    for name in ("auto", "episode", "step"):
        config = _config(DISCRETE, update_every=name)
        result = train(config, tmp_path / name, progress=False)
        runs[name] = (result, _learner_state(tmp_path / name), _lines(tmp_path / name))
    auto, episode, step = runs["auto"], runs["episode"], runs["step"]
    assert _same_state(auto[1], episode[1]) and auto[2] == episode[2]
    # whole rounds, updates_per_episode x episodes from the round that fills the buffer
    assert auto[0].env_steps == 120 and auto[0].updates == 3 * (120 // 15 - 1)
    assert not _same_state(auto[1], step[1]) and step[0].updates != auto[0].updates


# ---------------------------------------------------------------------- the budget check
@pytest.mark.parametrize(("ups", "enough"), [(1.0, 31), (0.25, 34), (0.4, 31)])
def test_budget_check_refuses_exactly_the_budgets_without_an_update(tmp_path, ups, enough):
    """The buffer holds 4 episodes after 30 env steps; from then on each vectorised step adds
    3 x updates_per_step to the credit: 1 step for 1.0 and 0.4 (1.2), 2 for 0.25 (0.75 each).
    One step less than `enough` is refused naming both numbers, and nothing is written."""
    spec = make("dummy:continuous", terminate_after=0).spec
    short = _config(steps=enough - 1, updates_per_step=ups)
    with pytest.raises(ConfigError) as err:
        check_update_budget(short, spec)
    message = str(err.value)
    assert f"steps={enough - 1} gives no gradient update" in message
    assert f"use steps >= {enough}" in message and "\n" not in message
    with pytest.raises(ConfigError, match=f"use steps >= {enough}"):
        train(short, tmp_path / "short", progress=False)
    assert not (tmp_path / "short").exists()
    check_update_budget(_config(steps=enough, updates_per_step=ups), spec)
    result = train(_config(steps=enough, updates_per_step=ups), tmp_path / "ok", progress=False)
    assert result.updates >= 1


def test_budget_check_refuses_a_zero_rate_and_a_long_warm_up():
    spec = make("dummy:continuous", terminate_after=0).spec
    with pytest.raises(ConfigError, match="^updates_per_step=0.0 gives no gradient update"):
        check_update_budget(_config(updates_per_step=0.0), spec)
    # FACMAC on 1000-step episodes, 4 envs, batch 16: updates start after 16000 env steps
    mujoco = dataclasses.replace(spec, episode_limit=1000)
    config = _config(steps=2000, n_envs=4, batch_size=16)
    with pytest.raises(ConfigError, match=r"steps=2000 .* use steps >= 16001"):
        check_update_budget(config, mujoco)
    check_update_budget(_config(steps=16001, n_envs=4, batch_size=16), mujoco)
    # the episode cadence of the same run is checked as before
    with pytest.raises(ConfigError, match="use steps >= 12001"):
        check_update_budget(dataclasses.replace(config, update_every="episode"), mujoco)


# ---------------------------------------------------------------------- exact resume
@pytest.mark.slow  # two short runs, one in a fresh interpreter
def test_step_cadence_run_killed_and_resumed_is_bitwise_exact(tmp_path, killed_run):
    """SIGKILL between two checkpoints, resume: same parameters, buffer and metrics as the run
    that was never interrupted. The fractional credit (0.5 x 3 per step) is carried across the
    checkpoint, and the warm-up (20 steps) ends inside a round."""
    run = RUN | {"updates_per_step": 0.5, "checkpoint_every": 45}
    straight = tmp_path / "straight"
    train(config_from_dict(run), straight, progress=False)

    killed = tmp_path / "killed"
    killed_run(run, killed, kill_at=50)
    (only,) = list_checkpoints(killed / "checkpoints")  # killed at 60 steps, before the next
    payload = load_checkpoint(only)
    assert payload["env_steps"] == 45 and payload["progress"]["update_credit"] == 0.5

    result = train(config_from_dict(run), killed, progress=False, resume=True)
    assert json.loads((killed / "run.json").read_text())["status"] == "finished"
    assert result.env_steps == 102
    a = load_checkpoint(list_checkpoints(straight / "checkpoints")[-1])
    b = load_checkpoint(list_checkpoints(killed / "checkpoints")[-1])
    assert a["learner"]["updates"] == b["learner"]["updates"] == result.updates > 0
    assert _same_state(a["learner"], b["learner"]), "resumed parameters differ"
    assert _same_state(a["buffer"], b["buffer"])
    assert _lines(straight) == _lines(killed)
