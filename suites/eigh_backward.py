"""Eigendecomposition backward passes v1, v2, v3 and final (seed 004, DDN) against autograd
through `torch.linalg.eigh`: forward and backward timed separately, with peak memory each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from eigenbench.eigcheck import validate_eigenvectors, validate_gradient
from eigenbench.inputs import generator, torch_dtype
from eigenbench.ops.eigh_backward import VARIANTS
from eigenbench.solver_costs import FLOAT64_FACTOR, torch_cuda_eigh_s, torch_eigh_prior
from eigenbench.spec import (
    ITEMSIZE,
    CallEstimate,
    Cost,
    Impl,
    Params,
    Suite,
    Validation,
    Workload,
)

BOTH = frozenset({"cpu", "cuda"})


def make_inputs(params: Params, device: str, dtype: str, seed: int) -> dict[str, torch.Tensor]:
    """Symmetric matrices (random Gaussian, or with an exactly repeated eigenvalue) and the
    weights of a sign-invariant loss J = Σ_b Σ_k w_k y_kᵀ C y_k."""
    b, n = int(params["batch"]), int(params["n"])
    g = generator(seed)
    if params.get("spectrum", "random") == "repeated":
        q, _ = torch.linalg.qr(torch.randn(b, n, n, generator=g, dtype=torch.float64))
        lam = torch.arange(1, n + 1, dtype=torch.float64)
        lam[1] = lam[0]  # λ₀ = λ₁ exactly
        x = (q * lam) @ q.mT
        x = 0.5 * (x + x.mT)
    else:
        x = torch.randn(b, n, n, generator=g, dtype=torch.float64)
        x = 0.5 * (x + x.mT)
    c = torch.randn(n, n, generator=g, dtype=torch.float64)
    w = torch.rand(n, generator=g, dtype=torch.float64)
    t = torch_dtype(dtype)
    return {"x": x.to(device, t), "c": (0.5 * (c + c.T)).to(device, t), "w": w.to(device, t)}


def loss_of(y: torch.Tensor, c: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Σ w_k y_kᵀ C y_k: invariant to each eigenvector's sign, so any solver can be compared."""
    return (w * torch.einsum("...ik,ij,...jk->...k", y, c, y)).sum()


def bind(impl: Impl, inputs: dict[str, torch.Tensor], phase: str) -> Callable[[], Any]:
    """fwd: Y = f(X) with X requiring grad (as in training). bwd: the gradient of J into X,
    through a graph built once and kept (retain_graph), so only the backward pass is timed."""
    x = inputs["x"].detach().requires_grad_(True)
    f = impl.fn
    if phase == "fwd":
        return lambda: f(x)
    loss = loss_of(f(x), inputs["c"], inputs["w"])
    return lambda: torch.autograd.grad(loss, x, retain_graph=True)[0]


def reference(inputs: dict[str, torch.Tensor], params: Params, phase: str) -> Any:
    """fwd: the matrices (for residual checks). bwd: dJ/dX by float64 autograd through eigh."""
    x64 = inputs["x"].detach().to("cpu", torch.float64).requires_grad_(True)
    if phase == "fwd":
        return ("matrices", x64.detach())
    c, w = (inputs[k].detach().to("cpu", torch.float64) for k in ("c", "w"))
    _, y = torch.linalg.eigh(0.5 * (x64 + x64.mT))
    return ("gradient", torch.autograd.grad(loss_of(y, c, w), x64)[0])


def validate(output: Any, expected: Any, params: Params, dtype: str) -> Validation:
    what, value = expected
    if what == "gradient":
        return validate_gradient(output, value, dtype, ties=params.get("spectrum") == "repeated")
    return validate_eigenvectors(value, output, dtype)


