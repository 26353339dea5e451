"""The commands: each parses nothing and decides nothing, it calls the library and prints.

`eigenbench.cli.parser` maps arguments to these `cmd_*` functions; each returns an exit code
(0 ok · 1 regression · 2 usage · 3 input · 4 environment · 130 interrupted) or raises an
EigenbenchError that `eigenbench.cli.main` prints as one line.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from eigenbench.cli.outputs import check_out, check_resume
from eigenbench.env import resolve_devices
from eigenbench.errors import EigenbenchError, EnvironmentProblem, UsageError
from eigenbench.results.locks import file_lock
from eigenbench.units import clean_text

RUNS_DIR = Path("results/runs")
REPORTS_DIR = Path("reports")


def cmd_list(args: argparse.Namespace) -> int:
    """Suites, workloads, impls and grids."""
    from eigenbench.spec import describe_suite
    from eigenbench.suites import load_suites

    suites = [describe_suite(s) for s in load_suites(["all"])]
    if args.json:
        print(json.dumps({"suites": suites}, indent=1))
        return 0
    for d in suites:
        print(f"{d['name']}: {d['description']}")
        for w in d["workloads"]:
            impls = ", ".join(f"{i['name']}[{'/'.join(i['devices'])}]" for i in w["impls"])
            print(
                f"  {w['name']} ({w['kind']}): {impls}; {len(w['grid'])} sizes, "
                f"{len(w['quick_grid'])} quick; phases {', '.join(w['phases'])}"
            )
    return 0


def _measure_options(args: argparse.Namespace) -> Any:
    from eigenbench.measure.loop import MeasureOptions

    kw: dict[str, Any] = {}
    for name in ("min_samples", "max_time_s", "rel_ci_target", "warmup_s", "timeout_s"):
        value = getattr(args, name, None)
        if value is not None:
            kw[name] = value
    try:
        return MeasureOptions(**kw)
    except ValueError as exc:
        raise UsageError(f"eigenbench {args.command}: {exc}") from None


def _plan_run(
    args: argparse.Namespace, *, assume_gpu: bool = False
) -> tuple[list[str], tuple[str, ...], Any, list[Any]]:
    """Suite names, devices, RunOptions and cases that `run` (or `check`, `plan`) arguments
    ask for; `assume_gpu` as in `_devices`."""
    from eigenbench.suites import cases_of, load_suites

    suites = load_suites(args.suites)
    names = [s.name for s in suites]
    if args.threads is not None:
        import torch

        if args.threads < 1:
            raise UsageError(f"eigenbench {args.command}: --threads must be at least 1")
        torch.set_num_threads(args.threads)
    devices = resolve_devices(args.device, assume_gpu=assume_gpu)
    options = _run_options(args, devices)
    cases = cases_of(suites, devices=devices, quick=args.quick, text=args.filter)
    if args.filter and not cases:
        raise UsageError(
            f"eigenbench {args.command}: --filter {args.filter!r} matches no case of "
            f"{', '.join(names)} on {'+'.join(devices)} (see `eigenbench plan`)"
        )
    return names, devices, options, cases


def _run_options(args: argparse.Namespace, devices: tuple[str, ...]) -> Any:
    from eigenbench.run.options import RunOptions

    try:
        return RunOptions(
            quick=args.quick,
            devices=devices,
            measure=_measure_options(args),
            seed=args.seed,
            isolate=args.isolate,
            graph=args.graph,
            rounds=args.rounds,
            dispatch=not getattr(args, "no_dispatch", False),
        )
    except ValueError as exc:
        raise UsageError(f"eigenbench {args.command}: --rounds: {exc}") from None


def _baseline_records(machine_key: str | None, err: Any) -> dict[str, Any]:
    """This machine's baseline records for estimates; {} with a warning when they cannot be
    read (an estimate is no reason to stop)."""
    from eigenbench.gate.baseline import records_by_id

    try:
        return records_by_id(machine_key)
    except EigenbenchError as exc:
        err.print(clean_text(f"warning: baseline not used for estimates: {exc}"), markup=False)
        return {}


def _estimates(runner: Any, cases: list[Any], err: Any) -> dict[str, float]:
    """Estimated seconds of the cases `runner` has still to measure, by case id."""
    from eigenbench.run.plan import estimate_plan
    from eigenbench.run.runner import unavailable_reason

    done = {r["id"] for r in runner.run_doc["records"]}
    todo = [c for c in cases if c.id not in done]
    baseline = _baseline_records(runner.env.get("machine_key"), err)
    try:
        plan = estimate_plan(
            todo,
            runner.options,
            baseline,
            unavailable=lambda c: unavailable_reason(c, has_cuda=runner.has_cuda),
        )
    except Exception as exc:  # a broken prior in a suite: an estimate is no reason to stop
        err.print(
            clean_text(f"warning: no time estimate: {type(exc).__name__}: {exc}"), markup=False
        )
        return {}
    return {c.id: c.seconds for c in plan.cases}


def _measure(runner: Any, cases: list[Any], out: Path, what: str) -> dict[str, Any] | None:
    """Run `cases` with `runner` into `out`, showing progress; None when interrupted."""
    from rich.console import Console

    from eigenbench.console import Progress
    from eigenbench.units import fmt_duration

    runner.out_path = out
    err = Console(stderr=True)
    estimates = _estimates(runner, cases, err)
    eta = f", estimated {fmt_duration(sum(estimates.values()))}" if estimates else ""
    threads = (runner.env.get("cpu") or {}).get("torch_threads")
    how = f" (torch threads {threads}{eta})" if threads else (f" ({eta[2:]})" if eta else "")
    err.print(
        f"eigenbench: {len(cases)} cases of {what} → {out}{how}", soft_wrap=True, markup=False
    )
    with Progress(len(cases), estimates=estimates) as progress:
        runner.on_record = progress.advance
        try:
            return dict(runner.run(cases))
        except KeyboardInterrupt:
            err.print(
                f"interrupted: {len(runner.run_doc['records'])} records kept in {out}; "
                f"continue with --resume {out}",
                markup=False,
            )
            return None


def _command_line() -> str:
    """This invocation as one line, stored in the run file."""
    return "eigenbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _what(names: list[str], devices: tuple[str, ...]) -> str:
    return f"{', '.join(names)} on {'+'.join(devices)}"


def _status_counts(run: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for r in run["records"]:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


def cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from eigenbench import env as envmod
    from eigenbench.console import results_table
    from eigenbench.run.runner import Runner

    names, devices, options, cases = _plan_run(args)
    env = envmod.collect(with_gpu="cuda" in devices)
    env["peaks"] = _peaks(env["machine_key"], devices, remeasure=args.remeasure_peaks)
    runner = Runner(env=env, options=options, out_path=None, command=_command_line())
    if args.resume:
        from eigenbench.results import load_run

        previous = load_run(args.resume)  # a bad file stops here, before anything is written
        check_resume(args.resume, previous, env["machine_key"], options.to_dict(), force=args.force)
        runner.resume(previous)
        out = Path(args.out or args.resume)
    else:
        out = Path(args.out) if args.out else RUNS_DIR / f"{runner.run_doc['run_id']}.json"
    check_out(out, kind="run", command="run")
    with file_lock(out):  # a second writer of the same file: one line, exit 4
        run, died = _run_cases(args, runner, cases, out, _what(names, devices))
    if run is None:
        return 130
    console = Console()  # the terminal's width (COLUMNS respected)
    title = f"cases of run {run['run_id']}"
    console.print(results_table(run["records"], title=title, width=console.width))
    _print_answers(console, run)
    Console(stderr=True).print(f"wrote {out}: {_status_counts(run)}", soft_wrap=True, markup=False)
    return EnvironmentProblem.exit_code if died else _cuda_lost_exit(runner)


def _run_cases(
    args: argparse.Namespace, runner: Any, cases: list[Any], out: Path, what: str
) -> tuple[dict[str, Any] | None, list[str]]:
    """In this process, or sharded (`--shard`, `--workers`, `--executor`: cli.fanout)."""
    from eigenbench.cli import fanout

    if args.shard:
        cases = fanout.select_shard(args, runner, cases)
    if fanout.fanout_requested(args):
        return fanout.run_workers(args, runner, cases, out, what)
    return _measure(runner, cases, out, what), []


def _peaks(machine_key: str, devices: tuple[str, ...], *, remeasure: bool) -> dict[str, Any]:
    """This machine's measured peaks for `devices` (measured once and kept, see
    `eigenbench.measure.peaks`)."""
    from rich.console import Console

    from eigenbench.env import cuda_available
    from eigenbench.measure.peaks import peaks_for, peaks_path

    usable = tuple(d for d in devices if d != "cuda" or cuda_available())
    path = peaks_path(machine_key)
    if remeasure or not path.exists():
        Console(stderr=True).print(f"eigenbench: measuring peaks of {'+'.join(usable)} → {path}")
    return peaks_for(machine_key, usable, remeasure=remeasure)


def _print_answers(console: Any, run: dict[str, Any]) -> None:
    """The answers view of `run` (who is fastest and correct, then the records that are not)."""
    from eigenbench.console import answers_view
    from eigenbench.report.answers import answers_of

    for part in answers_view(run, answers_of(run["records"])):
        console.print(part)


def cmd_show(args: argparse.Namespace) -> int:
    """A stored run again, answers first: per workload who is fastest and still correct."""
    from rich.console import Console

    from eigenbench.gate.baseline import load_runs_from
    from eigenbench.report.answers import answers_json

    run = load_runs_from(args.run)  # a file or a folder; a bad one: one line, exit 3
    if args.json:  # answers per machine in a merged run (`machine_key`)
        answers = answers_json(run)
        print(json.dumps({"run_id": run["run_id"], "answers": answers}, indent=1))
        return 0
    _print_answers(Console(), run)
    return 0


def _cuda_lost_exit(runner: Any) -> int:
    """0, or exit 4 with one line when a sticky CUDA error stopped the run's CUDA cases."""
    if runner.cuda_lost is None:
        return 0
    print(f"eigenbench: error: {runner.cuda_lost}", file=sys.stderr)
    return EnvironmentProblem.exit_code


