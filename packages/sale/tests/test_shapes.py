"""Tests of the private shape checks used at every public boundary of mmsa_sale."""

import pytest
import torch

from mmsa_sale._shapes import broadcast_leading, check_features, check_positive_int


def test_check_positive_int() -> None:
    assert check_positive_int("n", 3) == 3
    for bad in [0, -1, 1.0, True, "2", None]:
        with pytest.raises(ValueError, match=f"n must be a positive int, got {bad!r}"):
            check_positive_int("n", bad)


def test_check_features_message_shows_both_shapes() -> None:
    check_features("f", "x", torch.zeros(2, 3), 3, "O")
    with pytest.raises(ValueError, match=r"f: expected x of shape \[\.\.\., O=4\], got \[2, 3\]"):
        check_features("f", "x", torch.zeros(2, 3), 4, "O")
    with pytest.raises(ValueError, match=r"got \[\]"):
        check_features("f", "x", torch.tensor(1.0), 1, "O")
    with pytest.raises(ValueError, match="floating-point"):
        check_features("f", "x", torch.zeros(2, 3, dtype=torch.int32), 3, "O")
    with pytest.raises(TypeError, match="torch.Tensor, got ndarray"):
        import numpy as np

        check_features("f", "x", np.zeros((2, 3)), 3, "O")  # type: ignore[arg-type]


def test_broadcast_leading() -> None:
    a, b = torch.zeros(5, 1, 3, 8), torch.zeros(4, 1, 6)
    assert broadcast_leading("f", ("a", "b"), a, b) == (5, 4, 3)
    with pytest.raises(ValueError, match=r"f: leading axes of a \[5, 2, 8\] and b \[3, 6\]"):
        broadcast_leading("f", ("a", "b"), torch.zeros(5, 2, 8), torch.zeros(3, 6))


def test_broadcast_leading_rejects_mixed_dtypes() -> None:
    with pytest.raises(ValueError, match="same dtype, got torch.float32 and torch.float64"):
        broadcast_leading(
            "f", ("a", "b"), torch.zeros(2, 3), torch.zeros(2, 4, dtype=torch.float64)
        )


def test_broadcast_leading_allows_the_autocast_pair_only_under_autocast() -> None:
    half, full = torch.zeros(2, 3, dtype=torch.bfloat16), torch.zeros(2, 4)
    with pytest.raises(ValueError, match="same dtype, got torch.bfloat16 and torch.float32"):
        broadcast_leading("f", ("a", "b"), half, full)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert broadcast_leading("f", ("a", "b"), half, full) == (2,)
        # Autocast produces bfloat16 next to float32, never float64.
        with pytest.raises(ValueError, match="same dtype"):
            broadcast_leading("f", ("a", "b"), half, full.double())
