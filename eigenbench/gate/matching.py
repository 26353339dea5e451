"""Two runs side by side: their records matched by case id, and the labels that need no test.

Pure, and shared by the judges (`compare` against a stored baseline, `paired` for an A/B
pair): the settings check, each run's records by id, the workload versions, the order of the
cases, the verdicts of cases that cannot be timed on both sides (`new`, `missing`,
`failed`, `invalid`, no samples) and every case's dispatch verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from eigenbench.errors import CompareError, VersionMismatchError
from eigenbench.gate.dispatch import judge_all
from eigenbench.gate.verdicts import Verdict
from eigenbench.measure.stats import BOOTSTRAP_RESAMPLES
from eigenbench.results import Record

TIMED_STATUSES = ("ok", "invalid")
"""Record statuses that hold samples."""
FAILED_STATUSES = ("failed", "timeout")
"""Record statuses that make a case `failed`."""


def check_settings(
    threshold: float,
    alpha: float,
    resamples: int = BOOTSTRAP_RESAMPLES,
    run_drift: float = 0.0,
) -> None:
    """ValueError naming the first setting out of range."""
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"compare: threshold must be a finite fraction >= 0, got {threshold!r}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"compare: alpha must be in (0, 1), got {alpha!r}")
    if not (isinstance(resamples, int) and resamples >= 100):
        raise ValueError(f"compare: resamples must be an int >= 100, got {resamples!r}")
    if not (isinstance(run_drift, (int, float)) and 0 <= run_drift < 1):
        raise ValueError(f"compare: run_drift must be a fraction in [0, 1), got {run_drift!r}")


def machine_of(run: Mapping[str, Any]) -> str | None:
    """The run's `env.machine_key` if present, unchecked."""
    env = run.get("env")
    return env.get("machine_key") if isinstance(env, Mapping) else None


def run_fields(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The `CompareResult` fields that name the two runs: their run ids and machine keys."""
    return {
        "baseline_run_id": baseline.get("run_id"),
        "current_run_id": current.get("run_id"),
        "baseline_machine": machine_of(baseline),
        "current_machine": machine_of(current),
    }


def index_records(run: Mapping[str, Any], side: str) -> dict[str, Record]:
    records = run.get("records")
    if not isinstance(records, list):
        raise CompareError(f"{side} run: 'records' must be a list of records")
    out: dict[str, Record] = {}
    for rec in records:
        case_id = rec.get("id")
        if not isinstance(case_id, str) or not case_id:
            raise CompareError(f"{side} run: a record without a string 'id'")
        if case_id in out:
            raise CompareError(f"{side} run: case {case_id!r} appears more than once")
        out[case_id] = rec
    return out


def check_versions(base: Mapping[str, Record], cur: Mapping[str, Record]) -> None:
    mismatches = [
        (i, str(b.get("version")), str(cur[i].get("version")))
        for i, b in base.items()
        if i in cur and b.get("version") != cur[i].get("version")
    ]
    if mismatches:
        raise VersionMismatchError(mismatches)


def match_cases(
    base: Mapping[str, Record],
    cur: Mapping[str, Record],
    relative_to: str | None,
) -> tuple[list[str], dict[str, Verdict], list[tuple[str, Record, Record]]]:
    """Every case id (the baseline's order, then new ones), the verdicts that need no test
    (`label_without_test`), and the (id, baseline, current) records left to test.

    CompareError when both runs have cases but none in common: nothing can be compared.
    """
    if base and cur and base.keys().isdisjoint(cur.keys()):
        raise CompareError(
            f"the two runs have no case in common ({len(base)} in the baseline, {len(cur)} in "
            "the current run): compare runs of the same suites and devices"
        )
    ids = list(base) + [i for i in cur if i not in base]
    verdicts: dict[str, Verdict] = {}
    to_test = []
    for case_id in ids:
        b, c = base.get(case_id), cur.get(case_id)
        early = label_without_test(case_id, b, c, relative_to)
        if early is not None:
            verdicts[case_id] = early
        elif b is not None and c is not None:  # always, once label_without_test passed
            to_test.append((case_id, b, c))
    return ids, verdicts, to_test


def in_order_with_dispatch(
    ids: Sequence[str],
    verdicts: Mapping[str, Verdict],
    base: Mapping[str, Record],
    cur: Mapping[str, Record],
) -> tuple[Verdict, ...]:
    """The verdicts in `ids` order, each with its case's dispatch verdict beside the timing
    one (`eigenbench.gate.dispatch.judge_dispatch`)."""
    dispatch = judge_all(ids, base, cur)
    return tuple(replace(verdicts[i], dispatch=dispatch[i]) for i in ids)


def label_without_test(
    case_id: str,
    b: Record | None,
    c: Record | None,
    relative_to: str | None,
) -> Verdict | None:
    """Verdicts that need no statistics; None when the case must be tested."""
    b_status = None if b is None else b.get("status")
    c_status = None if c is None else c.get("status")
    common: dict[str, Any] = {
        "id": case_id,
        "baseline_status": b_status,
        "current_status": c_status,
        "baseline_median_s": samples_median(b),
        "current_median_s": samples_median(c),
    }
    if c is None:
        return Verdict(label="missing", reason="not in the current run", **common)
    if c_status in FAILED_STATUSES:
        return Verdict(label="failed", reason=f"{c_status}: {c.get('reason')}", **common)
    if c_status == "invalid":
        ratio = safe_ratio(common["baseline_median_s"], common["current_median_s"])
        was = "ok" if b_status == "ok" else (b_status or "absent")
        return Verdict(
            label="invalid",
            ratio=ratio,
            reason=f"result does not match its reference (baseline: {was}): {c.get('reason')}",
            **common,
        )
    if c_status != "ok":
        return Verdict(
            label="missing", reason=f"{c_status} in the current run: {c.get('reason')}", **common
        )
    if b is None:
        return Verdict(label="new", reason="not in the baseline", **common)
    if b_status != "ok":
        return Verdict(
            label="new",
            reason=f"no valid baseline timing (baseline status {b_status}: {b.get('reason')})",
            **common,
        )
    if not b.get("samples_s") or not c.get("samples_s"):
        return Verdict(label="inconclusive", reason="a side has no samples", **common)
    if relative_to is not None and c.get("impl") == relative_to:
        raw = safe_ratio(common["baseline_median_s"], common["current_median_s"])
        raw_text = "—" if raw is None else f"{raw:.3g}"
        return Verdict(
            label="unchanged",
            ratio=1.0,
            ci_low=1.0,
            ci_high=1.0,
            reason=f"reference of --relative-to (ratio 1 by definition; raw ratio {raw_text})",
            **common,
        )
    return None


def samples_median(rec: Record | None) -> float | None:
    """The median of a record's samples (any status), or None without samples."""
    if rec is None or not rec.get("samples_s"):
        return None
    return float(np.median(np.asarray(rec["samples_s"], dtype=np.float64)))


def safe_ratio(b: float | None, c: float | None) -> float | None:
    """c / b, or None when either is missing or b is not positive."""
    if b is None or c is None or b <= 0:
        return None
    return c / b