def cmd_check(args: argparse.Namespace) -> int:
    from rich.console import Console

    from eigenbench import env as envmod
    from eigenbench.gate.baseline import baseline_dir, for_suites, load_runs_from
    from eigenbench.gate.compare import compare_runs
    from eigenbench.gate.recheck import judge_again, suspects
    from eigenbench.run.runner import Runner

    names, devices, options, cases = _plan_run(args)
    env = envmod.collect(with_gpu="cuda" in devices)
    base_path = Path(args.baseline) if args.baseline else baseline_dir(env["machine_key"])
    if not base_path.exists():
        raise UsageError(
            f"eigenbench check: no baseline at {base_path} (save one with `make baseline`)"
        )
    baseline = for_suites(load_runs_from(base_path), set(names), base_path)
    out = check_out(
        Path(args.out) if args.out else RUNS_DIR / "check.json",
        kind="run",
        inputs=[base_path],
        command="check",
    )
    recheck_out = check_out(
        out.with_name(f"{out.stem}.recheck.json"), kind="run", inputs=[base_path], command="check"
    )

    def runner() -> Runner:
        return Runner(env=env, options=options, out_path=None, command=_command_line())

    first = runner()
    with file_lock(out):
        run = _measure(first, cases, out, _what(names, devices))
    if run is None:
        return 130
    if first.cuda_lost is not None:  # CUDA cases were not measured: nothing to judge them by
        return _cuda_lost_exit(first)
    settings = _compare_settings(args)
    result = compare_runs(baseline, run, **settings)
    again = set(suspects(result))
    if again and not args.no_recheck:
        with file_lock(recheck_out):
            rechecked = _measure(
                runner(),
                [c for c in cases if c.id in again],
                recheck_out,
                f"{len(again)} slower case(s), measured again",
            )
        if rechecked is None:
            return 130
        result = judge_again(baseline, run, rechecked, result, **settings)
    Console(stderr=True).print(f"wrote {out}: {_status_counts(run)}", markup=False)
    return _show_result(result, args)


