"""Run files on disk: load with clear errors, dump, and write atomically.

Loading goes through `eigenbench.results.reading` (regular files only, a size cap, finite
numbers, bounded integers and nesting, valid Unicode). Writing refuses what loading would
refuse: a non-finite number is stored as null where the schema allows null and is an error
naming the field elsewhere, and nothing is written. Every write is atomic (a temporary file
beside the target, then `os.replace`), made with the usual permissions (0666 less the umask),
and a failure of the disk or the target (read-only, full, a directory, a name too long) is
one `OutputError` (exit 4) that leaves the old file as it was.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from eigenbench.errors import InputFileError, OutputError, ResultsFileError
from eigenbench.results.jsoncheck import first_error
from eigenbench.results.reading import leaf_problem, read_json
from eigenbench.results.schema import RUN_SCHEMA, duplicate_case_id, validate_run


def load_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a run (or baseline) file; every failure is a ResultsFileError."""
    p = Path(path)
    return validate_run(read_json(p, "a run file", check_tree=False), p)


def dumps_run(run: Mapping[str, Any]) -> str:
    """Serialise a run as stable, human-diffable JSON (non-finite floats become null)."""
    return json.dumps(_finite(run), indent=1, sort_keys=False, allow_nan=False) + "\n"


def json_line(obj: Any) -> str:
    """One line of JSON (non-finite floats become null), for line-based protocols."""
    return json.dumps(_finite(obj), allow_nan=False, default=str)


def _finite(
    obj: Any, converted: list[tuple[Any, ...]] | None = None, at: tuple[Any, ...] = ()
) -> Any:
    """`obj` with non-finite floats as null. With `converted` (strict, for run files) their
    places are listed there, and an integer out of range or a string that is not valid
    Unicode raises _Unwritable (one walk: a save is not slowed by a second one)."""
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        if converted is not None:
            converted.append(at)
        return None
    if isinstance(obj, Mapping):
        return {str(k): _finite(v, converted, (*at, str(k))) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v, converted, (*at, i)) for i, v in enumerate(obj)]
    if converted is not None:
        problem = leaf_problem(obj)
        if problem is not None:
            raise _Unwritable(_ptr(at), problem)
    return obj


class _Unwritable(Exception):
    def __init__(self, pointer: str, expected: str) -> None:
        super().__init__(pointer)
        self.problem = (pointer, expected)


def checked_run_text(run: Mapping[str, Any], path: str | os.PathLike[str]) -> str:
    """`dumps_run` of a run the loader will accept, or ResultsFileError naming the field: a
    non-finite number where null is not allowed, an integer beyond ±2**63, a lone surrogate,
    a duplicate case id. The full schema is checked only when a number became null."""
    converted: list[tuple[Any, ...]] = []
    try:
        clean = _finite(run, converted)
    except _Unwritable as exc:
        pointer, expected = exc.problem
        raise ResultsFileError(path, pointer, f"{expected}; refusing to write it") from None
    text = json.dumps(clean, indent=1, sort_keys=False, allow_nan=False) + "\n"
    problem = first_error(clean, RUN_SCHEMA) if converted else None
    if problem is not None:
        pointer, expected = problem
        nan_at = {_ptr(c) for c in converted}
        if pointer in nan_at or any(p.startswith(pointer + "/") for p in nan_at):
            expected = "a finite number (got NaN or infinity)"
        raise ResultsFileError(path, pointer, f"{expected}; refusing to write it")
    duplicate = duplicate_case_id(clean.get("records"))
    if duplicate is not None:
        raise ResultsFileError(path, *duplicate)
    return text


def _ptr(path: tuple[Any, ...]) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)


def save_run(run: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the run atomically: a temporary file beside the target, then os.replace."""
    return write_atomic(Path(path), checked_run_text(run, path))


def write_atomic(path: Path, data: str | bytes, *, mode: int | None = None) -> Path:
    """Write text (UTF-8) or bytes to `path` so that readers see the old or the new file, never
    half of one. The file gets `mode`, or by default 0666 less the umask (like `open`)."""
    return write_all_atomic([(Path(path), data)], mode=mode)[0]


def write_all_atomic(
    items: Iterable[tuple[Path, str | bytes]], *, mode: int | None = None
) -> list[Path]:
    """Write several files all or nothing: every one to a temporary name first, then each
    renamed over its target. A failure while writing (a full disk) leaves every target as it
    was; OutputError (exit 4) names the file."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in items:
            staged.append((_stage(Path(path), data, mode), Path(path)))
        for tmp, path in staged:
            _os_call(path, os.replace, tmp, path)
    finally:
        for tmp, _ in staged:
            if os.path.lexists(tmp):
                Path(tmp).unlink(missing_ok=True)
    return [path for _, path in staged]


def _stage(path: Path, data: str | bytes, mode: int | None) -> str:
    """A temporary file beside `path` holding `data` (fsynced); its name."""
    _os_call(path, path.parent.mkdir, parents=True, exist_ok=True)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a directory")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = str(path.parent / f".{path.name[:200]}.{secrets.token_hex(4)}.tmp")
    fd = _os_call(path, os.open, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            _os_call(path, fh.write, raw)
            _os_call(path, fh.flush)
            _os_call(path, os.fsync, fh.fileno())
        if mode is not None:
            _os_call(path, os.chmod, tmp, mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _os_call(path: Path, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


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
