"""VectorEnv and VecStep: seeding, both reset modes, workers vs in-process, crashes, bad input."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from mmsa_envs import Step, VecStep, VectorEnv, episode_seed, make

B = 4
SEED = 7


def _policy(vstep: VecStep, t: int) -> np.ndarray:
    """A deterministic policy that uses only available actions."""
    acts = np.argmax(vstep.avail_actions, axis=-1)
    acts[:, 1:] = (t + np.arange(1, vstep.obs.shape[1])) % vstep.avail_actions.shape[-1]
    return acts.astype(np.int64)


def _reference(i: int, episode: int, actions: list[np.ndarray], **kw: object) -> list[Step]:
    """The steps a lone env gives for row i's episode with the same seed and actions."""
    env = make("dummy", **kw)  # type: ignore[arg-type]
    steps = [env.reset(seed=episode_seed(SEED, i, episode))]
    for act in actions:
        if steps[-1].done:
            break
        steps.append(env.step(act))
    return steps


@pytest.fixture(scope="module")
def workers() -> VectorEnv:
    venv = VectorEnv("dummy", B, seed=SEED, env_kwargs={"terminate_after": 2})
    yield venv
    venv.close()


def _rollout(venv: VectorEnv, n: int) -> list[VecStep]:
    out = [venv.reset()]
    for t in range(n):
        out.append(venv.step(_policy(out[-1], t)))
    return out


def test_shapes_and_dtypes(workers: VectorEnv) -> None:
    spec = workers.spec
    v = workers.reset()
    n, o, s, a = spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions
    assert (v.obs.shape, v.state.shape, v.avail_actions.shape) == ((B, n, o), (B, s), (B, n, a))
    assert (v.obs.dtype, v.state.dtype, v.avail_actions.dtype) == (np.float32, np.float32, bool)
    v = workers.step(_policy(v, 0))
    for name in ("reward",):
        assert getattr(v, name).shape == (B,) and getattr(v, name).dtype == np.float32
    for name in ("terminated", "truncated", "dropped"):
        assert getattr(v, name).shape == (B,) and getattr(v, name).dtype == bool
    assert len(v.infos) == B and v.final_obs is None


def test_workers_match_in_process_and_lone_envs(workers: VectorEnv) -> None:
    local = VectorEnv("dummy", B, seed=SEED, env_kwargs={"terminate_after": 2}, processes=False)
    workers.episode_counters = np.zeros(B, np.int64)
    a, b = _rollout(workers, 6), _rollout(local, 6)
    for va, vb in zip(a, b, strict=True):
        for name in ("obs", "state", "avail_actions", "reward", "terminated", "truncated"):
            np.testing.assert_array_equal(getattr(va, name), getattr(vb, name), err_msg=name)
    actions = [_policy(v, t) for t, v in enumerate(a[:-1])]
    for i in range(B):
        ref = _reference(i, 0, [act[i] for act in actions], terminate_after=2)
        for t, step in enumerate(ref):
            np.testing.assert_array_equal(a[t].obs[i], step.obs)
            assert a[t].reward[i] == np.float32(step.reward)
    assert workers.episode_counters.tolist() == [1] * B


def test_finished_rows_wait_with_zero_reward(workers: VectorEnv) -> None:
    vs = _rollout(workers, 6)  # dummy episodes last at most 5 steps
    assert vs[-1].done.all()
    ended_at = [next(t for t, v in enumerate(vs) if v.done[i]) for i in range(B)]
    for i, t_end in enumerate(ended_at):
        for v in vs[t_end + 1 :]:
            np.testing.assert_array_equal(v.obs[i], vs[t_end].obs[i])
            assert v.reward[i] == 0.0 and v.done[i]
            assert v.terminated[i] == vs[t_end].terminated[i]
    # rows that are over ignore their actions, even invalid ones
    junk = np.full((B, workers.spec.n_agents), 99, np.int64)
    assert workers.step(junk).done.all()


def test_autoreset_seeds_next_episode_and_keeps_final_obs() -> None:
    venv = VectorEnv("dummy", 2, seed=SEED, processes=False, autoreset=True,
                     env_kwargs={"terminate_after": 0})  # fmt: skip
    v = venv.reset()
    assert v.final_obs is not None
    acts, vs = [], [v]
    for t in range(5):
        acts.append(_policy(vs[-1], t))
        vs.append(venv.step(acts[-1]))
    last = vs[-1]
    assert last.truncated.all() and not last.terminated.any()
    for i in range(2):
        ref = _reference(i, 0, [a[i] for a in acts], terminate_after=0)
        np.testing.assert_array_equal(last.final_obs[i], ref[-1].obs)  # type: ignore[index]
        first_of_next = make("dummy").reset(seed=episode_seed(SEED, i, 1))
        np.testing.assert_array_equal(last.obs[i], first_of_next.obs)
        # rows that did not end: final_obs is the current obs
        np.testing.assert_array_equal(vs[2].final_obs[i], vs[2].obs[i])  # type: ignore[index]
    assert venv.episode_counters.tolist() == [2, 2]
    assert not venv.step(_policy(last, 0)).done.any()  # the new episodes run on


def test_counters_are_settable_for_resume() -> None:
    venv = VectorEnv("dummy", 3, seed=SEED, processes=False)
    venv.episode_counters = np.array([5, 0, 9])
    v = venv.reset()
    for i, episode in enumerate([5, 0, 9]):
        want = make("dummy").reset(seed=episode_seed(SEED, i, episode))
        np.testing.assert_array_equal(v.obs[i], want.obs)
    assert venv.episode_counters.tolist() == [6, 1, 10]
    with pytest.raises(ValueError, match="3 ints"):
        venv.episode_counters = np.zeros(2, np.int64)
    with pytest.raises(ValueError, match="non-negative"):
        venv.episode_counters = np.array([0, -1, 0])


