"""The self-test's targets and the pure check of a result against them."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

CPU_OVERHEAD_TARGET_S = 1e-6
CPU_REL_TARGET = 0.01
GPU_REL_TARGET = 0.02
GPU_ABS_TARGET_S = 5e-6
CPU_DURATIONS_S = (1e-3, 10e-3)
GPU_DURATIONS_S = (50e-6, 1e-3, 10e-3)
STABLE_DURATION_S = 10e-3

TARGETS = {
    "cpu_overhead": f"median timed empty call ≤ {CPU_OVERHEAD_TARGET_S:g} s per sample",
    "cpu_known_duration": f"every busy-wait median within {CPU_REL_TARGET:.0%} of its duration",
    "cpu_timer_error": (
        f"every busy-wait median within {CPU_REL_TARGET:.0%} of the spins' own measured length"
    ),
    "cuda_known_duration": (
        f"every sleep-kernel median within max({GPU_REL_TARGET:.0%}, {GPU_ABS_TARGET_S:g} s)"
    ),
    "host_blocking": "every labelled call that ran is classified as expected",
}


def relative_error(measured_s: float, true_s: float) -> float:
    """|measured − true| / true."""
    return abs(measured_s - true_s) / true_s


def gpu_tolerance_s(true_s: float) -> float:
    """Allowed absolute error for a GPU duration: max(2 %, 5 µs)."""
    return max(GPU_REL_TARGET * true_s, GPU_ABS_TARGET_S)


def targets_met(result: Mapping[str, Any]) -> dict[str, bool]:
    """Which self-test targets the figures in `result` meet (only the sections present)."""
    out: dict[str, bool] = {}
    if "cpu_overhead_s_per_sample" in result:
        overhead = result["cpu_overhead_s_per_sample"]
        out["cpu_overhead"] = _finite(overhead) and overhead <= CPU_OVERHEAD_TARGET_S
    if "cpu_known_duration" in result:
        entries = result["cpu_known_duration"]
        out["cpu_known_duration"] = _all_within(entries, "duration_s", _cpu_tolerance)
        if all("spun_median_s" in e for e in entries):
            out["cpu_timer_error"] = _all_within(entries, "spun_median_s", _cpu_tolerance)
    if "cuda_known_duration" in result:
        entries = result["cuda_known_duration"]
        out["cuda_known_duration"] = _all_within(entries, "duration_s", gpu_tolerance_s)
    if "host_blocking" in result:
        ran = [e for e in result["host_blocking"] if not e.get("skipped")]
        out["host_blocking"] = bool(ran) and all(e["expected"] == e["detected"] for e in ran)
    return out


def _cpu_tolerance(true_s: float) -> float:
    return CPU_REL_TARGET * true_s


def _all_within(
    entries: list[Mapping[str, Any]], truth: str, tolerance: Callable[[float], float]
) -> bool:
    """Every entry's median is finite and within `tolerance(truth)` of its `truth` field."""
    return bool(entries) and all(
        _finite(e["median_s"]) and abs(e["median_s"] - e[truth]) <= tolerance(e[truth])
        for e in entries
    )


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
