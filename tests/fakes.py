"""A fake clock with a cost model, so sampling rules are tested exactly and without sleeping."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


class FakeClock:
    """Virtual time: each call of the timed function costs `cost_s` (plus optional noise).

    `costs` may instead give the cost of each successive call (the last one repeats), which
    models a slow first call. `overhead_s` is charged once per sample, `bookkeeping_s` to the
    virtual wall clock only (harness time between samples).
    """

    name = "perf_counter"  # stands in for the CPU clock, so records stay schema-valid
    resolution_s = 1e-9

    def __init__(
        self,
        cost_s: float = 1e-3,
        *,
        costs: Sequence[float] | None = None,
        noise: float = 0.0,
        overhead_s: float = 0.0,
        bookkeeping_s: float = 0.0,
        min_sample_s: float = 1e-3,
        seed: int = 0,
    ) -> None:
        self.cost_s = cost_s
        self.costs = list(costs) if costs else None
        self.noise = noise
        self.overhead_s = overhead_s
        self.bookkeeping_s = bookkeeping_s
        self.min_sample_s = min_sample_s
        self.rng = np.random.default_rng(seed)
        self.t = 0.0
        self.calls = 0
        self.samples_timed: list[int] = []

    def _next_cost(self) -> float:
        if self.costs is not None:
            c = self.costs[min(self.calls, len(self.costs) - 1)]
        else:
            c = self.cost_s
        if self.noise:
            c *= float(np.exp(self.rng.normal(0.0, self.noise)))
        self.calls += 1
        return c

    def now(self) -> float:
        return self.t

    def time(self, fn: Callable[[], Any], number: int) -> float:
        total = self.overhead_s
        for _ in range(number):
            fn()
            total += self._next_cost()
        self.samples_timed.append(number)
        self.t += total + self.bookkeeping_s
        return total
