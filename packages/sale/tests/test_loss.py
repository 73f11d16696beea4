"""Tests of encoder_loss: TD7's objective, detached target, masking, and a learning check."""

import pytest
import torch
import torch.nn.functional as F

from mmsa_sale import Encoder, encoder_loss

T, B, N, OBS, A, Z, H = 5, 4, 3, 7, 6, 8, 16


def _identity_encoder() -> Encoder:
    """in 2, action 1, Z 2, hidden 2, relu; every layer identity except zsa1 = [[1,0,1],[0,1,0]]."""
    enc = Encoder(in_dim=2, action_dim=1, zs_dim=2, hidden=2, activation="relu")
    with torch.no_grad():
        for layer in (enc.zs1, enc.zs2, enc.zs3, enc.zsa2, enc.zsa3):
            layer.weight.copy_(torch.eye(2))
            layer.bias.zero_()
        enc.zsa1.weight.copy_(torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
        enc.zsa1.bias.zero_()
    return enc


# Worked by hand with _identity_encoder (zs(x) = AvgL1Norm(relu(x)), zsa = relu([zs0 + a, zs1])):
#   sample 0: x = [1, 3] -> zs = [1, 3] / 2 = [0.5, 1.5]; a = 1 -> zsa = [1.5, 1.5]
#             next_x = [2, -2] -> relu [2, 0] / 1 = [2, 0];  loss = ((-0.5)^2 + 1.5^2) / 2 = 1.25
#   sample 1: x = [0, 4] -> zs = [0, 4] / 2 = [0, 2];      a = -1 -> zsa = relu([-1, 2]) = [0, 2]
#             next_x = [1, 1] -> zs = [1, 1];              loss = ((-1)^2 + 1^2) / 2 = 1.0
X = torch.tensor([[1.0, 3.0], [0.0, 4.0]])
ACTION = torch.tensor([[1.0], [-1.0]])
NEXT_X = torch.tensor([[2.0, -2.0], [1.0, 1.0]])


def test_hand_computed_oracle() -> None:
    enc = _identity_encoder()
    torch.testing.assert_close(encoder_loss(enc, X, ACTION, NEXT_X), torch.tensor(1.125))
    torch.testing.assert_close(
        encoder_loss(enc, X, ACTION, NEXT_X, reduction="none"), torch.tensor([1.25, 1.0])
    )
    mask = torch.tensor([True, False])
    torch.testing.assert_close(encoder_loss(enc, X, ACTION, NEXT_X, mask), torch.tensor(1.25))
    torch.testing.assert_close(
        encoder_loss(enc, X, ACTION, NEXT_X, torch.tensor([0.0, 1.0])), torch.tensor(1.0)
    )
    torch.testing.assert_close(
        encoder_loss(enc, X, ACTION, NEXT_X, mask, reduction="none"), torch.tensor([1.25, 0.0])
    )


def test_matches_td7_mse_written_out() -> None:
    torch.manual_seed(0)
    enc = Encoder(OBS, A, zs_dim=Z, hidden=H)
    x, a, nx = torch.randn(T, B, N, OBS), torch.randn(T, B, N, A), torch.randn(T, B, N, OBS)
    expected = F.mse_loss(enc.zsa(enc.zs(x), a), enc.zs(nx).detach())
    torch.testing.assert_close(encoder_loss(enc, x, a, nx), expected)


def test_no_gradient_reaches_the_target() -> None:
    torch.manual_seed(0)
    enc = Encoder(OBS, A, zs_dim=Z, hidden=H)
    x = torch.randn(B, OBS, requires_grad=True)
    nx = torch.randn(B, OBS, requires_grad=True)
    a = torch.randn(B, A, requires_grad=True)
    encoder_loss(enc, x, a, nx).backward()
    assert nx.grad is None  # the target zs(next_x) is detached
    assert x.grad is not None and x.grad.abs().sum() > 0  # prediction path: zs(x) -> zsa
    assert a.grad is not None and a.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())

    # the zs weights get gradient only through zs(x): equal to the gradient with a constant target
    grads = {k: p.grad.clone() for k, p in enc.named_parameters() if p.grad is not None}
    enc.zero_grad()
    with torch.no_grad():
        target = enc.zs(nx)
    F.mse_loss(enc.zsa(enc.zs(x), a), target).backward()
    for k, p in enc.named_parameters():
        assert p.grad is not None
        torch.testing.assert_close(p.grad, grads[k], msg=k)


