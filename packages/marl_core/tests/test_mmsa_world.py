"""mmsa_world: the world model's share of the discrete MMSA update, tested part by part.

`loss_groups` against hand sums, `world_model_terms` against a hand reduction of
`WorldModel.losses_and_posterior`, `rollout_code_pair` (zeros off the real rows, gradient only
into the online rollout GRU, one imagination for both codes, the step-0 shortcut) and the keys
and values of `world_model_diagnostics`. Sizes: T=5, B=4, N=3, O=7, S=11, A=6.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from mmsa_marl_core import Batch, EpisodeBuffer
from mmsa_marl_core.imagination.imagination_graph import ImaginationGraphs
from mmsa_marl_core.imagination.mmsa_world import (
    KL_TERMS,
    REC_TERMS,
    loss_groups,
    rollout_code_pair,
    world_model_diagnostics,
    world_model_terms,
)
from mmsa_marl_core.imagination.rollout import RolloutEncoder, imagined_features
from mmsa_marl_core.learners.mmsa_config import ABLATIONS
from mmsa_marl_core.networks.agent import onehot_last_actions
from mmsa_marl_core.networks.sale_agent import SALEAgent, agent_inputs
from mmsa_marl_core.ops.td import Rows
from mmsa_sale import Encoder
from mmsa_worldmodel import (
    ModelState,
    WorldModel,
    WorldModelConfig,
    kl_per_step,
    open_loop_error,
    posterior_collapse,
)

T, B, N, O, S, A = 5, 4, 3, 7, 11, 6  # noqa: E741 (the design's axis letters)
HIDDEN, CODE = 16, 10
# Small sizes, and distinct loss scales so that a term scaled by another's scale fails.
SMALL_WM = WorldModelConfig(
    deter_dim=12, stoch_per_agent=2, hidden=14, embed_dim=10, vae1_latent_dim=9, sale_zs_dim=8,
    sale_hidden=13, phi_dim=9, horizon=2, state_scale=2.0, obs_scale=0.5, avail_scale=1.5,
    reward_scale=3.0, continue_scale=0.25, vae1_rec_scale=0.75, vae1_kl_scale=0.2,
    kl_scale=1.25, sale_scale=4.0,
)  # fmt: skip


def _world_model(**overrides: object) -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(
        n_agents=N,
        obs_dim=O,
        state_dim=S,
        n_actions=A,
        action_kind="discrete",
        config=dataclasses.replace(SMALL_WM, **overrides),  # type: ignore[arg-type]
    )


@pytest.fixture
def batch(dummy_spec, random_episodes) -> Batch:
    """Real dummy-env episodes (all 5 steps long) with padding cut in: episode 0 terminates
    after 3 steps and episode 3 holds no real step; the cut-off steps keep their data, which
    nothing may read."""
    buffer = EpisodeBuffer(dummy_spec, capacity=B, max_len=T)
    buffer.add_episodes(**random_episodes(B, seed=0))
    full = buffer.get(np.arange(B))
    assert full.mask.shape == (T, B) and bool(full.mask.all())
    mask = full.mask.clone()
    mask[3:, 0] = 0.0
    mask[:, 3] = 0.0
    terminated = full.terminated * mask
    terminated[2, 0] = 1.0
    return dataclasses.replace(full, mask=mask, terminated=terminated)


# ---------------------------------------------------------------------- loss_groups
TERMS = {
    "wm_kl": 1.0,
    "wm_vae1_kl": 2.0,
    "wm_state": 4.0,
    "wm_obs": 8.0,
    "wm_avail": 16.0,
    "wm_reward": 32.0,
    "wm_continue": 64.0,
    "wm_vae1_rec": 128.0,
    "wm_sale": 256.0,
    "sale_agent": 512.0,
    "td": 1024.0,  # not a group member: must be left out of every group
}


def _terms() -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v, requires_grad=True) for k, v in TERMS.items()}


@pytest.mark.parametrize("ablation", [a for a in ABLATIONS if a != "no_klb"])
def test_loss_groups_sum_the_named_terms(ablation):
    groups = loss_groups(_terms(), ablation, torch.device("cpu"))
    assert set(groups) == {"kl_loss", "rec_loss", "sale_loss"}
    assert groups["kl_loss"].item() == 1 + 2
    assert groups["rec_loss"].item() == 4 + 8 + 16 + 32 + 64 + 128
    assert groups["sale_loss"].item() == 256 + 512


def test_no_klb_counts_only_the_balanced_kl_twice():
    terms = _terms()
    groups = loss_groups(terms, "no_klb", torch.device("cpu"))
    assert groups["kl_loss"].item() == 2 * 1 + 2  # vae1_kl is no balanced KL: once
    assert groups["rec_loss"].item() == 252 and groups["sale_loss"].item() == 768
    sum(groups.values()).backward()
    grads = {k: None if v.grad is None else v.grad.item() for k, v in terms.items()}
    assert grads == {**dict.fromkeys(TERMS, 1.0), "wm_kl": 2.0, "td": None}


def test_loss_groups_without_terms_are_zero_scalars():
    groups = loss_groups({}, "none", torch.device("cpu"))
    assert all(v.shape == () and v.item() == 0.0 for v in groups.values())
    # without the world model only the agent's SALE term is there
    groups = loss_groups({"sale_agent": torch.tensor(3.0)}, "no_wm", torch.device("cpu"))
    assert [groups[k].item() for k in ("kl_loss", "rec_loss", "sale_loss")] == [0.0, 0.0, 3.0]


def test_every_world_model_loss_is_in_exactly_one_group():
    assert not set(KL_TERMS) & set(REC_TERMS)
    assert {*KL_TERMS, *REC_TERMS, "sale"} == set(WorldModelConfig().loss_scales())


# ---------------------------------------------------------------------- world_model_terms
def test_world_model_terms_are_scaled_means_over_real_steps(batch):
    wm = _world_model()
    real = batch.mask > 0
    torch.manual_seed(1)
    terms, metrics, posterior = world_model_terms(wm, batch, real)
    torch.manual_seed(1)  # the same latent samples
    losses, ref_metrics, ref_posterior = wm.losses_and_posterior(batch)
    count = real.sum()
    assert count.item() == 3 + 5 + 5
    assert set(terms) == {f"wm_{name}" for name in losses}
    assert {"wm_kl", "wm_sale", "wm_avail"} <= set(terms)
    scales = SMALL_WM.loss_scales()
    for name, value in losses.items():
        assert value.shape == (T, B)
        expected = scales[name] * value.sum() / count
        torch.testing.assert_close(terms[f"wm_{name}"], expected, msg=name)
        assert terms[f"wm_{name}"].requires_grad, name
    assert metrics == {f"wm_{k}": v for k, v in ref_metrics.items()}
    # The model's own scalar loss is the sum of the same scaled means.
    torch.manual_seed(1)
    total, _ = wm.loss(batch)
    torch.testing.assert_close(sum(terms.values()), total)
    # The posterior the terms were computed on, [T+1, B, ...], detached.
    assert posterior.deter.shape == (T + 1, B, SMALL_WM.deter_dim)
    for leaf, ref in zip(posterior, ref_posterior, strict=True):
        assert not leaf.requires_grad
        torch.testing.assert_close(leaf, ref)


def test_world_model_terms_of_a_batch_without_real_steps_are_zero(batch):
    wm = _world_model()
    empty = dataclasses.replace(batch, mask=torch.zeros(T, B), terminated=torch.zeros(T, B))
    terms, _, _ = world_model_terms(wm, empty, empty.mask > 0)
    assert terms and all(v.item() == 0.0 for v in terms.values())


# ---------------------------------------------------------------------- rollout_code_pair
class Parts:
    """One world model, agent, encoder and rollout GRUs, and the real-data inputs of a batch."""

    def __init__(self, batch: Batch) -> None:
        self.wm = _world_model()
        self.batch = batch
        torch.manual_seed(2)
        self.agent = SALEAgent(
            input_dim=O + A + N, n_actions=A, hidden_dim=HIDDEN, zs_dim=8, phi_dim=12,
            head_hidden=15,
        )  # fmt: skip
        self.encoder = Encoder(O + A + N, A, zs_dim=8, hidden=13)
        self.online = RolloutEncoder(self.wm.feature_dim, CODE)
        self.target = RolloutEncoder(self.wm.feature_dim, CODE)
        real = self.batch.mask > 0
        self.rows = torch.cat([real[:1], real])  # [T+1, B]
        self.last_action = onehot_last_actions(self.batch.action, A)  # [T+1, B, N, A]
        self.hidden = self.agent.unroll(agent_inputs(self.batch.obs, self.last_action))
        g = torch.Generator().manual_seed(3)
        self.greedy = torch.randint(0, A, (T + 1, B, N), generator=g)
        _, _, self.posterior = world_model_terms(self.wm, self.batch, real)

    def codes(
        self, *, shortcut: bool, greedy: torch.Tensor | None = None, target=None, seed: int = 4
    ) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(seed)  # imagination samples its latents
        return rollout_code_pair(
            self.posterior, Rows(self.rows),
            ImaginationGraphs(self.wm, self.agent, self.encoder, self.wm.config.horizon),
            self.hidden, self.last_action, self.greedy if greedy is None else greedy,
            (self.online, self.target if target is None else target),
            first_action_from_data=shortcut,
        )  # fmt: skip


@pytest.fixture
def parts(batch) -> Parts:
    return Parts(batch)


def test_codes_are_zero_exactly_on_rows_without_a_real_observation(parts):
    assert parts.rows.sum().item() == 4 + 6 + 6  # episode 0: rows 0..3; episode 3: none
    code, target_code = parts.codes(shortcut=True)
    assert code.shape == target_code.shape == (T + 1, B, CODE)
    for c in (code, target_code):
        assert torch.all(c[~parts.rows] == 0)
        assert torch.all(c[parts.rows].abs().sum(-1) > 0)


def test_only_the_online_rollout_encoder_gets_gradient(parts):
    code, target_code = parts.codes(shortcut=True)
    assert code.requires_grad and not target_code.requires_grad
    modules = (parts.online, parts.target, parts.agent, parts.encoder, parts.wm)
    for module in modules:
        module.zero_grad(set_to_none=True)
    code.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in parts.online.parameters())
    for module in modules[1:]:  # imagination runs without gradient; the target is a copy
        assert all(p.grad is None for p in module.parameters()), type(module).__name__
    parts.online.zero_grad(set_to_none=True)


def test_online_and_target_codes_read_the_same_imagined_features(parts):
    code, target_code = parts.codes(shortcut=False, target=copy.deepcopy(parts.online))
    torch.testing.assert_close(code, target_code)
    # a differently initialised target gives other codes on the same rows
    _, other = parts.codes(shortcut=False)
    assert not torch.allclose(other[parts.rows], code[parts.rows])


@pytest.mark.parametrize("shortcut", [False, True])
def test_codes_equal_the_rollout_encoders_over_a_hand_built_imagination(parts, shortcut):
    code, target_code = parts.codes(shortcut=shortcut)
    rows = parts.rows
    # the agents' state before reading x_t: zeros at t=0, the state after x_{t-1} later
    hidden_before = torch.cat([torch.zeros_like(parts.hidden[:1]), parts.hidden[:-1]])
    torch.manual_seed(4)
    features = imagined_features(
        parts.wm,
        ModelState(*(leaf[rows] for leaf in parts.posterior)),
        parts.agent,
        parts.encoder,
        hidden_before[rows],
        parts.last_action[rows],
        SMALL_WM.horizon,
        first_actions=parts.greedy[rows] if shortcut else None,
        first_hidden=parts.hidden[rows] if shortcut else None,
    )
    assert features.shape == (SMALL_WM.horizon + 1, rows.sum().item(), parts.wm.feature_dim)
    with torch.no_grad():
        torch.testing.assert_close(code[rows], parts.online(features))
        torch.testing.assert_close(target_code[rows], parts.target(features))


def test_step_zero_actions_come_from_data_only_with_the_shortcut(parts):
    other_greedy = (parts.greedy + 1) % A
    with torch.no_grad():
        for shortcut, changes in ((True, True), (False, False)):
            code, _ = parts.codes(shortcut=shortcut)
            other, _ = parts.codes(shortcut=shortcut, greedy=other_greedy)
            assert (not torch.equal(code, other)) is changes, shortcut


# ---------------------------------------------------------------------- diagnostics
def test_world_model_diagnostics_keys_and_values(batch):
    wm = _world_model()
    out = world_model_diagnostics(wm, batch)
    errors = open_loop_error(wm, batch, SMALL_WM.horizon)
    expected = {
        f"diag_{name}_err_k{k}": values[k - 1]
        for name, values in errors.items()
        for k in range(1, SMALL_WM.horizon + 1)
    }
    kl = [v for v in kl_per_step(wm, batch) if np.isfinite(v)]
    expected["diag_kl_per_step_mean"] = float(np.mean(kl))
    expected |= {f"diag_collapse_{k}": v for k, v in posterior_collapse(wm, batch).items()}
    assert {"diag_state_err_k1", "diag_state_copy_err_k2", "diag_collapse_y"} <= set(out)
    assert out.keys() == expected.keys()
    assert out == pytest.approx(expected, nan_ok=True)
    assert all(isinstance(v, float) for v in out.values())
