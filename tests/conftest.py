"""Shared settings of the cross-package tests: one torch thread per test process (the small MARL
networks run fastest on one thread, and tests running side by side do not oversubscribe)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)
