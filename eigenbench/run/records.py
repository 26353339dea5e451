"""The run-file record of a case: its fields, how a measurement fills them, failures as text.

Pure: builds dicts from cases and measurements; nothing here times, runs or writes.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from eigenbench.measure.clocks import Clock
from eigenbench.measure.loop import Measurement, relative_ci
from eigenbench.spec import DEVICES, Case, Validation, parse_case_id
from eigenbench.stats import summarize

OUT_OF_MEMORY_TEXTS = ("out of memory", "alloc_failed", "can't allocate memory")
"""Texts of allocation failures that are not typed as such: cuSOLVER's workspace
(`CUSOLVER_STATUS_ALLOC_FAILED`) and torch's `DefaultCPUAllocator`."""

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
    text = str(exc).lower()[:300]
    return type(exc).__name__ == "OutOfMemoryError" or any(t in text for t in OUT_OF_MEMORY_TEXTS)


def is_fatal_cuda_error(exc: BaseException) -> bool:
    """An error after which this process's CUDA context is lost (illegal address, assert…)."""
    text = str(exc).lower()[:500]
    return any(t in text for t in FATAL_CUDA_TEXTS)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line: type and the first line of its message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


UNMEASURED: dict[str, Any] = {
    "timer": None,
    "samples_s": [],
    "first_call_s": None,
    "summary": None,
    "validation": None,
    "memory": None,
    "host_blocking": None,
}
"""The measured fields of a record that was never timed."""


def base_record(case: Case, status: str, reason: str | None = None) -> dict[str, Any]:
    """A record with every field of the contract; measured fields empty."""
    return {
        **_fields(
            case.suite, case.id, case.workload.name, case.impl.name, case.param_dict, case.device
        ),
        "dtype": case.dtype,
        "phase": case.phase,
        "kind": case.workload.kind,
        "status": status,
        "reason": reason,
        **UNMEASURED,
        "version": case.version,
        "convergence": None,
    }


def _fields(
    suite: str, case_id: str, workload: str, impl: str, params: Any, device: str
) -> dict[str, Any]:
    return {
        "id": case_id,
        "suite": suite,
        "workload": workload,
        "impl": impl,
        "params": params,
        "device": device,
    }


def measured_record(
    case: Case, clock: Clock, first_s: float, validation: Validation, m: Measurement
) -> dict[str, Any]:
    """The record of a case that was timed (status ok, invalid or timeout)."""
    if m.stop_reason == "timeout":
        status, reason = "timeout", f"exceeded the case budget of {m.elapsed_s:.3g} s"
    elif not validation.ok:
        status, reason = "invalid", validation.detail or "result differs from the reference"
    else:
        status, reason = "ok", None
    rec = base_record(case, status, reason)
    rec.update(
        timer=clock.name,
        samples_s=list(m.samples_s),
        first_call_s=first_s,
        summary=summarize(m.samples_s).to_dict() if m.samples_s else None,
        validation=validation.to_dict(),
        number_per_sample=m.number,
        warmup_calls=m.warmup_calls,
        stop_reason=m.stop_reason,
        rel_ci=m.rel_ci if math.isfinite(m.rel_ci) else None,
        noisy=m.noisy,
    )
    if case.workload.measure:
        rec["measure_overrides"] = dict(case.workload.measure)
    return rec


def pool_round(record: dict[str, Any], m: Measurement, rel_ci_target: float) -> None:
    """Add one more round's samples to a record; summary, interval and flags follow."""
    rounds = record.get("round_medians_s") or [record["summary"]["median_s"]]
    samples = [*record["samples_s"], *m.samples_s]
    rel = relative_ci(samples)
    record.update(
        samples_s=samples,
        summary=summarize(samples).to_dict(),
        rel_ci=rel if math.isfinite(rel) else None,
        noisy=rel > rel_ci_target,
        rounds=len(rounds) + 1,
        round_medians_s=[*rounds, statistics.median(m.samples_s)],
    )
    if m.stop_reason == "timeout":
        record.setdefault("warnings", []).append(f"round {len(rounds) + 1} hit its time budget")


def unknown_case_record(
    suite_name: str, case_id: str, default_device: str, reason: str
) -> dict[str, Any]:
    """A failed record for an id that names no case, its fields read from the id."""
    parts = parse_case_id(case_id)
    device = parts.device if parts.device in DEVICES else default_device
    return {
        **_fields(suite_name, case_id, parts.workload, parts.impl, parts.params, device),
        "dtype": parts.dtype,
        "phase": parts.phase,
        "kind": "time",
        "status": "failed",
        "reason": reason,
        **UNMEASURED,
        "version": "",
        "convergence": None,
        "isolated": True,
    }
