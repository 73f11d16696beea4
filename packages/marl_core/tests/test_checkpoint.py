from __future__ import annotations

import logging

import pytest
import torch

from mmsa_marl_core.training.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    check_fingerprint,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)


def test_atomic_save_keeps_last_k(tmp_path):
    for steps in (5, 40, 300, 1000):
        save_checkpoint(tmp_path, steps, {"x": torch.tensor([steps])}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_300.pt", "step_1000.pt"]
    assert not list(tmp_path.glob("*.tmp"))  # no temp files left behind
    payload = load_checkpoint(tmp_path / "step_1000.pt")
    assert payload["x"].item() == 1000 and payload["format"] == 1


def test_corrupt_latest_falls_back_and_says_so(tmp_path, caplog):
    save_checkpoint(tmp_path, 10, {"x": torch.tensor([10])}, keep=3)
    good = (tmp_path / "step_10.pt").read_bytes()
    path = save_checkpoint(tmp_path, 20, {"x": torch.tensor([20])}, keep=3)
    path.write_bytes(path.read_bytes()[:50])  # torn file
    with caplog.at_level(logging.WARNING, logger="mmsa_marl_core"):
        found = latest_checkpoint(tmp_path)
    assert found is not None and found[0].name == "step_10.pt" and found[1]["x"].item() == 10
    assert "step_20.pt is unreadable" in caplog.text and "falling back" in caplog.text
    assert (tmp_path / "step_10.pt").read_bytes() == good  # untouched
    with pytest.raises(CheckpointError, match="step_20.pt is unreadable"):
        load_checkpoint(path)
    (tmp_path / "step_10.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no readable checkpoint"):
        latest_checkpoint(tmp_path)
    assert latest_checkpoint(tmp_path / "none") is None


def test_weights_only_refuses_pickled_code(tmp_path):
    import fractions

    path = tmp_path / "step_1.pt"
    # any class outside torch's allow-list is refused by weights_only=True
    torch.save({"format": 1, "obj": fractions.Fraction(1, 3)}, path)
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(path)


def test_fingerprint_mismatch_names_keys(tmp_path):
    stored = {"env": "dummy", "algo_config": {"lr": 0.1, "hidden": 8}, "shape": (3, 7)}
    check_fingerprint(stored, {"env": "dummy", "algo_config": {"lr": 0.1, "hidden": 8},
                               "shape": [3, 7]}, tmp_path)  # fmt: skip
    with pytest.raises(CheckpointMismatchError, match="algo_config.hidden: checkpoint has 8"):
        check_fingerprint(stored, {"env": "dummy", "algo_config": {"lr": 0.1, "hidden": 9},
                                   "shape": [3, 7]}, tmp_path)  # fmt: skip
