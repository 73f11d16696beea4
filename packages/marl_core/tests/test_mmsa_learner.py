"""MMSALearner: the unified loss, its terms, the ablation switches, targets, resume, registry."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from mmsa_marl_core import (
    Batch,
    EpisodeBuffer,
    Learner,
    config_from_dict,
    get_algo,
    read_metrics,
    train,
)
from mmsa_marl_core.learners.mmsa_config import ABLATIONS, MMSAConfig
from mmsa_marl_core.learners.mmsa_learner import MMSALearner
from mmsa_marl_core.training.checkpoint import list_checkpoints, load_checkpoint
from mmsa_marl_core.training.metrics import MEASURED
from mmsa_worldmodel import WorldModelConfig

# Small, mutually distinct sizes (dummy env: N=3, O=7, S=11, A=6).
SMALL_WM = WorldModelConfig(
    deter_dim=12,
    stoch_per_agent=2,
    hidden=14,
    embed_dim=10,
    vae1_latent_dim=5,
    sale_zs_dim=8,
    sale_hidden=13,
    phi_dim=9,
    horizon=2,
)
SMALL = MMSAConfig(
    agent_hidden=16,
    mixer_embed_dim=5,
    hypernet_hidden=9,
    zs_dim=8,
    sale_hidden=13,
    phi_dim=10,
    head_hidden=15,
    code_dim=4,
    world_model=SMALL_WM,
    lr=3e-3,
    encoder_lr=1e-3,
    world_model_lr=3e-3,
    diagnostics_every=0,
)


def _learner(spec, seed: int = 0, **overrides) -> MMSALearner:
    torch.manual_seed(seed)
    return MMSALearner(spec, dataclasses.replace(SMALL, **overrides), "cpu")


def _batch(spec, random_episodes, n: int = 4, seed: int = 0) -> Batch:
    buffer = EpisodeBuffer(spec, capacity=n, max_len=spec.episode_limit)
    buffer.add_episodes(**random_episodes(n, seed=seed))
    return buffer.get(np.arange(n))


def _param_names(learner: MMSALearner) -> set[str]:
    return {name for name, _ in learner.online.named_parameters()}


def test_is_a_registered_learner_with_every_loss_term(dummy_spec, random_episodes):
    entry = get_algo("mmsa")
    assert entry.config_cls is MMSAConfig
    torch.manual_seed(0)
    learner = entry.factory(dummy_spec, SMALL, torch.device("cpu"))
    assert isinstance(learner, Learner) and isinstance(learner, MMSALearner)
    metrics = learner.update(_batch(dummy_spec, random_episodes))
    expected = {
        "loss",
        "td_loss",
        "kl_loss",
        "rec_loss",
        "sale_loss",
        "loss_sale_agent",
        "loss_wm_sale",
        "loss_wm_kl",
        "loss_wm_vae1_kl",
        "loss_wm_vae1_rec",
        "loss_wm_state",
        "loss_wm_obs",
        "loss_wm_avail",
        "loss_wm_reward",
        "loss_wm_continue",
        "grad_norm_td",
        "grad_norm_encoder",
        "grad_norm_world_model",
        "skipped",
    }
    assert expected <= set(metrics), expected - set(metrics)
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
    # The total is exactly the one loss of docs/design.md §4.5 with b_* = 1.
    total = metrics["td_loss"] + metrics["kl_loss"] + metrics["rec_loss"] + metrics["sale_loss"]
    assert metrics["loss"] == pytest.approx(total, rel=1e-5)
    assert metrics["sale_loss"] == pytest.approx(
        metrics["loss_sale_agent"] + metrics["loss_wm_sale"], rel=1e-5
    )
    assert learner.updates == 1 and metrics["skipped"] == 0.0


def test_shapes_of_the_parts(dummy_spec, random_episodes):
    learner = _learner(dummy_spec)
    spec = dummy_spec
    state = learner.initial_state(5)
    assert state[0].shape == (5, spec.n_agents, SMALL.agent_hidden)
    assert state[1].shape == (5, spec.n_agents, spec.n_actions)
    obs = np.random.default_rng(0).standard_normal((5, spec.n_agents, spec.obs_dim))
    avail = np.ones((5, spec.n_agents, spec.n_actions), bool)
    avail[:, :, 2] = False
    rng = np.random.default_rng(1)
    actions, (hidden, last) = learner.act(
        obs.astype(np.float32), avail, state, env_steps=0, explore=True, rng=rng
    )
    assert actions.shape == (5, spec.n_agents) and actions.dtype == np.int64
    assert not (actions == 2).any()
    assert np.array_equal(last.argmax(-1).numpy(), actions)
    assert learner.rollout_encoder is not None and learner.world_model is not None
    assert learner.mixer.state_dim == spec.state_dim
    assert learner.mixer.extra_cond_dim == SMALL.code_dim


def test_acting_reads_the_fixed_encoder_and_carries_the_agent_state(dummy_spec, random_episodes):
    """`act` is one step of the agent with TD7's fixed encoder copy (`learner.acting`, eager on
    the CPU): the greedy actions are the masked argmax of that step's Q, the next state is its
    GRU state and the one-hot of the actions taken, and it follows the encoder chain."""
    from mmsa_marl_core.networks.sale_agent import agent_inputs

    learner = _learner(dummy_spec, target_update_interval=1)
    spec, b = dummy_spec, 4
    rng = np.random.default_rng(3)
    obs = rng.standard_normal((b, spec.n_agents, spec.obs_dim)).astype(np.float32)
    avail = rng.random((b, spec.n_agents, spec.n_actions)) < 0.6
    avail[..., 0] = True
    state = learner.initial_state(b)
    for step in range(3):
        hidden, last = state
        with torch.no_grad():
            q, expect_hidden = learner.agent(
                agent_inputs(torch.from_numpy(obs), last), hidden, learner.encoders.fixed
            )
        expect = np.where(avail, q.numpy(), -np.inf).argmax(-1)
        actions, state = learner.act(obs, avail, state, env_steps=0, explore=False, rng=rng)
        assert np.array_equal(actions, expect), step
        assert torch.equal(state[0], expect_hidden)
        assert state[1].dtype == torch.float32
        assert torch.equal(state[1], torch.eye(spec.n_actions)[torch.from_numpy(actions)])
        # An update with target_update_interval=1 moves the fixed copy (in place): the next
        # step must act with the new fixed weights, not a stale copy.
        before = [p.clone() for p in learner.encoders.fixed.parameters()]
        learner.update(_batch(spec, random_episodes, seed=step))
        assert any(
            not torch.equal(x, y)
            for x, y in zip(before, learner.encoders.fixed.parameters(), strict=True)
        )
    assert learner.acting.captured == 0 and learner.acting.failed is None  # no graph on the CPU
    twin = copy.deepcopy(learner)
    assert twin.acting.agent is twin.agent and twin.acting.encoder is twin.encoders.fixed
    no_sale = _learner(dummy_spec, ablation="no_sale")
    assert no_sale.acting.encoder is None
    actions, _ = no_sale.act(obs, avail, no_sale.initial_state(b), env_steps=0, explore=False,
                             rng=rng)  # fmt: skip
    assert avail[np.arange(b)[:, None], np.arange(spec.n_agents), actions].all()


def test_the_whole_loss_falls_on_a_fixed_batch(dummy_spec, random_episodes):
    learner = _learner(dummy_spec, target_update_interval=10_000)
    batch = _batch(dummy_spec, random_episodes, n=4, seed=1)
    first = learner.update(batch)
    for _ in range(50):
        last = learner.update(batch)
    assert last["loss"] < 0.5 * first["loss"]
    for key in ("td_loss", "rec_loss", "loss_sale_agent"):
        assert last[key] < first[key], key


@pytest.mark.parametrize("ablation", ABLATIONS[1:])
def test_each_ablation_removes_its_part(dummy_spec, random_episodes, ablation):
    full = _learner(dummy_spec)
    variant = _learner(dummy_spec, ablation=ablation)
    batch = _batch(dummy_spec, random_episodes)
    full_terms = set(full.update(batch))
    terms = set(variant.update(batch))
    names, full_names = _param_names(variant), _param_names(full)
    count = sum(p.numel() for p in variant.online.parameters())
    full_count = sum(p.numel() for p in full.online.parameters())
    if ablation == "no_wm":
        assert variant.world_model is None and variant.rollout_encoder is None
        assert not any(n.startswith(("world_model.", "rollout_encoder.")) for n in names)
        assert variant.mixer.extra_cond_dim == 0 and variant.mixer.state_dim == 11
        assert not any(t.startswith(("loss_wm_", "wm_")) for t in terms)
        assert "loss_sale_agent" in terms and "grad_norm_world_model" not in terms
        assert count < full_count
    elif ablation == "no_sale":
        assert variant.encoders is None and variant.agent.phi is None
        assert not any(n.startswith(("encoders.", "agent.phi")) for n in names)
        assert not any("embedding.sale" in n or ".zs1." in n for n in names)
        assert any(".zs1." in n for n in full_names)
        assert "loss_sale_agent" not in terms and "loss_wm_sale" not in terms
        assert variant.world_model is not None and not variant.world_model.config.use_sale
        assert "loss_wm_kl" in terms and count < full_count
    elif ablation == "no_klb":
        assert names == full_names and terms == full_terms
        assert variant.world_model is not None
        assert variant.world_model.config.kl_balance == 0.5
        assert full.world_model is not None and full.world_model.config.kl_balance == 0.8
    elif ablation == "no_gs":
        assert variant.mixer.state_dim == 0 and variant.mixer.extra_cond_dim == SMALL.code_dim
        assert count < full_count and terms == full_terms


def test_no_klb_gives_plain_kl_gradient(dummy_spec, random_episodes):
    """Balanced KL at 0.5 times 2 has the value and gradient of plain KL(q || p)."""
    batch = _batch(dummy_spec, random_episodes)
    grads = {}
    for ablation in ("none", "no_klb"):
        learner = _learner(dummy_spec, ablation=ablation)
        metrics = learner.update(batch)
        grads[ablation] = metrics["kl_loss"], metrics["loss_wm_kl"]
    # Same parameters and batch: the KL values agree; no_klb counts the KL term twice.
    assert grads["none"][1] == pytest.approx(grads["no_klb"][1], rel=1e-4)
    kl_none, kl_klb = grads["none"][0], grads["no_klb"][0]
    assert kl_klb == pytest.approx(kl_none + grads["none"][1], rel=1e-4)


def test_target_update_copies_networks_and_syncs_encoders(dummy_spec, random_episodes):
    # encoder_update_interval=0: the fixed encoder moves with the targets (TD7's coupling).
    learner = _learner(dummy_spec, target_update_interval=3, encoder_update_interval=0)
    batch = _batch(dummy_spec, random_episodes)
    assert learner.encoders is not None
    fixed_before = copy.deepcopy(learner.encoders.fixed.state_dict())
    for _ in range(2):
        learner.update(batch)
    # Before the target update: targets and fixed encoders still hold the initial weights.
    assert not torch.equal(learner.agent.gru.weight_hh, learner.target_agent.gru.weight_hh)
    online_before_sync = copy.deepcopy(learner.encoders.online.state_dict())
    learner.update(batch)
    for name, module in learner.target.items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, learner.online[name].state_dict()[key]), (name, key)
    fixed_target = learner.encoders.fixed_target.state_dict()
    fixed = learner.encoders.fixed.state_dict()
    assert all(torch.equal(fixed_target[k], fixed_before[k]) for k in fixed_before)
    # fixed <- online as it was after the third step (the sync runs after the step)
    online = learner.encoders.online.state_dict()
    assert all(torch.equal(fixed[k], online[k]) for k in online)
    assert not all(torch.equal(fixed[k], online_before_sync[k]) for k in online)


def test_encoder_refresh_has_its_own_cadence(dummy_spec, random_episodes):
    learner = _learner(dummy_spec, target_update_interval=3, encoder_update_interval=2)
    batch = _batch(dummy_spec, random_episodes)
    assert learner.encoders is not None
    enc = learner.encoders
    initial = copy.deepcopy(enc.fixed.state_dict())

    def same(a, b):
        return all(torch.equal(a[k], b[k]) for k in a)

    ages = [learner.update(batch)["fixed_encoder_age"]]
    ages.append(learner.update(batch)["fixed_encoder_age"])
    # Update 2 refreshed fixed <- online; the fixed target and the agent targets did not move.
    online_at_2 = copy.deepcopy(enc.online.state_dict())
    assert same(enc.fixed.state_dict(), online_at_2)
    assert same(enc.fixed_target.state_dict(), initial)
    assert not torch.equal(learner.agent.gru.weight_hh, learner.target_agent.gru.weight_hh)
    ages.append(learner.update(batch)["fixed_encoder_age"])
    # Update 3 is a target update: fixed_target <- fixed (the encoder the agent was trained on),
    # the fixed copy stays until the next refresh.
    assert same(enc.fixed_target.state_dict(), online_at_2)
    assert same(enc.fixed.state_dict(), online_at_2)
    assert torch.equal(learner.agent.gru.weight_hh, learner.target_agent.gru.weight_hh)
    ages.append(learner.update(batch)["fixed_encoder_age"])
    assert same(enc.fixed.state_dict(), enc.online.state_dict())
    # Updates since the last refresh, read before each update's own refresh.
    assert ages == [0.0, 1.0, 0.0, 1.0]
    assert learner.state_dict()["encoder_refreshed_at"] == 4


def test_residual_head_starts_as_the_linear_agent(dummy_spec, random_episodes):
    learner = _learner(dummy_spec, agent_head="residual")
    assert learner.agent.linear_head is not None
    assert torch.equal(
        learner.agent.head[-1].weight, torch.zeros_like(learner.agent.head[-1].weight)
    )
    metrics = learner.update(_batch(dummy_spec, random_episodes))
    # Both parts of the head learn from the first update: the zero last layer gets a gradient.
    assert metrics["grad_norm_q_head"] > 0.0 and metrics["grad_norm_q_linear"] > 0.0
    assert learner.agent.head[-1].weight.abs().sum() > 0


def test_imagination_warmup_gives_a_zero_rollout_code(dummy_spec, random_episodes):
    learner = _learner(dummy_spec, imagination_warmup_updates=2)
    batch = _batch(dummy_spec, random_episodes)
    assert learner.rollout_encoder is not None
    for _ in range(2):
        metrics = learner.update(batch)
        assert metrics["rollout_code_abs"] == 0.0
        assert metrics["loss_wm_kl"] > 0.0  # the world model trains during the warm-up
        assert all(p.grad is None or not p.grad.any() for p in learner.rollout_encoder.parameters())
    assert learner.update(batch)["rollout_code_abs"] > 0.0


def test_sale_task_targets_train_the_online_encoder(dummy_spec, random_episodes):
    batch = _batch(dummy_spec, random_episodes)
    plain = _learner(dummy_spec)
    task = _learner(dummy_spec, sale_task_weight=2.0)
    assert plain.task_head is None and task.task_head is not None
    m_plain, m_task = plain.update(batch), task.update(batch)
    assert "loss_sale_agent_task" not in m_plain
    assert m_task["loss_sale_agent_task"] > 0.0
    # The term is in the SALE group, weighted: sale_loss = agent + task + world-model SALE.
    parts = m_task["loss_sale_agent"] + m_task["loss_sale_agent_task"] + m_task["loss_wm_sale"]
    assert m_task["sale_loss"] == pytest.approx(parts, rel=1e-5)
    # Its gradient reaches the online encoder (same initial weights, same batch, other update).
    enc_plain = plain.encoders.online.state_dict()
    enc_task = task.encoders.online.state_dict()
    assert any(not torch.equal(enc_plain[k], enc_task[k]) for k in enc_plain)
    assert any(k.startswith("task_head.") for k in task.state_dict()["online"])
    # The read-out learns to predict the reward it sees.
    first = m_task["loss_sale_agent_task"]
    for _ in range(30):
        last = task.update(batch)["loss_sale_agent_task"]
    assert last < first
    # No SALE, no task read-out.
    assert _learner(dummy_spec, ablation="no_sale", sale_task_weight=1.0).task_head is None


def _count_imagined_starts(learner: MMSALearner) -> list[int]:
    """Make `learner` record how many start states each of its imaginations gets."""
    starts: list[int] = []
    imagine = learner.imagination
    assert imagine is not None

    def counting(start, *args, **kwargs):
        starts.append(start[0].shape[0])
        return imagine(start, *args, **kwargs)

    learner.imagination = counting  # type: ignore[assignment]
    return starts


def test_imagination_fraction_imagines_from_some_episodes_only(dummy_spec, random_episodes):
    learner = _learner(dummy_spec, imagination_fraction=0.5)
    batch = _batch(dummy_spec, random_episodes)  # 4 episodes
    real_rows = torch.cat([batch.mask[:1], batch.mask]) > 0  # [T+1, B]
    starts, codes = _count_imagined_starts(learner), []
    learner.mixer.register_forward_pre_hook(lambda _m, args: codes.append(args[2].detach()))
    chosen = []
    for seed in range(4):
        torch.manual_seed(seed)
        learner.update(batch)
        imagined = codes[-1].abs().sum(dim=(0, 2)) > 0  # per episode, of the online mixer's code
        # ceil(0.5 * 4) = 2 episodes, every real row of them, and nothing of the others.
        assert int(imagined.sum()) == 2
        assert starts[-1] == int(real_rows[:, imagined].sum())
        chosen.append(tuple(imagined.tolist()))
    assert len(set(chosen)) > 1  # drawn anew at each update
    # 1.0 imagines from every real row.
    full = _learner(dummy_spec, imagination_fraction=1.0)
    starts = _count_imagined_starts(full)
    full.update(batch)
    assert starts == [int(real_rows.sum())]


def test_state_dict_round_trip_continues_identically(dummy_spec, random_episodes):
    batch = _batch(dummy_spec, random_episodes)
    a = _learner(dummy_spec, target_update_interval=2)
    for _ in range(3):
        a.update(batch)
    sd = copy.deepcopy(a.state_dict())
    b = _learner(dummy_spec, seed=7, target_update_interval=2)
    b.load_state_dict(sd)
    torch.manual_seed(11)
    ma = a.update(batch)
    torch.manual_seed(11)
    mb = b.update(batch)
    assert ma["loss"] == mb["loss"]
    for (ka, va), (kb, vb) in zip(
        a.state_dict()["online"].items(), b.state_dict()["online"].items(), strict=True
    ):
        assert ka == kb and torch.equal(va, vb), ka
    # Everything is in the state dict: fixed encoders, world model, optimiser state.
    keys = set(sd["online"])
    assert any(k.startswith("encoders.fixed_target.") for k in keys)
    assert any(k.startswith("world_model.") for k in keys)
    assert len(sd["optimizer"]["param_groups"]) == 3
    with pytest.raises(ValueError, match="ablation='no_wm'"):
        _learner(dummy_spec, ablation="no_wm").load_state_dict(sd)


def test_diagnostics_are_logged_every_k_updates(dummy_spec, random_episodes):
    learner = _learner(dummy_spec, diagnostics_every=2)
    batch = _batch(dummy_spec, random_episodes)
    first = learner.update(batch)
    second = learner.update(batch)
    assert not any(k.startswith("diag_") for k in first)
    horizon = SMALL_WM.horizon
    for k in range(1, horizon + 1):
        assert f"diag_state_err_k{k}" in second and f"diag_state_copy_err_k{k}" in second
    assert second["diag_kl_per_step_mean"] >= 0.0
    assert 0.0 <= second["diag_collapse_y"] <= 1.0
    # The fixed encoder's embedding on the batch: spread > 0, effective rank in [1, Z].
    assert second["diag_zs_spread"] > 0.0
    assert 1.0 <= second["diag_zs_erank"] <= SMALL.zs_dim
    assert "diag_zs_spread" not in first
    # The Q head's gradient norm is logged at every update.
    assert first["grad_norm_q_head"] > 0.0 and second["grad_norm_q_head"] > 0.0
    # Without the world model the embedding diagnostics remain.
    no_wm = _learner(dummy_spec, ablation="no_wm", diagnostics_every=1).update(batch)
    assert "diag_zs_erank" in no_wm and not any(k.startswith("diag_state") for k in no_wm)


def test_config_rejects_bad_values(dummy_spec):
    with pytest.raises(ValueError, match="ablation='no_mixer'.*none, no_wm"):
        MMSAConfig(ablation="no_mixer")
    with pytest.raises(ValueError, match="b_kl"):
        MMSAConfig(b_kl=-1.0)
    with pytest.raises(ValueError, match="obs_agent_id"):
        MMSAConfig(obs_agent_id=False)
    with pytest.raises(ValueError, match="agent_head='mlp'"):
        MMSAConfig(agent_head="mlp")
    with pytest.raises(ValueError, match="encoder_update_interval"):
        MMSAConfig(encoder_update_interval=-1)
    with pytest.raises(ValueError, match="imagination_warmup_updates"):
        MMSAConfig(imagination_warmup_updates=True)
    with pytest.raises(ValueError, match=r"sale_task_weight=-1.0 must be a number >= 0"):
        MMSAConfig(sale_task_weight=-1.0)
    for bad in (0.0, 1.5, float("nan"), True):
        with pytest.raises(ValueError, match=r"imagination_fraction=.* must be a number in \(0, 1"):
            MMSAConfig(imagination_fraction=bad)
    with pytest.raises(ValueError, match="discrete"):
        MMSALearner(dataclasses.replace(dummy_spec, action_kind="continuous"), SMALL, "cpu")


def test_algo_mmsa_on_continuous_actions_is_the_actor_critic_learner():
    from mmsa_envs import make
    from mmsa_marl_core.learners.mmsa_continuous import MMSAContinuousLearner

    spec = make("dummy:continuous").spec
    learner = get_algo("mmsa").factory(spec, SMALL, torch.device("cpu"))
    assert isinstance(learner, MMSAContinuousLearner)
    assert learner.config.ablation == SMALL.ablation
    assert learner.config.world_model == SMALL.world_model  # shared fields carried over


# ---------------------------------------------------------------------- loop: exact resume
# The shared 210-step run (conftest.small_run_config) with this module's small world model.
_ALGO_CONFIG = {
    **{k: v for k, v in dataclasses.asdict(SMALL).items() if k != "world_model"},
    "world_model": dataclasses.asdict(SMALL_WM),
    "target_update_interval": 7,
    "epsilon_anneal_steps": 200,
    "diagnostics_every": 5,
}


def _final_learner(run_dir) -> dict:
    payload = load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])
    return payload["learner"]


def test_sigkill_then_resume_is_bitwise_exact(tmp_path, killed_run, small_run, flat_state):
    run = small_run("mmsa", algo_config=_ALGO_CONFIG)
    config = config_from_dict(run)
    straight = tmp_path / "straight"
    train(config, straight, progress=False)
    lines = read_metrics(straight)
    train_lines = [x for x in lines if x["kind"] == "train"]
    assert any("diag_state_err_k1" in x for x in train_lines)
    assert {"td_loss", "kl_loss", "rec_loss", "sale_loss"} <= set(train_lines[-1])

    killed = tmp_path / "killed"
    killed_run(run, killed, kill_at=120)
    train(config, killed, progress=False, resume=True)
    a, b = dict(flat_state(_final_learner(straight))), dict(flat_state(_final_learner(killed)))
    assert a.keys() == b.keys()
    # Every tensor: agent, fixed encoders, world model, mixer, targets, optimiser moments.
    assert any(k.startswith("online.encoders.fixed_target.") for k in a)
    assert any(k.startswith("online.world_model.") for k in a)
    for key, value in a.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b[key]), key
        else:
            assert value == b[key], key
    strip = [{k: v for k, v in x.items() if k not in MEASURED} for x in lines]
    again = [{k: v for k, v in x.items() if k not in MEASURED} for x in read_metrics(killed)]
    assert strip == again
