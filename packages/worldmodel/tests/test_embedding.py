"""`u_t`: joint SALE of (state, joint action), or the raw linear input of the No-SALE ablation."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import torch

from mmsa_sale import Encoder, Phi, encoder_loss
from mmsa_worldmodel._embedding import JointEmbedding

JOINT = 18  # N * A


def test_sale_embedding_shapes_and_parts(wm: SimpleNamespace, generator: torch.Generator) -> None:
    emb = JointEmbedding(wm.S, JOINT, wm.SMALL)
    assert isinstance(emb.encoder, Encoder) and isinstance(emb.phi, Phi) and emb.raw is None
    state = torch.randn(wm.T + 1, wm.B, wm.S, generator=generator)
    action = torch.randn(wm.T, wm.B, JOINT, generator=generator)
    u = emb(state[:-1], action)
    assert u.shape == (wm.T, wm.B, emb.out_dim) and emb.out_dim == 2 * 8 + 9
    zs = emb.encoder.zs(state[:-1])
    torch.testing.assert_close(u[..., :8], emb.encoder.zsa(zs, action))  # [z^sa, z^s, phi]
    torch.testing.assert_close(u[..., 8:16], zs)
    torch.testing.assert_close(u[..., 16:], emb.phi(state[:-1], action))
    u_seq, error = emb.sequence(state, action)
    torch.testing.assert_close(u_seq, u)
    assert error is not None and error.shape == (wm.T, wm.B)


def test_sale_error_is_mmsa_sale_encoder_loss(
    wm: SimpleNamespace, generator: torch.Generator
) -> None:
    emb = JointEmbedding(wm.S, JOINT, wm.SMALL)
    state = torch.randn(wm.T + 1, wm.B, wm.S, generator=generator)
    action = torch.randn(wm.T, wm.B, JOINT, generator=generator)
    mask = (torch.rand(wm.T, wm.B, generator=generator) > 0.3).float()
    _, error = emb.sequence(state, action)
    assert error is not None
    assert emb.encoder is not None
    expected = encoder_loss(emb.encoder, state[:-1], action, state[1:], mask)
    torch.testing.assert_close((error * mask).sum() / mask.sum(), expected)


def test_detached_sale_learns_only_from_its_own_loss(
    wm: SimpleNamespace, generator: torch.Generator
) -> None:
    state = torch.randn(wm.T + 1, wm.B, wm.S, generator=generator)
    action = torch.randn(wm.T, wm.B, JOINT, generator=generator)
    for detach in (True, False):
        emb = JointEmbedding(wm.S, JOINT, replace(wm.SMALL, detach_sale=detach))
        u, _ = emb.sequence(state, action)
        u.pow(2).sum().backward()
        assert emb.encoder is not None and emb.phi is not None
        encoder_grad = sum(
            p.grad.abs().sum() for p in emb.encoder.parameters() if p.grad is not None
        )
        assert (encoder_grad == 0) == detach
        assert emb.phi.linear.weight.grad is not None  # phi always learns from the model


def test_no_sale_is_one_linear_layer(wm: SimpleNamespace, generator: torch.Generator) -> None:
    emb = JointEmbedding(wm.S, JOINT, replace(wm.SMALL, use_sale=False))
    assert emb.encoder is None and emb.phi is None
    assert isinstance(emb.raw, torch.nn.Linear)
    assert [n for n, _ in emb.named_parameters()] == ["raw.weight", "raw.bias"]
    state = torch.randn(wm.T + 1, wm.B, wm.S, generator=generator)
    action = torch.randn(wm.T, wm.B, JOINT, generator=generator)
    u, error = emb.sequence(state, action)
    assert error is None and u.shape == (wm.T, wm.B, 2 * 8 + 9)
    torch.testing.assert_close(u, emb.raw(torch.cat([state[:-1], action], -1)))
