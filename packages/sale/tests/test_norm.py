"""Tests of avg_l1_norm (TD7's AvgL1Norm)."""

import pytest
import torch

from mmsa_sale import avg_l1_norm


def test_hand_computed_values() -> None:
    # mean |x| of [1, -2, 3, -6] is 3, of [0.5, 0.5] is 0.5
    x = torch.tensor([[1.0, -2.0, 3.0, -6.0]])
    expected = torch.tensor([[1 / 3, -2 / 3, 1.0, -2.0]])
    torch.testing.assert_close(avg_l1_norm(x), expected)
    torch.testing.assert_close(avg_l1_norm(torch.tensor([0.5, 0.5])), torch.tensor([1.0, 1.0]))


def test_all_zero_input_stays_zero_thanks_to_the_eps_floor() -> None:
    y = avg_l1_norm(torch.zeros(4, 3))
    assert torch.isfinite(y).all()
    assert torch.equal(y, torch.zeros(4, 3))


def test_tiny_input_is_divided_by_eps_not_by_its_mean() -> None:
    # mean |x| = 1e-10 < eps = 1e-8, so the divisor is 1e-8: [1e-10, -1e-10] / 1e-8 = [0.01, -0.01]
    x = torch.tensor([1e-10, -1e-10], dtype=torch.float64)
    torch.testing.assert_close(avg_l1_norm(x), torch.tensor([0.01, -0.01], dtype=torch.float64))
    torch.testing.assert_close(
        avg_l1_norm(x, eps=1e-12), torch.tensor([1.0, -1.0], dtype=torch.float64)
    )


def test_mean_abs_is_one_over_every_leading_axis() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 4, 3, 8) * torch.rand(5, 4, 3, 1) * 100
    y = avg_l1_norm(x)
    assert y.shape == (5, 4, 3, 8)
    torch.testing.assert_close(y.abs().mean(-1), torch.ones(5, 4, 3))
    # rows are normalised independently: direction kept, scale of each row removed
    torch.testing.assert_close(y * x.abs().mean(-1, keepdim=True), x)


def test_gradient_is_finite_at_zero() -> None:
    x = torch.zeros(3, requires_grad=True)
    avg_l1_norm(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("eps", [0.0, -1.0])
def test_non_positive_eps_is_rejected(eps: float) -> None:
    with pytest.raises(ValueError, match="eps"):
        avg_l1_norm(torch.ones(2), eps=eps)


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="floating point"):
        avg_l1_norm(torch.ones(2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\[\.\.\., F\]"):
        avg_l1_norm(torch.tensor(1.0))
    with pytest.raises(TypeError, match="torch.Tensor"):
        avg_l1_norm([1.0, 2.0])  # type: ignore[arg-type]
