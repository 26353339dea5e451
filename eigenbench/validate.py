"""Comparing a result with its float64 reference (array errors, tolerances by dtype)."""

from __future__ import annotations

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
