"""Where commands may write, and whether `--resume` may continue a file.

`--out` never replaces an input of the same command, a baseline, or a file that is not what
the command writes (`run --out suites/x.py`): each of those is refused with one line and exit 2
(a usage error: the argument names the wrong place). A target that cannot be written — a
directory, a FIFO or device, a read-only folder — is exit 4, as are write failures later
(`eigenbench.results.files`). `--resume` continues only a run of this machine measured with
the same options; a mismatch is exit 3 naming the fields, unless `--force`.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from eigenbench.errors import EigenbenchError, OutputError, ResultsFileError, UsageError

OutKind = Literal["run", "export", "report"]


def check_out(
    out: str | os.PathLike[str],
    *,
    kind: OutKind,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    command: str,
    baseline_roots: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """`out`, once it is a place `command` may write `kind` to; UsageError or OutputError."""
    from eigenbench.gate.baseline import DEFAULT_ROOT

    target = Path(out)
    real = Path(os.path.realpath(target))
    for given in inputs:
        if given is None:
            continue
        src = Path(os.path.realpath(given))
        if real == src or src in real.parents:
            where = "an input" if real == src else "inside an input"
            raise UsageError(
                f"eigenbench {command}: --out {target} is {where} of this command ({given}); "
                "refusing to overwrite it"
            )
    for root in (DEFAULT_ROOT, *baseline_roots):
        base = Path(os.path.realpath(root))
        if real == base or base in real.parents:
            raise UsageError(
                f"eigenbench {command}: --out {target} is under the baselines ({root}); "
                "save baselines with `eigenbench baseline save`"
            )
    try:
        st = real.stat()
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    if kind == "report":
        if not stat.S_ISDIR(st.st_mode):
            raise UsageError(f"eigenbench {command}: --out {target} exists and is not a folder")
        return target
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"cannot write {target}: it is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"cannot write {target}: it is not a regular file")
    _check_replaceable(target, kind, command)
    return target


def _check_replaceable(target: Path, kind: OutKind, command: str) -> None:
    """Refuse to replace an existing file unless it is what `command` writes."""
    from eigenbench.results.reading import read_json

    try:
        doc = read_json(target, "a file")
    except EigenbenchError:
        doc = None
    is_run = isinstance(doc, dict) and "records" in doc and "schema" in doc
    if is_run and "history_run_ids" in doc:  # type: ignore[operator]
        raise UsageError(
            f"eigenbench {command}: --out {target} is a baseline (it has a run history); "
            "refusing to overwrite it"
        )
    if kind == "run" and not is_run:
        raise UsageError(
            f"eigenbench {command}: --out {target} exists and is not an eigenbench run file; "
            "refusing to overwrite it"
        )
    if kind == "export" and (doc is None or is_run):
        what = "a run file" if is_run else "not an export (JSON)"
        raise UsageError(
            f"eigenbench {command}: --out {target} exists and is {what}; refusing to overwrite it"
        )


RESUME_KEYS = ("devices", "quick", "measure", "seed", "isolate", "rounds")
"""The run options that change what is measured, checked by `--resume` (all keys are)."""


def resume_mismatch(
    previous: Mapping[str, Any], machine_key: str, options: Mapping[str, Any]
) -> list[str]:
    """The fields in which `previous` (a loaded run) differs from this machine and options."""
    fields: list[str] = []
    env = previous.get("env") or {}
    if env.get("machine_key") != machine_key:
        fields.append("machine_key")
    old = _plain(previous.get("options") or {})
    new = _plain(options)
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            fields += [f"{key}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            fields.append(key)
    return fields


def check_resume(
    path: str | os.PathLike[str],
    previous: Mapping[str, Any],
    machine_key: str,
    options: Mapping[str, Any],
    *,
    force: bool,
) -> None:
    """ResultsFileError (exit 3) when `previous` was measured elsewhere or otherwise."""
    fields = resume_mismatch(previous, machine_key, options)
    if fields and not force:
        raise ResultsFileError(
            path,
            "/",
            f"a run of this machine with these options to resume; it differs in "
            f"{', '.join(fields)} (--force resumes it anyway)",
        )


def _plain(value: Any) -> dict[str, Any]:
    """A JSON round trip (tuples become lists), so stored and current options compare."""
    doc = json.loads(json.dumps(value, default=str))
    return doc if isinstance(doc, dict) else {"": doc}
