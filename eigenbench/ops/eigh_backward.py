"""Differentiable eigenvectors of symmetric matrices, with four hand-written backward passes.

Seed 004 (DDN tutorial 13) derives them; the suite times each against autograd through
`torch.linalg.eigh`. Every variant returns the eigenvectors of S = ½(X + Xᵀ), sorted by
ascending eigenvalue: all M of them, or with `top_k` the k belonging to the largest eigenvalues
(the last k columns). The forward is the same everywhere (eigh under `no_grad`); only the
backward differs.

The maths (S = Y Λ Yᵀ, G = ∂J/∂Y_K the incoming gradient of the K returned columns):

    P_k = (S − λ_k I)⁺ = Σ_{j: |λ_j − λ_k| ≥ eps} y_j y_jᵀ / (λ_j − λ_k)
    A   = −Σ_{k ∈ top-K} P_k g_k y_kᵀ        and every variant returns ∂J/∂X = ½(A + Aᵀ).

- v1: P_k by `torch.linalg.pinv(S − λ_k I)`, one batched SVD per k (a loop).
- v2: P_k = Y diag(L_k) Yᵀ with L_k[j] = 1/(λ_j − λ_k), formed per k (a loop, O(K·M³)).
- v3: all k at once: row k of W is (P_k g_k)ᵀ, W = (L ∘ GᵀY) Yᵀ, A = −(Y_K W)ᵀ.
- final: one expression B = Y (L̃ ∘ YᵀG) Y_Kᵀ with L̃[j, k] = 1/(λ_k − λ_j); B equals A.
- eigh: no custom backward; autograd through ½(X + Xᵀ), `torch.linalg.eigh` and the slice.

Gaps |λ_j − λ_k| < eps (default `EPS` = 1e-9, the class attribute `eps`) count as ties and
contribute nothing, so repeated eigenvalues give finite gradients, where torch's own eigh
backward divides by zero. v1 applies eps as pinv's absolute cutoff and keeps the relative
cutoff of `torch.pinverse` (1e-15, DDN's choice): in float32 the computed zero singular value
of S − λ_k I is about 1e-7·‖S‖, far above both, so v1's float32 gradients are wrong by orders
of magnitude. That is the known behaviour of this variant, kept on purpose (the suite records
it); never use v1 as a float32 reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

EPS = 1.0e-9
"""Two eigenvalues closer than this are treated as equal (their pair contributes nothing)."""

V1_PINV_RTOL = 1.0e-15
"""Relative singular-value cutoff of v1's pinv: `torch.pinverse`'s default rcond, as in DDN."""

Variant = Callable[[torch.Tensor, "int | None"], torch.Tensor]
_Grads = tuple[torch.Tensor, None, None, None]


def _check_input(X: Any, top_k: Any, where: str) -> int:
    """Raise on bad input; return K, the number of eigenvectors to return."""
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"{where}: expected a torch.Tensor, got {type(X).__name__}")
    if X.ndim < 2 or X.shape[-1] != X.shape[-2]:
        raise ValueError(f"{where}: expected square matrices (… × M × M), got {tuple(X.shape)}")
    if X.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{where}: expected float32 or float64, got {X.dtype}")
    m = X.shape[-1]
    if top_k is None:
        return m
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise TypeError(f"{where}: top_k must be an int or None, got {type(top_k).__name__}")
    if not 1 <= top_k <= m:
        raise ValueError(f"{where}: top_k must be in 1..{m} for {m}×{m} matrices, got {top_k}")
    return top_k


def _check_eps(eps: Any, where: str) -> float:
    # eps > 0, so that each eigenvalue's zero gap to itself is always masked.
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not eps > 0:
        raise ValueError(f"{where}: eps must be a number > 0, got {eps!r}")
    return float(eps)


def _sym(X: torch.Tensor) -> torch.Tensor:
    return 0.5 * (X + X.mT)


def _eigh_no_grad(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """S = ½(X + Xᵀ) and its eigen-decomposition (λ ascending), outside autograd."""
    with torch.no_grad():
        S = _sym(X)
        lmd, Y = torch.linalg.eigh(S)
    return S, lmd, Y


def _masked_reciprocal(gaps: torch.Tensor, eps: float) -> torch.Tensor:
    """1/gap, with 0 where |gap| < eps (ties, and each eigenvalue against itself)."""
    return torch.where(gaps.abs() < eps, 0.0, gaps.reciprocal())  # 1/0 = inf is discarded


def _top(Y: torch.Tensor, k: int) -> torch.Tensor:
    return Y[..., Y.shape[-1] - k :]


class _EigenvectorsFunction(torch.autograd.Function):
    """Shared forward: eigenvectors of ½(X + Xᵀ) (the top k, or all); subclasses add backward."""

    eps = EPS
    saves_s = False

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx, X: torch.Tensor, k: int, eps: float, save_s: bool
    ) -> torch.Tensor:
        S, lmd, Y = _eigh_no_grad(X)
        ctx.eps = eps  # type: ignore[attr-defined]
        if save_s:
            ctx.save_for_backward(S, lmd, Y)
        else:
            ctx.save_for_backward(lmd, Y)
        return _top(Y, k)

    @classmethod
    def run(cls, X: torch.Tensor, top_k: int | None = None, eps: float | None = None) -> Any:
        """Validate, then `apply`: eigenvectors of ½(X + Xᵀ), differentiable by this variant."""
        name = cls.__name__
        k = _check_input(X, top_k, name)
        return cls.apply(X, k, _check_eps(cls.eps if eps is None else eps, name), cls.saves_s)


class EigenvectorsV1(_EigenvectorsFunction):
    """Backward by an explicit pseudo-inverse of S − λ_k I per returned eigenvector (a loop)."""

    saves_s = True

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, G: torch.Tensor) -> _Grads:  # type: ignore[override]
        S, lmd, Y = ctx.saved_tensors
        m, k_count = Y.shape[-1], G.shape[-1]
        eye = torch.eye(m, dtype=S.dtype, device=S.device)
        A = torch.zeros_like(S)
        for i in range(k_count):
            k = m - k_count + i
            shifted = S - lmd[..., k, None, None] * eye
            P = torch.linalg.pinv(shifted, atol=ctx.eps, rtol=V1_PINV_RTOL)
            w = -(P @ G[..., i : i + 1])  # … × M × 1
            A = A + w @ Y[..., k : k + 1].mT
        return _sym(A), None, None, None


class EigenvectorsV2(_EigenvectorsFunction):
    """Backward with P_k = Y diag(L_k) Yᵀ formed explicitly per returned eigenvector (a loop)."""

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, G: torch.Tensor) -> _Grads:  # type: ignore[override]
        lmd, Y = ctx.saved_tensors
        m, k_count = Y.shape[-1], G.shape[-1]
        A = torch.zeros_like(Y)
        for i in range(k_count):
            k = m - k_count + i
            L_k = _masked_reciprocal(lmd - lmd[..., k : k + 1], ctx.eps)  # … × M
            P = (Y * L_k.unsqueeze(-2)) @ Y.mT
            w = -(P @ G[..., i : i + 1])
            A = A + w @ Y[..., k : k + 1].mT
        return _sym(A), None, None, None


class EigenvectorsV3(_EigenvectorsFunction):
    """Backward for all returned eigenvectors at once: W = (L ∘ GᵀY) Yᵀ, A = −(Y_K W)ᵀ."""

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, G: torch.Tensor) -> _Grads:  # type: ignore[override]
        lmd, Y = ctx.saved_tensors
        k_count = G.shape[-1]
        lmd_k = _top(lmd, k_count)
        L = _masked_reciprocal(lmd.unsqueeze(-2) - lmd_k.unsqueeze(-1), ctx.eps)  # … × K × M
        W = (L * (G.mT @ Y)) @ Y.mT  # … × K × M, row k = (P_k g_k)ᵀ
        A = -(_top(Y, k_count) @ W).mT
        return _sym(A), None, None, None


class EigenvectorsFinal(_EigenvectorsFunction):
    """Backward as one expression: ½(B + Bᵀ) with B = Y (L̃ ∘ YᵀG) Y_Kᵀ."""

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, G: torch.Tensor) -> _Grads:  # type: ignore[override]
        lmd, Y = ctx.saved_tensors
        k_count = G.shape[-1]
        lmd_k = _top(lmd, k_count)
        L = _masked_reciprocal(lmd_k.unsqueeze(-2) - lmd.unsqueeze(-1), ctx.eps)  # … × M × K
        B = Y @ (L * (Y.mT @ G)) @ _top(Y, k_count).mT
        return _sym(B), None, None, None


def eigh_autograd(X: torch.Tensor, top_k: int | None = None) -> torch.Tensor:
    """Reference: autograd through ½(X + Xᵀ), `torch.linalg.eigh` and the top-k slice."""
    k = _check_input(X, top_k, "eigh_autograd")
    _, Y = torch.linalg.eigh(_sym(X))
    return _top(Y, k)


def _variant(fn: type[_EigenvectorsFunction]) -> Variant:
    def call(X: torch.Tensor, top_k: int | None = None) -> torch.Tensor:
        return fn.run(X, top_k)  # type: ignore[no-any-return]

    call.__name__ = fn.__name__
    call.__doc__ = fn.__doc__
    return call


FUNCTIONS: dict[str, type[_EigenvectorsFunction]] = {
    "v1": EigenvectorsV1,
    "v2": EigenvectorsV2,
    "v3": EigenvectorsV3,
    "final": EigenvectorsFinal,
}

VARIANTS: dict[str, Variant] = {
    **{name: _variant(fn) for name, fn in FUNCTIONS.items()},
    "eigh": eigh_autograd,
}
"""Each maps (X, top_k) to the eigenvectors of ½(X + Xᵀ); they differ only in the backward."""


def eigenvectors(
    X: torch.Tensor,
    top_k: int | None = None,
    *,
    variant: str = "final",
    eps: float | None = None,
) -> torch.Tensor:
    """Eigenvectors of ½(X + Xᵀ) (… × M × K, ascending eigenvalue), differentiable by `variant`.

    `eps` overrides the tie tolerance (default `EPS`); the "eigh" variant has no tolerance.
    """
    if variant not in VARIANTS:
        raise ValueError(
            f"eigenvectors: unknown variant {variant!r}; expected one of {list(VARIANTS)}"
        )
    if variant == "eigh":
        if eps is not None:
            raise ValueError("eigenvectors: variant 'eigh' has no tie tolerance; leave eps unset")
        return eigh_autograd(X, top_k)
    return FUNCTIONS[variant].run(X, top_k, eps)  # type: ignore[no-any-return]
