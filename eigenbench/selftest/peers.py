"""What pytest-benchmark's and pyperf's defaults would spend on a result (computed, not run)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from eigenbench.measure.loop import MeasureOptions


def _ceil(x: float) -> int:
    """Ceiling that ignores float dust (10 × 1e-6 must give 10, not 11)."""
    return math.ceil(x * (1 - 1e-12))


def pytest_benchmark_plan(
    duration_s: float,
    *,
    min_rounds: int = 5,
    max_time_s: float = 1.0,
    min_time_s: float = 5e-6,
) -> dict[str, Any]:
    """Calls and seconds pytest-benchmark's defaults spend on a function of steady `duration_s`.

    Mirrors `BenchmarkFixture._calibrate_timer` and `_raw` (pytest-benchmark 5.x): loops grow ×10
    (or are estimated past min_time/2) until a round lasts `min_time_s`, then
    rounds = max(min_rounds, ceil(max_time / round)). Warm-up is off on CPython and the
    precision stop is off by default.
    """
    loops, calibration_calls = 1, 0
    while True:
        calibration_calls += loops
        round_s = loops * duration_s
        if round_s >= min_time_s:
            break
        if round_s >= min_time_s * 5 / 10:
            loops = _ceil(min_time_s * loops / round_s)
            if loops == 1:
                break
        else:
            loops *= 10
    round_s = loops * duration_s
    rounds = max(_ceil(max_time_s / round_s), min_rounds)
    calls = calibration_calls + rounds * loops
    return {
        "source": (
            "computed from pytest-benchmark's documented defaults (min_rounds=5, "
            "max_time=1.0 s, min_time=5 µs, no warm-up on CPython, no precision stop); not run"
        ),
        "iterations": loops,
        "rounds": rounds,
        "samples": rounds,
        "calls": calls,
        "wall_s": calls * duration_s,
    }


def pyperf_plan(
    duration_s: float,
    *,
    processes: int = 20,
    values: int = 3,
    warmups: int = 1,
    min_time_s: float = 0.1,
) -> dict[str, Any]:
    """Calls and seconds pyperf's defaults spend on a function of steady `duration_s`.

    Mirrors pyperf 2.x: one calibration worker doubles `loops` until a raw value reaches
    `min_time_s` (each doubling costs one more value), then `processes` workers each run
    `warmups` + `values` values of `loops` calls. Interpreter start-ups are not counted.
    """
    loops, nvalue, index, calibration_calls = 1, warmups + values, 1, 0
    while index <= nvalue:
        calibration_calls += loops
        if loops * duration_s < min_time_s:
            loops *= 2
            nvalue += 1
        index += 1
    calls = calibration_calls + processes * (warmups + values) * loops
    return {
        "source": (
            "computed from pyperf's documented defaults (20 processes × (1 warm-up + 3 values), "
            "loops doubled until a value ≥ min_time 0.1 s, one calibration process); not run"
        ),
        "loops": loops,
        "processes": processes + 1,
        "samples": processes * values,
        "calls": calls,
        "wall_s": calls * duration_s,
        "not_counted": f"{processes + 1} Python interpreter start-ups",
    }


def stable_comparison(entry: Mapping[str, Any], opts: MeasureOptions) -> dict[str, Any]:
    """Our measured cost of a stable 10 ms result beside the peers' computed defaults."""
    ours = {
        "source": "measured in this run (first call + warm-up + samples)",
        "reached_ci_target": entry["stop_reason"] == "ci_target",
        "rel_ci_target": opts.rel_ci_target,
        "rel_ci": entry["rel_ci"],
        "samples": entry["samples"],
        "calls": entry["calls"],
        "wall_s": entry["elapsed_s"],
        "stop_reason": entry["stop_reason"],
    }
    d = entry["duration_s"]
    peers = {"pytest_benchmark": pytest_benchmark_plan(d), "pyperf": pyperf_plan(d)}
    return {
        "duration_s": d,
        "eigenbench": ours,
        **peers,
        "wall_ratio_vs_eigenbench": {
            name: plan["wall_s"] / ours["wall_s"] for name, plan in peers.items()
        },
    }
