"""`eigenbench profile CASE_ID`: warm calls of one case, then N calls under torch.profiler;
a top-N table of ops and kernels with their self times, and a Chrome/Perfetto trace."""

from __future__ import annotations

import argparse
import difflib
import json
import os
from pathlib import Path
from typing import Any

from eigenbench.cli.outputs import check_out
from eigenbench.errors import (
    EnvironmentProblem,
    MissingDependency,
    OutputError,
    SuiteError,
    UsageError,
)
from eigenbench.results.locks import file_lock
from eigenbench.spec import Case

WARM_CALLS = 2


def add_profile_parser(sub: Any) -> None:
    """The `profile` sub-command (registered by `eigenbench.cli.parser`)."""
    p = sub.add_parser(
        "profile",
        help="one case under torch.profiler: top ops and kernels with self time, "
        "and a Chrome/Perfetto trace",
    )
    p.add_argument("case_id", metavar="CASE_ID", help="as `eigenbench plan` lists them")
    p.add_argument(
        "--device", choices=("cpu", "cuda"), help="run the case on this device (default: its id's)"
    )
    p.add_argument("--calls", type=int, default=5, metavar="N", help="profiled calls (default 5)")
    p.add_argument("--top", type=int, default=20, metavar="N", help="table rows (default 20)")
    p.add_argument("--out", metavar="TRACE.json", help="write the Chrome/Perfetto trace here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="the table as JSON")
    p.set_defaults(func=cmd_profile)


def cmd_profile(args: argparse.Namespace) -> int:
    """Profile one case; exit 3 on an unknown id, 4 when its device or a module is missing."""
    from eigenbench.measure.dispatch import profile_rows, trace_events
    from eigenbench.measure.kernel_names import fingerprint

    for name in ("calls", "top"):
        if getattr(args, name) < 1:
            raise UsageError(f"eigenbench profile: --{name} must be at least 1")
    case = resolve_case(args.case_id, args.device)
    trace = None if args.out is None else check_out(args.out, kind="export", command="profile")
    prof = _profiled(case, args.seed, args.calls)
    if trace is not None:
        with file_lock(trace):
            _write_trace(prof, trace)
    events = trace_events(prof.function_events)
    rows = profile_rows(events, args.top)
    dispatch = fingerprint(events, case.device, calls=args.calls)
    if args.json:
        doc = {
            "case": case.id,
            "device": case.device,
            "calls": args.calls,
            "warm_calls": WARM_CALLS,
            "trace": None if trace is None else str(trace),
            "dispatch": dispatch,
            "rows": [r.to_dict() for r in rows],
        }
        print(json.dumps(doc, indent=1))
        return 0
    _print_table(case, rows, args.calls, dispatch, trace)
    return 0


def resolve_case(case_id: str, device: str | None) -> Case:
    """The case of any suite with this id (full or quick grid), on `device` when given;
    SuiteError (exit 3) naming the nearest ids; exit 4 (EnvironmentProblem,
    MissingDependency) without its GPU or a module it needs."""
    from eigenbench.run.runner import unavailable_reason
    from eigenbench.spec import expand
    from eigenbench.suites import load_suites

    parts = case_id.split("/")
    if device is not None and len(parts) >= 3:
        parts[2] = device
        case_id = "/".join(parts)
    wanted = parts[2] if len(parts) >= 3 and parts[2] in ("cpu", "cuda") else "cpu"
    suites = load_suites(["all"])
    found: dict[str, Case] = {}
    for suite in suites:
        for quick in (False, True):
            for c in expand(suite, devices=(wanted,), quick=quick):
                found.setdefault(c.id, c)
    case = found.get(case_id)
    if case is None:
        near = difflib.get_close_matches(case_id, list(found), n=3, cutoff=0.5)
        hint = f"; nearest: {', '.join(near)}" if near else " (see `eigenbench plan all`)"
        raise SuiteError(f"eigenbench profile: no case {case_id!r} in any suite{hint}")
    reason = unavailable_reason(case)
    if reason is not None:
        error = EnvironmentProblem if case.device == "cuda" else MissingDependency
        raise error(f"eigenbench profile: {case.id}: {reason}")
    return case


def _profiled(case: Case, seed: int, calls: int) -> Any:
    """Warm calls, then `calls` profiled ones, contained as the runner contains a case: what
    the impl prints goes to stderr; its exception, `sys.exit` or own KeyboardInterrupt is one
    line, exit 3 (a real Ctrl-C still stops the command)."""
    from eigenbench.measure.dispatch import profile_calls
    from eigenbench.run import contain
    from eigenbench.units import one_line

    try:
        with contain.impl_code():
            fn = _bound_call(case, seed)
            for _ in range(WARM_CALLS):
                fn()
            return profile_calls(fn, case.device, calls)
    except contain.ImplExit as exc:
        raise SuiteError(f"eigenbench profile: {case.id}: {exc}") from None
    except Exception as exc:
        raise SuiteError(f"eigenbench profile: {case.id} failed: {one_line(exc)}") from None


def _write_trace(prof: Any, trace: Path) -> None:
    """The Chrome trace, written beside `trace` and renamed over it (never half a file)."""
    staged = trace.with_name(f".{trace.name}.{os.getpid()}.tmp")
    try:
        trace.parent.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(staged))
        os.replace(staged, trace)
    except OSError as exc:
        staged.unlink(missing_ok=True)
        raise OutputError(f"cannot write {trace}: {exc.strerror or exc}") from None


def _bound_call(case: Case, seed: int) -> Any:
    """The zero-argument callable the runner would time (a convergence workload: one step)."""
    w = case.workload
    fn = w.bind(
        case.impl, w.make_inputs(case.param_dict, case.device, case.dtype, seed), case.phase
    )
    return fn().step if w.kind == "convergence" else fn


def _print_table(
    case: Case, rows: list[Any], calls: int, dispatch: Any, trace: Path | None
) -> None:
    from rich.console import Console
    from rich.table import Table

    from eigenbench.units import fmt_seconds

    on_cuda = case.device == "cuda"
    table = Table(
        title=f"{case.id}: {calls} calls after {WARM_CALLS} warm ones", title_justify="left"
    )
    table.add_column("kind")
    table.add_column("name", overflow="ellipsis", no_wrap=True, max_width=60)
    table.add_column("count", justify="right")
    table.add_column("self CPU / call", justify="right")
    if on_cuda:
        table.add_column("device / call", justify="right")
    for r in rows:
        cells = [r.kind, r.name, str(r.count), fmt_seconds(r.self_cpu_us * 1e-6 / calls)]
        if on_cuda:
            cells.append(fmt_seconds(r.device_us * 1e-6 / calls))
        table.add_row(*cells)
    console = Console()
    console.print(table)
    short = dispatch["short"] if dispatch else "nothing recorded (no torch op, no kernel)"
    console.print(f"dispatch ({calls} calls): {short}", markup=False, soft_wrap=True)
    if trace is not None:
        console.print(f"trace: {trace} (chrome://tracing or ui.perfetto.dev)", markup=False)
