"""The run-file record of a case: its fields, how a measurement fills them, failures as text.

Pure: builds dicts from cases and measurements; nothing here times, runs or writes.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from eigenbench.measure.clocks import Clock
from eigenbench.measure.loop import Measurement, relative_ci
from eigenbench.measure.stats import summarize
from eigenbench.results import Record
from eigenbench.spec import DEVICES, Case, Validation, parse_case_id

OUT_OF_MEMORY_TEXTS = (
    "out of memory",
    "alloc_failed",
    "can't allocate memory",
    "cannot allocate memory",
    "defaultcpuallocator: not enough memory",
)
"""Texts of allocation failures that are not typed as such: cuSOLVER's workspace
(`CUSOLVER_STATUS_ALLOC_FAILED`) and torch's `DefaultCPUAllocator` ("can't allocate memory"
in older versions, "not enough memory" in newer ones, after an `[enforce fail at …]`)."""

FATAL_CUDA_TEXTS = (
    "illegal memory access",
    "illegaladdress",
    "illegal instruction",
    "misaligned address",
    "device-side assert",
    "unspecified launch failure",
    "launch failure",
    "hardware stack error",
)
"""CUDA errors that leave the process's context unusable ("sticky"): every later CUDA call
in this process fails with them."""


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's or CuPy's OutOfMemoryError, a MemoryError, or a library's allocation failure."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()[:2000]
    return type(exc).__name__ == "OutOfMemoryError" or any(t in text for t in OUT_OF_MEMORY_TEXTS)


def is_fatal_cuda_error(exc: BaseException) -> bool:
    """An error after which this process's CUDA context is lost (illegal address, assert…)."""
    text = str(exc).lower()[:500]
    return any(t in text for t in FATAL_CUDA_TEXTS)


def as_validation(value: object) -> Validation:
    """What a workload's `validate` returned, as a Validation of plain Python values (NumPy
    and torch scalars converted); TypeError naming the field when it is not one."""
    if not isinstance(value, Validation):
        raise TypeError(f"validate returned {type(value).__name__}, expected a Validation")
    ok = _plain(value.ok)
    if not isinstance(ok, bool):
        raise TypeError(f"validate returned ok={value.ok!r}, expected True or False")
    errs = [_error_value(value.max_abs_err, "max_abs_err")]
    errs.append(_error_value(value.max_rel_err, "max_rel_err"))
    if not isinstance(value.reference, str):
        raise TypeError(f"validate returned reference={value.reference!r}, expected a string")
    if value.detail is not None and not isinstance(value.detail, str):
        raise TypeError(f"validate returned detail={value.detail!r}, expected a string or None")
    return Validation(ok, errs[0], errs[1], value.reference, value.detail)


def _plain(value: object) -> object:
    """A NumPy or torch scalar as the Python value it holds; anything else unchanged."""
    if not isinstance(value, (bool, numbers.Real)) and hasattr(value, "item"):
        with contextlib.suppress(Exception):
            return value.item()
    return value


def _error_value(value: object, name: str) -> float | None:
    value = _plain(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"validate returned {name}={value!r}, expected a number or None")
    return float(value)


def empty_record(
    *,
    suite: str,
    case_id: str,
    workload: str,
    impl: str,
    params: Mapping[str, Any],
    device: str,
    dtype: str,
    phase: str,
    kind: str,
    status: str,
    reason: str | None,
    version: str,
    reference_impl: str | None = None,
) -> Record:
    """A record with every field of the contract; the measured ones empty."""
    rec = Record(
        id=case_id,
        suite=suite,
        workload=workload,
        impl=impl,
        params=dict(params),
        device=device,
        dtype=dtype,
        phase=phase,
        kind=kind,
        status=status,
        reason=reason,
        timer=None,
        samples_s=[],
        first_call_s=None,
        summary=None,
        validation=None,
        memory=None,
        host_blocking=None,
        version=version,
        convergence=None,
    )
    if reference_impl is not None:
        rec["reference_impl"] = reference_impl
    return rec


