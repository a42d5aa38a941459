"""Fixtures of the evaluation tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run each test's torch work on one thread, then restore the setting.

    The models here are tiny, so intra-op threads buy nothing, and on a small shared machine they wait
    on each other (a matmul ran 6× slower on 2 threads than on 1 with other jobs on the cores).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
