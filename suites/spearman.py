"""Spearman's rank correlation, SciPy against torch (seed 000) from 10³ to 10⁷ points, on
continuous, heavily tied, monotone and constant data; validated against SciPy in float64."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from eigenbench.inputs import generator, torch_dtype
from eigenbench.spec import ITEMSIZE, Cost, Impl, Params, Suite, Validation, Workload
from eigenbench.validate import compare_scalar, correlation_tolerance

BOTH = frozenset({"cpu", "cuda"})
FAMILIES = ("continuous", "ties", "monotone", "constant")
REFERENCE = "scipy.stats.spearmanr float64"


def make_inputs(params: Params, device: str, dtype: str, seed: int) -> tuple[torch.Tensor, ...]:
    """Two correlated samples of `n` points (ρ ≈ 0.69 for continuous data, as in the seed)."""
    n, family = int(params["n"]), str(params["family"])
    g = generator(seed)
    x = torch.randn(n, generator=g)
    y = 0.7 * x + 0.7 * torch.randn(n, generator=g)
    if family == "ties":
        x, y = (torch.clamp((v * 2).round(), -5, 4) for v in (x, y))  # 10 distinct values
    elif family == "monotone":
        x = torch.sort(x).values
        y = x**3
    elif family == "constant":
        x = torch.full((n,), 3.0)
    t = torch_dtype(dtype)
    return x.to(device, t), y.to(device, t)


def to_numpy(inputs: tuple[torch.Tensor, ...]) -> tuple[np.ndarray, ...]:
    return tuple(v.cpu().numpy() for v in inputs)


def _spearmanr(x: np.ndarray, y: np.ndarray) -> float:
    """SciPy's ρ; its warning on constant input (ρ undefined, NaN) is expected here."""
    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.filterwarnings("ignore", message=".*constant.*")
        return float(spearmanr(x, y).statistic)


def scipy_spearman(pair: tuple[np.ndarray, ...]) -> float:
    return _spearmanr(*pair)


def reference(inputs: tuple[torch.Tensor, ...], params: Params, phase: str) -> float:
    """SciPy on the same (already rounded) values, in float64."""
    x, y = (v.detach().to("cpu", torch.float64).numpy() for v in inputs)
    return _spearmanr(x, y)


def validate(output: Any, expected: float, params: Params, dtype: str) -> Validation:
    """|ρ − ρ_SciPy| within what a correct computation in `dtype` over n points may round
    (`eigenbench.validate.correlation_tolerance`: 4·(⌈log₂ n⌉ + 2)·u); NaN must match NaN."""
    tol = correlation_tolerance(dtype, int(params["n"]))
    return compare_scalar(output, expected, tol, REFERENCE, symbol="ρ", source="SciPy")


def eigenbench_spearman(pair: tuple[torch.Tensor, ...]) -> torch.Tensor:
    from eigenbench.ops.rank import spearman

    return spearman(*pair)


def naive_spearman(pair: tuple[torch.Tensor, ...]) -> torch.Tensor:
    from eigenbench.ops.rank import spearman_naive

    return spearman_naive(*pair)


def torchmetrics_spearman(pair: tuple[torch.Tensor, ...]) -> torch.Tensor:
    from torchmetrics.functional import spearman_corrcoef

    return spearman_corrcoef(*pair)


def spearman_s(params: Params, device: str, dtype: str) -> float:
    """Prior per call: sorting n points (CPU: the 2-core VM, SciPy and torch within 3×;
    CUDA: about 5-10 ms at 10⁷, a guess until a GPU baseline exists)."""
    n = int(params["n"])
    if device == "cuda":
        return 3e-4 + n * 7.5e-10
    return 1e-4 + n * 2.5e-7 * math.log10(max(n, 10)) / 6


def spearman_cost(params: Params, dtype: str) -> Cost:
    """A rough lower bound. Flops: the arithmetic of the correlation of the ranks, 10 per
    point (two deviations from the mean, three products, five running sums); the sort's
    comparisons are not floating-point work and are not counted. Bytes: the 2n values read
    once, one sort pass reading and writing them, and the 2n ranks read by the reduction:
    4 passes over 2n values (a real sort makes several passes, log₂ n for a merge sort, so
    the true traffic is higher)."""
    n = int(params["n"])
    return Cost(flops=10.0 * n, bytes=4 * 2 * n * ITEMSIZE[dtype])


SIZES = (1_000, 10_000, 100_000, 1_000_000)
SPEARMAN = Workload(
    name="spearman",
    description="ρ of two samples of n points",
    impls=(
        Impl(
            "scipy",
            scipy_spearman,
            prepare=to_numpy,
            requires=("scipy",),
            description="scipy.stats.spearmanr",
        ),
        Impl(
            "torch_naive",
            naive_spearman,
            devices=BOTH,
            description="seed 000: double argsort, float32 correlation",
            expected_invalid=(
                "seed 000's naive version, wrong on purpose: ties (and constant input) get "
                "distinct ordinal ranks, and its float32 correlation drifts beyond rounding "
                "from 10⁶ points"
            ),
        ),
        Impl(
            "eigenbench",
            eigenbench_spearman,
            devices=BOTH,
            description="one sort, tie-averaged ranks, float64 accumulation",
        ),
        Impl("torchmetrics", torchmetrics_spearman, devices=BOTH, requires=("torchmetrics",)),
    ),
    make_inputs=make_inputs,
    reference=reference,
    validate=validate,
    cost=spearman_cost,
    grid=[{"n": n, "family": f} for f in FAMILIES for n in SIZES]
    + [{"n": 10_000_000, "family": f} for f in ("continuous", "ties")],
    quick_grid=[{"n": 10_000, "family": f} for f in FAMILIES],
    gpu_grid=[{"n": n, "family": f} for f in FAMILIES for n in (10_000, 1_000_000, 10_000_000)],
    call_estimate_s=spearman_s,
)

SUITE = Suite(name="spearman", description=__doc__.splitlines()[0], workloads=(SPEARMAN,))
