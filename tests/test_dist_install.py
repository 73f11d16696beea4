"""A package installs alone from the repository's own build.

`make/dist.sh` (what `make dist` runs) builds the wheels and sdists of the five distributions
into a temporary folder. Their contents are checked: the README, the package's sources and
`py.typed`, no caches or compiled files, no tests in a wheel; the root sdist holds the flows only.
Then a bare venv (`python -m venv`, no system site packages) gets mmsa-marl-core alone, as the
root README documents it:

    pip install -c constraints.txt --find-links DIST mmsa-marl-core 'mmsa-envs[lbf]'

(the siblings from DIST, torch through the pin, the rest from the index), and runs the first
example of `packages/marl_core/README.md`, taken from the README, in an isolated interpreter
(`-I`: nothing of the repository on its path). It must print the final evaluation it promises and
leave the run directory; `import mmsa_envs` there must not import torch.

Needs the index (lbforaging, gymnasium) and `build` (the root `[dev]` extra). About a minute on
a 2-core machine: the build 15 s, the venv 4 s, pip install 26 s (torch from a local CPU wheel),
the example 6 s; more where pip downloads torch.
"""

from __future__ import annotations

import ast
import math
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERSION = "0.1.0"
PACKAGES = {  # distribution -> (project folder, import name)
    "mmsa-envs": ("packages/envs", "mmsa_envs"),
    "mmsa-sale": ("packages/sale", "mmsa_sale"),
    "mmsa-worldmodel": ("packages/worldmodel", "mmsa_worldmodel"),
    "mmsa-marl-core": ("packages/marl_core", "mmsa_marl_core"),
}
JUNK = re.compile(r"(^|/)(__pycache__|\.pytest_cache|\.mypy_cache|\.ruff_cache|\.venv)(/|$)|\.pyc$")

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _timed(label: str, durations: dict[str, float], cmd: list[str], **kw) -> str:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    durations[label] = time.perf_counter() - start
    assert out.returncode == 0, f"{label} failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    return out.stdout


def _sources(project: Path, package: str) -> set[str]:
    """The package's files on disk, relative to `src/`, without caches."""
    src = project / "src"
    return {
        p.relative_to(src).as_posix()
        for p in (src / package).rglob("*")
        if p.is_file() and not JUNK.search(p.relative_to(src).as_posix())
    }


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("build", reason="PyPA build is in the [dev] extra: make setup")
    out = tmp_path_factory.mktemp("dist")
    durations: dict[str, float] = {}
    env = {**os.environ, "PYTHON": sys.executable}
    _timed("make/dist.sh", durations, ["bash", str(ROOT / "make" / "dist.sh"), str(out)], env=env)
    print(f"make/dist.sh: {durations['make/dist.sh']:.1f} s")
    return out


@pytest.mark.timeout(900)
def test_dists_hold_their_files(dist: Path) -> None:
    built = sorted(p.name for p in dist.iterdir())
    stems = ["mmsa", *(d.replace("-", "_") for d in PACKAGES)]
    assert built == sorted(
        [f"{s}-{VERSION}-py3-none-any.whl" for s in stems]
        + [f"{s}-{VERSION}.tar.gz" for s in stems]
    )
    for name, (folder, package) in PACKAGES.items():
        stem = name.replace("-", "_")
        sources = _sources(ROOT / folder, package)
        assert f"{package}/py.typed" in sources
        with zipfile.ZipFile(dist / f"{stem}-{VERSION}-py3-none-any.whl") as whl:
            files = set(whl.namelist())
            metadata = whl.read(f"{stem}-{VERSION}.dist-info/METADATA").decode()
        assert sources <= files, f"{name} wheel lacks {sorted(sources - files)}"
        assert not [f for f in files if JUNK.search(f) or f.startswith("tests/")], name
        assert "Description-Content-Type: text/markdown" in metadata
        assert f"# {package}" in metadata  # the package's README is the long description
        with tarfile.open(dist / f"{stem}-{VERSION}.tar.gz") as sdist:
            members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
        expected = {"README.md", "CHANGELOG.md", "pyproject.toml", "PKG-INFO"}
        expected |= {f"src/{s}" for s in sources}
        assert expected <= members, f"{name} sdist lacks {sorted(expected - members)}"
        assert not [m for m in members if JUNK.search(m)], name
    with zipfile.ZipFile(dist / f"mmsa-{VERSION}-py3-none-any.whl") as whl:
        files = set(whl.namelist())
    assert {"flows/__init__.py", "flows/cli.py", "flows/conf/profile/smoke.yaml"} <= files
    assert "mmsa-0.1.0.dist-info/entry_points.txt" in files
    with tarfile.open(dist / f"mmsa-{VERSION}.tar.gz") as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {"README.md", "CHANGELOG.md", "constraints.txt", "flows/cli.py"} <= members
    tops = {m.split("/", 1)[0] for m in members}
    assert not tops & {"packages", "tests", "bench", "results", "dist", ".dvc"}, sorted(tops)