def test_bad_actions_name_env_and_agent(workers: VectorEnv) -> None:
    v = workers.reset()
    acts = _policy(v, 0)
    acts[2, 1] = 17
    with pytest.raises(ValueError, match="env 2: .*agent 1 action 17"):
        workers.step(acts)
    with pytest.raises(ValueError, match=r"shape \(4, 3\)"):
        workers.step(acts[:2])
    assert not workers.step(_policy(v, 0)).done.any()  # a rejected batch changed nothing


def test_misuse_raises() -> None:
    with pytest.raises(ValueError, match="num_envs=0"):
        VectorEnv("dummy", 0)
    with pytest.raises(ValueError, match="start_method='nope'"):
        VectorEnv("dummy", 1, start_method="nope")
    venv = VectorEnv("dummy", 1, processes=False)
    with pytest.raises(RuntimeError, match="before reset"):
        venv.step(np.zeros((1, 3), np.int64))
    venv.close()
    with pytest.raises(RuntimeError, match="closed"):
        venv.reset()


def test_construction_error_is_reported() -> None:
    with pytest.raises(TypeError, match="bogus"):
        VectorEnv("dummy", 1, env_kwargs={"bogus": 1})


def _wait_dead(pid: int) -> None:
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)


@pytest.mark.parametrize("autoreset", [False, True])
def test_killed_worker_is_restarted_and_its_episode_dropped(autoreset: bool) -> None:
    kw = {"terminate_after": 0}
    with VectorEnv(
        "dummy", 3, seed=SEED, env_kwargs=kw, autoreset=autoreset, num_workers=3
    ) as venv:
        v0 = venv.reset()
        v1 = venv.step(_policy(v0, 0))
        old_pid = venv.worker_pids[1]
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        _wait_dead(old_pid)
        v2 = venv.step(_policy(v1, 1))
        assert v2.dropped.tolist() == [False, True, False]
        assert v2.truncated[1] and not v2.terminated[1] and v2.reward[1] == 0.0
        assert venv.dropped_episodes == 1
        assert venv.worker_pids[1] not in (None, old_pid)
        for i in (0, 2):  # the other rows carry on untouched
            ref = _reference(i, 0, [_policy(v0, 0)[i], _policy(v1, 1)[i]], **kw)
            np.testing.assert_array_equal(v2.obs[i], ref[2].obs)
        if autoreset:  # the restarted worker already runs row 1's next episode
            assert v2.final_obs is not None
            np.testing.assert_array_equal(v2.final_obs[1], v1.obs[1])
            nxt = make("dummy").reset(seed=episode_seed(SEED, 1, 1))
            np.testing.assert_array_equal(v2.obs[1], nxt.obs)
            assert not venv.step(_policy(v2, 2)).dropped.any()
        else:  # the dropped row waits for reset() like a finished one
            np.testing.assert_array_equal(v2.obs[1], v1.obs[1])
            v3 = venv.step(_policy(v2, 2))
            assert v3.done[1] and not v3.dropped[1] and v3.reward[1] == 0.0
            v4 = venv.reset()
            nxt = make("dummy").reset(seed=episode_seed(SEED, 1, 1))
            np.testing.assert_array_equal(v4.obs[1], nxt.obs)
            assert not venv.step(_policy(v4, 0)).dropped.any()
        assert venv.dropped_episodes == 1
        pids = [p for p in venv.worker_pids if p is not None]
    for pid in pids:  # closing stops every worker
        _wait_dead(pid)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_worker_holding_several_envs_drops_all_their_episodes() -> None:
    kw = {"terminate_after": 0}
    with VectorEnv("dummy", 3, seed=SEED, env_kwargs=kw, num_workers=2) as venv:
        pids = venv.worker_pids
        assert pids[0] == pids[1] != pids[2]  # rows 0-1 share a worker, row 2 has its own
        v0 = venv.reset()
        os.kill(pids[0], signal.SIGKILL)  # type: ignore[arg-type]
        _wait_dead(pids[0])  # type: ignore[arg-type]
        v1 = venv.step(_policy(v0, 0))
        assert v1.dropped.tolist() == [True, True, False]
        assert venv.dropped_episodes == 2
        ref = _reference(2, 0, [_policy(v0, 0)[2]], **kw)
        np.testing.assert_array_equal(v1.obs[2], ref[1].obs)
        v2 = venv.reset()
        for i in range(3):
            want = make("dummy").reset(seed=episode_seed(SEED, i, 1))
            np.testing.assert_array_equal(v2.obs[i], want.obs)
        assert not venv.step(_policy(v2, 0)).dropped.any()


def test_worker_count_does_not_change_results() -> None:
    outs = []
    for workers in (1, 3):
        with VectorEnv("dummy", 4, seed=SEED, num_workers=workers, autoreset=True) as venv:
            vs = [venv.reset()]
            for t in range(8):
                vs.append(venv.step(_policy(vs[-1], t)))
            outs.append(np.stack([v.obs for v in vs]))
    np.testing.assert_array_equal(outs[0], outs[1])
    with pytest.raises(ValueError, match="num_workers=0"):
        VectorEnv("dummy", 2, num_workers=0)
