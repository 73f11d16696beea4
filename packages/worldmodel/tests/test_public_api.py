"""The public surface is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import inspect
from pathlib import Path
from types import SimpleNamespace

import torch

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
        "pack_rnn",
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


def test_the_readme_example_runs(wm: SimpleNamespace) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    g = torch.Generator().manual_seed(0)
    t, b, n, o, s, a = 4, 2, 3, 18, 18, 6
    batch = wm.Batch(
        obs=torch.randn(t + 1, b, n, o, generator=g),
        state=torch.randn(t + 1, b, s, generator=g),
        avail_actions=torch.ones(t + 1, b, n, a, dtype=torch.bool),
        action=torch.randint(0, a, (t, b, n), generator=g),
        reward=torch.randn(t, b, generator=g),
        terminated=torch.zeros(t, b),
        mask=torch.ones(t, b),
    )
    agents = SimpleNamespace(greedy=lambda obs, avail: avail.float().argmax(-1))
    namespace = {"agents": agents, "batches": [batch], "held_out_batch": batch}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    assert namespace["rollout"].features.shape == (4, (t + 1) * b, 128 + 16 * 3)
    assert len(namespace["errors"]["state"]) == 3
