"""Shared test setup: GPU-marked tests skip cleanly on machines without CUDA or CuPy."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

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


FAKE_PEAK = {"flop_per_s": 1e11, "bytes_per_s": 1e10}
"""Peaks the tests use instead of measuring (a real measurement takes seconds)."""


def fake_measure_device(device: str, dtypes: Iterable[str]) -> dict[str, dict[str, float]]:
    return {d: dict(FAKE_PEAK) for d in dtypes}


@pytest.fixture(autouse=True, scope="session")
def _fake_peaks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test measures this machine's peaks or writes results/peaks/: `run` (also in a
    subprocess, through $EIGENBENCH_PEAKS_DIR) finds a peaks file of fake values."""
    from eigenbench import env as envmod
    from eigenbench.measure import peaks

    root = tmp_path_factory.mktemp("peaks")
    keys = {envmod.collect(with_gpu=False)["machine_key"]}
    if HAS_CUDA:
        keys.add(envmod.collect(with_gpu=True)["machine_key"])
    fake = {dev: fake_measure_device(dev, peaks.PEAK_DTYPES) for dev in ("cpu", "cuda")}
    for key in keys:
        peaks.save_peaks(peaks.peaks_path(key, root), key, fake)
    before, real = os.environ.get(peaks.ROOT_VARIABLE), peaks.measure_device
    os.environ[peaks.ROOT_VARIABLE] = str(root)
    peaks.measure_device = fake_measure_device  # type: ignore[assignment]
    yield root
    peaks.measure_device = real  # type: ignore[assignment]
    if before is None:
        os.environ.pop(peaks.ROOT_VARIABLE, None)
    else:
        os.environ[peaks.ROOT_VARIABLE] = before


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gpu = pytest.mark.skip(reason="needs an NVIDIA GPU with CUDA; none is available here")
    skip_cupy = pytest.mark.skip(reason="needs CuPy and a CUDA GPU; not available here")
    for item in items:
        if "gpu" in item.keywords and not HAS_CUDA:
            item.add_marker(skip_gpu)
        if "cupy" in item.keywords and not HAS_CUPY:
            item.add_marker(skip_cupy)
