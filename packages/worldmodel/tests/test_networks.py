"""MLP, Gaussian MLP, VAE-1 and the decoders: shapes over leading axes."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from mmsa_worldmodel._networks import MLP, VAE1, Decoders, GaussianMLP


def test_mlp_and_gaussian_mlp_shapes(generator: torch.Generator) -> None:
    x = torch.randn(5, 4, 7, generator=generator)
    assert MLP(7, 13, 11, 2, "elu")(x).shape == (5, 4, 11)
    assert len(MLP(7, 13, 11, 2, "relu").hidden_layers) == 2
    dist = GaussianMLP(7, 13, 6, "silu", 0.2)(x)
    assert dist.mean.shape == dist.std.shape == (5, 4, 6) and (dist.std >= 0.2).all()


def test_vae1_shapes(generator: torch.Generator) -> None:
    vae = VAE1(25, 5, 32, "elu", 0.1)
    dist = vae.encode(torch.randn(5, 4, 25, generator=generator))
    assert dist.mean.shape == (5, 4, 5)
    assert vae.decode(dist.rsample()).shape == (5, 4, 25)


def test_decoders_shapes(wm: SimpleNamespace, generator: torch.Generator) -> None:
    kw = dict(
        feature_dim=28,
        n_agents=wm.N,
        obs_dim=wm.O,
        state_dim=wm.S,
        n_actions=wm.A,
        hidden=32,
        activation="elu",
    )
    dec = Decoders(discrete=True, **kw)  # type: ignore[arg-type]
    f = torch.randn(wm.T, wm.B, 28, generator=generator)
    assert dec.state_mean(f).shape == (wm.T, wm.B, wm.S)
    assert dec.obs_mean(f).shape == (wm.T, wm.B, wm.N, wm.O)
    logits = dec.avail_logits(f)
    assert logits is not None and logits.shape == (wm.T, wm.B, wm.N, wm.A)
    assert dec.reward_mean(f).shape == dec.continue_logit(f).shape == (wm.T, wm.B)
    assert Decoders(discrete=False, **kw).avail_logits(f) is None  # type: ignore[arg-type]
