"""SVD by gradient descent (seeds 001, 003): steps and seconds to a loss target, which seed
matrices stall, and the direct `torch.linalg.svd` for scale."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from eigenbench.inputs import generator, torch_dtype
from eigenbench.ops.svd_gd import PENALTY_SCALE, SEED_MATRICES, SVDDescent, compare_with_svd
from eigenbench.spec import ITEMSIZE, Convergence, Cost, Impl, Params, Suite, Validation, Workload

LARGER = {"rand_32x16": (32, 16), "rand_64x64": (64, 64)}


def matrix(params: Params, device: str, dtype: str, seed: int) -> torch.Tensor:
    """A seed matrix by name (regenerated exactly), or a seeded uniform one of a larger shape."""
    name = str(params["matrix"])
    if name in SEED_MATRICES:
        a = SEED_MATRICES[name]()
    else:
        a = torch.rand(LARGER[name], generator=generator(seed))
    return a.to(device, torch_dtype(dtype))


def descent(optimizer: str) -> Callable[[torch.Tensor], SVDDescent]:
    def problem(a: torch.Tensor) -> SVDDescent:
        return SVDDescent(a, optimizer=optimizer)

    return problem


TARGET = 1e-6
"""Loss at which the descent counts as solved (the seed's tolerance)."""
RECON_TOL = 1e-2
"""Relative Frobenius reconstruction error allowed (loss ≤ TARGET certifies √(mn·TARGET)/‖A‖_F,
0.2 % for the seed's 5 × 4 matrix)."""


def sv_tolerance(a: torch.Tensor, rank: int, target: float = TARGET) -> float:
    """Largest |a_k² − σ_k(A)| / σ_max(A) that factors with loss ≤ `target` can show.

    The loss bounds each penalty: mse(UᵀU − I) + mse(G_V − I) ≤ target / PENALTY_SCALE, so
    δ_U + δ_V ≤ r·√2·√(target / PENALTY_SCALE) with δ = ‖Gram − I‖₂ ≤ ‖Gram − I‖_F (r × r
    Grams; G_V is r × r too when V is square). With B = U diag(s) Vᵀ, σ_k(B) / s_k lies in
    [√((1−δ_U)(1−δ_V)), √((1+δ_U)(1+δ_V))], within ½(δ_U + δ_V) of 1 to first order, and
    |σ_k(B) − σ_k(A)| ≤ ‖B − A‖₂ ≤ √(mn·target) (Weyl). For the seed's 5 × 4 matrix at 1e-6:
    2.8e-2 + 1.9e-3. Orthonormality to ~1e-2 is all the penalised loss guarantees, so a
    tighter bound would call a solved problem wrong.
    """
    m, n = a.shape
    sigma_max = float(torch.linalg.matrix_norm(a, ord=2))
    ortho = rank * math.sqrt(2.0) * math.sqrt(target / PENALTY_SCALE) / 2
    return ortho + math.sqrt(m * n * target) / sigma_max


def validate_factors(output: Any, expected: Any, params: Params, dtype: str) -> Validation:
    """Singular values and reconstruction against float64 `torch.linalg.svd`, within what the
    loss target certifies (`sv_tolerance`, `RECON_TOL`)."""
    a, _ = expected
    cmp = compare_with_svd(a, output)
    sigma_max = float(torch.linalg.matrix_norm(a, ord=2))
    sv_err = cmp["sv_max_abs_err"] / sigma_max
    tol = sv_tolerance(a, int(output.S.shape[0]))
    recon = cmp["recon_rel_fro_err"]
    ok = sv_err <= tol and recon <= RECON_TOL
    detail = (
        f"singular values off by {sv_err:.2e} of the largest (tol {tol:.1e}), "
        f"reconstruction {recon:.2e} (tol {RECON_TOL:.0e})"
    )
    return Validation(ok, cmp["sv_max_abs_err"], sv_err, "torch.linalg.svd float64", detail)


def reference(a: torch.Tensor, params: Params, phase: str) -> tuple[torch.Tensor, torch.Tensor]:
    a64 = a.detach().to("cpu", torch.float64)
    return a64, torch.linalg.svdvals(a64)


GRID = [{"matrix": m} for m in [*SEED_MATRICES, *LARGER]]


def descent_step_s(params: Params, device: str, dtype: str) -> float:
    """Prior per optimizer step: a few dozen small kernels (CPU: the 2-core VM, 0.3-0.5 ms;
    CUDA: a guess until a GPU baseline exists)."""
    return 8e-4 if device == "cuda" else 4e-4


def svd_s(params: Params, device: str, dtype: str) -> float:
    """Prior per `torch.linalg.svd` of one small matrix (the seed's are at most 7 × 4)."""
    m, n = LARGER.get(str(params["matrix"]), (7, 4))
    return 1e-3 if device == "cuda" else 1e-5 + m * n * min(m, n) * 1.2e-9


def shape_of(params: Params) -> tuple[int, int]:
    """(m, n) of the named matrix."""
    name = str(params["matrix"])
    if name in LARGER:
        return LARGER[name]
    m, n = SEED_MATRICES[name]().shape
    return int(m), int(n)


def descent_cost(params: Params, dtype: str) -> Cost:
    """A lower bound per optimizer step (not per solve: a convergence record's summary
    times one step), rank r = min(m, n): the forward's
    products, U diag(a²) Vᵀ (2mnr flops) and the Grams UᵀU and VᵀV (2r²(m + n)); the backward,
    about twice as many, and the optimizer's O(r(m + n)) are left out. Bytes: A, U, V and a
    read once: mn + r(m + n) + r values."""
    m, n = shape_of(params)
    r = min(m, n)
    flops = 2.0 * m * n * r + 2.0 * r * r * (m + n)
    return Cost(flops=flops, bytes=(m * n + r * (m + n) + r) * ITEMSIZE[dtype])


DESCENT = Workload(
    name="svd_descent",
    description="U diag(a²) Vᵀ ≈ A by descent on reconstruction + orthonormality penalties",
    kind="convergence",
    convergence=Convergence(target=TARGET, budget_steps=20_000, budget_s=12.0),
    impls=(
        Impl(
            "sgd_momentum",
            descent("sgd"),
            devices=frozenset({"cpu", "cuda"}),
            description="the seed's SGD, lr 0.9, momentum 0.9",
        ),
        Impl(
            "adam",
            descent("adam"),
            devices=frozenset({"cpu", "cuda"}),
            description="Adam, lr 1e-3 (the seed's variant)",
        ),
    ),
    make_inputs=matrix,
    reference=reference,
    validate=validate_factors,
    grid=GRID,
    quick_grid=[{"matrix": "m1_5x4"}],
    gpu_grid=[{"matrix": "m1_5x4"}],
    cost=descent_cost,
    call_estimate_s=descent_step_s,
)


def validate_svd(output: Any, expected: Any, params: Params, dtype: str) -> Validation:
    _, s_ref = expected
    s = output[1].detach().to("cpu", torch.float64)
    err = float((s - s_ref).abs().max())
    rel = err / float(s_ref.max())
    tol = 1e-4 if dtype == "float32" else 1e-10
    return Validation(rel <= tol, err, rel, "torch.linalg.svdvals float64")


def svd_cost(params: Params, dtype: str) -> Cost:
    """A lower bound per thin SVD of an m×n matrix (p = max, q = min of m, n): the
    Golub-Kahan bidiagonalisation, 4pq² − 4q³/3 flops (Golub & Van Loan, Matrix
    Computations, 4th ed., §5.4.8); forming U and V and the bidiagonal iteration are left
    out. Bytes: A read, U (mq), S (q) and V (nq) written."""
    m, n = shape_of(params)
    p, q = max(m, n), min(m, n)
    flops = 4.0 * p * q * q - 4 / 3 * q**3
    return Cost(flops=flops, bytes=(m * n + m * q + q + n * q) * ITEMSIZE[dtype])


DIRECT = Workload(
    name="svd_direct",
    description="torch.linalg.svd of the same matrices, for scale",
    impls=(
        Impl(
            "torch_svd",
            lambda a: torch.linalg.svd(a, full_matrices=False),
            devices=frozenset({"cpu", "cuda"}),
        ),
    ),
    make_inputs=matrix,
    reference=reference,
    validate=validate_svd,
    grid=GRID,
    quick_grid=[{"matrix": "m1_5x4"}],
    cost=svd_cost,
    call_estimate_s=svd_s,
)

SUITE = Suite(name="svd_gd", description=__doc__.splitlines()[0], workloads=(DESCENT, DIRECT))
