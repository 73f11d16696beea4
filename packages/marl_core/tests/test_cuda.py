"""On CUDA (skipped without a GPU): MMSA's updates keep cuDNN's GRU weights packed, a run
killed on one device resumes on the other, and the CUDA graphs of imagination and acting replay
the eager computations."""

from __future__ import annotations

import copy
import json
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmsa_marl_core import config_from_dict, read_metrics, train
from mmsa_marl_core.imagination.rollout import imagined_features
from mmsa_marl_core.training.checkpoint import list_checkpoints, load_checkpoint
from mmsa_worldmodel import ModelState

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

CUDA = torch.device("cuda")
# cuDNN's warning when an RNN's weights are not one buffer (it then re-packs them at every call).
UNPACKED = "not part of single contiguous chunk"


@pytest.mark.parametrize("algo", ["mmsa", "mmsa_continuous"])
def test_mmsa_update_on_cuda_keeps_gru_weights_packed(algo, learner_and_batch):
    learner, batch = learner_and_batch(algo, CUDA)
    # A copy of the learner (its target networks are copies too) must not fall back to
    # re-packing either.
    twin = copy.deepcopy(learner)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = [learner.update(batch), twin.update(batch), learner.update(batch)]
    unpacked = [str(w.message) for w in caught if UNPACKED in str(w.message)]
    assert not unpacked, unpacked
    assert all(np.isfinite(v) for m in metrics for v in m.values()), metrics
    params = [p for m in vars(learner).values() if isinstance(m, torch.nn.Module)
              for p in m.parameters()]  # fmt: skip
    assert params and {p.device.type for p in params} == {"cuda"}


@pytest.mark.parametrize(("first", "then"), [("cuda", "cpu"), ("cpu", "cuda")])
def test_run_killed_on_one_device_resumes_on_the_other(
    first, then, tmp_path, killed_run, small_run, flat_state
):
    run, run_dir = small_run("mmsa"), tmp_path / "run"
    killed_run(run, run_dir, kill_at=120, device=first)
    killed_at = list_checkpoints(run_dir / "checkpoints")[-1]
    assert load_checkpoint(killed_at)["env_steps"] > 0

    result = train(config_from_dict(run), run_dir, device=then, progress=False, resume=True)
    assert result.env_steps >= run["steps"]
    info = json.loads((run_dir / "run.json").read_text())
    assert (info["status"], info["device"]) == ("finished", then)
    final = list_checkpoints(run_dir / "checkpoints")[-1]
    assert final != killed_at
    tensors = _tensors(flat_state, load_checkpoint(final)["learner"])
    assert tensors and all(bool(torch.isfinite(t.float()).all()) for t in tensors)
    # Continued from the checkpoint, not started again: one log, its steps always increasing.
    steps = [x["env_steps"] for x in read_metrics(run_dir) if x["kind"] == "train"]
    assert steps == sorted(set(steps)) and len(steps) >= 3
    evals = [x for x in read_metrics(run_dir) if x["kind"] == "eval"]
    assert evals and all(np.isfinite(x["return_mean"]) for x in evals)


def _tensors(flat_state, tree) -> list[torch.Tensor]:
    return [v for _, v in flat_state(tree) if isinstance(v, torch.Tensor)]


def test_resume_on_cuda_matches_the_uninterrupted_cuda_run(
    tmp_path, killed_run, small_run, flat_state
):
    """A run killed and resumed on CUDA ends with the same weights as one that was not stopped
    (to float32 rounding: CUDA kernels may sum in another order from run to run)."""
    run, straight = small_run("mmsa"), tmp_path / "straight"
    train(config_from_dict(run), straight, device=CUDA, progress=False)
    killed = tmp_path / "killed"
    killed_run(run, killed, kill_at=120, device="cuda")
    train(config_from_dict(run), killed, device=CUDA, progress=False, resume=True)
    a = load_checkpoint(list_checkpoints(straight / "checkpoints")[-1])["learner"]
    b = load_checkpoint(list_checkpoints(killed / "checkpoints")[-1])["learner"]
    pairs = list(zip(_tensors(flat_state, a), _tensors(flat_state, b), strict=True))
    assert pairs
    exact = sum(torch.equal(x, y) for x, y in pairs)
    print(f"bitwise-equal tensors after resume on CUDA: {exact}/{len(pairs)}")
    for x, y in pairs:
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)


