"""Running one step of `make gpu-check`: its time, environment and process group; and the
output folder's hygiene and size limits. Standard library only."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gpu_check_summary import Loaded, StepResult, tail

REPO = Path(__file__).resolve().parents[1]
TESTS_SECOND_MIN_S = 30.0
"""Kept from the tests cap for the second pytest call (the CUDA-sensitive files)."""
GRACE_S = 3.0
"""Between SIGTERM and SIGKILL of a step (unless it says otherwise)."""
MAX_FILE_BYTES = 16 * 1024 * 1024
OUTPUT_FILES = (
    "summary.md",
    "steps.log",
    "tests.log",
    "preflight.json",
    "selftest.json",
    "peers.json",
    "bench-gpu.json",
    "report.tar.gz",
)
PLUGIN = "eigenbench.pytest_plugin"


# ---------------------------------------------------------------------------- budget


def step_timeout(cap_s: float, remaining_s: float, reserve_s: float, grace_s: float) -> float:
    """Seconds a step may run: its cap, but never past what is left after the reserve kept
    for later steps and the kill grace of this one (0 when nothing is left)."""
    return max(0.0, min(cap_s, remaining_s - reserve_s - grace_s))


def split_tests_time(total_s: float) -> float:
    """Time of the first pytest call: the total less what the second call keeps (when the
    total is large enough to keep it)."""
    if total_s >= 2 * TESTS_SECOND_MIN_S:
        return total_s - TESTS_SECOND_MIN_S
    return total_s


# ---------------------------------------------------------------------------- environment


def plugin_args(entry_point_values: Iterable[str]) -> list[str]:
    """`-p eigenbench.pytest_plugin` unless a pytest11 entry point already loads it."""
    return [] if PLUGIN in set(entry_point_values) else ["-p", PLUGIN]


def prepend_path(entry: str, current: str | None) -> str:
    return entry if not current else f"{entry}{os.pathsep}{current}"


def step_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = prepend_path(str(REPO), env.get("PYTHONPATH"))
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ---------------------------------------------------------------------------- processes


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop_process(proc: subprocess.Popen[bytes], grace_s: float, whole_group: bool) -> int | None:
    """SIGTERM (to the group, or to the leader only), then SIGKILL to the group after
    `grace_s`; the exit code, or None if it could not be reaped."""
    if whole_group:
        _signal_group(proc.pid, signal.SIGTERM)
    else:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
    try:
        return proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return None


def run_step(
    name: str,
    command: list[str],
    *,
    timeout_s: float,
    stdout_path: Path,
    stderr_path: Path | None = None,
    cwd: Path = REPO,
    env: Mapping[str, str] | None = None,
    grace_s: float = GRACE_S,
    term_leader_only: bool = False,
) -> StepResult:
    """Run `command` in a new process group with stdout (and stderr, or both into stdout) to
    files; on overrun stop it (see `stop_process`). Never raises for the command's sake."""
    result = StepResult(name, command, limit_s=timeout_s)
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(stdout_path, "ab"))
        err = stack.enter_context(open(stderr_path, "ab")) if stderr_path else subprocess.STDOUT
        try:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        except OSError as exc:
            result.note = f"could not start: {exc}"
            return result
        try:
            result.rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            result.timed_out = True
            result.rc = stop_process(proc, grace_s, whole_group=not term_leader_only)
        except BaseException:  # this script is being stopped: stop the step as at its limit
            stop_process(proc, grace_s, whole_group=not term_leader_only)
            raise
        finally:
            _signal_group(proc.pid, signal.SIGKILL)  # leftovers of the group
    result.seconds = time.monotonic() - t0
    with contextlib.suppress(OSError):
        result.stderr_tail = tail((stderr_path or stdout_path).read_text(errors="replace"))
    return result


# ---------------------------------------------------------------------------- output folder


def is_own_leftover(name: str) -> bool:
    """A temporary file this script or its steps leave (atomic writes, eigenbench's recheck)."""
    return (name.startswith(".") and name.endswith(".tmp")) or name.endswith(".recheck.json")


def foreign_entries(names: Iterable[str]) -> list[str]:
    """Entries of an output folder that are neither deliverables nor our own leftovers."""
    return sorted(n for n in names if n not in OUTPUT_FILES and not is_own_leftover(n))


def clean_out(out: Path, keep: Sequence[str] = OUTPUT_FILES) -> list[str]:
    """Delete our files in `out` but those in `keep`; the names deleted. (`parse_args`
    refused a folder holding anything else.)"""
    removed = []
    for path in sorted(out.iterdir()):
        if path.name in keep and path.is_file():
            continue
        if path.name not in OUTPUT_FILES and not is_own_leftover(path.name):
            continue
        removed.append(path.name)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return removed


# ---------------------------------------------------------------------------- oversize files


def files_note(out: Path) -> str:
    big = [p.name for p in out.iterdir() if p.is_file() and p.stat().st_size > MAX_FILE_BYTES]
    return f"Over {MAX_FILE_BYTES >> 20} MiB (may not come back): {', '.join(big)}." if big else ""


def _without_png(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if member.name.endswith(".png") else member


def pack_report(folder: Path, target: Path) -> str:
    """tar.gz `folder` as report/; without its PNGs if that is too big. A note."""
    for skip_png in (False, True):
        with tarfile.open(target, "w:gz") as tar:
            tar.add(
                folder,
                arcname="report",
                filter=_without_png if skip_png else None,
            )
        if target.stat().st_size <= MAX_FILE_BYTES:
            return "PNG charts left out (size)" if skip_png else ""
    target.unlink()
    return "report too big to bring back, even without its charts"


def without_samples(run: dict[str, Any]) -> dict[str, Any]:
    """The run with every record's `samples_s` emptied (summaries kept): a smaller file."""
    records = run.get("records")
    slim = [
        {**r, "samples_s": []} if isinstance(r, dict) and "samples_s" in r else r
        for r in (records if isinstance(records, list) else [])
    ]
    return {**run, "records": slim} if isinstance(records, list) else run


def fit_run_file(path: Path, run: Loaded) -> str:
    """Rewrite an over-size run file without its samples (after the report was made from
    it), so that it can still come back; a note, empty if nothing was done."""
    if not path.exists() or path.stat().st_size <= MAX_FILE_BYTES or not run.ok:
        return ""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(without_samples(run.data), indent=1) + "\n")
    os.replace(tmp, path)
    return f"samples_s emptied to fit {MAX_FILE_BYTES >> 20} MiB (the report has them)"