def variant(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    fn = VARIANTS[name]

    def call(x: torch.Tensor) -> torch.Tensor:
        return fn(x, None)

    call.__name__ = f"eigenvectors_{name}"
    return call


def small_enough_for_v1(params: Params, device: str) -> bool:
    """v1 forms one pseudo-inverse (an SVD) per eigenvalue: keep it to sizes that finish."""
    return int(params["n"]) <= (32 if device == "cpu" else 64)


def _mean_of_phases(backward_s: Callable[[int, int, str, str], float]) -> CallEstimate:
    """A per-call prior, the mean of the fwd phase (an `eigh`) and the bwd phase."""

    def prior(params: Params, device: str, dtype: str) -> float:
        b, n = int(params["batch"]), int(params["n"])
        return 0.5 * (torch_eigh_prior(params, device, dtype) + backward_s(b, n, device, dtype))

    return prior


def _f64(device: str, dtype: str) -> float:
    return FLOAT64_FACTOR[device] if dtype == "float64" else 1.0


def closed_form_bwd_s(b: int, n: int, device: str, dtype: str) -> float:
    """v3, final, autograd through eigh: a few batched matmuls (CPU: 2-core VM, b = 5)."""
    if device == "cuda":
        return 3e-4 + b * n**3 * 1e-13
    return _f64(device, dtype) * (2e-4 + b * n**3 * 1e-10)


def v2_bwd_s(b: int, n: int, device: str, dtype: str) -> float:
    """A loop over the n eigenvalues, each forming P_k = Y diag(L_k) Yᵀ."""
    per_k = 8e-5 + b * n**3 * 1e-13 if device == "cuda" else 5e-5 + b * n**3 * 2e-11
    return n * per_k * _f64(device, dtype)


def v1_bwd_s(b: int, n: int, device: str, dtype: str) -> float:
    """A loop over the n eigenvalues, each a batched pinv (an SVD); on CUDA a per-matrix
    loop for n > 32, at about twice torch's eigh loop per matrix."""
    if device == "cuda":
        per_k = 3e-4 + (b * 3e-6 if n <= 32 else 2 * torch_cuda_eigh_s(b, n, dtype))
    else:
        per_k = 1e-4 + b * 1.1e-4 * (n / 32) ** 2.3 * _f64(device, dtype)
    return n * per_k


def eigh_backward_cost(params: Params, dtype: str) -> Cost:
    """A lower bound valid for both phases (a cost model sees no phase), per matrix:
    8/3·n³ flops. fwd: an eigendecomposition with eigenvectors at least tridiagonalises
    (4/3·n³) and forms the orthogonal factor (4/3·n³) (Golub & Van Loan, Matrix Computations,
    4th ed., §5.1.6 and §8.3.1; the tridiagonal QR's rotations, ≈ 6n³ more, are left out).
    bwd: the closed form X̄ = V (F ∘ VᵀV̄) Vᵀ is three n×n products, 6n³ ≥ 8/3·n³ (the loss's
    own gradient is not counted). Bytes, either phase: at least the input matrices read and
    one n×n result written per matrix, plus n eigenvalues: batch·(2n² + n) values."""
    batch, n = int(params["batch"]), int(params["n"])
    return Cost(flops=batch * 8 / 3 * n**3, bytes=batch * (2 * n * n + n) * ITEMSIZE[dtype])


CPU_POINTS = [{"batch": 5, "n": n, "spectrum": "random"} for n in (8, 16, 32, 64, 128)]
EIGH_BACKWARD = Workload(
    name="eigh_backward",
    description="Eigenvectors of ½(X+Xᵀ): forward, and backward of a sign-invariant loss",
    impls=(
        Impl(
            "v1",
            variant("v1"),
            devices=BOTH,
            when=small_enough_for_v1,
            description="pseudo-inverse of S − λ_k I per eigenvalue",
            expected_invalid=(
                "seed 004's v1, wrong on purpose in float32: pinv's 1e-15 relative cutoff keeps "
                "the ~1e-7·‖S‖ rounding of S − λ_k I's zero singular value, so its float32 "
                "gradients are off by orders of magnitude"
            ),
            call_estimate_s=_mean_of_phases(v1_bwd_s),
        ),
        Impl(
            "v2",
            variant("v2"),
            devices=BOTH,
            description="loop over eigenvalues",
            call_estimate_s=_mean_of_phases(v2_bwd_s),
        ),
        Impl("v3", variant("v3"), devices=BOTH, description="vectorised over eigenvalues"),
        Impl("final", variant("final"), devices=BOTH, description="single expression"),
        Impl("eigh", variant("eigh"), devices=BOTH, description="autograd through eigh"),
    ),
    make_inputs=make_inputs,
    reference=reference,
    validate=validate,
    bind=bind,
    phases=("fwd", "bwd"),
    dtypes=("float32", "float64"),
    grid=[*CPU_POINTS, {"batch": 5, "n": 8, "spectrum": "repeated"}],
    quick_grid=[{"batch": 5, "n": 32, "spectrum": "random"}],
    gpu_grid=[
        {"batch": 1000, "n": 32, "spectrum": "random"},
        {"batch": 16, "n": 128, "spectrum": "random"},
        {"batch": 5, "n": 8, "spectrum": "repeated"},
    ],
    reference_impl="final",
    cost=eigh_backward_cost,
    call_estimate_s=_mean_of_phases(closed_form_bwd_s),  # priors until a GPU baseline exists
)

SUITE = Suite(name="eigh_backward", description=__doc__.splitlines()[0], workloads=(EIGH_BACKWARD,))
