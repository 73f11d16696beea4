"""The public surface is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import inspect

import mmsa_worldmodel
from mmsa_worldmodel import WorldModel


def test_all_is_pinned() -> None:
    assert sorted(mmsa_worldmodel.__all__) == [
        "EpisodeBatch",
        "Imagination",
        "ModelState",
        "Policy",
        "WorldModel",
        "WorldModelConfig",
        "kl_balanced",
        "kl_per_step",
        "open_loop_error",
        "posterior_collapse",
    ]
    for name in mmsa_worldmodel.__all__:
        assert hasattr(mmsa_worldmodel, name)


def test_world_model_methods_are_pinned() -> None:
    for name in ("initial", "features", "observe", "imagine", "losses", "loss"):
        assert callable(getattr(WorldModel, name))
    params = inspect.signature(WorldModel.__init__).parameters
    assert [p for p in params if p != "self"] == [
        "n_agents",
        "obs_dim",
        "state_dim",
        "n_actions",
        "action_kind",
        "config",
    ]
    assert all(params[p].kind is inspect.Parameter.KEYWORD_ONLY for p in params if p != "self")
    assert list(inspect.signature(WorldModel.imagine).parameters) == [
        "self",
        "start",
        "policy",
        "horizon",
    ]


def test_named_tuples_keep_their_fields() -> None:
    assert mmsa_worldmodel.ModelState._fields == ("deter", "stoch")
    assert mmsa_worldmodel.Imagination._fields == (
        "states",
        "features",
        "actions",
        "obs",
        "avail",
        "reward",
        "cont",
    )


def test_private_modules_are_private() -> None:
    for module in (
        "_batch",
        "_config",
        "_diagnostics",
        "_embedding",
        "_gaussian",
        "_model",
        "_networks",
        "_types",
    ):
        assert hasattr(getattr(mmsa_worldmodel, module), "__all__"), module
