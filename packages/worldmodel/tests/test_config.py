"""`WorldModelConfig`: defaults of docs/design.md §4.7 and clear errors on bad values."""

from __future__ import annotations

import dataclasses

import pytest

from mmsa_worldmodel import WorldModelConfig


def test_defaults_follow_the_design() -> None:
    c = WorldModelConfig()
    assert (c.deter_dim, c.stoch_per_agent, c.horizon, c.kl_balance) == (128, 16, 3, 0.8)
    assert c.use_sale and not c.detach_sale and c.layer_norm
    scales = c.loss_scales()
    assert scales.pop("vae1_kl") == 0.1  # a beta-VAE: see the README's measurement
    assert all(v == 1.0 for v in scales.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.horizon = 5  # type: ignore[misc]


def test_every_field_is_documented() -> None:
    import ast
    import inspect

    from mmsa_worldmodel import _config

    tree = ast.parse(inspect.getsource(_config))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    documented = set()
    for first, second in zip(cls.body, cls.body[1:], strict=False):
        if isinstance(first, ast.AnnAssign) and isinstance(second, ast.Expr):
            documented.add(first.target.id)  # type: ignore[union-attr]
    assert documented == {f.name for f in dataclasses.fields(WorldModelConfig)}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("deter_dim", 0, "deter_dim=0 must be a positive int"),
        ("hidden", 3.5, "hidden=3.5 must be a positive int"),
        ("horizon", True, "horizon=True must be a positive int"),
        ("kl_balance", 1.0, "kl_balance=1.0 must lie strictly between 0 and 1"),
        ("activation", "swish", "activation='swish' is not allowed"),
        ("min_std", 0.0, "min_std=0.0 must be > 0"),
        ("free_nats", -0.5, "free_nats=-0.5 must be >= 0"),
        ("kl_scale", -1.0, "kl_scale=-1.0 must be >= 0"),
    ],
)
def test_bad_values_are_named(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        WorldModelConfig(**{field: value})  # type: ignore[arg-type]
