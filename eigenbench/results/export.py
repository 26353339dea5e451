"""Exports of a run to other tools' formats: pyperf JSON and github-action-benchmark JSON.

- pyperf ("version": "1.0" BenchmarkSuite): one benchmark per `ok` record, named by the case
  id, whose single run holds the samples in seconds (and the first call as a warm-up), so
  `python -m pyperf stats|compare_to` work on it.
- github-action-benchmark (`tool: customSmallerIsBetter`): one entry per `ok` record with the
  median as value, the 95 % interval of the median as range, details as extra.

A run of several machines (`eigenbench merge`) names each benchmark `case id @ machine_key`
and keeps the machine in its metadata (pyperf) or details (github-action).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eigenbench.errors import ExportError, UsageError
from eigenbench.results import Record, write_atomic
from eigenbench.results.merge import MACHINE_SEP, is_multi_machine
from eigenbench.units import fmt_bytes

FORMATS = ("pyperf", "github-action")
GHA_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
"""Time units github-action-benchmark rescales between runs (seconds per unit)."""
MAX_SECONDS = 1e9
"""The longest time exported (about 32 years): larger ones overflow pyperf's statistics
(a sum of squares of 1e308 is infinite) and can only be a broken file."""


def _ok_records(run: Mapping[str, Any], fmt: str) -> list[Record]:
    recs = [
        r
        for r in run.get("records") or []
        if r.get("status") == "ok" and any(v > 0 for v in r.get("samples_s") or [])
    ]
    if not recs:
        raise ExportError(
            f"run {run.get('run_id')!r} has no ok records with samples; nothing to export as {fmt}"
        )
    seen: set[str] = set()
    for rec in recs:
        name = _name(run, rec)
        if name in seen:
            raise ExportError(f"case {name!r} appears twice; {fmt} names must be unique")
        seen.add(name)
        times = [*rec["samples_s"], *(v for v in (rec.get("summary") or {}).values())]
        if any(not math.isfinite(v) or abs(v) > MAX_SECONDS for v in times if _is_num(v)):
            raise ExportError(
                f"case {rec['id']!r} holds a time beyond {MAX_SECONDS:g} s (or not finite); "
                f"{fmt} cannot hold it"
            )
    return recs


def _name(run: Mapping[str, Any], rec: Record) -> str:
    """The benchmark's name: the case id, and its machine in a run of several."""
    return rec["id"] + (MACHINE_SEP + rec["machine_key"] if is_multi_machine(run) else "")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def iso_date(text: Any) -> str | None:
    """A start time as pyperf's `date` metadata (ISO 8601, UTC, no zone), or None."""
    if not isinstance(text, str):
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return when.isoformat(sep=" ", timespec="seconds")


