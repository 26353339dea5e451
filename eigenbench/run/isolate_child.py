"""The child side of `--isolate`: `python -m eigenbench.run.isolate_child SUITE CASE_ID …`.

It loads the suite, finds the case, resets its peak RSS, writes a `started` marker, runs the
case with `Runner.run_case` and writes `{"record": …}` (or `{"error": …}`) to the result file
atomically; the parent (`eigenbench.run.isolate`) supervises it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import json
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eigenbench.measure.memory import status_bytes
from eigenbench.measure.stats import summarize
from eigenbench.results import write_atomic
from eigenbench.run import contain
from eigenbench.run.options import RunOptions
from eigenbench.run.runner import Runner
from eigenbench.spec import find_case
from eigenbench.suites import load_suite
from eigenbench.units import one_line

_KIB = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m eigenbench.run.isolate_child", description=__doc__)
    p.add_argument("suite")
    p.add_argument("case_id")
    p.add_argument("--options", required=True, help="RunOptions.to_dict() as JSON")
    p.add_argument("--result", required=True, type=Path)
    p.add_argument("--started", required=True, type=Path)
    p.add_argument("--parent", type=int, help="the parent's pid: the child dies with it")
    return p.parse_args(argv)


PR_SET_PDEATHSIG = 1
PARENT_POLL_S = 0.5


def die_with_parent(parent: int | None) -> None:
    """Make this process end when its parent does (a CI cancel SIGKILLs the parent's group,
    and the child has a session of its own): on Linux the kernel's parent-death signal, and
    everywhere a thread that exits once the parent pid is gone."""
    if parent is None:
        return
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="eigenbench-parent-watch", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    """Child side: run one case, write its record (or an error line) to the result file."""
    inherited = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _KIB  # before the suite loads
    args = _parse_args(argv)
    die_with_parent(args.parent)
    contain.install_interrupts()  # an impl's own KeyboardInterrupt is then a failed record
    out: dict[str, Any] = {"inherited_maxrss_bytes": inherited}
    try:
        out.update(_run_child(args, inherited))
        code = 0
    except Exception as exc:  # anything before or around the case: one line for the parent
        out["error"] = one_line(exc)
        code = 1
    write_atomic(args.result, json.dumps(out))
    return code


def _run_child(args: argparse.Namespace, inherited: int) -> dict[str, Any]:
    options = RunOptions.from_dict(json.loads(args.options))
    suite = load_suite(args.suite)
    case = find_case(suite, args.case_id, devices=options.devices, quick=options.quick)
    if case is None:
        return {"error": f"no case {args.case_id!r} in suite {args.suite!r} (in the child)"}
    options = dataclasses.replace(options, isolate=False)  # the child runs the case itself
    if case.device == "cpu":  # the child's peak RSS replaces the in-process probe
        options = dataclasses.replace(options, memory=False)
    runner = Runner(env={}, options=options, out_path=None, command="eigenbench.run.isolate_child")
    summarize([1.0, 2.0, 3.0])  # its lazy imports (numpy.random, …) are not the case's memory
    if case.device == "cuda" and runner.has_cuda():
        start_cuda()  # context creation (seconds) is not the case's time budget
    hwm_reset = _reset_hwm()
    rss_before = status_bytes("VmRSS")
    marker = {"rss_before_bytes": rss_before, "inherited_maxrss_bytes": inherited}
    write_atomic(args.started, json.dumps(marker))
    before_profiler: list[int | None] = []  # the profiler's own memory is not the case's
    runner.before_dispatch = lambda: before_profiler.append(status_bytes("VmHWM"))
    runner.cuda_dispatch_last = False  # one case per process: nothing is timed after it
    record = runner.run_case(case)
    peak = (before_profiler or [status_bytes("VmHWM")])[0] if hwm_reset else None
    return {"record": record, "rss_before_bytes": rss_before, "peak_rss_bytes": peak}


def start_cuda() -> None:
    """Create this process's CUDA context before the case (its libraries still load lazily)."""
    import torch

    torch.empty(1, device="cuda").add_(1)
    torch.cuda.synchronize()


def _reset_hwm() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux); False where that is impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)  # skip interpreter and CUDA teardown: the result is already written
