"""Pins the public surface of mmsa_sale (httpx style: a change here is an API change)."""

import mmsa_sale


def test_all_is_pinned() -> None:
    assert sorted(mmsa_sale.__all__) == [
        "ACTIVATIONS",
        "Encoder",
        "FixedEncoders",
        "Phi",
        "SALEConfig",
        "avg_l1_norm",
        "encoder_loss",
    ]


def test_every_name_in_all_exists() -> None:
    for name in mmsa_sale.__all__:
        assert getattr(mmsa_sale, name) is not None, name


def test_version() -> None:
    assert mmsa_sale.__version__ == "0.1.0"
