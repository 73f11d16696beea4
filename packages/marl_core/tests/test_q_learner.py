from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mmsa_envs import make
from mmsa_marl_core import Batch, EpisodeBuffer, Learner, QLearner, QLearnerConfig

SMALL = QLearnerConfig(agent_hidden=8, mixer_embed_dim=5, hypernet_hidden=9, lr=1e-2)


def _learner(spec, mixer="qmix", seed=0, **overrides) -> QLearner:
    torch.manual_seed(seed)
    return QLearner(spec, dataclasses.replace(SMALL, **overrides), "cpu", mixer=mixer)


def _batch(spec, random_episodes, n=4, seed=0, **env_kwargs) -> Batch:
    buffer = EpisodeBuffer(spec, capacity=n, max_len=spec.episode_limit)
    buffer.add_episodes(**random_episodes(n, seed=seed, **env_kwargs))
    return buffer.get(np.arange(n))


def _params(learner: QLearner) -> list[torch.Tensor]:
    return [p.detach().clone() for p in learner.params]


def _one_step_batch(spec, terminated: bool) -> Batch:
    """One transition with zero reward; the episode ends by termination or by truncation."""
    n, o, s, a = spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions
    g = torch.Generator().manual_seed(3)
    return Batch(
        obs=torch.randn(2, 1, n, o, generator=g),
        state=torch.randn(2, 1, s, generator=g),
        avail_actions=torch.ones(2, 1, n, a, dtype=torch.bool),
        action=torch.zeros(1, 1, n, dtype=torch.int64),
        reward=torch.zeros(1, 1),
        terminated=torch.full((1, 1), float(terminated)),
        mask=torch.ones(1, 1),
        indices=np.zeros(1, np.int64),
    )


def test_is_a_learner_and_update_metrics(dummy_spec, random_episodes):
    learner = _learner(dummy_spec)
    assert isinstance(learner, Learner)
    metrics = learner.update(_batch(dummy_spec, random_episodes))
    assert {"loss", "td_error_abs", "q_taken_mean", "target_mean", "grad_norm", "skipped"} <= set(
        metrics
    )
    assert all(isinstance(v, float) for v in metrics.values())
    assert learner.updates == 1 and metrics["skipped"] == 0.0


@pytest.mark.parametrize("mixer", ["qmix", "vdn"])
def test_loss_falls_on_a_fixed_batch(dummy_spec, random_episodes, mixer):
    learner = _learner(dummy_spec, mixer=mixer, target_update_interval=10_000)
    batch = _batch(dummy_spec, random_episodes, n=4, seed=1)
    first = learner.update(batch)["loss"]
    for _ in range(60):
        last = learner.update(batch)["loss"]
    assert last < 0.3 * first


def test_truncation_bootstraps_termination_does_not(dummy_spec):
    learner = _learner(dummy_spec)
    truncated = _one_step_batch(dummy_spec, terminated=False)
    with torch.no_grad():  # oracle: double-Q next value from the final observation
        q_next = learner.unroll(learner.agent, truncated)[1]
        a_star = q_next.argmax(-1)
        tq = learner.unroll(learner.target_agent, truncated)[1].gather(-1, a_star[..., None])
        expected = SMALL.gamma * float(learner.target_mixer(tq[..., 0], truncated.state[1]))
    assert abs(expected) > 1e-4
    got = learner.update(truncated)["target_mean"]
    assert got == pytest.approx(expected, rel=1e-5)
    assert _learner(dummy_spec).update(_one_step_batch(dummy_spec, terminated=True))[
        "target_mean"
    ] == pytest.approx(0.0, abs=1e-12)


def test_padding_does_not_change_the_loss(dummy_spec, random_episodes):
    full = _batch(dummy_spec, random_episodes, n=4, seed=2)
    mask = full.mask.clone()
    mask[3:, 1] = 0  # episode 1 has 3 transitions; row 3 is its final observation
    batch = dataclasses.replace(full, mask=mask)
    pad, pad_obs = mask == 0, torch.zeros(full.obs.shape[:2], dtype=torch.bool)
    pad_obs[4:, 1] = True
    poisoned = dataclasses.replace(
        batch,
        reward=batch.reward.masked_fill(pad, 1e6),
        terminated=batch.terminated.masked_fill(pad, 1.0),
        action=batch.action.masked_fill(pad[..., None], 5),
        obs=batch.obs.masked_fill(pad_obs[..., None, None], -3.0),
        state=batch.state.masked_fill(pad_obs[..., None], 7.0),
    )
    a = _learner(dummy_spec).update(batch)
    b = _learner(dummy_spec).update(poisoned)
    c = _learner(dummy_spec).update(full)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
    assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-6)
    assert a["loss"] != pytest.approx(c["loss"], rel=1e-6)  # the mask does remove rows


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_loss_is_skipped_and_counted(dummy_spec, random_episodes, bad):
    learner = _learner(dummy_spec)
    batch = _batch(dummy_spec, random_episodes)
    poisoned = dataclasses.replace(batch, reward=batch.reward.clone().fill_(bad))
    before = _params(learner)
    metrics = learner.update(poisoned)
    assert metrics["skipped"] == 1.0 and learner.nonfinite_updates == 1 and learner.updates == 0
    assert all(torch.equal(x, y) for x, y in zip(before, _params(learner), strict=True))
    learner.update(batch)
    assert learner.nonfinite_updates == 1 and learner.updates == 1
    assert not all(torch.equal(x, y) for x, y in zip(before, _params(learner), strict=True))


