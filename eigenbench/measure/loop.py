"""The sampler: first call, time-budgeted warm-up, calls-per-sample calibration, adaptive stop.

`measure` acts (it calls the clock); the decisions it takes are the pure functions beside it
(`calls_per_sample`, `stop_reason`), which the tests check exactly with a fake clock.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from eigenbench.measure.clocks import Clock
from eigenbench.measure.stats import order_statistic_median_ci

MAX_CALLS_PER_SAMPLE = 1 << 20


@dataclass(frozen=True, slots=True)
class MeasureOptions:
    """How long and how precisely to measure one case (seconds everywhere)."""

    warmup_s: float = 0.05
    min_samples: int = 10
    max_samples: int = 2000
    rel_ci_target: float = 0.01
    """Stop once the 95 % interval of the median is within ± this fraction of it."""
    max_time_s: float = 2.0
    """Stop sampling after this long (once `min_samples` are in), flagging the case noisy."""
    min_sample_s: float | None = None
    """Shortest sample; calls are repeated within a sample to reach it. None: the clock's."""
    timeout_s: float | None = None
    """Hard budget for the whole case (warm-up included); exceeding it stops with `timeout`."""

    def __post_init__(self) -> None:
        if self.min_samples < 2:
            raise ValueError("min_samples must be at least 2")
        if self.max_samples < self.min_samples:
            raise ValueError("max_samples must be at least min_samples")
        if not 0 < self.rel_ci_target < 1:
            raise ValueError("rel_ci_target must be between 0 and 1")
        if not (math.isfinite(self.warmup_s) and self.warmup_s >= 0):
            raise ValueError(
                f"warmup_s must be a finite number of seconds >= 0, got {self.warmup_s}"
            )
        for name in ("max_time_s", "min_sample_s", "timeout_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number of seconds > 0, got {value}")


@dataclass(frozen=True, slots=True)
class Measurement:
    """What the sampler observed for one case."""

    samples_s: tuple[float, ...]
    """Seconds per call, one value per sample (each sample timed `number` calls)."""
    number: int
    warmup_calls: int
    stop_reason: str
    rel_ci: float
    noisy: bool
    elapsed_s: float
    warmup_s: tuple[float, ...] = field(default=())


def first_call(fn: Callable[[], Any], clock: Clock) -> tuple[Any, float]:
    """Run `fn` once, cold, and return its output and latency (kept as `first_call_s`)."""
    box: list[Any] = []
    seconds = clock.time(lambda: box.append(fn()), 1)
    return box[0], seconds


def default_min_sample_s(clock: Clock) -> float:
    """Shortest sample worth timing on this clock: far above its resolution and overhead."""
    return float(getattr(clock, "min_sample_s", max(1e-3, 2000 * clock.resolution_s)))


def calls_per_sample(per_call_s: float, min_sample_s: float) -> int:
    """Calls to time together so that one sample lasts at least `min_sample_s`."""
    if per_call_s <= 0 or not math.isfinite(per_call_s):
        return MAX_CALLS_PER_SAMPLE
    ratio = min_sample_s / per_call_s
    return max(1, min(MAX_CALLS_PER_SAMPLE, math.ceil(ratio * (1 - 1e-12))))


def relative_ci(samples: list[float]) -> float:
    """Half-width of the 95 % interval of the median relative to the median."""
    if len(samples) < 2:
        return math.inf
    low, high = order_statistic_median_ci(samples)
    median = statistics.median(samples)
    return (high - low) / (2 * median) if median > 0 else math.inf


def stop_reason(n: int, rel_ci: float, elapsed_s: float, opts: MeasureOptions) -> str | None:
    """Why sampling stops now, or None to go on. Pure: the sampler's whole policy."""
    if opts.timeout_s is not None and elapsed_s >= opts.timeout_s:
        return "timeout"
    if n >= opts.max_samples:
        return "max_samples"
    if n < opts.min_samples:
        return None
    if rel_ci <= opts.rel_ci_target:
        return "ci_target"
    if elapsed_s >= opts.max_time_s:
        return "max_time"
    return None


def per_round(opts: MeasureOptions, rounds: int) -> MeasureOptions:
    """The options of one of `rounds` sampling rounds whose pooled samples should cost and
    achieve about what `opts` asks of a single round."""
    if rounds <= 1:
        return opts
    min_samples = max(2, math.ceil(opts.min_samples / rounds))
    return replace(
        opts,
        min_samples=min_samples,
        max_samples=max(min_samples, math.ceil(opts.max_samples / rounds)),
        max_time_s=opts.max_time_s / rounds,
        rel_ci_target=min(0.5, opts.rel_ci_target * math.sqrt(rounds)),
    )


def _check_due(n: int) -> bool:
    """Recompute the interval every sample at first, then every ~5 % more samples."""
    return n < 100 or n % max(1, n // 20) == 0


def measure(
    fn: Callable[[], Any],
    clock: Clock,
    opts: MeasureOptions = MeasureOptions(),
    *,
    start_s: float | None = None,
) -> Measurement:
    """Warm up, calibrate and sample `fn` until `stop_reason` says so.

    `start_s` is the clock time the case began (before its first call), so the timeout
    budget covers the whole case; a first call that used it up ends the case with no sample.
    """
    t0 = clock.now() if start_s is None else start_s
    if opts.timeout_s is not None and clock.now() - t0 >= opts.timeout_s:
        # The cold first call alone used the budget: not one call more.
        return Measurement((), 1, 0, "timeout", math.inf, True, clock.now() - t0)
    warm: list[float] = []
    warm_start = clock.now()
    while True:  # at least one warm call, then until the warm-up budget is spent
        warm.append(clock.time(fn, 1))
        elapsed = clock.now() - t0
        if opts.timeout_s is not None and elapsed >= opts.timeout_s:
            return Measurement(
                tuple(warm), 1, len(warm), "timeout", math.inf, True, elapsed, tuple(warm)
            )
        if clock.now() - warm_start >= opts.warmup_s:
            break
    number = calls_per_sample(
        statistics.median(warm), opts.min_sample_s or default_min_sample_s(clock)
    )
    samples: list[float] = []
    rel = math.inf
    while True:
        samples.append(clock.time(fn, number) / number)
        n = len(samples)
        if _check_due(n) or n == opts.min_samples:
            rel = relative_ci(samples)
        reason = stop_reason(n, rel, clock.now() - t0, opts)
        if reason is not None:
            rel = relative_ci(samples)
            noisy = rel > opts.rel_ci_target
            return Measurement(
                tuple(samples), number, len(warm), reason, rel, noisy, clock.now() - t0, tuple(warm)
            )
