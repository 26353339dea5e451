"""One training epoch of the spectral regression model λ_k(diag(μ) + Σ x_i A_i) (seed 002)
with the eigenvalue by torch or by the CuPy k-th-eigenvalue function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from eigenbench.inputs import torch_dtype
from eigenbench.ops.spectral import (
    HOUSING_FEATURES,
    SpectralRegressor,
    make_housing_like,
    train_epoch,
)
from eigenbench.solver_costs import TORCH_BATCHED_MAX_N, torch_cuda_eigh_s
from eigenbench.spec import ITEMSIZE, CallEstimate, Cost, Impl, Params, Suite, Validation, Workload

BATCH_SIZE = 10  # the seed's minibatch
LR = 1e-4  # the seed's AdamW learning rate


def epoch_s(per_step_s: Callable[[int, str], float]) -> CallEstimate:
    """A per-epoch prior: rows / BATCH_SIZE optimizer steps."""

    def prior(params: Params, device: str, dtype: str) -> float:
        steps = -(-int(params["rows"]) // BATCH_SIZE)
        scale = 1.3 if device == "cpu" and dtype == "float64" else 1.0
        return steps * per_step_s(int(params["dim"]), device) * scale

    return prior


def torch_step_s(dim: int, device: str) -> float:
    """CPU (2-core VM): 0.6 ms at dim 10, 5.8 ms at dim 30. CUDA (a guess until a GPU baseline):
    an epoch at dim 30 ≈ 1.5-2 s, launch-bound while torch's eigh is batched (dim ≤ 32)."""
    if device == "cuda":
        return (
            0.85e-3
            if dim <= TORCH_BATCHED_MAX_N
            else 0.5e-3 + torch_cuda_eigh_s(10, dim, "float32")
        )
    return 4e-4 + dim**3 * 2e-7


def cupy_step_s(dim: int, device: str) -> float:
    """CUDA (a guess): an epoch at dim 30 ≈ 2.5-3 s."""
    return 1.33e-3 * max(1.0, dim / 30) ** 0.5


def make_inputs(params: Params, device: str, dtype: str, seed: int) -> dict[str, Any]:
    x, y = make_housing_like(
        int(params["rows"]), seed=seed, device=device, dtype=torch_dtype(dtype)
    )
    return {"x": x, "y": y, "dim": int(params["dim"]), "seed": seed}


def model_for(
    inputs: dict[str, Any], backend: str, dtype: torch.dtype, device: str
) -> tuple[SpectralRegressor, torch.optim.Optimizer]:
    dim = inputs["dim"]
    g = torch.Generator().manual_seed(inputs["seed"])
    model = SpectralRegressor(
        inputs["x"].shape[1], dim, k=dim // 2, backend=backend, generator=g
    ).to(device=device, dtype=dtype)
    return model, torch.optim.AdamW(model.parameters(), lr=LR)


def epoch_with(backend: str) -> Callable[[dict[str, Any]], Callable[[], float]]:
    """A model and optimizer made once; each call trains one more epoch, returns its loss."""

    def build(inputs: dict[str, Any]) -> Callable[[], float]:
        x, y = inputs["x"], inputs["y"]
        model, opt = model_for(inputs, backend, x.dtype, str(x.device))
        return lambda: train_epoch(model, x, y, opt, batch_size=BATCH_SIZE)

    return build


def bind(impl: Impl, inputs: dict[str, Any], phase: str) -> Callable[[], float]:
    return impl.fn(inputs)


def reference(inputs: dict[str, Any], params: Params, phase: str) -> float:
    """The first epoch's loss in float64 on the CPU (torch backend), from the same start."""
    cpu = {
        **inputs,
        "x": inputs["x"].to("cpu", torch.float64),
        "y": inputs["y"].to("cpu", torch.float64),
    }
    return epoch_with("torch")(cpu)()


def validate(output: Any, expected: Any, params: Params, dtype: str) -> Validation:
    """The first epoch must follow the float64 one: its mean loss within 1 %."""
    rel = abs(output - expected) / abs(expected)
    return Validation(
        rel <= 1e-2,
        abs(output - expected),
        rel,
        "first-epoch loss, float64 torch backend",
        f"epoch loss {output:.6f} vs {expected:.6f}",
    )


def epoch_cost(params: Params, dtype: str) -> Cost:
    """A lower bound per epoch (one timed call) of rows R, features f (8), dim d, steps
    S = ⌈R / 10⌉. Flops: per row, the matrix Σ_i x_i ½(A_i + A_iᵀ) (2f·d²) and the
    tridiagonalisation its eigenvalue needs (4/3·d³; Golub & Van Loan, Matrix Computations,
    4th ed., §8.3.1); the backward and AdamW are left out. Bytes: the data read once
    (R·(f + 1) values) and the A_i read once per step (S·f·d² values)."""
    rows, d, f = int(params["rows"]), int(params["dim"]), HOUSING_FEATURES
    steps = -(-rows // BATCH_SIZE)
    flops = rows * (2.0 * f * d * d + 4 / 3 * d**3)
    return Cost(flops=flops, bytes=(rows * (f + 1) + steps * f * d * d) * ITEMSIZE[dtype])


SPECTRAL = Workload(
    name="spectral_epoch",
    description=f"One epoch of AdamW (lr {LR}, batch {BATCH_SIZE}) on housing-like data",
    impls=(
        Impl("torch", epoch_with("torch"), devices=frozenset({"cpu", "cuda"})),
        Impl(
            "cupy",
            epoch_with("cupy"),
            devices=frozenset({"cuda"}),
            requires=("cupy",),
            call_estimate_s=epoch_s(cupy_step_s),
        ),
    ),
    make_inputs=make_inputs,
    reference=reference,
    validate=validate,
    bind=bind,
    grid=[{"rows": 20640, "dim": 30}, {"rows": 20640, "dim": 45}],
    quick_grid=[{"rows": 500, "dim": 10}],
    gpu_grid=[{"rows": 20640, "dim": 30}],
    measure={"min_samples": 3, "warmup_s": 0.0},
    revalidate=False,  # each call trains one more epoch: only the first matches the reference
    cost=epoch_cost,
    call_estimate_s=epoch_s(torch_step_s),
)

SUITE = Suite(name="spectral_training", description=__doc__.splitlines()[0], workloads=(SPECTRAL,))
