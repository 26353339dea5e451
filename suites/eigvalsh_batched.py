"""Batched symmetric eigenvalues (`eigvalsh`): torch on CPU and CUDA, NumPy, SciPy, CuPy.

Seed 002 found torch's CUDA `eigvalsh` blocking the host and slower than CuPy at
500 matrices of 100×100; torch switches algorithm between n = 32 and 33 on CUDA, so the
n sweep straddles it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from eigenbench.inputs import symmetric_batch, to_numpy64
from eigenbench.solver_costs import cupy_eigh_prior, torch_affordable, torch_eigh_prior
from eigenbench.spec import ITEMSIZE, Cost, Impl, Params, Suite, Workload
from eigenbench.validate import within_tolerance


def make_inputs(params: Params, device: str, dtype: str, seed: int) -> torch.Tensor:
    return symmetric_batch(
        int(params["batch"]), int(params["n"]), device=device, dtype=dtype, seed=seed
    )


def reference(inputs: torch.Tensor, params: Params, phase: str) -> np.ndarray:
    """Eigenvalues in float64 by LAPACK (NumPy) of the same, already-rounded matrices."""
    return np.linalg.eigvalsh(to_numpy64(inputs))


def to_numpy(inputs: torch.Tensor) -> np.ndarray:
    return inputs.cpu().numpy()


def scipy_eigvalsh(a: np.ndarray) -> np.ndarray:
    """SciPy's eigvalsh has no batch dimension: one LAPACK call per matrix."""
    from scipy.linalg import eigvalsh

    return np.stack([eigvalsh(m, check_finite=False) for m in a])


def cupy_eigvalsh(a: torch.Tensor) -> Any:
    from eigenbench.ops.cupy_bridge import cupy_eigvalsh as bridge

    return bridge(a)


def eigvalsh_cost(params: Params, dtype: str) -> Cost:
    """Per matrix, Householder tridiagonalisation: 4/3·n³ flops (Golub & Van Loan, Matrix
    Computations, 4th ed., Alg. 8.3.1 and §8.3.6: eigenvalues only ≈ 4n³/3); the tridiagonal
    QR's O(n²) is left out, so this is a lower bound. Bytes: the batch read once
    (batch·n² values) and the eigenvalues written (batch·n values)."""
    batch, n = int(params["batch"]), int(params["n"])
    return Cost(flops=batch * 4 / 3 * n**3, bytes=batch * (n * n + n) * ITEMSIZE[dtype])


SWEEP_N = [{"batch": 100, "n": n} for n in (8, 16, 32, 33, 64, 128)]
SWEEP_BATCH = [{"batch": b, "n": 100} for b in (1, 10, 100, 500)]

EIGVALSH = Workload(
    name="eigvalsh_batched",
    description="Eigenvalues of a batch of symmetric matrices",
    impls=(
        Impl(
            "torch",
            torch.linalg.eigvalsh,
            devices=frozenset({"cpu", "cuda"}),
            when=torch_affordable,
            description="on CUDA a per-matrix loop for n > 32: kept to affordable shapes",
        ),
        Impl("numpy", np.linalg.eigvalsh, prepare=to_numpy),
        Impl("scipy", scipy_eigvalsh, prepare=to_numpy, requires=("scipy",)),
        Impl(
            "cupy",
            cupy_eigvalsh,
            devices=frozenset({"cuda"}),
            requires=("cupy",),
            call_estimate_s=cupy_eigh_prior,
        ),
    ),
    make_inputs=make_inputs,
    reference=reference,
    validate=within_tolerance("numpy.linalg.eigvalsh float64"),
    grid=SWEEP_N + SWEEP_BATCH,
    quick_grid=[{"batch": 10, "n": 16}, {"batch": 10, "n": 33}],
    gpu_grid=[{"batch": 500, "n": n} for n in (16, 32, 33, 64, 100, 256, 512)]
    + [{"batch": b, "n": 100} for b in (1, 10, 100, 1000, 5000)],
    cost=eigvalsh_cost,
    call_estimate_s=torch_eigh_prior,  # priors (see eigenbench.solver_costs) until a GPU baseline
)

SUITE = Suite(name="eigvalsh_batched", description=__doc__.splitlines()[0], workloads=(EIGVALSH,))
