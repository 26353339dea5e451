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
  sampling), added compatibly.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eigenbench.errors import ResultsFileError

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
        "env": {
            "type": "object",
            "required": ["machine_key", "cpu", "gpu", "packages", "git_commit"],
            "properties": {
                "machine_key": {"type": "string", "minLength": 1},
                "gpu": {"type": ["object", "null"]},
                "packages": {"type": "object"},
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
        "records": {"type": "array", "items": RECORD_SCHEMA},
    },
}


def validate_run(doc: Any, path: str | os.PathLike[str] = "<run>") -> dict[str, Any]:
    """Check `doc` against the run schema; raise ResultsFileError naming the first bad field."""
    from eigenbench.jsoncheck import first_error

    if isinstance(doc, Mapping) and doc.get("schema") not in (None, SCHEMA_ID):
        raise ResultsFileError(path, "/schema", f"schema {SCHEMA_ID!r}, got {doc['schema']!r}")
    error = first_error(doc, RUN_SCHEMA)
    if error is not None:
        pointer, expected = error
        raise ResultsFileError(path, pointer, _one_line(expected))
    return dict(doc)


def _one_line(message: str, limit: int = 160) -> str:
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a run (or baseline) file; every failure is a ResultsFileError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsFileError(p, "/", "a run file; no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsFileError(
            p, "/", f"a readable UTF-8 file ({exc.__class__.__name__})"
        ) from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ResultsFileError(
            p, "/", f"valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except ValueError as exc:
        raise ResultsFileError(p, "/", str(exc)) from None
    return validate_run(doc, p)


def _reject_constant(name: str) -> float:
    raise ValueError(f"finite numbers, got {name}")


def dumps_run(run: Mapping[str, Any]) -> str:
    """Serialise a run as stable, human-diffable JSON (non-finite floats become null)."""
    return json.dumps(_finite(run), indent=1, sort_keys=False, allow_nan=False) + "\n"


def json_line(obj: Any) -> str:
    """One line of JSON (non-finite floats become null), for line-based protocols."""
    return json.dumps(_finite(obj), allow_nan=False, default=str)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def save_run(run: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the run atomically: a temporary file beside the target, then os.replace."""
    return write_atomic(Path(path), dumps_run(run))


def write_atomic(path: Path, text: str) -> Path:
    """Write text to `path` so that readers see the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def list_runs(folder: str | os.PathLike[str]) -> list[Path]:
    """Run files in a folder, oldest first, ignoring temporaries left by a killed run."""
    d = Path(folder)
    if not d.is_dir():
        return []
    files = [p for p in d.glob("*.json") if not p.name.startswith(".")]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))
