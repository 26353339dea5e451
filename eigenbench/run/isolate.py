"""`--isolate`: one case in a fresh child process, killed at its budget, with its own peak RSS.

The parent starts `python -m eigenbench.run.isolate_child`, polls `os.wait4(pid, WNOHANG)`
every ~10 ms, kills the child's process group when the case budget passes, and reads the peak
RSS of that exact child. The child (`isolate_child`) loads the suite, finds the case by id,
runs `Runner.run_case` and writes `{"record": …}` (or `{"error": …}`) to a result file
atomically.

Why not `ru_maxrss` alone: a child started by `subprocess` (vfork + exec) inherits the
parent's high-water RSS into its own `ru_maxrss` (a parent that once held 1 GiB gives even an
empty child 1 GiB). So the child resets its `VmHWM` (`/proc/self/clear_refs`) just before the
case and reports it; `ru_maxrss` is used only when it exceeds what the child inherited (then it
is the child's own), and the parent's last reading of the child's `VmHWM` is the fallback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import eigenbench
from eigenbench.env import first_on_pythonpath
from eigenbench.measure.memory import status_bytes
from eigenbench.results import Record
from eigenbench.run.options import RunOptions
from eigenbench.run.records import base_record, unknown_case_record
from eigenbench.spec import Case, find_case

POLL_S = 0.01
TERM_GRACE_S = 0.5
STARTUP_TIMEOUT_S = 120.0
"""Longest the child may take to import and load the suite before its case starts."""
STDERR_TAIL_CHARS = 2000
_KIB = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux


@dataclasses.dataclass(frozen=True, slots=True)
class ChildExit:
    """How the child ended, as the parent saw it."""

    wait_status: int
    maxrss_bytes: int
    killed: str | None
    """None, or why the parent killed it: "case" (its budget) or "startup" (too slow to start)."""
    polled_hwm_bytes: int | None
    """The child's VmHWM last read by the parent after the case began (a lower bound)."""
    startup_s: float | None
    wall_s: float


def run_isolated(
    suite_name: str,
    case_id: str,
    options: RunOptions,
    *,
    timeout_s: float | None,
    suites_folder: Path | None = None,
    python: str = sys.executable,
    case: Case | None = None,
    startup_timeout_s: float | None = STARTUP_TIMEOUT_S,
) -> Record:
    """Run one case in a child process and return its record (with `"isolated": true`).

    `timeout_s` is the hard budget of the case, counted from when the child starts it (after
    its imports); past it the child is killed and the record says `timeout`. Pass `case`
    (whose id is `case_id`) when the caller has it, to skip loading the suite here. Ctrl-C
    kills the child and re-raises; SuiteError propagates when the suite cannot be loaded.
    """
    from eigenbench.suites import load_suite, suites_dir

    folder = Path(suites_folder or suites_dir()).resolve()
    if case is not None and case.id != case_id:
        raise ValueError(f"run_isolated: case.id {case.id!r} differs from case_id {case_id!r}")
    if case is None:
        suite = load_suite(suite_name, folder)
        case = find_case(suite, case_id, devices=options.devices, quick=options.quick)
        if case is None:
            where = f"devices {list(options.devices)}, quick={options.quick}"
            reason = f"no case {case_id!r} in suite {suite_name!r} ({where})"
            return unknown_case_record(suite_name, case_id, options.devices[0], reason)
    with tempfile.TemporaryDirectory(prefix="eigenbench-isolate-") as tmp:
        d = Path(tmp)
        result_path, started_path, stderr_path = d / "result.json", d / "started.json", d / "err"
        argv = [
            python,
            "-X",
            "faulthandler",
            "-m",
            "eigenbench.run.isolate_child",
            suite_name,
            case_id,
            "--options",
            json.dumps(options.to_dict()),
            "--result",
            str(result_path),
            "--started",
            str(started_path),
            "--parent",
            str(os.getpid()),
        ]
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=_child_env(folder),
                start_new_session=True,  # its own process group: killed as one, no Ctrl-C
            )
        outcome = supervise(proc, started_path, timeout_s, startup_timeout_s)
        return assemble(
            case,
            outcome,
            result=_read_json(result_path),
            marker=_read_json(started_path),
            stderr_tail=_tail(stderr_path),
            timeout_s=timeout_s,
            memory=options.memory,
        )


def _child_env(folder: Path) -> dict[str, str]:
    root = str(Path(eigenbench.__file__).resolve().parents[1])  # the parent's own eigenbench
    return first_on_pythonpath({**os.environ, "EIGENBENCH_SUITES": str(folder)}, root)


def supervise(
    proc: subprocess.Popen[bytes],
    started_path: Path,
    timeout_s: float | None,
    startup_timeout_s: float | None,
) -> ChildExit:
    """Poll the child until it exits; kill it at its budget (or on Ctrl-C, then re-raise)."""
    t0 = time.monotonic()
    case_t0: float | None = None
    polled: int | None = None
    killed: str | None = None
    try:
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            if case_t0 is None and started_path.exists():
                case_t0 = now
            if case_t0 is not None:
                polled = _proc_hwm(proc.pid) or polled
            killed = _overdue(now, t0, case_t0, timeout_s, startup_timeout_s)
            if killed is not None:
                status, ru = _kill(proc, TERM_GRACE_S)
                break
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        status, _ = _kill(proc, 0.0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)  # keep the Popen object consistent
    _kill_group(proc.pid)  # anything the case left running in its group
    return ChildExit(
        wait_status=status,
        maxrss_bytes=int(ru.ru_maxrss) * _KIB,
        killed=killed,
        polled_hwm_bytes=polled,
        startup_s=None if case_t0 is None else case_t0 - t0,
        wall_s=time.monotonic() - t0,
    )


