"""One run record's numbers and flags as the report reads them (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeGuard

from eigenbench.report.model import Params
from eigenbench.results import Record

TIMED_STATUSES = ("ok", "invalid")


def is_num(v: Any) -> TypeGuard[float]:
    """A finite int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def record_median(rec: Record) -> float | None:
    """The summary's positive median in seconds, else None."""
    summary = rec.get("summary")
    if not isinstance(summary, Mapping):
        return None
    m = summary.get("median_s")
    return float(m) if is_num(m) and m > 0 else None


def is_timed(rec: Record) -> bool:
    """A timed status (ok or invalid) with a usable median."""
    return rec.get("status") in TIMED_STATUSES and record_median(rec) is not None


def record_interval(rec: Record) -> tuple[float, float]:
    """The 95 % interval of a timed record's median; the median itself where a bound is unusable."""
    summary = rec["summary"]
    assert summary is not None, "only a timed record has an interval"
    med = float(summary["median_s"])
    lo, hi = summary.get("ci95_low_s"), summary.get("ci95_high_s")
    lo = float(lo) if is_num(lo) and 0 < lo <= med else med
    hi = float(hi) if is_num(hi) and hi >= med else med
    return lo, hi


def record_params(rec: Record) -> Params:
    """The case parameters as (name, value) pairs, in their order."""
    p = rec.get("params") or {}
    return tuple((str(k), v) for k, v in p.items())


def is_valid(rec: Record) -> bool:
    """Status ok and no failed validation."""
    val = rec.get("validation")
    return rec.get("status") == "ok" and not (isinstance(val, Mapping) and val.get("ok") is False)


def block_of(rec: Record, name: str) -> Mapping[str, Any]:
    """A record's sub-object (`memory`, `validation`, `convergence`), or {} where it has none."""
    value: Any = rec.get(name)
    return value if isinstance(value, Mapping) else {}


def dispatch_texts(rec: Record) -> tuple[str | None, str | None]:
    """What one profiled call ran, for a table cell and its tooltip: the short form and the
    most frequent ops and syncs; (None, the reason) where nothing was recorded; (None, None)
    for a record without a probe (an older run, `--no-dispatch`, a timed-out case)."""
    d = rec.get("dispatch")
    if not isinstance(d, Mapping):
        reason = rec.get("dispatch_reason")
        return None, str(reason) if reason else None
    ops = sorted((d.get("ops") or {}).items(), key=lambda kv: (-kv[1], kv[0]))[:8]
    syncs = sorted((d.get("syncs") or {}).items())
    detail = "ops: " + (", ".join(f"{k} ×{v}" for k, v in ops) or "none")
    if syncs:
        detail += "; syncs: " + ", ".join(f"{k} ×{v}" for k, v in syncs)
    return str(d.get("short") or ""), detail
