"""Tests of SALEConfig: TD7 defaults, frozen, validated."""

import dataclasses

import pytest

from mmsa_sale import SALEConfig


def test_td7_defaults() -> None:
    c = SALEConfig()
    assert (c.zs_dim, c.hidden, c.activation, c.encoder_lr, c.target_update_rate) == (
        256, 256, "elu", 3e-4, 250,
    )  # fmt: skip


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SALEConfig().zs_dim = 64  # type: ignore[misc]


def test_every_field_is_documented() -> None:
    import ast
    import inspect

    import mmsa_sale._config as module

    tree = ast.parse(inspect.getsource(module))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "SALEConfig")
    documented = {
        prev.target.id
        for prev, nxt in zip(cls.body, cls.body[1:], strict=False)
        if isinstance(prev, ast.AnnAssign)
        and isinstance(prev.target, ast.Name)
        and isinstance(nxt, ast.Expr)
        and isinstance(nxt.value, ast.Constant)
        and isinstance(nxt.value.value, str)
    }
    assert documented == {f.name for f in dataclasses.fields(SALEConfig)}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("zs_dim", 0, "SALEConfig.zs_dim must be a positive int, got 0"),
        ("hidden", 64.0, "SALEConfig.hidden must be a positive int, got 64.0"),
        ("target_update_rate", -1, "target_update_rate must be a positive int, got -1"),
        ("activation", "swish", "activation must be one of elu, gelu, .*got 'swish'"),
        ("encoder_lr", 0.0, "encoder_lr must be a positive finite float, got 0.0"),
        ("encoder_lr", float("nan"), "encoder_lr must be a positive finite float, got nan"),
        ("encoder_lr", "3e-4", "encoder_lr must be a positive finite float, got '3e-4'"),
    ],
)
def test_bad_values_are_rejected_by_name(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SALEConfig(**{field: value})  # type: ignore[arg-type]


def test_valid_overrides() -> None:
    c = SALEConfig(
        zs_dim=64, hidden=128, activation="relu", encoder_lr=1e-3, target_update_rate=200
    )
    assert dataclasses.replace(c, zs_dim=32).zs_dim == 32