def test_hard_target_update_interval(dummy_spec, random_episodes):
    learner = _learner(dummy_spec, target_update_interval=3)
    batch = _batch(dummy_spec, random_episodes)
    initial = [p.clone() for p in learner.target_agent.parameters()]
    for _ in range(2):
        learner.update(batch)
    assert all(
        torch.equal(a, b) for a, b in zip(initial, learner.target_agent.parameters(), strict=True)
    )
    learner.update(batch)
    for online, target in zip(
        learner.agent.parameters(), learner.target_agent.parameters(), strict=True
    ):
        assert torch.equal(online, target)
    for online, target in zip(
        learner.mixer.parameters(), learner.target_mixer.parameters(), strict=True
    ):
        assert torch.equal(online, target)


def test_state_dict_round_trip_is_exact(dummy_spec, random_episodes):
    batch = _batch(dummy_spec, random_episodes)
    a = _learner(dummy_spec, standardise_rewards=True)
    for _ in range(3):
        a.update(batch)
    b = _learner(dummy_spec, seed=99, standardise_rewards=True)
    b.load_state_dict(a.state_dict())
    assert b.updates == 3
    a.update(batch)
    b.update(batch)
    assert all(torch.equal(x, y) for x, y in zip(_params(a), _params(b), strict=True))
    other = _learner(dummy_spec, agent_hidden=16)
    with pytest.raises(ValueError, match="does not match this agent"):
        other.load_state_dict(a.state_dict())


def test_act_shapes_availability_and_reset(dummy_spec):
    learner = _learner(dummy_spec)
    env = make("dummy")
    rng = np.random.default_rng(0)
    step = env.reset(seed=1)
    state = learner.initial_state(1)
    obs_rows, qs = [step.obs], []
    for _ in range(3):
        q, _ = learner.q_values(step.obs[None], state)
        qs.append(q[0])
        actions, state = learner.act(
            step.obs[None], step.avail_actions[None], state, env_steps=10**9, explore=True, rng=rng
        )
        assert actions.shape == (1, 3) and actions.dtype == np.int64
        assert step.avail_actions[np.arange(3), actions[0]].all()
        step = env.step(actions[0])
        obs_rows.append(step.obs)
    # the same Q-values from a fresh state: the acting state restarts at each episode start
    fresh = learner.initial_state(1)
    q0, _ = learner.q_values(obs_rows[0][None], fresh)
    np.testing.assert_allclose(q0[0], qs[0], rtol=1e-6)
    q_stale, _ = learner.q_values(obs_rows[0][None], state)
    assert not np.allclose(q_stale[0], qs[0])
    greedy_actions, _ = learner.act(
        obs_rows[0][None], np.ones((1, 3, 6), bool), fresh, env_steps=0, explore=False, rng=rng
    )
    assert greedy_actions[0].tolist() == qs[0].argmax(-1).tolist()
    assert learner.exploration_rate(0) == 1.0 and learner.exploration_rate(10**9) == 0.05


def test_act_matches_unroll(dummy_spec, random_episodes):
    """Acting step by step sees the same Q-values the learner unrolls from the buffer."""
    learner = _learner(dummy_spec)
    batch = _batch(dummy_spec, random_episodes, n=2, seed=4)
    unrolled = learner.unroll(learner.agent, batch).detach().numpy()
    state = learner.initial_state(2)
    for t in range(batch.max_t):
        q, (hidden, _) = learner.q_values(batch.obs[t].numpy(), state)
        np.testing.assert_allclose(q, unrolled[t], rtol=1e-5, atol=1e-6)
        last = torch.nn.functional.one_hot(batch.action[t], 6).float()
        state = (hidden, last)


def test_config_checks(dummy_spec):
    with pytest.raises(ValueError, match="QLearnerConfig.gamma"):
        QLearnerConfig(gamma=1.5)
    with pytest.raises(ValueError, match="optimizer='sgd'"):
        QLearnerConfig(optimizer="sgd")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="discrete"):
        QLearner(make("dummy:continuous").spec, SMALL, "cpu")
    rms = _learner(dummy_spec, optimizer="rmsprop")
    assert isinstance(rms.optimizer, torch.optim.RMSprop)