@pytest.mark.parametrize("mask_shape", [(T, B), (T, B, N)])
def test_masked_positions_change_neither_loss_nor_gradients(mask_shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    enc = Encoder(OBS, A, zs_dim=Z, hidden=H)
    x, a, nx = torch.randn(T, B, N, OBS), torch.randn(T, B, N, A), torch.randn(T, B, N, OBS)
    mask = torch.rand(mask_shape) < 0.5
    mask[0] = True
    mask[-1] = False

    def loss_and_grads(x_: torch.Tensor, a_: torch.Tensor, nx_: torch.Tensor):
        enc.zero_grad()
        loss = encoder_loss(enc, x_, a_, nx_, mask)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in enc.parameters() if p.grad is not None]

    clean_loss, clean_grads = loss_and_grads(x, a, nx)
    padded = ~mask.reshape(*mask_shape, *([1] * (4 - len(mask_shape))))
    garbage_x = torch.where(padded, torch.full_like(x, float("nan")), x)
    garbage_nx = torch.where(padded, torch.full_like(nx, 1e30), nx)
    garbage_a = torch.where(padded, torch.full_like(a, float("inf")), a)
    dirty_loss, dirty_grads = loss_and_grads(garbage_x, garbage_a, garbage_nx)
    torch.testing.assert_close(dirty_loss, clean_loss)
    assert len(dirty_grads) == len(clean_grads) == 12
    for g_dirty, g_clean in zip(dirty_grads, clean_grads, strict=True):
        torch.testing.assert_close(g_dirty, g_clean)

    # and the masked mean is the mean over the kept positions only
    full = encoder_loss(enc, x, a, nx, reduction="none")  # [T, B, N]
    kept = mask.reshape(*mask_shape, *([1] * (3 - len(mask_shape)))).expand(T, B, N)
    torch.testing.assert_close(clean_loss, full[kept].mean())


def test_all_masked_gives_zero_not_nan() -> None:
    enc = Encoder(OBS, A, zs_dim=Z, hidden=H)
    loss = encoder_loss(
        enc, torch.randn(T, B, OBS), torch.randn(T, B, A), torch.randn(T, B, OBS), torch.zeros(T, B)
    )
    assert loss.item() == 0.0
    loss.backward()  # still part of the graph


def test_bad_shapes_name_expected_and_received() -> None:
    enc = Encoder(OBS, A, zs_dim=Z, hidden=H)
    x, a = torch.randn(T, B, OBS), torch.randn(T, B, A)
    with pytest.raises(
        ValueError, match=r"expected next_x of shape \[\.\.\., in_dim=7\], got \[5, 4, 6\]"
    ):
        encoder_loss(enc, x, a, torch.randn(T, B, 6))
    with pytest.raises(
        ValueError, match=r"next_x must have the shape of x \[5, 4, 7\], got \[4, 5, 7\]"
    ):
        encoder_loss(enc, x, a, torch.randn(B, T, OBS))
    with pytest.raises(ValueError, match=r"expected \[5, 4, 6\], got \[5, 6\]"):
        encoder_loss(enc, x, torch.randn(T, A), torch.randn(T, B, OBS))
    with pytest.raises(ValueError, match=r"prefix of \[5, 4\].*got \[4\]"):
        encoder_loss(enc, x, a, torch.randn(T, B, OBS), torch.ones(B))
    with pytest.raises(ValueError, match="mask must be bool or floating point"):
        encoder_loss(enc, x, a, torch.randn(T, B, OBS), torch.ones(T, B, dtype=torch.int64))
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'none', got 'sum'"):
        encoder_loss(enc, x, a, torch.randn(T, B, OBS), reduction="sum")  # type: ignore[arg-type]


@pytest.mark.learning
def test_learns_a_linear_dynamical_system() -> None:
    """x' = M x + K a + noise: the loss falls 10x and zsa beats "copy zs" at predicting zs(x')."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    in_dim, action_dim = OBS, 3
    transition = torch.linalg.qr(torch.randn(in_dim, in_dim, generator=generator))[0] * 0.9
    control = torch.randn(in_dim, action_dim, generator=generator)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.randn(n, in_dim, generator=generator)
        a = torch.rand(n, action_dim, generator=generator) * 2 - 1
        noise = 0.01 * torch.randn(n, in_dim, generator=generator)
        return x, a, x @ transition.T + a @ control.T + noise

    enc = Encoder(in_dim, action_dim, zs_dim=16, hidden=64)
    optimiser = torch.optim.Adam(enc.parameters(), lr=1e-3)
    held_out = sample(1024)
    with torch.no_grad():
        initial = encoder_loss(enc, *held_out).item()
    for _ in range(400):
        loss = encoder_loss(enc, *sample(128))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        x, a, nx = held_out
        final = encoder_loss(enc, x, a, nx).item()
        next_zs = enc.zs(nx)
        copy_error = F.mse_loss(enc.zs(x), next_zs).item()
        zsa_error = F.mse_loss(enc.zsa(enc.zs(x), a), next_zs).item()
    assert final < initial / 10, (initial, final)
    assert zsa_error < copy_error / 4, (zsa_error, copy_error)
