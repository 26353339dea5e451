"""Comparing a result with its float64 reference (array errors, tolerances by dtype)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from eigenbench.spec import Params, Validation

DEFAULT_RTOL = {"float16": 1e-2, "bfloat16": 5e-2, "float32": 1e-4, "float64": 1e-10}


def to_numpy(x: Any) -> np.ndarray:
    """A float64 NumPy copy of a torch tensor, CuPy array, NumPy array or nested sequence."""
    if hasattr(x, "detach"):  # torch
        return x.detach().to("cpu").double().numpy()
    if hasattr(x, "get") and type(x).__module__.startswith("cupy"):
        return np.asarray(x.get(), dtype=np.float64)
    return np.asarray(x, dtype=np.float64)


def array_errors(output: Any, expected: Any) -> tuple[float, float]:
    """Largest absolute error, and that error relative to the largest reference magnitude.

    The normwise relative error is what a backward-stable solver bounds; elementwise relative
    errors of eigenvalues near zero say nothing about the solver.
    """
    out, ref = to_numpy(output), to_numpy(expected)
    if out.shape != ref.shape:
        raise ValueError(f"output shape {out.shape} differs from the reference's {ref.shape}")
    if not np.all(np.isfinite(out)):
        return float("inf"), float("inf")
    abs_err = float(np.max(np.abs(out - ref))) if out.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    return abs_err, abs_err / scale if scale > 0 else abs_err


def within_tolerance(reference: str, rtol: Mapping[str, float] | None = None) -> Any:
    """A `validate` function for Workload: normwise relative error ≤ rtol[dtype]."""
    tolerances = {**DEFAULT_RTOL, **(rtol or {})}

    def validate(output: Any, expected: Any, params: Params, dtype: str) -> Validation:
        try:
            abs_err, rel_err = array_errors(output, expected)
        except ValueError as exc:
            return Validation(False, None, None, reference, detail=str(exc))
        tol = tolerances[dtype]
        detail = None if rel_err <= tol else f"relative error {rel_err:.2e} > tolerance {tol:.0e}"
        return Validation(rel_err <= tol, abs_err, rel_err, reference, detail=detail)

    return validate


UNIT_ROUNDOFF = {"float16": 2.0**-11, "bfloat16": 2.0**-8, "float32": 2.0**-24, "float64": 2.0**-53}
"""u, half the distance from 1 to the next float: the relative error of one rounding."""


def correlation_tolerance(dtype: str, n: int) -> float:
    """Largest |ρ − ρ_ref| a correct correlation of n (rank) pairs computed in `dtype` may show.

    ρ = Sxy / √(Sxx·Syy) over centred values. With pairwise (cascade) summation each sum of n
    rounded products has error ≤ γ_k·Σ|terms|, k = ⌈log₂ n⌉ + 1 and γ_k = k·u/(1 − k·u)
    (Higham, *Accuracy and Stability of Numerical Algorithms*, §4.2). Since
    Σ|x_i y_i| ≤ √(Sxx·Syy) (Cauchy–Schwarz), the error of Sxy moves ρ by at most γ_k, those of
    Sxx and Syy by |ρ|·γ_k, and the square root and division add 2u; the rounding of the
    centre moves ρ only at second order (the centred values sum to zero). So
    |Δρ| ≤ (1 + |ρ|)·γ_k + 2u ≤ 2·(⌈log₂ n⌉ + 2)·u, and the tolerance is twice that,
    4·(⌈log₂ n⌉ + 2)·u, so that a correct algorithm is never at the edge of its bound when
    BLAS or SIMD reduction orders differ between machines. The ranks themselves are exact
    (integers or half-integers, far below 2^p). float32 at n = 10⁴: 3.8e-6; at 10⁷: 6.2e-6;
    float64 at 10⁷: 1.2e-14 (float64 stays tight). A float32 correlation by recursive
    (BLAS) accumulation, whose error grows like n·u (1.3e-5 at 10⁶, 3.7e-4 at 10⁷), fails.
    """
    k = math.ceil(math.log2(max(int(n), 2)))
    return 4.0 * (k + 2) * UNIT_ROUNDOFF[dtype]


def digits_for(tol: float) -> int:
    """Decimals that show a difference of the size `tol` (at least 6, at most 17)."""
    if not tol > 0 or not math.isfinite(tol):
        return 6
    return min(17, max(6, 1 - math.floor(math.log10(tol))))


def compare_scalar(
    value: float,
    expected: float,
    tol: float,
    reference: str,
    *,
    symbol: str = "result",
    source: str = "the reference",
) -> Validation:
    """A scalar against its reference within an absolute `tol`; NaN must match NaN.

    An invalid result's detail shows both values to enough digits to see the difference, the
    difference and the tolerance, e.g. "ρ = 0.6931729, SciPy gives 0.6931731 (|Δ| 2.1e-07 >
    tol 3.8e-06)" (`symbol` "ρ", `source` "SciPy"); `reference` is what the record names.
    """
    value, expected = float(value), float(expected)
    d = digits_for(tol)
    if math.isnan(expected) or math.isnan(value):
        ok = math.isnan(expected) and math.isnan(value)
        why = "" if ok else " (NaN must match NaN)"
        detail = f"{symbol} = {value:.{d}f}, {source} gives {expected:.{d}f}{why}"
        return Validation(ok, None, None, reference, None if ok else detail)
    err = abs(value - expected)
    ok = err <= tol
    detail = (
        f"{symbol} = {value:.{d}f}, {source} gives {expected:.{d}f} (|Δ| {err:.1e} > tol {tol:.1e})"
    )
    return Validation(ok, err, err, reference, None if ok else detail)