def _setup(args: argparse.Namespace, label: str) -> Any:
    """One side of `ab` from its --LABEL-dir/-python/-env arguments."""
    from eigenbench.gate.ab import Setup, parse_env

    folder = getattr(args, f"{label}_dir")
    if folder is not None and not Path(folder).is_dir():
        raise UsageError(f"eigenbench ab: --{label}-dir {folder}: not a folder")
    try:
        env = parse_env(getattr(args, f"{label}_env") or [], f"--{label}-env")
    except ValueError as exc:
        raise UsageError(f"eigenbench ab: {exc}") from None
    python = getattr(args, f"{label}_python") or sys.executable
    return Setup(label, python, None if folder is None else str(Path(folder).resolve()), env)


def cmd_ab(args: argparse.Namespace) -> int:
    from rich.console import Console

    from eigenbench.console import Progress
    from eigenbench.gate.ab import SIDES, run_ab
    from eigenbench.gate.paired import paired_compare
    from eigenbench.results import save_run

    for flag, value in (("--isolate", args.isolate), ("--threads", args.threads)):
        if value:
            raise UsageError(f"eigenbench ab: {flag} is not supported (both sides run as set up)")
    if args.relative_to:
        raise UsageError("eigenbench ab: --relative-to is not needed (both sides share a session)")
    if args.rounds < 3:
        raise UsageError("eigenbench ab: --rounds must be at least 3 (rounds are the pairs)")
    settings = _compare_settings(args)
    base, head = _setup(args, "base"), _setup(args, "head")
    err = Console(stderr=True)
    if base.to_dict() == head.to_dict():
        err.print("eigenbench ab: base and head are set up alike: an A/A check of the noise")
    devices = resolve_devices(args.device)
    plan = {
        "suites": args.suites,
        "devices": list(devices),
        "quick": args.quick,
        "filter": args.filter,
        "options": _run_options(args, devices).changed_fields(),
        "command": _command_line(),
    }
    err.print(f"eigenbench ab: {' '.join(args.suites)}, {args.rounds} rounds on each side")
    with Progress(1) as progress:
        base_run, head_run = run_ab(
            base, head, plan, rounds=args.rounds, seed=args.seed, progress=progress.update
        )
    out_dir = Path(args.out_dir)
    for side, run in zip(SIDES, (base_run, head_run), strict=True):
        path = save_run(run, out_dir / f"ab-{run['ab']['id']}-{side}.json")
        err.print(f"wrote {path}: {_status_counts(run)}", markup=False)
    return _show_result(paired_compare(base_run, head_run, threshold=settings["threshold"]), args)