def base_record(case: Case, status: str, reason: str | None = None) -> Record:
    """The record of `case` before (or without) measuring it."""
    return empty_record(
        suite=case.suite,
        case_id=case.id,
        workload=case.workload.name,
        impl=case.impl.name,
        params=case.param_dict,
        device=case.device,
        dtype=case.dtype,
        phase=case.phase,
        kind=case.workload.kind,
        status=status,
        reason=reason,
        version=case.version,
        reference_impl=case.workload.reference_impl,
    )


def measured_record(
    case: Case, clock: Clock, first_s: float, validation: Validation, m: Measurement
) -> Record:
    """The record of a case that was timed (status ok, invalid or timeout)."""
    if m.stop_reason == "timeout":
        status, reason = "timeout", f"exceeded the case budget of {m.elapsed_s:.3g} s"
    elif not validation.ok:
        status, reason = "invalid", validation.detail or "result differs from the reference"
    else:
        status, reason = "ok", None
    rec = base_record(case, status, reason)
    rec["timer"] = clock.name
    rec["samples_s"] = list(m.samples_s)
    rec["first_call_s"] = first_s
    rec["summary"] = summarize(m.samples_s).to_dict() if m.samples_s else None
    rec["validation"] = validation.to_dict()
    rec["number_per_sample"] = m.number
    rec["warmup_calls"] = m.warmup_calls
    rec["stop_reason"] = m.stop_reason
    rec["rel_ci"] = m.rel_ci if math.isfinite(m.rel_ci) else None
    rec["noisy"] = m.noisy
    if case.workload.measure:
        rec["measure_overrides"] = dict(case.workload.measure)
    if status == "invalid" and case.impl.expected_invalid:
        rec["expected_invalid"] = case.impl.expected_invalid
    return rec


def is_unexpected_invalid(record: Mapping[str, Any]) -> bool:
    """An invalid record whose impl was not declared wrong on purpose (`expected_invalid`)."""
    return record.get("status") == "invalid" and not record.get("expected_invalid")


def invalid_summary(records: Iterable[Mapping[str, Any]]) -> str | None:
    """A run's invalid records in a few words, e.g. "5 invalid (all expected)" or "3 invalid
    (1 unexpected)" (the cases are listed below it); None when none is invalid. Pure."""
    invalid = [r for r in records if r.get("status") == "invalid"]
    if not invalid:
        return None
    unexpected = sum(1 for r in invalid if is_unexpected_invalid(r))
    if not unexpected:
        return f"{len(invalid)} invalid (all expected)"
    return f"{len(invalid)} invalid ({unexpected} unexpected)"


def pool_round(record: Record, m: Measurement, rel_ci_target: float) -> None:
    """Add one more round's samples to a record; summary, interval and flags follow."""
    summary = record["summary"]
    assert summary is not None, "only a timed record takes more rounds"
    rounds = record.get("round_medians_s") or [summary["median_s"]]
    samples = [*record["samples_s"], *m.samples_s]
    rel = relative_ci(samples)
    record["samples_s"] = samples
    record["summary"] = summarize(samples).to_dict()
    record["rel_ci"] = rel if math.isfinite(rel) else None
    record["noisy"] = rel > rel_ci_target
    record["rounds"] = len(rounds) + 1
    record["round_medians_s"] = [*rounds, statistics.median(m.samples_s)]
    if m.stop_reason == "timeout":
        record.setdefault("warnings", []).append(f"round {len(rounds) + 1} hit its time budget")


def unknown_case_record(suite_name: str, case_id: str, default_device: str, reason: str) -> Record:
    """A failed record for an id that names no case, its fields read from the id."""
    parts = parse_case_id(case_id)
    rec = empty_record(
        suite=suite_name,
        case_id=case_id,
        workload=parts.workload,
        impl=parts.impl,
        params=parts.params,
        device=parts.device if parts.device in DEVICES else default_device,
        dtype=parts.dtype,
        phase=parts.phase,
        kind="time",
        status="failed",
        reason=reason,
        version="",
    )
    rec["isolated"] = True
    return rec
