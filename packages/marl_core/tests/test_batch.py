from __future__ import annotations

import numpy as np
import pytest
import torch

from mmsa_marl_core import Batch


def test_batch_checks_shapes_and_moves():
    t, b = 5, 4
    ok = dict(
        obs=torch.zeros(t + 1, b, 3, 7),
        state=torch.zeros(t + 1, b, 11),
        avail_actions=torch.ones(t + 1, b, 3, 6, dtype=torch.bool),
        action=torch.zeros(t, b, 3, dtype=torch.int64),
        reward=torch.zeros(t, b),
        terminated=torch.zeros(t, b),
        mask=torch.ones(t, b),
        indices=np.arange(b),
    )
    batch = Batch(**ok)
    moved = batch.to("cpu")
    assert moved.obs.device.type == "cpu" and moved.max_t == t and moved.batch_size == b
    with pytest.raises(ValueError, match="Batch.reward"):
        Batch(**dict(ok, reward=torch.zeros(t + 1, b)))
