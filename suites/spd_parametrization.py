"""SPD parametrizations: cost of a forward+backward step, and time to fit a known SPD matrix.

Seed 000 keeps a weight SPD through W = exp(sym(X)) or W = L Lᵀ with a softplus diagonal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from eigenbench.inputs import generator, torch_dtype
from eigenbench.ops.spd import CholeskySPD, SPDFit, SymmetricExp, min_eigenvalue, random_spd
from eigenbench.spec import ITEMSIZE, Convergence, Cost, Impl, Params, Suite, Validation, Workload
from eigenbench.validate import DEFAULT_RTOL, array_errors

BOTH = frozenset({"cpu", "cuda"})


def exp_step_s(params: Params, device: str, dtype: str) -> float:
    """Prior per step of W = exp(sym(X)): Padé matmuls forward and backward (CPU: the 2-core
    VM; CUDA: a guess until a GPU baseline exists)."""
    work = int(params["batch"]) * int(params["n"]) ** 3
    return 1e-3 + work * 2e-12 if device == "cuda" else 4e-4 + work * 1.6e-9


def cholesky_step_s(params: Params, device: str, dtype: str) -> float:
    """Prior per step of W = L Lᵀ: a triangular product and its backward."""
    work = int(params["batch"]) * int(params["n"]) ** 3
    return 6e-4 + work * 2e-12 if device == "cuda" else 1.6e-4 + work * 5e-11


def fit_step_s(params: Params, device: str, dtype: str) -> float:
    """Prior per Adam step of the fit (n ≤ 32: launch-bound on CUDA)."""
    return 1.5e-3 if device == "cuda" else 5e-4


def raw_inputs(params: Params, device: str, dtype: str, seed: int) -> dict[str, torch.Tensor]:
    """A raw parameter X (batch × n × n, scaled so W is well conditioned) and a fixed
    upstream gradient G for the loss ⟨W, G⟩."""
    b, n = int(params["batch"]), int(params["n"])
    g = generator(seed)
    x = torch.randn(b, n, n, generator=g, dtype=torch.float64) / (2 * n**0.5)
    grad = torch.randn(b, n, n, generator=g, dtype=torch.float64)
    t = torch_dtype(dtype)
    return {"x": x.to(device, t), "grad": grad.to(device, t)}


def step_of(param: torch.nn.Module) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """Forward W = f(X), backward of ⟨W, G⟩ into X; returns W (the timed step)."""

    def step(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = inputs["x"].detach().requires_grad_(True)
        w = param(x)
        (w * inputs["grad"]).sum().backward()
        return w.detach()

    return step


def reference_w(inputs: dict[str, torch.Tensor], params: Params, phase: str) -> Any:
    """W in float64 on the CPU from the same raw X, for both parametrizations."""
    x = inputs["x"].detach().to("cpu", torch.float64)
    return {"symmetric_exp": SymmetricExp()(x), "cholesky": CholeskySPD()(x)}


def validate_spd(name: str) -> Callable[[Any, Any, Params, str], Validation]:
    def validate(output: Any, expected: Any, params: Params, dtype: str) -> Validation:
        abs_err, rel_err = array_errors(output, expected[name])
        lam = float(min_eigenvalue(output.detach().cpu(), dtype=torch.float64).min())
        ok = rel_err <= DEFAULT_RTOL[dtype] and lam > 0
        detail = f"smallest eigenvalue {lam:.3g}" + ("" if ok else " (not SPD or inexact)")
        return Validation(ok, abs_err, rel_err, f"{name} in float64", detail)

    return validate


def validate_step(output: Any, expected: Any, params: Params, dtype: str) -> Validation:
    """Which parametrization made `output` is told by the closer reference."""
    errors = {k: array_errors(output, v)[1] for k, v in expected.items()}
    return validate_spd(min(errors, key=errors.__getitem__))(output, expected, params, dtype)


def spd_step_cost(params: Params, dtype: str) -> Cost:
    """A lower bound per step (forward W = f(X) and the backward of ⟨W, G⟩), per matrix:
    4/3·n³ flops, what the cheaper parametrization, W = L Lᵀ, needs: the triangular product
    L Lᵀ ≈ n³/3 and its backward (G + Gᵀ) L ≈ n³ (a full by a triangular n×n product;
    Golub & Van Loan, Matrix Computations, 4th ed., §1.2, §4.2). The matrix exponential's
    Padé products cost more, so this bounds both impls from below. Bytes: X and G read,
    W and X̄ written: batch·4n² values."""
    batch, n = int(params["batch"]), int(params["n"])
    return Cost(flops=batch * 4 / 3 * n**3, bytes=batch * 4 * n * n * ITEMSIZE[dtype])


STEP = Workload(
    name="spd_step",
    description="Forward + backward of W = f(X) for a batch of n×n raw parameters",
    impls=(
        Impl("symmetric_exp", step_of(SymmetricExp()), devices=BOTH),
        Impl("cholesky", step_of(CholeskySPD()), devices=BOTH, call_estimate_s=cholesky_step_s),
    ),
    make_inputs=raw_inputs,
    reference=reference_w,
    validate=validate_step,
    grid={"batch": [1, 16], "n": [8, 32, 128]},
    quick_grid=[{"batch": 4, "n": 16}],
    gpu_grid={"batch": [1, 64], "n": [32, 128]},
    phases=("step",),
    cost=spd_step_cost,
    call_estimate_s=exp_step_s,
)


def target_spd(params: Params, device: str, dtype: str, seed: int) -> torch.Tensor:
    """A known SPD matrix with eigenvalues log-spaced over the condition number `cond`."""
    t = random_spd(int(params["n"]), cond=float(params["cond"]), seed=seed)
    return t.to(device, torch_dtype(dtype))


def fit_with(name: str) -> Callable[[torch.Tensor], SPDFit]:
    def problem(target: torch.Tensor) -> SPDFit:
        return SPDFit(target, name, lr=0.05, optimizer="adam")

    return problem


def validate_fit(output: Any, expected: Any, params: Params, dtype: str) -> Validation:
    abs_err, rel_err = array_errors(output, expected)
    lam = float(min_eigenvalue(output.detach().cpu(), dtype=torch.float64).min())
    ok = rel_err <= 1e-2 and lam > 0
    return Validation(
        ok,
        abs_err,
        rel_err,
        "the target matrix",
        f"smallest eigenvalue {lam:.3g}; fit within 1 % of the target: {ok}",
    )


def spd_fit_cost(params: Params, dtype: str) -> Cost:
    """A lower bound per Adam step (not per fit: a convergence record's summary times one
    step), one n×n matrix: 4/3·n³ flops, as
    `spd_step_cost` (W = L Lᵀ and its backward), the loss and Adam's O(n²) left out. Bytes:
    the parameter and the target read, W and the gradient written: 4n² values."""
    n = int(params["n"])
    return Cost(flops=4 / 3 * n**3, bytes=4 * n * n * ITEMSIZE[dtype])


FIT = Workload(
    name="spd_fit",
    description="Adam (lr 0.05) from the identity to a known SPD matrix, loss ‖W−T‖²/‖T‖²",
    kind="convergence",
    convergence=Convergence(target=1e-6, budget_steps=3000, budget_s=8.0),
    impls=(
        Impl("symmetric_exp", fit_with("symmetric_exp"), devices=BOTH),
        Impl("cholesky", fit_with("cholesky"), devices=BOTH),
    ),
    make_inputs=target_spd,
    reference=lambda target, params, phase: target.detach().to("cpu", torch.float64),
    validate=validate_fit,
    grid=[{"n": 8, "cond": 10.0}, {"n": 32, "cond": 10.0}, {"n": 16, "cond": 100.0}],
    quick_grid=[{"n": 8, "cond": 10.0}],
    gpu_grid=[{"n": 32, "cond": 10.0}, {"n": 16, "cond": 100.0}],
    cost=spd_fit_cost,
    call_estimate_s=fit_step_s,
)

SUITE = Suite(
    name="spd_parametrization", description=__doc__.splitlines()[0], workloads=(STEP, FIT)
)
