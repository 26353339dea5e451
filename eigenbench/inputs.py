"""Seeded input factories shared by suites: the same values on every device and impl."""

from __future__ import annotations

from typing import Any

import torch


def torch_dtype(name: str) -> torch.dtype:
    """`"float32"` → `torch.float32`, with a clear error for anything else."""
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}")
    return dtype


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def symmetric_batch(
    batch: int, n: int, *, device: str, dtype: str, seed: int, scale: float = 1.0
) -> torch.Tensor:
    """`batch` random symmetric n×n matrices (Gaussian, ½(G + Gᵀ)), made on the CPU in float64
    from `seed` and then cast and moved, so every device sees the same numbers."""
    g = torch.randn(batch, n, n, generator=generator(seed), dtype=torch.float64) * scale
    sym = 0.5 * (g + g.transpose(-1, -2))
    return sym.to(dtype=torch_dtype(dtype)).to(device)


def to_numpy64(x: Any) -> Any:
    """A float64 NumPy copy of a tensor (for references computed on the CPU)."""
    return x.detach().to("cpu", torch.float64).numpy()
