"""torch `eigh` against CuPy's solver through DLPack (zero copy), and a k-th-eigenvalue
autograd function on either backend (seed 002), at the seed shape 500 × 100 × 100."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from eigenbench.eigcheck import sym64, validate_eigenvectors, validate_gradient
from eigenbench.inputs import symmetric_batch
from eigenbench.solver_costs import cupy_eigh_prior, torch_affordable, torch_eigh_prior
from eigenbench.spec import ITEMSIZE, Cost, Impl, Params, Suite, Validation, Workload
from eigenbench.validate import within_tolerance

BOTH = frozenset({"cpu", "cuda"})
CUDA = frozenset({"cuda"})


def make_inputs(params: Params, device: str, dtype: str, seed: int) -> torch.Tensor:
    return symmetric_batch(
        int(params["batch"]), int(params["n"]), device=device, dtype=dtype, seed=seed
    )


def cupy_eigh(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from eigenbench.ops.cupy_bridge import cupy_eigh as bridge

    return bridge(a)


def validate_eigh(output: Any, expected: Any, params: Params, dtype: str) -> Validation:
    """Eigenvalues against LAPACK float64, then the eigenvectors' residual and orthogonality."""
    w, q = output
    values = within_tolerance("numpy.linalg.eigvalsh float64")(w, expected[1], params, dtype)
    if not values.ok:
        return values
    return validate_eigenvectors(expected[0], q, dtype)


def eigh_reference(a: torch.Tensor, params: Params, phase: str) -> Any:
    a64 = sym64(a)
    return a64, np.linalg.eigvalsh(a64.numpy())


def eigh_cost(params: Params, dtype: str) -> Cost:
    """Per matrix, the symmetric QR algorithm with eigenvectors: ≈ 9n³ flops (Golub & Van
    Loan, Matrix Computations, 4th ed., §8.3.6: 4n³/3 to tridiagonalise plus accumulating the
    rotations and back-transforming the vectors); divide and conquer can do fewer on some
    spectra, so this is the textbook count, not a proven minimum. Bytes: the batch read once
    (batch·n²) and the eigenvalues and eigenvectors written (batch·(n² + n))."""
    batch, n = int(params["batch"]), int(params["n"])
    return Cost(flops=batch * 9.0 * n**3, bytes=batch * (2 * n * n + n) * ITEMSIZE[dtype])


EIGH = Workload(
    name="eigh",
    description="Eigenvalues and eigenvectors of a batch of symmetric matrices",
    impls=(
        Impl("torch", torch.linalg.eigh, devices=BOTH, when=torch_affordable),
        Impl("cupy", cupy_eigh, devices=CUDA, requires=("cupy",), call_estimate_s=cupy_eigh_prior),
    ),
    make_inputs=make_inputs,
    reference=eigh_reference,
    validate=validate_eigh,
    cost=eigh_cost,
    grid=[{"batch": 100, "n": 100}, {"batch": 500, "n": 100}],
    quick_grid=[{"batch": 20, "n": 33}],
    gpu_grid=[{"batch": b, "n": 100} for b in (10, 100, 500, 2000)]
    + [{"batch": 500, "n": n} for n in (32, 33, 256)],
    call_estimate_s=torch_eigh_prior,  # priors (see eigenbench.solver_costs) until a GPU baseline
)


def kth_of(backend: str) -> Callable[[torch.Tensor, int], torch.Tensor]:
    def kth(a: torch.Tensor, k: int) -> torch.Tensor:
        from eigenbench.ops.cupy_bridge import kth_eigvalsh

        return kth_eigvalsh(a, k, backend)

    return kth


def torch_eigvalsh_kth(a: torch.Tensor, k: int) -> torch.Tensor:
    """The plain way: all eigenvalues by torch, then index (autograd through eigvalsh)."""
    return torch.linalg.eigvalsh(a)[..., k]


def k_of(params: Params) -> int:
    return int(params["n"]) // 2


def bind_kth(impl: Impl, a: torch.Tensor, phase: str) -> Callable[[], Any]:
    """fwd: λ_k of a tensor that needs no gradient (eigenvalues only). fwd_bwd: λ_k and the
    gradient of their sum, what one training step costs."""
    k, f = a.shape[-1] // 2, impl.fn
    if phase == "fwd":
        x = a.detach()
        return lambda: f(x, k)
    x = a.detach().requires_grad_(True)
    return lambda: torch.autograd.grad(f(x, k).sum(), x)[0]


def kth_reference(a: torch.Tensor, params: Params, phase: str) -> Any:
    """λ_k by LAPACK in float64, or its gradient q_k q_kᵀ."""
    w, q = np.linalg.eigh(sym64(a).numpy())
    k = k_of(params)
    if phase == "fwd":
        return ("value", w[..., k])
    qk = q[..., :, k]
    return ("gradient", qk[..., :, None] * qk[..., None, :])


def validate_kth(output: Any, expected: Any, params: Params, dtype: str) -> Validation:
    what, value = expected
    if what == "gradient":
        return validate_gradient(output, torch.from_numpy(value), dtype)
    return within_tolerance("numpy.linalg.eigh float64")(output, value, params, dtype)


def kth_cost(params: Params, dtype: str) -> Cost:
    """A lower bound valid for both phases, per matrix: 4/3·n³ flops, the Householder
    tridiagonalisation that any dense route to λ_k (bisection or QR on the tridiagonal) goes
    through (Golub & Van Loan, Matrix Computations, 4th ed., §8.3.1, §8.4.1); bisection's
    O(n) per eigenvalue and fwd_bwd's q_k q_kᵀ (O(n²)) are left out. Bytes: the batch read
    once (batch·n² values) and one value written per matrix."""
    batch, n = int(params["batch"]), int(params["n"])
    return Cost(flops=batch * 4 / 3 * n**3, bytes=batch * (n * n + 1) * ITEMSIZE[dtype])


KTH = Workload(
    name="kth_eigenvalue",
    description="λ_k (k = n/2) with backward q_k q_kᵀ: CuPy or torch solver, vs eigvalsh",
    impls=(
        Impl("torch_eigvalsh", torch_eigvalsh_kth, devices=BOTH, when=torch_affordable),
        Impl("kth_torch", kth_of("torch"), devices=BOTH, when=torch_affordable),
        Impl(
            "kth_cupy",
            kth_of("cupy"),
            devices=CUDA,
            requires=("cupy",),
            call_estimate_s=cupy_eigh_prior,
        ),
    ),
    make_inputs=make_inputs,
    reference=kth_reference,
    validate=validate_kth,
    bind=bind_kth,
    cost=kth_cost,
    phases=("fwd", "fwd_bwd"),
    grid=[{"batch": 500, "n": 100}],
    quick_grid=[{"batch": 20, "n": 33}],
    gpu_grid=[{"batch": 500, "n": 100}, {"batch": 500, "n": 30}],
    call_estimate_s=torch_eigh_prior,  # the fwd and fwd_bwd phases alike: a rough prior
)

SUITE = Suite(name="eigh_cupy", description=__doc__.splitlines()[0], workloads=(EIGH, KTH))
