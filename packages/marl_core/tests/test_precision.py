"""`TrainConfig.precision="bf16"`: every registered learner runs its passes without gradient in
bfloat16 and everything with gradient in float32, tracks its fp32 update closely, and the
training loop applies it."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook

from mmsa_marl_core import ConfigError, config_from_dict, read_metrics, train
from mmsa_marl_core.ops.precision import update_precision

SMALL = {"agent_hidden": 12, "mixer_embed_dim": 6, "hypernet_hidden": 10}
ALGOS = ("qmix", "vdn", "mmsa", "facmac", "mmsa_continuous")  # conftest.SMALL_ALGOS


CPU = torch.device("cpu")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("algo", ALGOS)
def test_bf16_update_runs_in_bfloat16_and_tracks_fp32(algo, device, learner_and_batch):
    device = torch.device(device)
    learner, batch = learner_and_batch(algo, device)
    twin = copy.deepcopy(learner)
    outputs: set[tuple[torch.dtype, bool]] = set()

    def record(module, inputs, output):
        if isinstance(module, nn.Linear):
            outputs.add((output.dtype, output.requires_grad))

    with update_precision("fp32", device):
        full = learner.update(batch)
    hook = register_module_forward_hook(record)
    try:
        with update_precision("bf16", device):
            half = twin.update(batch)
    finally:
        hook.remove()
    assert (torch.bfloat16, False) in outputs, f"{algo}: no pass without gradient ran in bf16"
    assert (torch.float32, True) in outputs
    assert (torch.bfloat16, True) not in outputs, f"{algo}: a pass with gradient ran in bf16"
    modules = [m for m in vars(twin).values() if isinstance(m, nn.Module)]
    assert modules and {p.dtype for m in modules for p in m.parameters()} == {torch.float32}
    assert all(np.isfinite(v) for v in half.values()), half
    assert half["loss"] != full["loss"], f"{algo}: bf16 gave the fp32 loss exactly"
    assert half["loss"] == pytest.approx(full["loss"], rel=0.05), (algo, half["loss"], full["loss"])


def test_training_loop_applies_the_precision(tmp_path):
    base = {
        "env": "dummy", "steps": 300, "n_envs": 3, "batch_size": 6, "buffer_size": 40,
        "log_every": 100, "eval_every": 300, "eval_episodes": 3, "checkpoint_every": 300,
        "algo_config": SMALL,
    }  # fmt: skip
    losses = {}
    for precision in ("fp32", "bf16"):
        config = config_from_dict(base | {"precision": precision})
        train(config, tmp_path / precision, progress=False)
        lines = read_metrics(tmp_path / precision)
        losses[precision] = [x["loss"] for x in lines if x["kind"] == "train" and "loss" in x]
    assert len(losses["fp32"]) >= 2
    assert losses["fp32"] != losses["bf16"]
    np.testing.assert_allclose(losses["bf16"], losses["fp32"], rtol=0.2)


def test_unknown_precision_is_refused_by_name():
    with pytest.raises(ConfigError, match="precision='fp16' is not allowed; use one of fp32, bf16"):
        config_from_dict({"precision": "fp16"})
    with pytest.raises(ValueError, match="precision='fp8'"), update_precision("fp8", CPU):
        pass
