"""`make gpu-check`: the one prepared command of a short GPU loan; every CUDA path, recorded.

    python3 tools/gpu_check.py --out DIR [--budget 420] [--bench-args "--min-samples 5 ..."]

Time-boxed steps, each a subprocess in its own process group with its own cap (never more
than what is left of the budget after the later steps' reserves), killed on overrun (SIGTERM,
then SIGKILL), never fatal (rc, seconds and stderr tail go to steps.log):

1. preflight (cap 60 s): tools/gpu_preflight.py → preflight.json. Without torch or a CUDA
   device the summary says "no CUDA device found" and the script exits 0 in seconds.
2. tests (cap 120 s for both calls): pytest -m "gpu or cupy" over tests/, then the unmarked
   tests of the CUDA-sensitive files tests/test_pytest_plugin.py, test_suites.py,
   test_runner.py → tests.log.
3. selftest (cap 60 s): `eigenbench selftest --device cuda --json` → selftest.json.
4. peers (cap 60 s): tools/peers.py, eigenbench beside triton and torch timers → peers.json.
5. bench-gpu (the rest, at least 60 s when the budget allows): `eigenbench run <suites>
   --device cuda`, the seeds' headline suites first → bench-gpu.json, stopped by SIGTERM
   when its time is up (eigenbench then finalises the run file `interrupted`, every
   finished case kept); then `eigenbench report` (cap 40 s,
   reserved from the start) packed as report.tar.gz.

Order: the issue lists bench-gpu before peers; peers runs first so that the short comparison
always happens, and bench-gpu takes whatever time is left.

DIR ends with at most 8 files: summary.md (read it first), steps.log, tests.log,
preflight.json, selftest.json, peers.json, bench-gpu.json, report.tar.gz. Exit 0 always,
2 on bad arguments. Standard library only: it runs under any python3; the steps use the same
interpreter with the repository root prepended to PYTHONPATH (eigenbench need not be
installed).

This file is the command (arguments, the steps in order, signals); gpu_check_steps.py runs
one step and keeps the output folder; gpu_check_summary.py renders summary.md (pure).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_check_steps import (
    GRACE_S,
    REPO,
    clean_out,
    files_note,
    fit_run_file,
    foreign_entries,
    pack_report,
    plugin_args,
    run_step,
    split_tests_time,
    step_env,
    step_timeout,
)
from gpu_check_summary import (
    Loaded,
    StepResult,
    SummaryInputs,
    dig,
    load_json,
    no_cuda_reason,
    parse_pytest_summary,
    render_crashed,
    render_no_cuda,
    render_summary,
    step_block,
    tail,
)

DEFAULT_OUT = "results/gpu-check"
DEFAULT_BUDGET_S = 420.0

PREFLIGHT_CAP_S = 60.0
TESTS_CAP_S = 120.0
SELFTEST_CAP_S = 60.0
PEERS_CAP_S = 60.0
PEERS_MARGIN_S = 12.0
"""peers.py gets its step time minus this as --budget (start-up, last call, writing)."""
PROBE_CAP_S = 30.0
REPORT_CAP_S = 40.0
BENCH_MIN_S = 60.0
FINISH_S = 5.0
"""Kept at the very end for the summary and the clean-up."""
BENCH_GRACE_S = 20.0
"""Between SIGTERM and SIGKILL for the bench run (it finalises its run file)."""
MIN_STEP_S = 5.0
"""A step with less time than this is skipped."""

EARLY_RESERVE_S = FINISH_S + REPORT_CAP_S + BENCH_MIN_S
BENCH_RESERVE_S = FINISH_S + REPORT_CAP_S

MAX_FILES = 8
GPU_TEST_PATHS = ("tests",)
CUDA_SENSITIVE_TESTS = (
    "tests/test_pytest_plugin.py",
    "tests/test_suites.py",
    "tests/test_runner.py",
    "tests/test_cli.py",
    "tests/test_plan.py",
    "tests/test_gpuclocks.py",
    "tests/test_measure_cuda.py",
    "tests/test_selftest.py",
    "tests/test_isolate.py",
)
"""Unmarked tests whose code paths differ where a GPU exists: they must pass there too."""
BENCH_SUITES = (
    "eigvalsh_batched",
    "eigh_cupy",
    "spearman",
    "eigh_backward",
    "spectral_training",
    "spd_parametrization",
    "svd_gd",
)
"""bench-gpu's suites, the seeds' headline claims first: a run cut short keeps those."""


class UsageError(Exception):
    """Bad command-line arguments (exit 2, one line)."""


class Stopped(BaseException):
    """This script got SIGTERM or SIGINT: the running step is stopped as at its time limit
    (SIGTERM, a grace period, SIGKILL) on the way out, and a summary is still written."""


def _stopped(signum: int, frame: object) -> None:
    raise Stopped(f"stopped by signal {signum}")


# ---------------------------------------------------------------------------- the steps


@dataclass
class Context:
    """The run's settings, clock and results so far."""

    out: Path
    work: Path
    budget_s: float
    bench_args: list[str]
    python: str = sys.executable
    t0: float = field(default_factory=time.monotonic)
    started: str = field(default_factory=lambda: dt.datetime.now().isoformat(timespec="seconds"))
    steps: list[StepResult] = field(default_factory=list)
    tests_counts: dict[str, dict[str, int] | None] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def remaining(self) -> float:
        return self.budget_s - (time.monotonic() - self.t0)

    def record(self, step: StepResult) -> StepResult:
        self.steps.append(step)
        with open(self.out / "steps.log", "a") as log:
            log.write(step_block(step) + "\n")
        return step

    def skip(self, name: str, why: str) -> None:
        self.record(StepResult(name, [], note=f"skipped: {why}"))

    def run(self, name: str, args: list[str], limit_s: float, **kw: Any) -> StepResult | None:
        """Run `python args…` as step `name` for at most `limit_s`, or skip it if too short."""
        if limit_s < MIN_STEP_S:
            self.skip(name, f"budget spent ({limit_s:.0f} s left for it)")
            return None
        kw.setdefault("stdout_path", self.work / f"{name}.out")
        kw.setdefault("stderr_path", self.work / f"{name}.err")
        step = run_step(name, [self.python, *args], timeout_s=limit_s, env=self.env, **kw)
        return self.record(step)


