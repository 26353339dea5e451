"""Shared test setup: GPU-marked tests skip cleanly on machines without CUDA or CuPy."""

from __future__ import annotations

import importlib.util

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
HAS_CUPY = HAS_CUDA and importlib.util.find_spec("cupy") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gpu = pytest.mark.skip(reason="needs an NVIDIA GPU with CUDA; none is available here")
    skip_cupy = pytest.mark.skip(reason="needs CuPy and a CUDA GPU; not available here")
    for item in items:
        if "gpu" in item.keywords and not HAS_CUDA:
            item.add_marker(skip_gpu)
        if "cupy" in item.keywords and not HAS_CUPY:
            item.add_marker(skip_cupy)