def cmd_plan(args: argparse.Namespace) -> int:
    from rich.console import Console

    from eigenbench import env as envmod
    from eigenbench.console import plan_view
    from eigenbench.env import cuda_available
    from eigenbench.run.plan import estimate_plan
    from eigenbench.run.runner import unavailable_reason

    names, devices, options, cases = _plan_run(args, assume_gpu=True)
    machine_key = envmod.collect(with_gpu="cuda" in devices)["machine_key"]
    baseline = _baseline_records(machine_key, Console(stderr=True))
    has_cuda = cuda_available()

    def unavailable(case: Any) -> str | None:
        if case.device == "cuda" and not has_cuda:
            return None  # planned for a GPU machine, whose modules are not known here
        return unavailable_reason(case)

    plan = estimate_plan(cases, options, baseline, unavailable=unavailable)
    if args.emit or args.shards:
        from eigenbench.cli.fanout import emit_shards

        print(emit_shards(args, cases, options, plan))
        return 0
    if args.json:
        doc = {
            "suites": names,
            "quick": args.quick,
            "machine_key": machine_key,
            "options": options.to_dict(),
            **plan.to_dict(devices),
        }
        print(json.dumps(doc, indent=1))
        return 0
    title = f"plan: {' '.join(args.suites)} on {'+'.join(devices)}\n{_budget(options)}"
    Console().print(plan_view(plan, title))
    return 0


def _budget(options: Any) -> str:
    """The sampling budget of a run's options, in a few words."""
    m = options.measure
    parts = [f"≥ {m.min_samples} samples", f"≤ {m.max_time_s:g} s sampling"]
    if m.timeout_s is not None:
        parts.append(f"timeout {m.timeout_s:g} s")
    if options.rounds > 1:
        parts.append(f"{options.rounds} rounds")
    return " · ".join(parts) + " per case"