def _meta_value(v: Any) -> str | int | float | None:
    """A value pyperf accepts as metadata (int, float or one-line non-empty str), else None."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, str):
        text = " ".join(v.split())
        return text or None
    return None


def _clean(meta: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in meta.items():
        value = _meta_value(v)
        if value is not None:
            out[k] = value
    return out


def to_pyperf(run: Mapping[str, Any]) -> dict[str, Any]:
    """A pyperf 1.0 BenchmarkSuite dict; values in seconds, non-positive samples dropped."""
    env = run.get("env") or {}
    gpu = env.get("gpu") or {}
    cpu = env.get("cpu") or {}
    suite_meta = _clean(
        {
            "eigenbench_run_id": run.get("run_id"),
            "eigenbench_machine_key": env.get("machine_key"),
            "git_commit": env.get("git_commit"),
            "gpu_name": gpu.get("name") if isinstance(gpu, Mapping) else None,
            "cpu_model_name": cpu.get("model") if isinstance(cpu, Mapping) else None,
            "date": iso_date(run.get("started")),
        }
    )
    benchmarks = []
    for rec in _ok_records(run, "pyperf"):
        values = [float(v) for v in rec["samples_s"] if v > 0]
        params = ",".join(f"{k}={v}" for k, v in (rec.get("params") or {}).items())
        run_meta = _clean(
            {
                "name": _name(run, rec),
                "unit": "second",
                "loops": 1,
                "eigenbench_suite": rec.get("suite"),
                "eigenbench_workload": rec.get("workload"),
                "eigenbench_impl": rec.get("impl"),
                "eigenbench_params": params,
                "eigenbench_device": rec.get("device"),
                "eigenbench_dtype": rec.get("dtype"),
                "eigenbench_phase": rec.get("phase"),
                "eigenbench_version": rec.get("version"),
                "timer": rec.get("timer"),
                "eigenbench_machine_key": rec.get("machine_key"),
            }
        )
        pyperf_run: dict[str, Any] = {"metadata": run_meta, "values": values}
        first = rec.get("first_call_s")
        if isinstance(first, (int, float)) and math.isfinite(first) and first > 0:
            pyperf_run["warmups"] = [[1, float(first)]]
        benchmarks.append({"runs": [pyperf_run]})
    return {"version": "1.0", "metadata": suite_meta, "benchmarks": benchmarks}


def to_github_action(run: Mapping[str, Any], *, unit: str = "s") -> list[dict[str, Any]]:
    """`customSmallerIsBetter` entries: name = case id, value = median in `unit` (s by default)."""
    if unit not in GHA_UNITS:
        raise UsageError(f"github-action unit must be one of {', '.join(GHA_UNITS)}, got {unit!r}")
    scale = GHA_UNITS[unit]
    env = run.get("env") or {}
    entries = []
    for rec in _ok_records(run, "github-action"):
        summary = rec.get("summary") or {}
        values = sorted(float(v) for v in rec["samples_s"] if v > 0)
        median = summary.get("median_s", _median(values))
        entry: dict[str, Any] = {"name": _name(run, rec), "unit": unit, "value": median / scale}
        low, high = summary.get("ci95_low_s"), summary.get("ci95_high_s")
        if low is not None and high is not None:
            entry["range"] = f"± {(high - low) / 2 / scale:.6g}"
        lines = [
            f"device: {rec.get('device')}",
            f"dtype: {rec.get('dtype')}",
            f"impl: {rec.get('impl')}",
            f"phase: {rec.get('phase')}",
            f"timer: {rec.get('timer')}",
            f"samples: {len(values)}",
        ]
        if low is not None and high is not None:
            lines.append(f"ci95: [{low / scale:.6g}, {high / scale:.6g}] {unit}")
        memory = rec.get("memory") or {}
        if isinstance(memory.get("peak_bytes"), int):
            peak = fmt_bytes(memory["peak_bytes"], unit="MiB", spec=".1f")
            lines.append(f"peak memory ({memory.get('kind')}): {peak}")
        if rec.get("host_blocking") is not None:
            lines.append(f"host blocking: {str(rec['host_blocking']).lower()}")
        lines.append(f"machine: {rec.get('machine_key') or env.get('machine_key')}")
        lines.append(f"version: {rec.get('version')}")
        entry["extra"] = "\n".join(lines)
        entries.append(entry)
    return entries


def _median(sorted_values: list[float]) -> float:
    n = len(sorted_values)
    mid = n // 2
    return sorted_values[mid] if n % 2 else (sorted_values[mid - 1] + sorted_values[mid]) / 2


def dumps_export(run: Mapping[str, Any], fmt: str) -> str:
    """The export as JSON text."""
    if fmt == "pyperf":
        doc: Any = to_pyperf(run)
    elif fmt == "github-action":
        doc = to_github_action(run)
    else:
        raise UsageError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return json.dumps(doc, indent=1, sort_keys=True, allow_nan=False) + "\n"


def write_export(run: Mapping[str, Any], fmt: str, out: str | os.PathLike[str]) -> Path:
    """Write the export to `out` atomically and return the path."""
    return write_atomic(Path(out), dumps_export(run, fmt))