def readme_example() -> str:
    """The first ```python block of packages/marl_core/README.md."""
    text = (ROOT / "packages" / "marl_core" / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    assert m, "packages/marl_core/README.md has no python example"
    return m.group(1)


@pytest.mark.timeout(900)
def test_marl_core_installs_alone_and_runs_its_readme_example(dist: Path, tmp_path: Path) -> None:
    durations: dict[str, float] = {}
    venv = tmp_path / "venv"
    _timed("venv", durations, [sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["OMP_NUM_THREADS"] = "1"  # one torch thread, as `mmsa train` uses by default
    install = [python, "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt")]
    _timed(
        "pip install",
        durations,
        [*install, "--find-links", str(dist), "mmsa-marl-core", "mmsa-envs[lbf]"],
        env=env,
    )
    _timed("pip check", durations, [python, "-m", "pip", "check"], env=env)

    listed = _timed("where installed", durations, [python, "-I", "-c", _WHERE], env=env)
    where = dict(line.split(" ", 1) for line in listed.splitlines())
    for name, (_, package) in PACKAGES.items():
        assert where[name] == VERSION, (name, where)
        assert where[package].startswith(str(venv)), (package, where[package])
    assert where["mmsa"] == "absent" and where["flows"] == "absent"

    run = tmp_path / "run"
    run.mkdir()
    (run / "example.py").write_text(readme_example(), encoding="utf-8")
    stdout = _timed("example", durations, [python, "-I", "example.py"], cwd=run, env=env)
    printed = [ast.literal_eval(x) for x in stdout.splitlines() if x.startswith("{")]
    assert len(printed) == 1, stdout  # print(result.final_eval)
    final_eval = printed[0]
    assert {"return_mean", "return_std"} <= set(final_eval), final_eval
    assert all(math.isfinite(final_eval[k]) for k in ("return_mean", "return_std"))
    demo = run / "runs" / "demo"  # run.json, metrics.jsonl, checkpoints/
    assert (demo / "run.json").is_file() and (demo / "metrics.jsonl").is_file()
    assert list((demo / "checkpoints").glob("*.pt"))

    no_torch = _timed(
        "mmsa_envs without torch", durations, [python, "-I", "-c", _NO_TORCH], env=env
    )
    assert no_torch.split() == ["torch-installed", "False"], no_torch
    print(" | ".join(f"{k}: {v:.1f} s" for k, v in durations.items()))


_WHERE = """
import importlib.metadata as md, importlib.util as u
for d in ("mmsa-envs", "mmsa-sale", "mmsa-worldmodel", "mmsa-marl-core", "mmsa"):
    try:
        print(d, md.version(d))
    except md.PackageNotFoundError:
        print(d, "absent")
for m in ("mmsa_envs", "mmsa_sale", "mmsa_worldmodel", "mmsa_marl_core", "flows"):
    spec = u.find_spec(m)
    print(m, spec.origin if spec else "absent")
"""
"""Installed versions of the distributions and where their modules come from."""

_NO_TORCH = """
import importlib.util, sys
import mmsa_envs
env = mmsa_envs.make("lbf:Foraging-5x5-2p-1f-v3")
env.reset(seed=0)
installed = "torch-installed" if importlib.util.find_spec("torch") else "no-torch"
print(installed, "torch" in sys.modules)
"""
"""Builds and resets an LBF env: `mmsa_envs` and its backend leave torch, though installed,
unimported."""
