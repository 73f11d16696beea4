"""The public surface is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import inspect
from pathlib import Path

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


def test_the_readme_example_runs() -> None:
    """The example defines everything it uses (tests/test_readme_examples.py at the root runs
    it as a script too); here its results are checked."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    t, b = namespace["T"], namespace["B"]
    assert namespace["rollout"].features.shape == (4, (t + 1) * b, 128 + 16 * 3)
    assert len(namespace["errors"]["state"]) == 3