def do_preflight(ctx: Context) -> Loaded:
    limit = step_timeout(PREFLIGHT_CAP_S, ctx.remaining(), FINISH_S, GRACE_S)
    path = ctx.out / "preflight.json"
    ctx.run("preflight", ["tools/gpu_preflight.py", "--out", str(path)], limit)
    return load_json(path)


def probe_cuda(ctx: Context) -> str | None:
    """When preflight did not say: ask torch directly. None if a CUDA device is usable."""
    code = "import torch; print('CUDA', torch.__version__, torch.cuda.is_available())"
    limit = step_timeout(PROBE_CAP_S, ctx.remaining(), EARLY_RESERVE_S, GRACE_S)
    step = ctx.run("cuda-probe", ["-c", code], limit, stderr_path=None)
    if step is None:
        return "preflight did not report and no time is left to probe torch"
    text = (ctx.work / "cuda-probe.out").read_text(errors="replace")
    if step.rc == 0 and re.search(r"^CUDA \S+ True$", text, re.MULTILINE):
        return None
    return f"preflight did not report, and a direct torch probe says: {tail(text, 3) or step.rc}"


def pytest_plugin_args(ctx: Context) -> list[str]:
    """Entry points as the pytest subprocess will see them (cwd and PYTHONPATH included)."""
    code = (
        "import importlib.metadata as m; "
        "print('\\n'.join(ep.value for ep in m.entry_points(group='pytest11')))"
    )
    try:
        out = subprocess.run(
            [ctx.python, "-c", code],
            cwd=REPO,
            env=ctx.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return plugin_args(out.stdout.split())
    except (OSError, subprocess.SubprocessError):
        return plugin_args(ep.value for ep in importlib.metadata.entry_points(group="pytest11"))


def do_tests(ctx: Context) -> str | None:
    """Both pytest calls, appended to tests.log; the log's text."""
    total = step_timeout(TESTS_CAP_S, ctx.remaining(), EARLY_RESERVE_S, GRACE_S)
    deadline = time.monotonic() + total
    log = ctx.out / "tests.log"
    base = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=10"]
    base += ["--continue-on-collection-errors"]  # a file that cannot import costs only itself
    base += pytest_plugin_args(ctx)
    calls = (
        ("tests-gpu", [*base, "-m", "gpu or cupy", *GPU_TEST_PATHS], split_tests_time(total)),
        ("tests-cuda-files", [*base, "-m", "not gpu and not cupy", *CUDA_SENSITIVE_TESTS], None),
    )
    for name, args, first_limit in calls:
        limit = first_limit if first_limit is not None else deadline - time.monotonic() - GRACE_S
        part = ctx.work / f"{name}.log"
        step = ctx.run(name, args, limit, stdout_path=part, stderr_path=None)
        if step is None:
            continue
        text = part.read_text(errors="replace")
        ctx.tests_counts[name] = parse_pytest_summary(text)
        with open(log, "a") as f:
            f.write(f"===== {name}: {shlex.join(step.command)}\n{text}\n")
    return log.read_text(errors="replace") if log.exists() else None


def do_selftest(ctx: Context) -> Loaded:
    limit = step_timeout(SELFTEST_CAP_S, ctx.remaining(), EARLY_RESERVE_S, GRACE_S)
    args = ["-m", "eigenbench", "selftest", "--device", "cuda", "--json"]
    step = ctx.run("selftest", args, limit)
    produced = ctx.work / "selftest.out"
    if step is not None and produced.exists() and produced.stat().st_size > 0:
        shutil.copyfile(produced, ctx.out / "selftest.json")
    return load_json(ctx.out / "selftest.json")


def do_peers(ctx: Context) -> Loaded:
    limit = step_timeout(PEERS_CAP_S, ctx.remaining(), EARLY_RESERVE_S, GRACE_S)
    path = ctx.out / "peers.json"
    budget = max(MIN_STEP_S, limit - PEERS_MARGIN_S)
    args = ["tools/peers.py", "--device", "cuda", "--out", str(path), "--budget", f"{budget:.0f}"]
    ctx.run("peers", args, limit)
    return load_json(path)


def do_bench(ctx: Context) -> Loaded:
    limit = step_timeout(ctx.remaining(), ctx.remaining(), BENCH_RESERVE_S, BENCH_GRACE_S)
    path = ctx.out / "bench-gpu.json"
    args = ["-m", "eigenbench", "run", *BENCH_SUITES, "--device", "cuda", *ctx.bench_args]
    step = ctx.run(
        "bench-gpu",
        [*args, "--out", str(path)],
        limit,
        grace_s=BENCH_GRACE_S,
        term_leader_only=True,
    )
    if step is not None and step.timed_out:
        step.note = "stopped by SIGTERM at its time limit (the run file keeps finished cases)"
    return load_json(path)


def do_report(ctx: Context, run: Loaded) -> None:
    run_path = ctx.out / "bench-gpu.json"
    if not run_path.exists():
        ctx.skip("report", "no bench-gpu.json")
        return
    limit = step_timeout(REPORT_CAP_S, ctx.remaining(), FINISH_S, GRACE_S)
    folder = ctx.work / "report"
    step = ctx.run(
        "report", ["-m", "eigenbench", "report", str(run_path), "--out", str(folder)], limit
    )
    if step is None or not folder.is_dir() or not any(folder.iterdir()):
        return
    try:
        step.note = pack_report(folder, ctx.out / "report.tar.gz") or step.note
    except (OSError, tarfile.TarError) as exc:
        step.note = f"packing failed: {exc}"


# ---------------------------------------------------------------------------- the end


def summary_inputs(ctx: Context, **loaded: Any) -> SummaryInputs:
    return SummaryInputs(
        steps=ctx.steps,
        tests_counts=ctx.tests_counts,
        interpreter=f"{ctx.python} (Python {sys.version.split()[0]})",
        started=ctx.started,
        budget_s=ctx.budget_s,
        elapsed_s=time.monotonic() - ctx.t0,
        **loaded,
    )


def write_summary(ctx: Context, text: str) -> None:
    tmp = ctx.out / ".summary.md.tmp"
    tmp.write_text(text)
    os.replace(tmp, ctx.out / "summary.md")


def finish(ctx: Context, render: Callable[[], str]) -> None:
    """Remove stray files, write summary.md, and check the file count."""
    removed = clean_out(ctx.out)
    if removed:
        ctx.record(StepResult("clean-up", [], rc=0, note=f"removed {', '.join(removed)}"))
    write_summary(ctx, render())
    files = [p for p in ctx.out.iterdir() if p.is_file()]
    assert len(files) <= MAX_FILES, f"{len(files)} files in {ctx.out}"


def crashed(ctx: Context, trace: str) -> None:
    """summary.md when the orchestrator itself failed (best effort, never raises)."""
    text = render_crashed(trace, ctx.steps)
    with contextlib.suppress(Exception):
        clean_out(ctx.out)
        write_summary(ctx, text)


def check_all(ctx: Context) -> None:
    """Every step in order; summary.md rewritten after each (a kill from outside keeps it)."""
    loaded: dict[str, Any] = {"preflight": do_preflight(ctx)}
    reason = no_cuda_reason(loaded["preflight"])
    if reason is None and dig(loaded["preflight"].data, "cuda") is not True:
        reason = probe_cuda(ctx)
    if reason is not None:
        finish(ctx, lambda: render_no_cuda(reason, summary_inputs(ctx, **loaded)))
        return

    def interim() -> None:
        write_summary(ctx, render_summary(summary_inputs(ctx, **loaded)))

    interim()
    tests_text = do_tests(ctx)
    loaded["tests_text"] = tests_text
    interim()
    loaded["selftest"] = do_selftest(ctx)
    interim()
    loaded["peers"] = do_peers(ctx)
    interim()
    loaded["run"] = do_bench(ctx)
    interim()
    do_report(ctx, loaded["run"])
    note = fit_run_file(ctx.out / "bench-gpu.json", loaded["run"])
    if note:
        ctx.record(StepResult("bench-gpu-size", [], rc=0, note=note))
    finish(
        ctx, lambda: render_summary(summary_inputs(ctx, files_note=files_note(ctx.out), **loaded))
    )


# ---------------------------------------------------------------------------- command line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Arguments, checked; UsageError names the first problem."""
    p = _Parser(prog="gpu_check.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("OUT") or DEFAULT_OUT, type=Path)
    p.add_argument("--budget", default=DEFAULT_BUDGET_S, type=float, metavar="SECONDS")
    p.add_argument("--bench-args", default="", metavar="ARGS", help="extra `eigenbench run` args")
    args = p.parse_args(argv)
    if not args.budget > 0:
        raise UsageError(f"--budget must be positive, got {args.budget}")
    try:
        args.bench_args = shlex.split(args.bench_args)
    except ValueError as exc:
        raise UsageError(f"--bench-args cannot be parsed: {exc}") from exc
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a folder")
    if args.out.is_dir():
        foreign = foreign_entries(p.name for p in args.out.iterdir())
        if foreign:
            raise UsageError(
                f"--out {args.out} holds other files ({', '.join(foreign[:3])}…); "
                "give an empty or new folder"
            )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        args.out.mkdir(parents=True, exist_ok=True)
    except (UsageError, OSError) as exc:
        print(f"gpu_check: error: {exc}", file=sys.stderr)
        return 2
    out = args.out.resolve()
    clean_out(out, keep=())  # results of an earlier check in the same folder
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        ctx = Context(out, Path(work), args.budget, args.bench_args, env=step_env())
        previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            check_all(ctx)
        except Stopped as exc:  # e.g. the caller's time limit: still leave a summary
            crashed(ctx, f"{exc} during step {len(ctx.steps) + 1}")
        except Exception:  # the orchestrator itself failed: still leave a summary, exit 0
            crashed(ctx, traceback.format_exc())
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    print(f"gpu-check: {out / 'summary.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