def cmd_report(args: argparse.Namespace) -> int:
    from eigenbench.gate.baseline import load_runs_from
    from eigenbench.report import render_report

    run = load_runs_from(args.run)  # a run file, or a folder of them (a baseline)
    baseline = verdicts = None
    if args.baseline:
        from eigenbench.gate.compare import compare_runs

        baseline = load_runs_from(args.baseline)
        verdicts = [v.to_dict() for v in compare_runs(baseline, run).verdicts]
    out = Path(args.out) if args.out else REPORTS_DIR / run["run_id"]
    check_out(out, kind="report", inputs=[args.run, args.baseline], command="report")
    index = render_report(
        run, out, baseline=baseline, verdicts=verdicts, reference_impl=args.reference
    )
    print(index)
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    from eigenbench.selftest import format_selftest, run_selftest

    if args.device == "cuda":
        resolve_devices("cuda")
    result = run_selftest(args.device, quick=args.quick)
    print(json.dumps(result, indent=1) if args.json else format_selftest(result))
    return 0


def _compare_settings(args: argparse.Namespace) -> dict[str, Any]:
    """compare_runs keyword arguments from `--threshold`, `--relative-to`, `--run-drift`."""
    from eigenbench.gate.noise import RUN_DRIFT

    if not 0 <= args.threshold < 100:
        raise UsageError(f"eigenbench {args.command}: --threshold is a percentage in [0, 100)")
    run_drift = RUN_DRIFT if args.run_drift is None else args.run_drift / 100
    if not 0 <= run_drift < 1:
        raise UsageError(f"eigenbench {args.command}: --run-drift is a percentage in [0, 100)")
    return {
        "threshold": args.threshold / 100,
        "relative_to": args.relative_to,
        "run_drift": run_drift,
    }


def _show_result(result: Any, args: argparse.Namespace) -> int:
    """Print a CompareResult (warnings, then table or JSON) and return the exit code: the
    timing gate's, or 1 on a dispatch change with `--fail-on-dispatch-change`; 0 with
    `--report-only`."""
    from dataclasses import replace

    from rich.console import Console

    from eigenbench.console import render_table

    result = replace(result, fail_on_dispatch_change=args.fail_on_dispatch_change)
    err = Console(stderr=True)
    for warning in result.warnings:
        err.print(clean_text(f"warning: {warning}"), markup=False, highlight=False)
    if args.json:
        print(result.to_json())
    else:
        Console(width=160).print(render_table(result, show_unchanged=not args.changes_only))
    code = int(result.exit_code)
    if args.report_only and code:
        changed = len(result.dispatch_changes) if result.fail_on_dispatch_change else 0
        also = f", {changed} dispatch change(s)" if changed else ""
        err.print(
            f"report only: {len(result.regressions)} regression(s){also}, exit 0 instead of 1"
        )
        return 0
    return code


def cmd_compare(args: argparse.Namespace) -> int:
    from eigenbench.gate.baseline import for_suites, load_runs_from
    from eigenbench.gate.compare import compare_runs
    from eigenbench.gate.paired import is_ab_pair, paired_compare

    settings = _compare_settings(args)
    current = load_runs_from(args.run)
    base_run = load_runs_from(args.baseline)
    if is_ab_pair(base_run, current) and not args.relative_to:  # measured by `eigenbench ab`
        return _show_result(
            paired_compare(base_run, current, threshold=settings["threshold"]), args
        )
    suites = {r["suite"] for r in current["records"]}
    baseline = for_suites(base_run, suites, Path(args.baseline))
    return _show_result(compare_runs(baseline, current, **settings), args)


def cmd_baseline(args: argparse.Namespace) -> int:
    from eigenbench.gate.baseline import save_baselines
    from eigenbench.results import load_run

    if args.keep < 1:
        raise UsageError(f"eigenbench baseline save: --keep must be at least 1, got {args.keep}")
    runs = [load_run(path) for path in args.runs]
    paths = save_baselines(runs, args.root, keep=args.keep, on_note=_note)
    for path in paths:
        print(path)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from eigenbench.results import load_run
    from eigenbench.results.export import dumps_export, write_export

    run = load_run(args.run)
    if args.out:
        check_out(args.out, kind="export", inputs=[args.run], command="export")
        with file_lock(args.out):
            print(write_export(run, args.format, args.out))
    else:
        sys.stdout.write(dumps_export(run, args.format))
    return 0


def _note(line: str) -> None:
    print(f"eigenbench: note: {line}", file=sys.stderr)


def cmd_env(args: argparse.Namespace) -> int:
    from eigenbench import env as envmod

    info = envmod.collect()
    if args.key:
        print(info["machine_key"])
        return 0
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        for key, value in info.items():
            print(f"{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    return 0
