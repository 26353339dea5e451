"""A calibration suite for the regression gate: fixed NumPy work, with a planted slowdown.

`EIGENBENCH_PLANTED=impl:factor` (e.g. `a:1.10`) makes that impl do `factor` times the work;
the code and so the case versions stay the same, as with a real regression.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from eigenbench.spec import Impl, Params, Suite, Validation, Workload

BASE_REPS = 200


def factor_for(name: str) -> float:
    impl, _, factor = os.environ.get("EIGENBENCH_PLANTED", "").partition(":")
    return float(factor) if impl == name and factor else 1.0


def work(name: str) -> Callable[[np.ndarray], float]:
    def run(a: np.ndarray) -> float:
        reps = round(BASE_REPS * factor_for(name))
        acc = 0.0
        for _ in range(reps):
            acc += float((a @ a).sum())
        return acc / reps

    return run


def make_inputs(params: Params, device: str, dtype: str, seed: int) -> np.ndarray:
    n = int(params["n"])
    return np.random.default_rng(seed).standard_normal((n, n)).astype(dtype) / n


def validate(output: Any, expected: Any, params: Params, dtype: str) -> Validation:
    err = abs(output - expected) / max(abs(expected), 1e-30)
    return Validation(err <= 1e-3, abs(output - expected), err, "float64 NumPy")


PLANTED = Workload(
    name="planted",
    impls=tuple(Impl(name, work(name)) for name in ("a", "b", "c", "d", "e")),
    make_inputs=make_inputs,
    reference=lambda a, p, ph: float((a.astype(np.float64) @ a.astype(np.float64)).sum()),
    validate=validate,
    grid=[{"n": 16}, {"n": 32}],
    quick_grid=[{"n": 16}, {"n": 32}],
)

SUITE = Suite(name="planted", workloads=(PLANTED,))
