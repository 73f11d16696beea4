"""Shared test setup for mmsa_sale."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Run each test on one intra-op thread, restoring the previous count afterwards.

    The tensors here are tiny; on a shared 2-core machine extra threads only add contention
    (measured: the learning test took 0.4 s with one thread and up to 25 s with two under load).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
