from __future__ import annotations

import json

import pytest

from mmsa_envs import make
from mmsa_marl_core.training.run_info import (
    git_commit,
    read_run_json,
    spec_to_dict,
    versions,
    write_json_atomic,
)


def test_versions_and_spec():
    spec = make("dummy").spec
    v = versions(spec)
    assert {"torch", "numpy", "mmsa-envs", "mmsa-marl-core"} <= set(v)
    d = spec_to_dict(spec)
    assert d["n_agents"] == 3 and d["agent_obs_dims"] == [7, 7, 7]
    json.dumps(d)  # plain data
    commit = git_commit()
    assert commit is None or len(commit) == 40


def test_run_json_round_trip(tmp_path):
    write_json_atomic(tmp_path / "run.json", {"status": "running", "env_steps": 3})
    assert read_run_json(tmp_path) == {"status": "running", "env_steps": 3}
    assert not list(tmp_path.glob(".*tmp"))
    with pytest.raises(FileNotFoundError, match="not a training run directory"):
        read_run_json(tmp_path / "nope")
