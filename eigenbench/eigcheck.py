"""Checks of eigendecompositions and their gradients against float64, shared by eigen suites."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from eigenbench.spec import Validation
from eigenbench.validate import DEFAULT_RTOL, array_errors

GRAD_RTOL = {"float32": 1e-3, "float64": 1e-8}
"""Gradients through eigenvectors scale with 1/gap, so they get a looser bound than values."""


def sym64(a: torch.Tensor) -> torch.Tensor:
    """½(A + Aᵀ) in float64 on the CPU."""
    a = a.detach().to("cpu", torch.float64)
    return 0.5 * (a + a.mT)


def eigvec_errors(a: torch.Tensor, q: torch.Tensor) -> tuple[float, float]:
    """Residual ‖AQ − QΛ‖ / ‖A‖ (Λ = diag(QᵀAQ)) and orthogonality ‖QᵀQ − I‖ (max norms)."""
    a64, q64 = sym64(a), q.detach().to("cpu", torch.float64)
    lam = torch.einsum("...ik,...ij,...jk->...k", q64, a64, q64)
    scale = float(torch.linalg.matrix_norm(a64, ord=2).max()) or 1.0
    residual = float((a64 @ q64 - q64 * lam.unsqueeze(-2)).abs().max()) / scale
    k = q64.shape[-1]
    ortho = float((q64.mT @ q64 - torch.eye(k, dtype=torch.float64)).abs().max())
    return residual, ortho


def validate_eigenvectors(a: torch.Tensor, q: torch.Tensor, dtype: str) -> Validation:
    """Eigenvectors are right when their residual and orthogonality are at rounding level."""
    residual, ortho = eigvec_errors(a, q)
    n = a.shape[-1]
    tol = DEFAULT_RTOL[dtype] if dtype != "float64" else 1e-12 * n
    ok = bool(np.isfinite(residual) and residual <= tol and ortho <= tol)
    return Validation(
        ok,
        ortho,
        residual,
        "residual ‖AQ−QΛ‖/‖A‖ and ‖QᵀQ−I‖ in float64",
        f"residual {residual:.2e}, orthogonality {ortho:.2e}",
    )


def validate_gradient(grad: Any, expected: Any, dtype: str, *, ties: bool = False) -> Validation:
    """A gradient against float64 autograd, or (with exact ties) only whether it is finite."""
    g = grad.detach().to("cpu", torch.float64) if hasattr(grad, "detach") else grad
    finite = bool(torch.isfinite(torch.as_tensor(g)).all())
    if ties:
        return Validation(
            finite,
            None,
            None,
            "finiteness (eigenvalue ties: gradient undefined)",
            "gradient finite" if finite else "gradient has NaN or inf",
        )
    abs_err, rel_err = array_errors(grad, expected)
    ok = finite and rel_err <= GRAD_RTOL[dtype]
    detail = None if ok else f"gradient off by {rel_err:.2e} of its largest entry"
    return Validation(ok, abs_err, rel_err, "float64 autograd through torch.linalg.eigh", detail)
