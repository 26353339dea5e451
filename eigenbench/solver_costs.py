"""Batched symmetric eigensolvers: where torch's CUDA loop is affordable, and rough costs.

torch ≤ 2.11 solves a CUDA batch of n > 32 symmetric matrices one matrix at a time (one
cuSOLVER call per matrix), while CuPy's batched `eigh`/`eigvalsh` is one `syevjBatched` call
for any n. `torch_affordable` is the shape rule the suites give torch's CUDA impls (`when=`)
so that a GPU run stays within minutes; the `*_eigh_s` functions are per-call priors for
`eigenbench plan` (`Workload.call_estimate_s`).

The CUDA figures are estimates for an H100, not measurements: priors until a GPU baseline
exists. The CPU figures were measured on the 2-core CI VM (torch 2.13, best of 5 calls).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from eigenbench.spec import Params

TORCH_BATCHED_MAX_N = 32
"""Largest n that torch solves as one batched (syevj) call on CUDA."""

TORCH_CUDA_LOOP_S: Mapping[str, Mapping[int, float]] = {
    "float32": {33: 0.9e-3, 64: 0.9e-3, 100: 1.6e-3, 256: 4.8e-3, 512: 11.8e-3},
    "float64": {64: 3.7e-3, 128: 4.7e-3},
}
"""Seconds per matrix of torch's per-matrix cuSOLVER loop (n > 32), by dtype and n."""

CUPY_SYEVJ_S: Mapping[int, float] = {32: 0.07e-3, 100: 0.10e-3, 256: 0.15e-3, 512: 0.23e-3}
"""Seconds per matrix of CuPy's `syevjBatched` (float32), by n."""

CUDA_CALL_S = 0.3e-3
"""Fixed cost of one batched CUDA solver call (launches, workspace, DLPack, sync)."""

CPU_PER_MATRIX_S = (2e-6, 2.2e-4, 2.3)
"""CPU LAPACK per matrix ≈ a + b·(n/100)^c seconds (float32; torch, NumPy and SciPy agree
within 1.6× at 100 matrices of n = 8…128)."""

FLOAT64_FACTOR = {"cpu": 1.3, "cuda": 2.0}
"""float64 against float32 where no float64 figure is given."""


def torch_affordable(params: Params, device: str) -> bool:
    """Whether torch's batched eigensolver finishes in seconds at this shape on `device`:
    always on the CPU; on CUDA batched (n ≤ 32), or a per-matrix loop of ≤ 500 matrices of
    n ≤ 128 (the seed's 500 × 100 × 100 included)."""
    n, batch = int(params["n"]), int(params["batch"])
    return device != "cuda" or n <= TORCH_BATCHED_MAX_N or (batch <= 500 and n <= 128)


def loglog(table: Mapping[int, float], n: float) -> float:
    """Interpolate a table of positive values linearly in log n and log value; beyond its ends
    the nearest segment's slope (a single point is a constant)."""
    xs = sorted(table)
    if len(xs) == 1:
        return table[xs[0]]
    i = 1
    while i < len(xs) - 1 and n > xs[i]:
        i += 1
    (x0, x1), (y0, y1) = (xs[i - 1], xs[i]), (table[xs[i - 1]], table[xs[i]])
    slope = math.log(y1 / y0) / math.log(x1 / x0)
    return y0 * (n / x0) ** slope


def _scaled(seconds: float, device: str, dtype: str) -> float:
    return seconds * (FLOAT64_FACTOR[device] if dtype == "float64" else 1.0)


def cpu_eigh_s(batch: int, n: int, dtype: str) -> float:
    """One LAPACK call per matrix on the CPU."""
    a, b, c = CPU_PER_MATRIX_S
    return 2e-5 + batch * _scaled(a + b * (n / 100) ** c, "cpu", dtype)


def torch_cuda_eigh_s(batch: int, n: int, dtype: str) -> float:
    """torch on CUDA: one batched call for n ≤ 32, else its per-matrix loop."""
    if n <= TORCH_BATCHED_MAX_N:
        return CUDA_CALL_S + batch * _scaled(3e-6 * (n / 32) ** 2, "cuda", dtype)
    table = TORCH_CUDA_LOOP_S.get(dtype)
    if table is None:
        return batch * loglog(TORCH_CUDA_LOOP_S["float32"], n)
    return batch * loglog(table, n)


def cupy_eigh_s(batch: int, n: int, dtype: str) -> float:
    """CuPy's one `syevjBatched` call."""
    return CUDA_CALL_S + batch * _scaled(loglog(CUPY_SYEVJ_S, n), "cuda", dtype)


def torch_eigh_prior(params: Params, device: str, dtype: str) -> float:
    """Prior of torch's `eigh`/`eigvalsh` of `batch` n×n matrices on `device`."""
    batch, n = int(params["batch"]), int(params["n"])
    if device == "cuda":
        return torch_cuda_eigh_s(batch, n, dtype)
    return cpu_eigh_s(batch, n, dtype)


def cupy_eigh_prior(params: Params, device: str, dtype: str) -> float:
    """Prior of CuPy's batched `eigh`/`eigvalsh` (CUDA only)."""
    return cupy_eigh_s(int(params["batch"]), int(params["n"]), dtype)
