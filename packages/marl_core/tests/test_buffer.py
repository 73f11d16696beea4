from __future__ import annotations

import numpy as np
import pytest
import torch

from mmsa_marl_core import EpisodeBuffer


def _fill(buffer: EpisodeBuffer, episodes: dict) -> np.ndarray:
    return buffer.add_episodes(**episodes)


def test_sample_shapes_and_dtypes(dummy_spec, random_episodes):
    buffer = EpisodeBuffer(dummy_spec, capacity=8, max_len=dummy_spec.episode_limit)
    _fill(buffer, random_episodes(6, seed=1))
    batch = buffer.sample(4, np.random.default_rng(0))
    t = batch.max_t
    assert batch.obs.shape == (t + 1, 4, 3, 7) and batch.obs.dtype == torch.float32
    assert batch.state.shape == (t + 1, 4, 11)
    assert batch.avail_actions.shape == (t + 1, 4, 3, 6) and batch.avail_actions.dtype == torch.bool
    assert batch.action.shape == (t, 4, 3) and batch.action.dtype == torch.int64
    for name in ("reward", "terminated", "mask"):
        assert getattr(batch, name).shape == (t, 4)
        assert getattr(batch, name).dtype == torch.float32
    assert batch.indices.shape == (4,)


def test_round_trip_data_time_major(dummy_spec, random_episodes):
    eps = random_episodes(3, seed=2, terminate_after=0)  # every episode runs the full 5 steps
    buffer = EpisodeBuffer(dummy_spec, capacity=5, max_len=5)
    _fill(buffer, eps)
    batch = buffer.get(np.array([2, 0]))
    np.testing.assert_array_equal(batch.obs[:, 0].numpy(), eps["obs"][2])
    np.testing.assert_array_equal(batch.obs[:, 1].numpy(), eps["obs"][0])
    np.testing.assert_array_equal(batch.action[:, 1].numpy(), eps["action"][0])
    np.testing.assert_array_equal(batch.reward[:, 0].numpy(), eps["reward"][2])
    assert batch.mask.sum() == 10


def test_padding_and_mask():
    from mmsa_envs import make

    spec = make("dummy").spec
    buffer = EpisodeBuffer(spec, capacity=4, max_len=5)
    n, o, s, a = 3, 7, 11, 6
    lengths = np.array([2, 5])
    obs = np.ones((2, 6, n, o), np.float32)
    buffer.add_episodes(
        obs=obs,
        state=np.ones((2, 6, s), np.float32),
        avail_actions=np.zeros((2, 6, n, a), bool) | np.eye(a, dtype=bool)[0],
        action=np.zeros((2, 5, n), np.int64),
        reward=np.full((2, 5), 7.0, np.float32),
        terminated=np.array([[0, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool),
        lengths=lengths,
    )
    batch = buffer.get(np.array([0, 1]))
    assert batch.max_t == 5
    np.testing.assert_array_equal(batch.mask[:, 0].numpy(), [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(batch.mask[:, 1].numpy(), [1] * 5)
    # beyond the length: zeros, no termination, and every action available
    assert batch.reward[2:, 0].abs().sum() == 0 and batch.terminated[2:, 0].sum() == 0
    assert batch.terminated[1, 0] == 1
    assert batch.obs[3:, 0].abs().sum() == 0 and batch.obs[2, 0].sum() == n * o  # final obs kept
    assert batch.avail_actions[3:, 0].all() and not batch.avail_actions[2, 0].all()
    # a batch of only short episodes is cut to their length
    short = buffer.get(np.array([0]))
    assert short.max_t == 2 and short.obs.shape[0] == 3


def test_ring_wraps_and_overwrites_oldest(dummy_spec, random_episodes):
    buffer = EpisodeBuffer(dummy_spec, capacity=4, max_len=5)
    first = random_episodes(3, seed=3)
    second = random_episodes(3, seed=4)
    np.testing.assert_array_equal(_fill(buffer, first), [0, 1, 2])
    assert len(buffer) == 3
    # N=3, O=7, S=11, A=6 and 5 steps: obs/state/avail over 6 rows, action/reward/terminated
    # over 5, the length: (6*3*7 + 6*11)*4 + 6*3*6 + 5*3*8 + 5*4 + 5 + 8 = 1029 bytes a slot
    assert buffer.nbytes_filled == 3 * 1029
    np.testing.assert_array_equal(_fill(buffer, second), [3, 0, 1])
    assert len(buffer) == 4 and buffer.nbytes_filled == 4 * 1029  # full: overwriting adds none
    got = buffer.get(np.arange(4))
    # slot 2 still holds first[2]; slots 0, 1, 3 hold second[1], second[2], second[0]
    np.testing.assert_array_equal(
        got.action[: first["lengths"][2], 2].numpy(), first["action"][2, : first["lengths"][2]]
    )
    for slot, e in ((0, 1), (1, 2), (3, 0)):
        n_t = second["lengths"][e]
        np.testing.assert_array_equal(got.obs[: n_t + 1, slot].numpy(), second["obs"][e, : n_t + 1])


def test_sampling_is_stateless(dummy_spec, random_episodes):
    buffer = EpisodeBuffer(dummy_spec, capacity=16, max_len=5)
    _fill(buffer, random_episodes(12, seed=5))
    a = buffer.sample(5, np.random.default_rng(42))
    buffer.sample(7, np.random.default_rng(1))  # an unrelated draw in between changes nothing
    b = buffer.sample(5, np.random.default_rng(42))
    np.testing.assert_array_equal(a.indices, b.indices)
    assert torch.equal(a.obs, b.obs)
    assert len(set(a.indices.tolist())) == 5  # without replacement
    others = {tuple(buffer.sample(5, np.random.default_rng(s)).indices) for s in range(5)}
    assert len(others) > 1  # the draw depends on the generator


def test_state_dict_round_trip(dummy_spec, random_episodes):
    buffer = EpisodeBuffer(dummy_spec, capacity=4, max_len=5)
    _fill(buffer, random_episodes(6, seed=6))
    sd = buffer.state_dict()
    other = EpisodeBuffer(dummy_spec, capacity=4, max_len=5)
    other.load_state_dict(sd)
    assert len(other) == 4
    x, y = buffer.get(np.arange(4)), other.get(np.arange(4))
    for name in ("obs", "state", "avail_actions", "action", "reward", "terminated", "mask"):
        assert torch.equal(getattr(x, name), getattr(y, name)), name
    # next writes land in the same slot
    more = random_episodes(1, seed=7)
    assert _fill(buffer, more).tolist() == _fill(other, more).tolist() == [2]
    with pytest.raises(ValueError, match="capacity"):
        EpisodeBuffer(dummy_spec, capacity=5, max_len=5).load_state_dict(sd)


def test_bad_input_errors(dummy_spec, random_episodes):
    buffer = EpisodeBuffer(dummy_spec, capacity=4, max_len=5)
    eps = random_episodes(2, seed=8)
    with pytest.raises(ValueError, match="cannot sample batch_size=3"):
        _fill(buffer, eps)
        buffer.sample(3, np.random.default_rng(0))
    bad = dict(eps, obs=eps["obs"][:, :, :, :6])
    with pytest.raises(ValueError, match="obs has shape"):
        buffer.add_episodes(**bad)
    with pytest.raises(ValueError, match="lengths"):
        buffer.add_episodes(**dict(eps, lengths=np.array([0, 9])))
    with pytest.raises(ValueError, match="capacity"):
        EpisodeBuffer(dummy_spec, capacity=0, max_len=5)
