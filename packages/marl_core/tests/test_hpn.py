"""HPN-QMIX: the agent's invariance to ally/enemy order and equivariance of its attack Q values
(exact, in float64), shapes, the QLearner machinery it reuses, the layout error, exact resume."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from mmsa_envs import EntityLayout, make
from mmsa_marl_core import EpisodeBuffer, Learner, config_from_dict, train
from mmsa_marl_core.learners.hpn import HPNQLearner, HPNQLearnerConfig
from mmsa_marl_core.learners.q_learner import QLearnerConfig
from mmsa_marl_core.networks.hpn_agent import HPNAgent, _entity_sum
from mmsa_marl_core.registry import get_algo
from mmsa_marl_core.training.checkpoint import list_checkpoints, load_checkpoint
from mmsa_marl_core.training.collect import run_episodes

# Mutually distinct sizes: N=3 agents, 2 allies of 3 features, 4 enemies of 5, own 2 + 3,
# O=31, A=7 with attack actions out of order and interleaved with the normal ones.
LAYOUT = EntityLayout(
    own=((0, 2), (28, 31)), n_allies=2, ally_start=22, ally_dim=3, n_enemies=4, enemy_start=2,
    enemy_dim=5, attack_actions=(6, 2, 4, 5),
)  # fmt: skip
N, O, A, H, T, B = 3, 31, 7, 8, 5, 4  # noqa: E741 - the axis letters of docs/design.md §3.1
SMALL = {"agent_hidden": 12, "mixer_embed_dim": 6, "hypernet_hidden": 10, "hpn_hyper_hidden": 9}


def _agent(heads: int = 2, last_action: bool = False, seed: int = 0) -> HPNAgent:
    torch.manual_seed(seed)
    agent = HPNAgent(LAYOUT, O, A, N, H, 9, heads, last_action=last_action, agent_id=True)
    with torch.no_grad():  # unequal head weights, so merging heads is exercised too
        for merge in (agent.merge_in, agent.merge_out):
            if merge.weight is not None:
                merge.weight.normal_()
    return agent.double()


def _inputs(agent: HPNAgent, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(T, B, N, O, generator=g, dtype=torch.float64)
    last = torch.zeros(T, B, N, A, dtype=torch.float64)
    return agent.build_inputs(obs, last)


def _permute_block(
    x: torch.Tensor, start: int, count: int, dim: int, perm: list[int]
) -> torch.Tensor:
    """`x [..., I]` with its `count` blocks of `dim` features from `start` reordered: new block
    k = old block perm[k]."""
    out = x.clone()
    blocks = x[..., start : start + count * dim].reshape(*x.shape[:-1], count, dim)
    out[..., start : start + count * dim] = blocks[..., perm, :].reshape(*x.shape[:-1], -1)
    return out


def _tolerance(q: torch.Tensor) -> float:
    """Float64 rounding of sums over at most a few hundred terms of size |q|: far below 1e-9."""
    return 1e3 * torch.finfo(torch.float64).eps * float(q.detach().abs().max() + 1)


def test_shapes_and_action_order():
    agent = _agent()
    inputs = _inputs(agent)
    assert inputs.shape == (T, B, N, O + N)  # no last action by default, one-hot id
    q = agent.unroll(inputs)
    assert q.shape == (T, B, N, A)
    q0, h = agent(inputs[0], agent.initial_hidden((B,), torch.device("cpu")).double())
    assert q0.shape == (B, N, A) and h.shape == (B, N, H)
    torch.testing.assert_close(q0, q[0], rtol=0, atol=_tolerance(q))  # one step == unroll row
    with pytest.raises(ValueError, match="obs must end in"):
        agent.build_inputs(torch.zeros(B, N, O + 1), torch.zeros(B, N, A))


@pytest.mark.parametrize("heads", [1, 2])
def test_permuting_allies_changes_nothing(heads):
    agent = _agent(heads)
    inputs = _inputs(agent)
    perm = [1, 0]
    moved = _permute_block(inputs, LAYOUT.ally_start, LAYOUT.n_allies, LAYOUT.ally_dim, perm)
    assert not torch.equal(moved, inputs)
    q, q_moved = agent.unroll(inputs), agent.unroll(moved)
    assert (q_moved - q).abs().max() <= _tolerance(q)


@pytest.mark.parametrize("heads", [1, 2])
def test_permuting_enemies_permutes_their_attack_q_values(heads):
    agent = _agent(heads)
    inputs = _inputs(agent)
    perm = [2, 0, 3, 1]
    moved = _permute_block(inputs, LAYOUT.enemy_start, LAYOUT.n_enemies, LAYOUT.enemy_dim, perm)
    q, q_moved = agent.unroll(inputs), agent.unroll(moved)
    attack = list(LAYOUT.attack_actions)
    normal = [a for a in range(A) if a not in attack]
    tol = _tolerance(q)
    # normal actions: invariant; attack on enemy k after the move = attack on enemy perm[k] before
    assert (q_moved[..., normal] - q[..., normal]).abs().max() <= tol
    expected = q[..., [attack[p] for p in perm]]
    assert (q_moved[..., attack] - expected).abs().max() <= tol
    # and the attack values really differ per enemy, so the check above is not vacuous
    assert (q[..., attack] - expected).abs().max() > 1e3 * tol


def test_own_features_are_not_entities():
    """Moving an own feature changes Q: the layout, not position, decides what is an entity."""
    agent = _agent()
    inputs = _inputs(agent)
    moved = inputs.clone()
    moved[..., [0, 28]] = inputs[..., [28, 0]]
    assert (agent.unroll(moved) - agent.unroll(inputs)).abs().max() > 1e-6


def test_entity_sum_equals_the_hypernetwork_weights_built_out():
    """The input layer's sum without per-entity weights equals building each entity's
    `W(e_j) = reshape(weight @ g_j + bias, [D, F])` and summing `e_j[d] W(e_j)[d, :]`."""
    g = torch.Generator().manual_seed(3)
    m, d, k, f = 4, 5, 9, 8
    e = torch.randn(6, 2, m, d, generator=g, dtype=torch.float64)
    hidden = torch.randn(6, 2, m, k, generator=g, dtype=torch.float64)
    weight = torch.randn(d * f, k, generator=g, dtype=torch.float64)
    bias = torch.randn(d * f, generator=g, dtype=torch.float64)
    w = (hidden @ weight.T + bias).reshape(6, 2, m, d, f)
    expected = torch.einsum("...md,...mdf->...f", e, w)
    got = _entity_sum(e, hidden, weight, bias)
    assert got.shape == (6, 2, f)
    torch.testing.assert_close(got, expected, rtol=0, atol=_tolerance(expected))


def test_float32_agent_matches_float64_within_rounding():
    agent = _agent()
    inputs = _inputs(agent)
    q64 = agent.unroll(inputs)
    q32 = agent.float().unroll(inputs.float()).double()
    bound = 1e3 * torch.finfo(torch.float32).eps * float(q64.detach().abs().max() + 1)
    assert (q32 - q64).abs().max() <= bound


def test_config_defaults_follow_pymarl3_and_are_checked():
    cfg = HPNQLearnerConfig()
    assert isinstance(cfg, QLearnerConfig)
    assert (cfg.lr, cfg.obs_last_action, cfg.epsilon_anneal_steps) == (1e-3, False, 100_000)
    assert (cfg.hpn_hyper_hidden, cfg.hpn_heads, cfg.mixer_embed_dim) == (64, 1, 32)
    for bad in ({"hpn_heads": 0}, {"hpn_hyper_hidden": 2.5}):
        with pytest.raises(ValueError, match=f"HPNQLearnerConfig.{next(iter(bad))}"):
            HPNQLearnerConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="QLearnerConfig.lr"):
        HPNQLearnerConfig(lr=0.0)
    assert get_algo("hpn_qmix").config_cls is HPNQLearnerConfig


def test_env_without_a_layout_is_refused_by_algo_and_env():
    with pytest.raises(ValueError, match=r"hpn_qmix needs an entity layout.*'dummy:discrete'"):
        HPNQLearner(make("dummy").spec, HPNQLearnerConfig(), "cpu")


def _learner_and_batch(seed: int = 0, **overrides: object) -> tuple[HPNQLearner, object]:
    env = make("dummy", entities=True)
    spec = env.spec
    torch.manual_seed(seed)
    cfg = dataclasses.replace(HPNQLearnerConfig(**SMALL), lr=3e-3, **overrides)
    learner = HPNQLearner(spec, cfg, "cpu")
    buffer = EpisodeBuffer(spec, 16, spec.episode_limit)
    rng = np.random.default_rng(seed)
    from mmsa_envs import make_vector_env

    with make_vector_env(
        "dummy", 4, seed=seed, env_kwargs={"entities": True}, processes=False
    ) as envs:
        while len(buffer) < 8:
            episodes = run_episodes(envs, learner, explore=True, env_steps=0, rng=rng)
            buffer.add_episodes(**episodes.buffer_arrays())
    return learner, buffer.sample(8, rng, device="cpu")


def test_is_a_qmix_learner_with_the_hpn_agent_and_overfits_a_batch():
    learner, batch = _learner_and_batch(target_update_interval=10_000)
    assert isinstance(learner, Learner) and isinstance(learner.agent, HPNAgent)
    assert isinstance(learner.target_agent, HPNAgent)
    opt_params = {id(p) for g in learner.optimizer.param_groups for p in g["params"]}
    assert opt_params == {id(p) for p in learner.params}
    assert {id(p) for p in learner.agent.parameters()} <= opt_params
    losses = [learner.update(batch)["loss"] for _ in range(60)]  # type: ignore[arg-type]
    assert losses[-1] < 0.3 * losses[0]


def test_hard_target_copy_covers_the_hpn_agent():
    learner, batch = _learner_and_batch(target_update_interval=3)
    pairs = list(zip(learner.agent.parameters(), learner.target_agent.parameters(), strict=True))
    for _ in range(2):
        learner.update(batch)  # type: ignore[arg-type]
    assert not all(torch.equal(a, b) for a, b in pairs)
    learner.update(batch)  # type: ignore[arg-type]
    assert all(torch.equal(a, b) for a, b in pairs)


def test_act_matches_unroll_and_state_dict_round_trips():
    learner, batch = _learner_and_batch()
    learner.update(batch)  # type: ignore[arg-type]
    q_unroll = learner.unroll(learner.agent, batch)  # type: ignore[arg-type]
    state = learner.initial_state(batch.obs.shape[1])  # type: ignore[attr-defined]
    q0, _ = learner.q_values(batch.obs[0].numpy(), state)  # type: ignore[attr-defined]
    np.testing.assert_allclose(q0, q_unroll[0].detach().numpy(), rtol=1e-5, atol=1e-5)
    other, _ = _learner_and_batch(seed=1)
    other.load_state_dict(learner.state_dict())
    for name in ("agent", "mixer", "target_agent", "target_mixer"):
        a, b = getattr(learner, name).state_dict(), getattr(other, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert other.updates == learner.updates == 1


@pytest.mark.slow  # two short runs, one in a fresh interpreter
def test_sigkill_then_resume_is_bitwise_exact(tmp_path, killed_run, small_run):
    # the resume tests' 210-step run (conftest), on the dummy env with an entity layout
    RUN = small_run(
        "qmix", env_kwargs={"entities": True}, algo_config=SMALL | {"target_update_interval": 10}
    ) | {"algo": "hpn_qmix"}
    straight = tmp_path / "straight"
    train(config_from_dict(RUN), straight, progress=False)
    info = json.loads((straight / "run.json").read_text())
    assert info["env_spec"]["entities"]["attack_actions"] == [2, 3, 4, 5]  # stored as plain data

    killed = tmp_path / "killed"
    killed_run(RUN, killed, kill_at=120)
    train(config_from_dict(RUN), killed, progress=False, resume=True)
    a = load_checkpoint(list_checkpoints(straight / "checkpoints")[-1])["learner"]
    b = load_checkpoint(list_checkpoints(killed / "checkpoints")[-1])["learner"]
    for module in ("agent", "mixer", "target_agent", "target_mixer"):
        assert a[module].keys() == b[module].keys()
        assert all(torch.equal(a[module][k], b[module][k]) for k in a[module]), module
    assert a["updates"] == b["updates"] > 0
