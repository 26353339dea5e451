"""Achieved rate against the machine's roofs: a record's `throughput` from its workload's
declared `Cost` and the run's measured peaks (`env.peaks`). Pure arithmetic.

The roofline: a call of F flops and B bytes cannot take less than
floor = max(F / peak_flops, B / peak_bw); the binding roof is min(peak_flops, I · peak_bw)
with intensity I = F / B, and the fraction of it reached equals floor / median. A median
below the floor by more than its own uncertainty (the 95 % interval's top below it) is a
measurement error (work skipped or not waited for), never a win.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from eigenbench.spec import Case, Cost


def throughput(cost: Cost, summary: Mapping[str, Any], peak: Mapping[str, float]) -> dict[str, Any]:
    """`flop_per_s`, `bytes_per_s`, `fraction_of_peak`, `bound`, `floor_s`, `below_floor`
    of a call costing `cost` whose samples are summarised by `summary`, under `peak`
    (`flop_per_s`, `bytes_per_s`)."""
    median = float(summary["median_s"])
    peak_flops, peak_bw = float(peak["flop_per_s"]), float(peak["bytes_per_s"])
    compute_s = cost.flops / peak_flops if peak_flops > 0 else math.inf
    memory_s = cost.bytes / peak_bw if peak_bw > 0 else math.inf
    floor_s = max(compute_s, memory_s)
    return {
        "flop_per_s": cost.flops / median if median > 0 else None,
        "bytes_per_s": cost.bytes / median if median > 0 else None,
        "fraction_of_peak": floor_s / median if median > 0 else None,
        "bound": "compute" if compute_s >= memory_s else "memory",
        "floor_s": floor_s,
        "below_floor": float(summary["ci95_high_s"]) < floor_s,
    }


def record_throughput(
    case: Case, record: Mapping[str, Any], peaks: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The `throughput` of a timed (ok or invalid) record whose workload declares a cost and
    whose device and dtype have measured peaks; None otherwise."""
    cost_of = case.workload.cost
    summary = record.get("summary")
    if cost_of is None or not summary or record.get("status") not in ("ok", "invalid"):
        return None
    peak = ((peaks or {}).get(case.device) or {}).get(case.dtype)
    if not peak:
        return None
    return throughput(cost_of(case.param_dict, case.dtype), summary, peak)
