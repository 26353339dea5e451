"""Shared test setup: GPU-marked tests skip cleanly on machines without CUDA or CuPy."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
HAS_CUPY = HAS_CUDA and importlib.util.find_spec("cupy") is not None


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """Tests use small inputs: one intra-op thread is fastest and immune to a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gpu = pytest.mark.skip(reason="needs an NVIDIA GPU with CUDA; none is available here")
    skip_cupy = pytest.mark.skip(reason="needs CuPy and a CUDA GPU; not available here")
    for item in items:
        if "gpu" in item.keywords and not HAS_CUDA:
            item.add_marker(skip_gpu)
        if "cupy" in item.keywords and not HAS_CUPY:
            item.add_marker(skip_cupy)
