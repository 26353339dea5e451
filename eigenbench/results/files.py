"""Run files on disk: load with clear errors, dump, and write atomically."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eigenbench.errors import InputFileError, ResultsFileError
from eigenbench.results.schema import validate_run


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


def write_atomic(path: Path, data: str | bytes, *, mode: int | None = None) -> Path:
    """Write text (UTF-8) or bytes to `path` so that readers see the old or the new file, never
    half of one. `mode` sets the permissions before the file appears under its name (the
    temporary file is 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            Path(tmp).chmod(mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def latest_run(folder: str | os.PathLike[str]) -> Path:
    """The newest run file in `folder` (by modification time, then name)."""
    runs = list_runs(folder)
    if not runs:
        raise InputFileError(folder, "/", "a folder holding run files (*.json); found none")
    return runs[-1]


def list_runs(folder: str | os.PathLike[str]) -> list[Path]:
    """Run files in a folder, oldest first, ignoring temporaries left by a killed run."""
    d = Path(folder)
    if not d.is_dir():
        return []
    files = [p for p in d.glob("*.json") if not p.name.startswith(".")]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))
