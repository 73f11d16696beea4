"""The package's public surface (`mmsa_marl_core.__all__`, name for name, and what each name is)
and its layout: the parts it is made of and the order in which they import each other."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import mmsa_marl_core

# name: the qualified name of the object it is (None for the one constant)
PUBLIC = {
    "AlgoEntry": "AlgoEntry",
    "Batch": "Batch",
    "CheckpointError": "CheckpointError",
    "CheckpointMismatchError": "CheckpointMismatchError",
    "ConfigError": "ConfigError",
    "DEFAULT_ENV": None,
    "EpisodeBuffer": "EpisodeBuffer",
    "Episodes": "Episodes",
    "JsonlMetrics": "JsonlMetrics",
    "Learner": "Learner",
    "LinearSchedule": "LinearSchedule",
    "MetricsLogger": "MetricsLogger",
    "Mixer": "Mixer",
    "NonFiniteLossError": "NonFiniteLossError",
    "QLearner": "QLearner",
    "QLearnerConfig": "QLearnerConfig",
    "QMIX": "QMIX",
    "RNNAgent": "RNNAgent",
    "RunningMeanStd": "RunningMeanStd",
    "TrainConfig": "TrainConfig",
    "TrainResult": "TrainResult",
    "VDN": "VDN",
    "algo_names": "algo_names",
    "config_from_dict": "config_from_dict",
    "config_to_dict": "config_to_dict",
    "epsilon_greedy": "epsilon_greedy",
    "evaluate": "evaluate",
    "evaluate_policy": "evaluate_policy",
    "gather_actions": "gather_actions",
    "get_algo": "get_algo",
    "greedy": "greedy",
    "guarded_step": "guarded_step",
    "make_optimizer": "make_optimizer",
    "masked_argmax": "masked_argmax",
    "masked_mean": "masked_mean",
    "onehot_last_actions": "onehot_last_actions",
    "read_metrics": "read_metrics",
    "register_algo": "register_algo",
    "run_episodes": "run_episodes",
    "td_targets": "td_targets",
    "train": "train",
}


def test_all_is_exactly_the_public_names():
    assert sorted(mmsa_marl_core.__all__) == sorted(PUBLIC)
    assert len(set(mmsa_marl_core.__all__)) == len(mmsa_marl_core.__all__)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_each_public_name_resolves(name):
    obj = getattr(mmsa_marl_core, name)
    namespace: dict[str, object] = {}
    exec(f"from mmsa_marl_core import {name}", namespace)
    assert namespace[name] is obj
    if PUBLIC[name] is None:
        assert obj == "lbf:Foraging-5x5-2p-1f-coop-v3"
        return
    assert obj.__qualname__ == PUBLIC[name]
    # it is the object of the module that defines it, not a copy
    assert getattr(importlib.import_module(obj.__module__), PUBLIC[name]) is obj


# ---------------------------------------------------------------------- the package's parts
# Each part imports only the parts after it in this order (the import-linter contracts in the
# root pyproject.toml say the same, with training and learners independent of each other).
PARTS = ("training", "learners", "imagination", "networks", "registry", "ops", "data")


def _graph():
    grimp = pytest.importorskip("grimp")
    return grimp.build_graph("mmsa_marl_core", cache_dir=None)


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_the_package_is_its_parts():
    graph = _graph()
    assert {m.rsplit(".", 1)[1] for m in graph.find_children("mmsa_marl_core")} == set(PARTS)


def test_no_import_cycle_between_parts():
    graph = _graph()
    edges = {
        (_part(importer), _part(imported))
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if _part(importer) and _part(imported) and _part(importer) != _part(imported)
    }
    order = {part: i for i, part in enumerate(PARTS)}
    upward = sorted((a, b) for a, b in edges if order[a] >= order[b])
    assert not upward, f"imports against the order {PARTS}: {upward}"


def test_no_import_cycle_between_modules():
    """Not even through an import inside a function: every module's imports form a DAG."""
    graph = _graph()
    internal = {m for m in graph.modules if m != "mmsa_marl_core"}
    imports = {
        m: {i for i in graph.find_modules_directly_imported_by(m) if i in internal}
        for m in internal
    }
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = path[path.index(module) :] + [module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        for imported in sorted(imports[module]):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(internal):
        visit(module, [])


def test_every_module_imports_in_a_fresh_interpreter():
    """Also the ones only the registry imports; then every algorithm builds its entry."""
    code = (
        "import importlib, pkgutil, mmsa_marl_core\n"
        "for m in pkgutil.walk_packages(mmsa_marl_core.__path__, 'mmsa_marl_core.'):\n"
        "    importlib.import_module(m.name)\n"
        "from mmsa_marl_core import algo_names, get_algo\n"
        "print(' '.join(n for n in algo_names() if get_algo(n)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["facmac", "hpn_qmix", "mmsa", "mmsa_continuous", "qmix", "vdn"]
