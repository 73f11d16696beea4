"""Tests of the continuous MMSA / FACMAC learner on the real dummy:continuous env and real
MaMuJoCo specs (N=3, O=7, S=11, A=6, T=5 on dummy: mutually distinct, so a swapped axis fails)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mmsa_envs import make
from mmsa_marl_core.data.batch import Batch
from mmsa_marl_core.data.buffer import EpisodeBuffer
from mmsa_marl_core.learners.continuous_config import FACMACConfig, MMSAContinuousConfig
from mmsa_marl_core.learners.mmsa_config import MMSAConfig
from mmsa_marl_core.learners.mmsa_continuous import MMSAContinuousLearner, build_from_mmsa_config
from mmsa_marl_core.registry import Learner, get_algo
from mmsa_marl_core.training.checkpoint import list_checkpoints, load_checkpoint
from mmsa_marl_core.training.config import config_from_dict
from mmsa_marl_core.training.metrics import MEASURED
from mmsa_marl_core.training.train import train
from mmsa_worldmodel import WorldModelConfig

T, B, N, O, S, A = 5, 4, 3, 7, 11, 6  # noqa: E741 - axis letters (STYLE.md)
SMALL_WM = WorldModelConfig(
    deter_dim=12, stoch_per_agent=2, hidden=16, embed_dim=10, vae1_latent_dim=4,
    sale_zs_dim=8, sale_hidden=16, phi_dim=8,
)  # fmt: skip
SMALL = dict(agent_hidden=9, width=16, mixer_embed_dim=8, hypernet_hidden=10, random_steps=0)


def mmsa_config(**kw: object) -> MMSAContinuousConfig:
    base = dict(SMALL, zs_dim=8, sale_hidden=16, phi_dim=5, code_dim=4, world_model=SMALL_WM)
    return MMSAContinuousConfig(**(base | kw))  # type: ignore[arg-type]


def learner(config: FACMACConfig, spec=None) -> MMSAContinuousLearner:
    torch.manual_seed(0)
    return MMSAContinuousLearner(spec or make("dummy:continuous").spec, config, "cpu")


def episodes(n: int = 8, seed: int = 0) -> Batch:
    """`n` episodes of uniformly random actions on dummy:continuous, as a sampled Batch."""
    env = make("dummy:continuous")
    spec, rng = env.spec, np.random.default_rng(seed)
    buffer = EpisodeBuffer(spec, capacity=n, max_len=spec.episode_limit)
    for e in range(n):
        step = env.reset(seed=seed * 100 + e)
        obs, states, actions, rewards, terms = [step.obs], [step.state], [], [], []
        while not step.done:
            action = rng.uniform(-1, 1, (N, A)).astype(np.float32)
            step = env.step(action)
            obs.append(step.obs), states.append(step.state), actions.append(action)
            rewards.append(step.reward), terms.append(step.terminated)
        length = len(rewards)
        pad = spec.episode_limit - length

        def padded(x: list, rows: int) -> np.ndarray:
            arr = np.asarray(x)
            return np.concatenate([arr, np.zeros((rows - len(arr), *arr.shape[1:]), arr.dtype)])

        buffer.add_episodes(
            obs=padded(obs, T + 1)[None], state=padded(states, T + 1)[None],
            avail_actions=np.ones((1, T + 1, N, A), bool), action=padded(actions, T)[None],
            reward=padded(rewards, T)[None].astype(np.float32), terminated=padded(terms, T)[None],
            lengths=np.array([length]),
        )  # fmt: skip
        assert pad >= 0
    return buffer.sample(n, rng)


CONFIGS = {
    "facmac": lambda: FACMACConfig(**SMALL),
    "mmsa": lambda: mmsa_config(),
    "no_wm": lambda: mmsa_config(ablation="no_wm"),
    "no_sale": lambda: mmsa_config(ablation="no_sale"),
    "no_gs": lambda: mmsa_config(ablation="no_gs"),
    "no_klb": lambda: mmsa_config(ablation="no_klb"),
}


def test_public_surface() -> None:
    import mmsa_marl_core.learners.mmsa_continuous as module

    assert sorted(module.__all__) == ["MMSAContinuousLearner", "build_from_mmsa_config"]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_update_metrics_and_parts(name: str) -> None:
    lrn = learner(CONFIGS[name]())
    assert isinstance(lrn, Learner)
    metrics = lrn.update(episodes())
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    assert lrn.updates == 1 and lrn.nonfinite_updates == 0
    has_wm, has_sale = name not in ("facmac", "no_wm"), name not in ("facmac", "no_sale")
    assert (lrn.world_model is not None) == has_wm
    assert (lrn.encoders is not None) == has_sale
    assert ("wm_loss" in metrics or "kl_loss" in metrics) == (name != "facmac")
    assert ("grad_norm_world_model" in metrics) == has_wm
    assert ("grad_norm_encoder" in metrics) == has_sale
    assert lrn.mixer.state_dim == (0 if name == "no_gs" else S)
    assert lrn.mixer.extra_cond_dim == (4 if has_wm else 0)
    if name == "no_sale":
        assert lrn.world_model is not None and not lrn.world_model.config.use_sale
    if name == "no_klb":
        assert lrn.world_model is not None and lrn.world_model.config.kl_balance == 0.5


@pytest.mark.parametrize("name", ["facmac", "mmsa"])
def test_acting_shapes_bounds_and_exploration(name: str) -> None:
    env = make("dummy:continuous")
    lrn = learner(CONFIGS[name]())
    state = lrn.initial_state(B)
    obs = np.stack([env.reset(seed=i).obs for i in range(B)])  # [B, N, O]
    avail = np.ones((B, N, A), bool)
    rng = np.random.default_rng(0)
    greedy, next_state = lrn.act(obs, avail, state, env_steps=0, explore=False, rng=rng)
    assert greedy.shape == (B, N, A) and greedy.dtype == np.float32
    assert next_state[0].shape == (B, N, 9) and not torch.equal(next_state[0], state[0])
    assert lrn.exploration_rate(0) == 0.1
    noisy, _ = lrn.act(obs, avail, state, env_steps=0, explore=True, rng=rng)
    assert 0.02 < float(np.abs(noisy - greedy).mean()) < 0.2
    assert noisy.min() >= -1 and noisy.max() <= 1
    env.step(noisy[0])  # the env validates shape, dtype and bounds


def test_uniform_warmup_then_gaussian_noise() -> None:
    lrn = learner(FACMACConfig(**(SMALL | {"random_steps": 100})))
    obs = np.zeros((64, N, O), np.float32)
    state = lrn.initial_state(64)
    rng = np.random.default_rng(1)
    greedy, _ = lrn.act(obs, None, state, env_steps=0, explore=False, rng=rng)  # type: ignore[arg-type]
    warm, _ = lrn.act(obs, None, state, env_steps=99, explore=True, rng=rng)  # type: ignore[arg-type]
    late, _ = lrn.act(obs, None, state, env_steps=100, explore=True, rng=rng)  # type: ignore[arg-type]
    assert lrn.exploration_rate(99) == 1.0 and lrn.exploration_rate(100) == 0.1
    assert float(np.abs(warm - greedy).mean()) > 0.3  # uniform in [-1, 1]
    assert float(np.abs(late - greedy).mean()) < 0.15


def test_real_mamujoco_spec_with_bounds_and_heterogeneous_obs() -> None:
    env = make("mamujoco:HalfCheetah-2x3", max_episode_steps=4)
    spec = env.spec
    lrn = learner(CONFIGS["mmsa"](), spec)
    step = env.reset(seed=0)
    state = lrn.initial_state(1)
    rng = np.random.default_rng(0)
    while not step.done:
        action, state = lrn.act(step.obs[None], step.avail_actions[None], state,
                                env_steps=0, explore=True, rng=rng)  # fmt: skip
        assert action.shape == (1, spec.n_agents, spec.n_actions)
        step = env.step(action[0])  # validated against the env's own bounds
    env.close()


def test_policy_delay_actor_changes_only_on_even_updates() -> None:
    lrn = learner(CONFIGS["mmsa"]())
    batch = episodes()
    for update in range(1, 5):
        actor = [p.detach().clone() for p in lrn.actor.parameters()]
        critic = [p.detach().clone() for p in lrn.agent.parameters()]
        metrics = lrn.update(batch)
        actor_moved = any(
            not torch.equal(a, p) for a, p in zip(actor, lrn.actor.parameters(), strict=True)
        )
        critic_moved = any(
            not torch.equal(c, p) for c, p in zip(critic, lrn.agent.parameters(), strict=True)
        )
        assert actor_moved == (update % 2 == 0), update
        assert ("actor_loss" in metrics) == (update % 2 == 0)
        assert critic_moved


def test_actor_gradient_flows_through_the_mixer() -> None:
    batch = episodes()
    cfg = FACMACConfig(**(SMALL | {"actor_regularization": 0.0, "policy_delay": 1}))
    lrn = learner(cfg)
    assert lrn.update(batch)["grad_norm_actor"] > 0
    # A mixer whose weights ignore every Q_i (|W| = 0) passes no gradient to the actors.
    blind = learner(cfg)
    with torch.no_grad():
        for net in (blind.mixer.hyper_w1, blind.mixer.hyper_w2):
            net[-1].weight.zero_()
            net[-1].bias.zero_()
    assert blind.update(batch)["grad_norm_actor"] == 0.0


def test_actor_term_trains_no_critic_parameter() -> None:
    """With zero critic learning rate only the actor moves: the actor's loss reaches critic and
    mixer as inputs only (one backward pass, critic frozen while its graph is built)."""
    batch = episodes()
    lrn = learner(FACMACConfig(**(SMALL | {"policy_delay": 1})))
    grads: dict[str, torch.Tensor | None] = {}
    orig_step = lrn.optimizer.step

    def spy(*args, **kwargs):  # record gradients at the moment of the step
        for name, p in lrn.mixer.named_parameters():
            grads[name] = None if p.grad is None else p.grad.clone()
        return orig_step(*args, **kwargs)

    lrn.optimizer.step = spy  # type: ignore[method-assign]
    torch.manual_seed(5)  # the same target-smoothing noise in both updates
    lrn.update(batch)
    # Reference: TD loss alone (no actor term) gives the very same mixer gradients.
    ref = learner(FACMACConfig(**(SMALL | {"policy_delay": 10**6})))
    ref_grads: dict[str, torch.Tensor | None] = {}
    ref_step = ref.optimizer.step

    def ref_spy(*args, **kwargs):
        for name, p in ref.mixer.named_parameters():
            ref_grads[name] = None if p.grad is None else p.grad.clone()
        return ref_step(*args, **kwargs)

    ref.optimizer.step = ref_spy  # type: ignore[method-assign]
    torch.manual_seed(5)
    ref.update(batch)
    for name, g in grads.items():
        assert g is not None and ref_grads[name] is not None
        torch.testing.assert_close(g, ref_grads[name], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["facmac", "mmsa"])
def test_critic_overfits_a_fixed_batch(name: str) -> None:
    batch = episodes()
    cfg = CONFIGS[name]()
    lrn = learner(type(cfg)(**{**cfg.__dict__, "gamma": 0.0, "critic_lr": 3e-3}))
    first = lrn.update(batch)
    for _ in range(100):
        last = lrn.update(batch)
    assert last["td_loss"] < 0.1 * first["td_loss"], (first["td_loss"], last["td_loss"])
    if name == "mmsa":
        assert last["rec_loss"] < first["rec_loss"] and last["sale_loss"] < first["sale_loss"]


def test_exact_resume_from_state_dict() -> None:
    batch = episodes()
    a = learner(CONFIGS["mmsa"]())
    for _ in range(3):
        a.update(batch)
    saved = a.state_dict()
    b = learner(mmsa_config())
    b.load_state_dict(saved)
    assert b.updates == 3
    torch.manual_seed(11)
    ma = a.update(batch)
    torch.manual_seed(11)
    mb = b.update(batch)
    assert ma == mb
    for (name, pa), pb in zip(
        a.online.state_dict().items(), b.online.state_dict().values(), strict=True
    ):
        assert torch.equal(pa, pb), name
    with pytest.raises(ValueError, match="does not match"):
        learner(CONFIGS["facmac"]()).load_state_dict(saved)


def test_nonfinite_update_is_skipped_and_counted() -> None:
    batch = episodes()
    lrn = learner(CONFIGS["mmsa"]())
    before = {k: v.clone() for k, v in lrn.online.state_dict().items() if "norm" not in k}
    bad = Batch(**{**batch.__dict__, "reward": batch.reward * float("nan")})
    metrics = lrn.update(bad)
    assert metrics["skipped"] == 1.0 and lrn.nonfinite_updates == 1
    for k, v in lrn.online.state_dict().items():
        if k in before:
            assert torch.equal(v, before[k]), k


def test_registry_and_errors() -> None:
    spec = make("dummy:continuous").spec
    entry = get_algo("mmsa_continuous")
    assert entry.config_cls is MMSAContinuousConfig
    from_discrete = build_from_mmsa_config(spec, MMSAConfig(ablation="no_wm"), torch.device("cpu"))
    assert from_discrete.world_model is None  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="continuous"):
        MMSAContinuousLearner(make("dummy").spec, FACMACConfig(), "cpu")
    with pytest.raises(ValueError, match="A=6"):
        learner(FACMACConfig(**SMALL)).update(
            Batch(**{**episodes().__dict__, "action": torch.zeros(T, 8, N, A - 1)})
        )


@pytest.mark.parametrize("algo", ["facmac", "mmsa_continuous"])
def test_training_loop_resumes_exactly(algo: str, tmp_path: Path) -> None:
    """Through the real loop and checkpoints: resuming from the middle checkpoint ends with the
    same parameters and metrics as the uninterrupted run."""
    algo_config: dict[str, object] = dict(SMALL, random_steps=40)
    if algo == "mmsa_continuous":
        algo_config |= {"zs_dim": 8, "sale_hidden": 16, "phi_dim": 5, "code_dim": 4}
        algo_config["world_model"] = {"deter_dim": 12, "hidden": 16, "embed_dim": 10}
    config = config_from_dict(
        {
            "env": "dummy:continuous", "algo": algo, "algo_config": algo_config, "steps": 90,
            "n_envs": 3, "batch_size": 4, "buffer_size": 20, "updates_per_episode": 1.0,
            "log_every": 30, "eval_every": 45, "eval_episodes": 3, "checkpoint_every": 45,
        }
    )  # fmt: skip
    straight = tmp_path / "straight"
    train(config, straight, progress=False)
    resumed = tmp_path / "resumed"
    shutil.copytree(straight, resumed)
    last = list_checkpoints(resumed / "checkpoints")[-1]
    last.unlink()  # back to the middle checkpoint, as after a crash
    train(config, resumed, progress=False, resume=True)
    a = load_checkpoint(list_checkpoints(straight / "checkpoints")[-1])["learner"]
    b = load_checkpoint(list_checkpoints(resumed / "checkpoints")[-1])["learner"]
    assert a["updates"] == b["updates"] > 0
    for part in ("online", "target"):
        for name, tensor in a[part].items():
            assert torch.equal(tensor, b[part][name]), f"{part}.{name}"

    def lines(run: Path) -> list[dict]:
        rows = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        return [{k: v for k, v in r.items() if k not in MEASURED} for r in rows]

    assert lines(straight) == lines(resumed)
