"""`WorldModel`: shapes, the balanced-KL split, imagination, padding, No-SALE, overfitting."""

from __future__ import annotations

import copy
import dataclasses
from types import SimpleNamespace

import pytest
import torch

from mmsa_sale import Encoder, Phi
from mmsa_worldmodel import Imagination, ModelState, WorldModel, pack_rnn
from mmsa_worldmodel._gaussian import kl_gaussian

KINDS = ["discrete", "continuous"]


def _uniform_policy(calls: list[tuple[torch.Tensor, torch.Tensor]]):  # type: ignore[no-untyped-def]
    def policy(obs: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        calls.append((obs, avail))
        return torch.multinomial(avail.float().flatten(0, 1), 1).view(avail.shape[:2])

    return policy


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_over_time_and_batch(
    wm: SimpleNamespace, generator: torch.Generator, kind: str
) -> None:
    model = wm.make_model(kind)
    batch = wm.random_batch(generator, action_kind=kind)
    t, b, dh, dy = wm.T, wm.B, 16, 12
    assert model.feature_dim == dh + dy
    init = model.initial((b,))
    assert init.deter.shape == (b, dh) and init.stoch.shape == (b, dy)
    assert not init.deter.any() and not init.stoch.any()
    assert model.features(model.initial((t, b))).shape == (t, b, dh + dy)
    posterior, prior = model.observe(batch)
    for state in (posterior, prior):
        assert state.deter.shape == (t + 1, b, dh) and state.stoch.shape == (t + 1, b, dy)
    # m_0 = posterior on (s_0, o_0) from the initial h_0; prior and posterior share h.
    torch.testing.assert_close(posterior.deter[0], init.deter)
    torch.testing.assert_close(prior.deter, posterior.deter)
    losses, metrics = model.losses(batch)
    expected = {"state", "obs", "kl", "reward", "continue", "vae1_rec", "vae1_kl", "sale"}
    assert set(losses) == (expected | {"avail"} if kind == "discrete" else expected)
    for name, value in losses.items():
        assert value.shape == (t, b), name
        assert torch.isfinite(value).all(), name
    assert set(metrics) == {"kl_nats", "posterior_std", "prior_std", "vae1_std"}
    total, metrics = model.loss(batch)
    assert total.shape == () and torch.isfinite(total)
    assert {f"loss_{name}" for name in losses} | {"loss_total"} <= set(metrics)


def test_kl_is_non_negative_and_zero_on_padding(
    wm: SimpleNamespace, generator: torch.Generator
) -> None:
    model = wm.make_model()
    batch = wm.random_batch(generator)
    losses, metrics = model.losses(batch)
    assert (losses["kl"] >= 0).all() and (losses["vae1_kl"] >= 0).all()
    assert metrics["kl_nats"] >= 0
    padded = batch.mask == 0
    assert padded.any()
    for name, value in losses.items():
        assert (value[padded] == 0).all(), name


@pytest.mark.parametrize("alpha", [0.8, 0.5])
def test_balanced_kl_splits_the_gradient_between_prior_and_posterior(
    wm: SimpleNamespace, generator: torch.Generator, alpha: float
) -> None:
    """From the "kl" loss alone, the prior net gets alpha and the posterior net 1 - alpha of the
    plain KL's gradient (computed separately on the same samples)."""
    model = wm.make_model(kl_balance=alpha)
    batch = wm.random_batch(generator)
    prior_params = list(model.prior_net.parameters())
    post_params = list(model.posterior_net.parameters())
    torch.manual_seed(5)
    balanced = model.losses(batch)[0]["kl"].sum()
    grad_prior = torch.autograd.grad(balanced, prior_params, retain_graph=True)
    grad_post = torch.autograd.grad(balanced, post_params)
    torch.manual_seed(5)
    seen = model._observe_all(batch)
    real = torch.cat([batch.mask[:1], batch.mask]) > 0
    plain = kl_gaussian(seen.post_dist, seen.prior_dist).sum(-1)[real].sum()
    plain_prior = torch.autograd.grad(plain, prior_params, retain_graph=True)
    plain_post = torch.autograd.grad(plain, post_params)
    for got, want in zip(grad_prior, plain_prior, strict=True):
        torch.testing.assert_close(got, alpha * want)
    for got, want in zip(grad_post, plain_post, strict=True):
        torch.testing.assert_close(got, (1 - alpha) * want)

    def norm(grads: tuple[torch.Tensor, ...]) -> float:
        return float(torch.cat([g.flatten() for g in grads]).norm())

    ratio, plain_ratio = norm(grad_prior) / norm(grad_post), norm(plain_prior) / norm(plain_post)
    assert ratio == pytest.approx(alpha / (1 - alpha) * plain_ratio, rel=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_imagine_returns_h_plus_one_states_and_calls_the_policy_h_times(
    wm: SimpleNamespace, generator: torch.Generator, kind: str
) -> None:
    model = wm.make_model(kind)
    posterior, _ = model.observe(wm.random_batch(generator, action_kind=kind))
    start = ModelState(posterior.deter.flatten(0, 1), posterior.stoch.flatten(0, 1))
    size, horizon = (wm.T + 1) * wm.B, 3
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    if kind == "discrete":
        policy = _uniform_policy(calls)
    else:

        def policy(obs: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
            calls.append((obs, avail))
            return torch.tanh(obs[..., :1].expand(-1, -1, wm.A))

    out = model.imagine(start, policy, horizon)
    assert isinstance(out, Imagination)
    assert len(calls) == horizon
    assert out.states.deter.shape == (horizon + 1, size, 16)
    assert out.states.stoch.shape == (horizon + 1, size, 12)
    assert out.features.shape == (horizon + 1, size, 28)
    action_shape = (horizon, size, wm.N) + ((wm.A,) if kind == "continuous" else ())
    assert out.actions.shape == action_shape
    assert out.obs.shape == (horizon + 1, size, wm.N, wm.O)
    assert out.avail.shape == (horizon + 1, size, wm.N, wm.A) and out.avail.dtype == torch.bool
    assert out.reward.shape == out.cont.shape == (horizon, size)
    assert ((out.cont >= 0) & (out.cont <= 1)).all()
    torch.testing.assert_close(out.states.deter[0], start.deter)
    torch.testing.assert_close(out.features, model.features(out.states))
    for step, (obs, avail) in enumerate(calls):  # the policy saw the decoded model state k
        assert obs.shape == (size, wm.N, wm.O) and avail.dtype == torch.bool
        torch.testing.assert_close(obs, out.obs[step])
        assert torch.equal(avail, out.avail[step])
    assert out.avail.any(-1).all()  # at least one available action per agent


@pytest.mark.parametrize("kind", KINDS)
def test_imagine_features_equals_imagine_without_the_unused_heads(
    wm: SimpleNamespace, generator: torch.Generator, kind: str
) -> None:
    model = wm.make_model(kind)
    posterior, _ = model.observe(wm.random_batch(generator, action_kind=kind))
    start = ModelState(posterior.deter.flatten(0, 1), posterior.stoch.flatten(0, 1))

    def policy(obs: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        if kind == "discrete":  # depends on what it sees, so a wrong input changes the rollout
            return obs.sum(-1).long().remainder(wm.A)
        return torch.tanh(obs[..., :1].expand(-1, -1, wm.A))

    torch.manual_seed(3)
    full = model.imagine(start, policy, 3)
    seen: list[torch.Tensor] = []
    for name in ("reward", "cont"):  # the lean path never runs these heads
        getattr(model.decoders, name).register_forward_hook(lambda *args: seen.append(args[2]))
    torch.manual_seed(3)
    lean = model.imagine_features(start, policy, 3)
    assert seen == []
    torch.testing.assert_close(lean, full.features)
    with pytest.raises(ValueError, match="horizon=0 must be a positive int"):
        model.imagine_features(start, policy, 0)


def test_losses_and_posterior_match_losses_and_observe(
    wm: SimpleNamespace, generator: torch.Generator
) -> None:
    model = wm.make_model()
    batch = wm.random_batch(generator)
    torch.manual_seed(4)
    losses, metrics = model.losses(batch)
    torch.manual_seed(4)
    posterior_seen, _ = model.observe(batch)
    torch.manual_seed(4)
    losses2, metrics2, posterior = model.losses_and_posterior(batch)
    assert metrics == metrics2 and losses.keys() == losses2.keys()
    for name in losses:
        torch.testing.assert_close(losses[name], losses2[name])
    # One pass: the posterior is the one `observe` draws under the same seed, detached.
    torch.testing.assert_close(posterior.stoch, posterior_seen.stoch)
    torch.testing.assert_close(posterior.deter, posterior_seen.deter)
    assert not posterior.stoch.requires_grad and not posterior.deter.requires_grad


def test_decoded_avail_always_leaves_one_action(wm: SimpleNamespace) -> None:
    model = wm.make_model()
    assert model.decoders.avail is not None
    with torch.no_grad():  # every logit < 0: only the largest one survives
        model.decoders.avail.out.bias.fill_(-100.0)
    avail = model._avail(torch.randn(9, 28))
    assert (avail.sum(-1) == 1).all()


def test_imagine_checks_its_inputs(wm: SimpleNamespace, generator: torch.Generator) -> None:
    model = wm.make_model()
    posterior, _ = model.observe(wm.random_batch(generator))
    with pytest.raises(ValueError, match=r"must be \[B', Dh\].*flatten"):
        model.imagine(posterior, _uniform_policy([]), 3)
    start = ModelState(posterior.deter[0], posterior.stoch[0])
    with pytest.raises(ValueError, match="horizon=0 must be a positive int"):
        model.imagine(start, _uniform_policy([]), 0)
    with pytest.raises(ValueError, match=r"policy output at step 0 .*expected int64 \[B'=4, N=3\]"):
        model.imagine(start, lambda obs, avail: torch.zeros(4, 3), 2)
    with pytest.raises(ValueError, match=r"outside \[0, A=6\)"):
        model.imagine(start, lambda obs, avail: torch.full((4, 3), 6), 2)
    with pytest.raises(ValueError, match=r"Dy=12"):
        model.imagine(ModelState(start.deter, start.stoch[:, :5]), _uniform_policy([]), 2)


def test_padding_is_ignored(wm: SimpleNamespace, generator: torch.Generator) -> None:
    model = wm.make_model()
    batch = wm.random_batch(generator)
    lengths = batch.mask.sum(0).long()
    assert lengths[0] < wm.T  # episode 0 is padded
    garbage = dataclasses.replace(
        batch,
        obs=batch.obs.clone(),
        state=batch.state.clone(),
        avail_actions=batch.avail_actions.clone(),
        action=batch.action.clone(),
        reward=batch.reward.clone(),
        terminated=batch.terminated.clone(),
    )
    end = int(lengths[0])
    garbage.obs[end + 1 :, 0] = float("nan")
    garbage.state[end + 1 :, 0] = float("inf")
    garbage.avail_actions[end + 1 :, 0] = ~garbage.avail_actions[end + 1 :, 0]
    garbage.action[end:, 0] = -1
    garbage.reward[end:, 0] = float("nan")
    garbage.terminated[end:, 0] = 7.0
    results = []
    for data in (batch, garbage):
        model.zero_grad()
        torch.manual_seed(11)
        losses, _ = model.losses(data)
        torch.manual_seed(11)
        total, _ = model.loss(data)
        total.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        results.append((losses, total.detach(), grads))
    (clean, clean_total, clean_grads), (dirty, dirty_total, dirty_grads) = results
    for name in clean:
        torch.testing.assert_close(clean[name], dirty[name], msg=name)
    torch.testing.assert_close(clean_total, dirty_total)
    torch.testing.assert_close(clean_grads, dirty_grads)


def test_no_sale_removes_the_sale_modules_and_loss(
    wm: SimpleNamespace, generator: torch.Generator
) -> None:
    with_sale, without = wm.make_model(), wm.make_model(use_sale=False)
    assert any(isinstance(m, Encoder) for m in with_sale.modules())
    assert not any(isinstance(m, Encoder | Phi) for m in without.modules())
    assert not any("encoder.zs" in n or "phi" in n for n, _ in without.named_parameters())
    batch = wm.random_batch(generator)
    assert "sale" in with_sale.losses(batch)[0]
    losses, _ = without.losses(batch)
    assert "sale" not in losses
    # Everything after u_t keeps its size: the same VAE-1, GRU and heads.
    assert without.gru.input_size == with_sale.gru.input_size
    total, metrics = without.loss(batch)
    assert torch.isfinite(total) and "loss_sale" not in metrics


@pytest.mark.parametrize("kind", KINDS)
def test_every_parameter_learns(wm: SimpleNamespace, generator: torch.Generator, kind: str) -> None:
    model = wm.make_model(kind)
    total, _ = model.loss(wm.random_batch(generator, action_kind=kind))
    total.backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert silent == []


def test_loss_is_the_scaled_masked_mean(wm: SimpleNamespace, generator: torch.Generator) -> None:
    model = wm.make_model(kl_scale=0.25, state_scale=3.0, avail_scale=0.0)
    batch = wm.random_batch(generator)
    torch.manual_seed(2)
    losses, _ = model.losses(batch)
    torch.manual_seed(2)
    total, metrics = model.loss(batch)
    scales = model.config.loss_scales()
    expected = sum(scales[k] * v.sum() / batch.mask.sum() for k, v in losses.items())
    torch.testing.assert_close(total, expected)
    assert metrics["loss_kl"] == pytest.approx(
        float(losses["kl"].detach().sum() / batch.mask.sum())
    )


def test_no_hidden_state(wm: SimpleNamespace, generator: torch.Generator) -> None:
    model = wm.make_model()
    batch = wm.random_batch(generator)
    assert list(model.buffers()) == []
    torch.manual_seed(4)
    first = model.observe(batch)
    model.observe(wm.random_batch(generator))  # another batch in between changes nothing
    torch.manual_seed(4)
    second = model.observe(batch)
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a.deter, b.deter)
        torch.testing.assert_close(a.stoch, b.stoch)


def test_constructor_rejects_bad_values(wm: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="action_kind='box' is not allowed"):
        WorldModel(n_agents=3, obs_dim=7, state_dim=11, n_actions=6, action_kind="box")
    with pytest.raises(ValueError, match="n_agents=0 must be a positive int"):
        WorldModel(n_agents=0, obs_dim=7, state_dim=11, n_actions=6, action_kind="discrete")
    with pytest.raises(TypeError, match="config must be a WorldModelConfig"):
        WorldModel(
            n_agents=3,
            obs_dim=7,
            state_dim=11,
            n_actions=6,
            action_kind="discrete",
            config={"deter_dim": 4},  # type: ignore[arg-type]
        )


@pytest.mark.parametrize("kind", KINDS)
def test_overfits_a_fixed_batch(wm: SimpleNamespace, kind: str) -> None:
    """Real episodes of the deterministic dummy env: the total loss falls at least 5x."""
    torch.manual_seed(0)
    batch = wm.record_dummy(episodes=8, seed=1, action_kind=kind)
    model = wm.make_model(kind, hidden=64, deter_dim=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    with torch.no_grad():
        first = float(model.loss(batch)[0])
    for _ in range(250):
        total, _ = model.loss(batch)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    with torch.no_grad():
        last = sum(float(model.loss(batch)[0]) for _ in range(5)) / 5
    assert last < first / 5, (first, last)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda(wm: SimpleNamespace, generator: torch.Generator) -> None:
    model = wm.make_model().to("cuda")
    batch = wm.random_batch(generator)
    batch = wm.Batch(*(getattr(batch, f.name).cuda() for f in dataclasses.fields(batch)))
    total, _ = model.loss(batch)
    total.backward()
    posterior, _ = model.observe(batch)
    start = ModelState(posterior.deter.flatten(0, 1), posterior.stoch.flatten(0, 1))
    out = model.imagine(start, _uniform_policy([]), 3)
    assert out.features.device.type == "cuda"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pack_rnn_packs_a_copy_once_and_then_leaves_the_weights_where_they_are() -> None:
    twin = copy.deepcopy(torch.nn.GRU(4, 6).cuda())  # a copy: one storage per weight

    def storages() -> int:
        return len({w.untyped_storage().data_ptr() for w in twin.parameters()})

    assert storages() == 4
    pack_rnn(twin)
    assert storages() == 1  # the one buffer cuDNN reads
    where = [w.data_ptr() for w in twin.parameters()]
    pack_rnn(twin)
    pack_rnn(twin)
    assert [w.data_ptr() for w in twin.parameters()] == where  # not moved again
    out, _ = twin(torch.randn(3, 2, 4, device="cuda"))
    assert out.shape == (3, 2, 6)
