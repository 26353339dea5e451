"""CPU section: the overhead of a timed empty call and busy-waits of known length."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from eigenbench.measure.clocks import PerfCounterClock
from eigenbench.measure.loop import MeasureOptions
from eigenbench.selftest.measuring import empty, known_entry, quick_options, timed_case
from eigenbench.selftest.peers import stable_comparison
from eigenbench.selftest.targets import CPU_DURATIONS_S, STABLE_DURATION_S, relative_error


def busy_wait(seconds: float) -> float:
    """Spin on `time.perf_counter_ns` until `seconds` have passed; return the seconds it spun.

    No sleep: the CPU stays busy. The return value is the spin's own view of its length, which
    exceeds `seconds` when the OS preempted it across the deadline.
    """
    counter = time.perf_counter_ns
    start = now = counter()
    end = start + int(seconds * 1e9)
    while now < end:
        now = counter()
    return (now - start) * 1e-9


def make_busy_wait(seconds: float, spun: list[float] | None = None) -> Callable[[], None]:
    """A zero-argument callable that busy-waits `seconds` (appending its own length to `spun`)."""
    if not seconds > 0:
        raise ValueError(f"busy-wait duration must be positive, got {seconds!r}")
    record = spun.append if spun is not None else None

    def spin() -> None:
        actual = busy_wait(seconds)
        if record is not None:
            record(actual)

    return spin


def _involuntary_switches() -> int | None:
    try:
        import resource
    except ImportError:  # not on Unix
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw)


def busy_wait_case(duration_s: float, opts: MeasureOptions) -> dict[str, Any]:
    """A busy-wait through the real sampler, beside the busy-wait's own view of its length.

    `relative_error` compares the sampler's median with the requested duration; it includes
    the OS preempting the spin past its deadline. `timer_relative_error` compares it with what
    the spins themselves measured, which isolates the harness's own error.
    """
    spun: list[float] = []
    switches = _involuntary_switches()
    figures, m = timed_case(make_busy_wait(duration_s, spun), PerfCounterClock(), opts)
    after = _involuntary_switches()
    entry = known_entry(duration_s, figures)
    n, k = len(m.samples_s), m.number
    tail = spun[-n * k :]
    own = [statistics.fmean(tail[i * k : (i + 1) * k]) for i in range(n)]
    entry["spun_median_s"] = statistics.median(own)
    entry["timer_overhead_s"] = statistics.median(
        [s - o for s, o in zip(m.samples_s, own, strict=True)]
    )
    entry["timer_relative_error"] = relative_error(entry["median_s"], entry["spun_median_s"])
    entry["involuntary_context_switches"] = (
        None if switches is None or after is None else after - switches
    )
    return entry


def cpu_overhead_samples(samples: int) -> list[float]:
    """What PerfCounterClock reports for an empty callable, one call per sample."""
    clock = PerfCounterClock()
    timer = clock.time
    return [timer(empty, 1) for _ in range(samples)]


def cpu_section(quick: bool) -> dict[str, Any]:
    """Overhead of a timed empty call, busy-waits of known length, and the 10 ms comparison."""
    overhead = cpu_overhead_samples(5_000 if quick else 200_000)
    opts = quick_options(quick)
    known = [busy_wait_case(d, opts) for d in CPU_DURATIONS_S]
    stable = next(e for e in known if e["duration_s"] == STABLE_DURATION_S)
    return {
        "cpu_overhead_s_per_sample": statistics.median(overhead),
        "cpu_overhead_detail": {
            "samples": len(overhead),
            "min_s": min(overhead),
            "p90_s": statistics.quantiles(overhead, n=10)[-1],
            "perf_counter_resolution_s": time.get_clock_info("perf_counter").resolution,
        },
        "cpu_known_duration": known,
        "stable_10ms_comparison": stable_comparison(stable, opts),
    }