def test_imagination_graph_replays_the_eager_imagination_with_the_current_weights(
    learner_and_batch,
):
    """The captured imagination gives what an eager one gives from the same random state, after
    updates moved the weights (in place), and on a batch size it had not seen."""
    learner, batch = learner_and_batch("mmsa", CUDA)
    graphs = learner.imagination
    learner.update(batch)
    assert graphs.failed is None and graphs.captured == 1
    wm, agent, fixed = learner.world_model, learner.agent, learner.encoders.fixed
    m, n, a = 300, learner.spec.n_agents, learner.spec.n_actions
    g = torch.Generator(device=CUDA).manual_seed(0)
    start = ModelState(
        torch.randn(m, wm.deter_dim, device=CUDA, generator=g),
        torch.randn(m, wm.stoch_dim, device=CUDA, generator=g),
    )
    hidden = torch.randn(m, n, agent.hidden_dim, device=CUDA, generator=g)
    last = F.one_hot(torch.randint(0, a, (m, n), device=CUDA, generator=g), a).float()
    size = graphs.bucket * math.ceil(m / graphs.bucket)

    def pad(t):
        return torch.cat([t, t.new_zeros(size - m, *t.shape[1:])])

    for _ in range(2):
        state = torch.cuda.get_rng_state()
        graphed = graphs(start, hidden, last)
        torch.cuda.set_rng_state(state)
        eager = imagined_features(
            wm, ModelState(pad(start.deter), pad(start.stoch)), agent, fixed, pad(hidden),
            pad(last), wm.config.horizon, check_actions=False,
        )[:, :m]  # fmt: skip
        assert graphed.shape == (wm.config.horizon + 1, m, wm.feature_dim)
        torch.testing.assert_close(graphed, eager)
        learner.update(batch)  # an optimiser step: the next replay must read the new weights
    assert graphs.captured == 2 and graphs.failed is None
    twin = copy.deepcopy(learner)  # a copy holds no graph of the original's memory
    assert twin.imagination.captured == 0 and twin.imagination.agent is twin.agent


def test_acting_graph_replays_the_eager_step_with_the_current_weights(learner_and_batch):
    """MMSA's acting step from a CUDA graph gives the eager step's Q and GRU state, for each
    batch shape it sees, after updates moved the weights (in place); the actions of a whole
    episode match those of the same learner acting eagerly."""
    learner, batch = learner_and_batch("mmsa", CUDA)
    acting = learner.acting
    seen = acting.captured  # the fixture's episodes were collected by this learner (4 envs)
    n, a, o = learner.spec.n_agents, learner.spec.n_actions, learner.spec.obs_dim
    g = torch.Generator(device=CUDA).manual_seed(0)
    for b in (1, 8, 1):
        obs = torch.randn(b, n, o, device=CUDA, generator=g)
        hidden = torch.randn(b, n, learner.agent.hidden_dim, device=CUDA, generator=g)
        last = F.one_hot(torch.randint(0, a, (b, n), device=CUDA, generator=g), a).float()
        q, next_hidden = acting(obs, hidden, last)
        q_eager, hidden_eager = acting._eager(obs, hidden, last)
        torch.testing.assert_close(q, q_eager)
        torch.testing.assert_close(next_hidden, hidden_eager)
        again, _ = acting(obs, hidden, last)  # the first result is not overwritten by a replay
        torch.testing.assert_close(q, again)
        learner.update(batch)  # the next replay must read the new weights
    assert acting.failed is None and acting.captured == seen + 2

    eager = copy.deepcopy(learner)
    eager.acting.enabled = False
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((4, 5, n, o)).astype(np.float32)
    avail = np.ones((4, 5, n, a), bool)
    states = [learner.initial_state(5), eager.initial_state(5)]
    for t in range(4):
        graphed, states[0] = learner.act(obs[t], avail[t], states[0], env_steps=0,
                                         explore=False, rng=rng)  # fmt: skip
        plain, states[1] = eager.act(obs[t], avail[t], states[1], env_steps=0, explore=False,
                                     rng=rng)  # fmt: skip
        assert np.array_equal(graphed, plain), t
        torch.testing.assert_close(states[0][0], states[1][0])
    assert eager.acting.captured == 0 and learner.acting.captured == seen + 3