def _overdue(
    now: float,
    t0: float,
    case_t0: float | None,
    timeout_s: float | None,
    startup_timeout_s: float | None,
) -> str | None:
    if case_t0 is None:
        late = startup_timeout_s is not None and now - t0 > startup_timeout_s
        return "startup" if late else None
    return "case" if timeout_s is not None and now - case_t0 > timeout_s else None


def _kill(proc: subprocess.Popen[bytes], grace_s: float) -> tuple[int, Any]:
    """SIGTERM the child's group, wait up to `grace_s`, then SIGKILL; reap and return."""
    if grace_s > 0:
        _kill_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                return status, ru
            time.sleep(POLL_S)
    _kill_group(proc.pid, signal.SIGKILL)
    _, status, ru = os.wait4(proc.pid, 0)
    return status, ru


def _kill_group(pgid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _proc_hwm(pid: int) -> int | None:
    return status_bytes("VmHWM", Path(f"/proc/{pid}/status"))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _tail(path: Path, limit: int = STDERR_TAIL_CHARS) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - limit))
            return fh.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


# --------------------------------------------------------------------------- records (pure)


def choose_peak_rss(
    reported: int | None, maxrss: int | None, inherited: int | None, polled: int | None
) -> tuple[int | None, str | None]:
    """The child's peak RSS in bytes and where it came from.

    `reported`: VmHWM the child read after its case (reset just before it): exact.
    `maxrss`: `ru_maxrss` from wait4, the child's own only when above `inherited` (what the
    child's `ru_maxrss` already was when it started, i.e. the parent's high-water mark).
    `polled`: the parent's last reading of the child's VmHWM: a lower bound.
    """
    if reported is not None:
        return reported, "child_vmhwm"
    if maxrss is not None and inherited is not None and maxrss > inherited:
        return maxrss, "wait4_maxrss"
    if polled is not None:
        return polled, "polled_vmhwm"
    return None, None


def death_reason(
    wait_status: int, *, stderr_tail: str = "", peak_rss_bytes: int | None = None
) -> str:
    """One line on why a child that left no result died (it was not killed by us)."""
    last = _last_line(stderr_tail)
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        if sig == signal.SIGKILL:
            at = f" at a peak RSS of {_gib(peak_rss_bytes)}" if peak_rss_bytes else ""
            return (
                f"out of memory? child process killed by SIGKILL{at} "
                "(likely the kernel's OOM killer)"
            )
        return f"child process died: signal {_signal_name(sig)}"
    code = os.waitstatus_to_exitcode(wait_status)
    if last:
        return f"child process exited with code {code}: {last}"
    return f"child process exited with code {code} and left no result"


def assemble(
    case: Case,
    out: ChildExit,
    *,
    result: Mapping[str, Any] | None,
    marker: Mapping[str, Any] | None,
    stderr_tail: str,
    timeout_s: float | None,
    memory: bool = True,
) -> Record:
    """The record of an isolated case from what the child left and how it ended."""
    result = result or {}
    marker = marker or {}
    rss_before = result.get("rss_before_bytes", marker.get("rss_before_bytes"))
    inherited = marker.get("inherited_maxrss_bytes", result.get("inherited_maxrss_bytes"))
    peak, source = choose_peak_rss(
        result.get("peak_rss_bytes"), out.maxrss_bytes, inherited, out.polled_hwm_bytes
    )
    isolation: dict[str, Any] = {
        "peak_rss_bytes": peak,
        "rss_before_bytes": rss_before,
        "rss_source": source,
        "startup_s": out.startup_s,
        "wall_s": out.wall_s,
        "exit": _exit_text(out.wait_status),
    }
    rec: Record
    if isinstance(result.get("record"), dict):
        rec = cast(Record, dict(result["record"]))  # the child's record, checked by the loader
        if memory:
            rec["memory"] = _memory(case, rec.get("memory"), peak, rss_before)
    else:
        rec = base_record(case, *_failure(out, result, stderr_tail, peak, timeout_s))
        if stderr_tail:
            isolation["stderr_tail"] = stderr_tail
    rec["isolated"] = True
    rec["isolation"] = isolation
    return rec


def _failure(
    out: ChildExit,
    result: Mapping[str, Any],
    stderr_tail: str,
    peak: int | None,
    timeout_s: float | None,
) -> tuple[str, str]:
    if out.killed == "case":
        return "timeout", f"killed after {timeout_s:g} s (case budget)"
    if out.killed == "startup":
        return "failed", f"child process did not start the case within {out.wall_s:.3g} s"
    if isinstance(result.get("error"), str):
        return "failed", result["error"]
    return "failed", death_reason(out.wait_status, stderr_tail=stderr_tail, peak_rss_bytes=peak)


def _memory(
    case: Case, child: Any, peak: int | None, rss_before: int | None
) -> dict[str, Any] | None:
    growth = max(0, peak - rss_before) if peak is not None and rss_before is not None else None
    if case.device == "cpu":
        return {
            "peak_bytes": growth,
            "peak_rss_bytes": peak,
            "rss_before_bytes": rss_before,
            "kind": "cpu_child_maxrss",
        }
    if not isinstance(child, Mapping):
        return None  # a device case whose own probe was off: host figures stay in `isolation`
    return {**child, "host_peak_bytes": growth, "peak_rss_bytes": peak}


def _exit_text(wait_status: int) -> str:
    if os.WIFSIGNALED(wait_status):
        return f"signal {_signal_name(os.WTERMSIG(wait_status))}"
    return f"exit code {os.waitstatus_to_exitcode(wait_status)}"


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= 300 else line[:299] + "…"


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.2f} GiB"
