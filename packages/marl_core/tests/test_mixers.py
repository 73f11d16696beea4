from __future__ import annotations

import pytest
import torch

from mmsa_marl_core import QMIX, VDN

T, B, N, S, C = 5, 4, 3, 11, 2


def test_vdn_is_the_sum():
    q = torch.randn(T, B, N)
    out = VDN(N)(q, torch.zeros(T, B, 0))
    torch.testing.assert_close(out, q.sum(-1))
    out_with_state = VDN(N, S)(q, torch.randn(T, B, S))
    torch.testing.assert_close(out_with_state, q.sum(-1))


def test_qmix_shape_and_monotone_in_each_q():
    torch.manual_seed(0)
    mixer = QMIX(N, S, embed_dim=8, hypernet_hidden=16)
    q = torch.randn(T, B, N, requires_grad=True) * 3
    q.retain_grad()
    state = torch.randn(T, B, S)
    q_tot = mixer(q, state)
    assert q_tot.shape == (T, B)
    q_tot.sum().backward()
    assert q.grad is not None
    assert (q.grad >= 0).all()  # dQ_tot/dQ_i >= 0 everywhere
    assert (q.grad > 0).any()
    # and the mixture is not just a sum: it depends on the state
    assert not torch.allclose(mixer(q, state), mixer(q, torch.randn(T, B, S)))


def test_qmix_extra_conditioning():
    torch.manual_seed(1)
    mixer = QMIX(N, S, embed_dim=8, hypernet_hidden=16, extra_cond_dim=C)
    q, state = torch.randn(T, B, N), torch.randn(T, B, S)
    a = mixer(q, state, torch.zeros(T, B, C))
    b = mixer(q, state, torch.ones(T, B, C))
    assert a.shape == (T, B) and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="extra must have shape"):
        mixer(q, state)
    only_extra = QMIX(N, 0, embed_dim=8, hypernet_hidden=16, extra_cond_dim=C)
    assert only_extra(q, torch.zeros(T, B, 0), torch.ones(T, B, C)).shape == (T, B)


def test_mixer_checks_shapes():
    mixer = QMIX(N, S)
    with pytest.raises(ValueError, match="q must end in N=3"):
        mixer(torch.zeros(T, B, N + 1), torch.zeros(T, B, S))
    with pytest.raises(ValueError, match="state must have shape"):
        mixer(torch.zeros(T, B, N), torch.zeros(T, S, B))
    with pytest.raises(ValueError, match="extra_cond_dim=0"):
        mixer(torch.zeros(T, B, N), torch.zeros(T, B, S), torch.zeros(T, B, 1))
    with pytest.raises(ValueError, match="state_dim \\+ extra_cond_dim"):
        QMIX(N, 0)
    # leading axes are free: acting uses [B]
    assert mixer(torch.zeros(B, N), torch.zeros(B, S)).shape == (B,)


def test_qmix_starts_without_a_state_offset():
    """The state-only paths start at zero: with Q_i = 0, Q_tot = 0 at init however large the
    state is (see the README: a large initial offset defeats bootstrapped truncation)."""
    torch.manual_seed(2)
    mixer = QMIX(N, S)
    out = mixer(torch.zeros(T, B, N), 50 * torch.randn(T, B, S))
    assert out.abs().max() == 0
    q = torch.randn(T, B, N)
    assert (mixer(q, torch.randn(T, B, S)) != 0).all()  # still a function of the Q_i
