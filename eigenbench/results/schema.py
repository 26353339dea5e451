"""Run files: the versioned JSON schema, loading with clear errors, and atomic saving.

Format history (one line per schema version):
- eigenbench.run/1: first version: run metadata, env, options and one record per case, with
  samples, summary, validation, memory and host-blocking; optional per-record `convergence`
  (loss trajectory and time-to-target) added compatibly for convergence workloads;
  optional `rounds`/`round_medians_s` per record (`run --rounds`) and, in baselines,
  `history_run_ids` with per-record `run_medians_s` (the last runs saved), added compatibly;
  optional top-level `ab` (`eigenbench ab`: pair id, side, rounds, seed, setup), added
  compatibly; optional top-level `cuda_lost` (the case after which a sticky CUDA error
  stopped the CUDA cases, and the error) and per-record `gpu_clocks` (NVML readings during
  sampling) and `reference_impl` (the impl its workload's charts compare against), added
  compatibly; optional per-record `expected_invalid` (on an invalid record of an impl declared
  wrong on purpose, `Impl.expected_invalid`: why) and `host_load` (load average and other
  processes' CPU during the case, `under_load`), added compatibly; optional `env.peaks`
  (measured dense-matmul FLOP/s and copy bandwidth per device and dtype) and per-record
  `throughput` (achieved flop/s and bytes/s of the workload's declared cost, fraction of the
  binding roof, `bound`, `floor_s`, `below_floor`), added compatibly; optional per-record
  `dispatch` (what one profiled call ran: op, kernel and host-sync counts, or null with
  `dispatch_reason`) and `graph` (`--graph`: CUDA-graph replay time beside event time, or why
  the call is not capturable), added compatibly; optional per-record `machine_key` and
  top-level `machines` (machine key → that machine's env) and `merged_from` (the source runs)
  of `eigenbench merge`, added compatibly; optional top-level `shards` (a sharded run,
  `run --workers`/`--executor`/`--shard`: per shard its index, count, cases, host, GPU,
  `CUDA_VISIBLE_DEVICES` and how it ended), added compatibly. Files with duplicate case ids
  (per machine), non-finite numbers, integers beyond ±2**63, lone surrogates or nesting
  deeper than 64 were never written by eigenbench and are now refused on load
  (`eigenbench.results.reading`).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Mapping
from typing import Any, TypedDict

from eigenbench.errors import ResultsFileError
from eigenbench.results.jsoncheck import first_error
from eigenbench.results.reading import tree_problem

SCHEMA_ID = "eigenbench.run/1"
STATUSES = ("ok", "invalid", "skipped", "failed", "timeout", "interrupted")
RUN_STATUSES = ("running", "complete", "interrupted")
TIMERS = ("perf_counter", "cuda_event", None)

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_STR_OR_NULL = {"type": ["string", "null"]}

SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "n",
        "median_s",
        "mean_s",
        "min_s",
        "max_s",
        "iqr_s",
        "ci95_low_s",
        "ci95_high_s",
    ],
    "properties": {
        "n": {"type": "integer", "minimum": 1},
        **{
            k: {"type": "number", "minimum": 0}
            for k in ("median_s", "mean_s", "min_s", "max_s", "iqr_s", "ci95_low_s", "ci95_high_s")
        },
    },
}

CONVERGENCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["target", "reached", "steps_to_target", "seconds_to_target", "trajectory"],
    "properties": {
        "target": _NUM,
        "reached": {"type": "boolean"},
        "steps_to_target": {"type": ["integer", "null"]},
        "seconds_to_target": _NUM_OR_NULL,
        "budget_steps": {"type": ["integer", "null"]},
        "budget_s": _NUM_OR_NULL,
        "trajectory": {
            "type": "array",
            "items": {"type": "array", "minItems": 3, "maxItems": 3, "items": _NUM_OR_NULL},
        },
    },
}

THROUGHPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "flop_per_s",
        "bytes_per_s",
        "fraction_of_peak",
        "bound",
        "floor_s",
        "below_floor",
    ],
    "properties": {
        "flop_per_s": _NUM_OR_NULL,
        "bytes_per_s": _NUM_OR_NULL,
        "fraction_of_peak": _NUM_OR_NULL,
        "bound": {"enum": ["compute", "memory"]},
        "floor_s": _NUM,
        "below_floor": {"type": "boolean"},
    },
}

_COUNTS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}

DISPATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["tool", "calls", "ops", "kernels", "syncs"],
    "properties": {
        "tool": {"type": "string"},
        "calls": {"type": "integer", "minimum": 1},
        "ops": _COUNTS,
        "kernels": _COUNTS,
        "syncs": _COUNTS,
        "short": {"type": "string"},
    },
}

GRAPH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["capturable", "reason", "graph_median_s", "event_median_s"],
    "properties": {
        "capturable": {"type": "boolean"},
        "reason": _STR_OR_NULL,
        "graph_median_s": _NUM_OR_NULL,
        "event_median_s": _NUM_OR_NULL,
        "launch_overhead_s": _NUM_OR_NULL,
        "replays": {"type": "integer", "minimum": 0},
    },
}

SHARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["index", "count"],
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "count": {"type": "integer", "minimum": 1},
        "cases": {"type": "integer", "minimum": 0},
        "host": _STR_OR_NULL,
        "cuda_visible_devices": _STR_OR_NULL,
        "gpu": {"type": ["object", "null"]},
        "torch_threads": {"type": ["integer", "null"]},
        "status": {"enum": ["running", "complete", "interrupted", "died"]},
        "error": _STR_OR_NULL,
    },
}
"""One shard of a sharded run: which part of the cases, where it ran, how it ended."""

RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "suite",
        "workload",
        "impl",
        "params",
        "device",
        "dtype",
        "phase",
        "status",
        "reason",
        "timer",
        "samples_s",
        "first_call_s",
        "summary",
        "validation",
        "memory",
        "host_blocking",
        "version",
    ],
    "properties": {
        "reference_impl": {"type": "string"},
        "machine_key": {"type": "string", "minLength": 1},
        "expected_invalid": {"type": "string"},
        "host_load": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["others_cores", "under_load"],
                    "properties": {
                        "others_cores": {"type": "number"},
                        "under_load": {"type": "boolean"},
                    },
                },
            ]
        },
        "rounds": {"type": "integer", "minimum": 1},
        "round_medians_s": {"type": "array", "items": {"type": "number"}},
        "run_medians_s": {"type": "array", "items": _NUM_OR_NULL},
        "id": {"type": "string", "minLength": 1},
        "suite": {"type": "string"},
        "workload": {"type": "string"},
        "impl": {"type": "string"},
        "params": {
            "type": "object",
            "additionalProperties": {"type": ["integer", "number", "string", "boolean"]},
        },
        "device": {"enum": ["cpu", "cuda"]},
        "dtype": {"type": "string"},
        "phase": {"type": "string"},
        "status": {"enum": list(STATUSES)},
        "reason": _STR_OR_NULL,
        "timer": {"enum": list(TIMERS)},
        "samples_s": {"type": "array", "items": {"type": "number", "minimum": 0}},
        "first_call_s": _NUM_OR_NULL,
        "summary": {"oneOf": [{"type": "null"}, SUMMARY_SCHEMA]},
        "validation": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["ok", "max_abs_err", "max_rel_err", "reference"],
                    "properties": {
                        "ok": {"type": "boolean"},
                        "max_abs_err": _NUM_OR_NULL,
                        "max_rel_err": _NUM_OR_NULL,
                        "reference": {"type": "string"},
                    },
                },
            ]
        },
        "memory": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["peak_bytes", "kind"],
                    "properties": {
                        "peak_bytes": {"type": ["integer", "null"], "minimum": 0},
                        "kind": {"type": "string"},
                    },
                },
            ]
        },
        "host_blocking": {"type": ["boolean", "null"]},
        "version": {"type": "string"},
        "convergence": {"oneOf": [{"type": "null"}, CONVERGENCE_SCHEMA]},
        "throughput": THROUGHPUT_SCHEMA,
        "dispatch": {"oneOf": [{"type": "null"}, DISPATCH_SCHEMA]},
        "dispatch_reason": {"type": "string"},
        "graph": GRAPH_SCHEMA,
    },
}

ENV_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["machine_key", "cpu", "gpu", "packages", "git_commit"],
    "properties": {
        "machine_key": {"type": "string", "minLength": 1},
        "gpu": {"type": ["object", "null"]},
        "packages": {"type": "object"},
        "peaks": {"type": "object"},
    },
}

RUN_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": [
        "schema",
        "run_id",
        "started",
        "finished",
        "status",
        "command",
        "env",
        "options",
        "records",
    ],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "run_id": {"type": "string", "minLength": 1},
        "started": {"type": "string"},
        "finished": _STR_OR_NULL,
        "status": {"enum": list(RUN_STATUSES)},
        "command": {"type": "string"},
        "env": ENV_SCHEMA,
        "machines": {"type": "object", "additionalProperties": ENV_SCHEMA},
        "merged_from": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["run_id", "machine_key"],
                "properties": {
                    "run_id": {"type": "string"},
                    "machine_key": {"type": "string"},
                    "file": _STR_OR_NULL,
                },
            },
        },
        "options": {"type": "object"},
        "history_run_ids": {"type": "array", "items": {"type": "string"}},
        "cuda_lost": {
            "type": "object",
            "required": ["after", "error"],
            "properties": {"after": {"type": "string"}, "error": {"type": "string"}},
        },
        "ab": {
            "type": "object",
            "required": ["id", "side", "rounds"],
            "properties": {
                "id": {"type": "string", "minLength": 1},
                "side": {"enum": ["base", "head"]},
                "rounds": {"type": "integer", "minimum": 1},
                "seed": {"type": "integer"},
                "setup": {"type": "object"},
            },
        },
        "shards": {"type": "array", "items": SHARD_SCHEMA},
        "records": {"type": "array", "items": RECORD_SCHEMA},
    },
}


class RecordFields(TypedDict):
    """The fields every record has (`RECORD_SCHEMA`'s required ones)."""

    id: str
    suite: str
    workload: str
    impl: str
    params: dict[str, int | float | str | bool]
    device: str
    dtype: str
    phase: str
    status: str
    reason: str | None
    timer: str | None
    samples_s: list[float]
    first_call_s: float | None
    summary: dict[str, Any] | None
    validation: dict[str, Any] | None
    memory: dict[str, Any] | None
    host_blocking: bool | None
    version: str


class Record(RecordFields, total=False):
    """One case of a run file, as the runner writes it and every reader takes it."""

    kind: str
    convergence: dict[str, Any] | None
    number_per_sample: int
    warmup_calls: int
    stop_reason: str
    rel_ci: float | None
    noisy: bool
    measure_overrides: dict[str, Any]
    warnings: list[str]
    host_blocking_evidence: dict[str, Any]
    gpu_clocks: dict[str, Any] | None
    rounds: int
    round_medians_s: list[float]
    run_medians_s: list[float | None]
    isolated: bool
    isolation: dict[str, Any]
    reference_impl: str
    expected_invalid: str
    host_load: dict[str, Any] | None
    throughput: dict[str, Any]
    dispatch: dict[str, Any] | None
    dispatch_reason: str
    graph: dict[str, Any]
    machine_key: str


def new_run_id(started: dt.datetime) -> str:
    """A run's id: its UTC start to the second and six random hex digits (sorts by time)."""
    return f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def validate_run(doc: Any, path: str | os.PathLike[str] = "<run>") -> dict[str, Any]:
    """Check `doc` against the run schema; raise ResultsFileError naming the first bad field."""
    if isinstance(doc, Mapping) and doc.get("schema") not in (None, SCHEMA_ID):
        raise ResultsFileError(path, "/schema", f"schema {SCHEMA_ID!r}, got {doc['schema']!r}")
    error = tree_problem(doc) or first_error(doc, RUN_SCHEMA)
    if error is not None:
        pointer, expected = error
        raise ResultsFileError(path, pointer, _one_line(expected))
    duplicate = duplicate_case_id(doc["records"])
    if duplicate is not None:
        raise ResultsFileError(path, *duplicate)
    return dict(doc)


def duplicate_case_id(records: Any) -> tuple[str, str] | None:
    """(JSON pointer, expectation) of the first record whose case id an earlier record of the
    same machine has (`machine_key`: a merged run holds each case once per machine), or None."""
    seen: dict[tuple[Any, Any], int] = {}
    for i, rec in enumerate(records if isinstance(records, list) else []):
        if not isinstance(rec, Mapping) or rec.get("id") is None:
            continue
        key = (rec.get("machine_key"), rec["id"])
        if key in seen:
            on = f" on {key[0]!r}" if key[0] is not None else ""
            message = f"case ids unique in a run; {key[1]!r}{on} is also record {seen[key]}"
            return f"/records/{i}/id", _one_line(message)
        seen[key] = i
    return None


def _one_line(message: str, limit: int = 160) -> str:
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
