"""What the CPU and CUDA sections share: one timed case through the real sampler."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from eigenbench.measure.clocks import Clock
from eigenbench.measure.loop import Measurement, MeasureOptions, first_call, measure
from eigenbench.selftest.targets import relative_error


def quick_options(quick: bool) -> MeasureOptions:
    return MeasureOptions(warmup_s=0.01, max_time_s=0.5) if quick else MeasureOptions()


def timed_case(
    fn: Callable[[], Any], clock: Clock, opts: MeasureOptions
) -> tuple[dict[str, Any], Measurement]:
    """First call then the sampler, as the runner does; the figures the sampler reports."""
    start = clock.now()
    _, first_s = first_call(fn, clock)
    m = measure(fn, clock, opts, start_s=start)
    figures = {
        "median_s": statistics.median(m.samples_s),
        "samples": len(m.samples_s),
        "number": m.number,
        "warmup_calls": m.warmup_calls,
        "calls": 1 + m.warmup_calls + len(m.samples_s) * m.number,
        "first_call_s": first_s,
        "rel_ci": m.rel_ci,
        "elapsed_s": m.elapsed_s,
        "stop_reason": m.stop_reason,
        "noisy": m.noisy,
    }
    return figures, m


def known_entry(duration_s: float, case: dict[str, Any]) -> dict[str, Any]:
    """A timed case's figures with its error against the known `duration_s`."""
    median = case["median_s"]
    return {
        "duration_s": duration_s,
        "median_s": median,
        "relative_error": relative_error(median, duration_s),
        "abs_error_s": abs(median - duration_s),
        **{k: v for k, v in case.items() if k != "median_s"},
    }


def empty() -> None:
    return None
