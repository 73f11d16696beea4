"""make / registered / backends: ids, errors, lazy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mmsa_envs import DummyEnv, MissingBackendError, UnknownEnvError, backends, make, registered
from mmsa_envs._registry import _load, backend_installed


def test_backends_are_known() -> None:
    assert backends() == ["dummy", "lbf", "mamujoco", "pettingzoo", "smacv2", "smax"]


def test_make_dummy_variants() -> None:
    assert isinstance(make("dummy"), DummyEnv)
    assert make("dummy:continuous").spec.action_kind == "continuous"
    with pytest.raises(UnknownEnvError, match="dummy:continuous"):
        make("dummy:continuos")


def test_unknown_backend_suggests_close_names() -> None:
    with pytest.raises(UnknownEnvError, match=r"did you mean 'lbf:'.*Known backends"):
        make("lbff:x")
    with pytest.raises(UnknownEnvError, match="must be a str"):
        make(3)  # type: ignore[arg-type]


def test_a_missing_backend_names_a_command_that_installs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """mmsa-envs is not on PyPI: the hint installs the extra from a clone, and smacv2 (no extra)
    gets its adapter's instructions."""
    monkeypatch.setitem(sys.modules, "lbforaging", None)  # makes lbforaging not installed
    with pytest.raises(MissingBackendError) as err:
        _load("lbf", check_installed=True)
    assert str(err.value).endswith(
        "pip install -c constraints.txt -e 'packages/envs[lbf]' (from the repository root)"
    )
    monkeypatch.setitem(sys.modules, "smacv2", None)
    with pytest.raises(MissingBackendError, match="git\\+https://github.com/oxwhirl/smacv2") as err:
        _load("smacv2", check_installed=True)
    assert "mmsa-envs[" not in str(err.value) and "packages/envs[" not in str(err.value)


def test_registered_lists_ids_per_installed_backend() -> None:
    ids = registered()
    assert ids[:3] == ["dummy", "dummy:discrete", "dummy:continuous"]
    by_backend = {i.partition(":")[0] for i in ids}
    for backend in backends():
        assert (backend in by_backend) == backend_installed(backend), backend
    assert "lbf:Foraging-10x10-3p-5f-v3" in ids


def test_import_is_lazy() -> None:
    code = (
        "import sys, mmsa_envs; mmsa_envs.make('dummy'); "
        "heavy = [m for m in ('lbforaging', 'gymnasium', 'jax', 'mujoco', 'pettingzoo', 'torch') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
