"""Command line: a thin adapter from arguments to the library; exit codes per the contract.

0 ok · 1 regression found · 2 usage error · 3 invalid input file or suite · 4 environment
error · 130 interrupted. Results go to stdout, progress and errors to stderr.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eigenbench.errors import EigenbenchError, EnvironmentProblem, UsageError
from eigenbench.gate.baseline import DEFAULT_KEEP

RUNS_DIR = Path("results/runs")
REPORTS_DIR = Path("reports")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _devices(choice: str, *, assume_gpu: bool = False) -> tuple[str, ...]:
    """The devices `--device` names. `assume_gpu` (for `plan`): `cuda` and `all` list the CUDA
    cases as a GPU machine would run them, whether or not this machine has one."""
    from eigenbench.run.runner import cuda_available

    if assume_gpu and choice in ("cuda", "all"):
        return ("cuda",) if choice == "cuda" else ("cpu", "cuda")
    has_cuda = cuda_available()
    if choice == "cuda" and not has_cuda:
        raise EnvironmentProblem(
            "--device cuda: no CUDA GPU is available on this machine "
            "(torch.cuda.is_available() is False)"
        )
    if choice == "auto":
        return ("cuda",) if has_cuda else ("cpu",)
    if choice == "all":
        return ("cpu", "cuda") if has_cuda else ("cpu",)
    return (choice,)


def cmd_list(args: argparse.Namespace) -> int:
    from eigenbench.spec import expand_grid
    from eigenbench.suites import available, load_suite

    suites = []
    for name in available():
        s = load_suite(name)
        suites.append(
            {
                "name": s.name,
                "description": s.description,
                "workloads": [
                    {
                        "name": w.name,
                        "kind": w.kind,
                        "impls": [
                            {
                                "name": i.name,
                                "devices": sorted(i.devices),
                                "requires": list(i.requires),
                            }
                            for i in w.impls
                        ],
                        "dtypes": list(w.dtypes),
                        "phases": list(w.phases),
                        "grid": expand_grid(w.grid),
                        "quick_grid": expand_grid(w.quick_grid),
                        "gpu_grid": expand_grid(w.gpu_grid) if w.gpu_grid is not None else None,
                    }
                    for w in s.workloads
                ],
            }
        )
    if args.json:
        print(json.dumps({"suites": suites}, indent=1))
        return 0
    for s in suites:
        print(f"{s['name']}: {s['description']}")
        for w in s["workloads"]:
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
    devices = _devices(args.device, assume_gpu=assume_gpu)
    options = _run_options(args, devices)
    cases = cases_of(suites, devices=devices, quick=args.quick, text=args.filter)
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
            rounds=args.rounds,
        )
    except ValueError as exc:
        raise UsageError(f"eigenbench {args.command}: --rounds: {exc}") from None


def _baseline_records(machine_key: str | None, err: Any) -> dict[str, dict[str, Any]]:
    """This machine's baseline records by case id, for estimates; {} when there is none or it
    cannot be read (a warning: an estimate is no reason to stop)."""
    from eigenbench.gate.baseline import baseline_dir, load_runs_from

    if not machine_key:
        return {}
    try:
        folder = baseline_dir(machine_key)
        if not folder.is_dir():
            return {}
        return {r["id"]: r for r in load_runs_from(folder)["records"]}
    except EigenbenchError as exc:
        err.print(f"warning: baseline not used for estimates: {exc}", markup=False)
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
    except EigenbenchError as exc:  # a broken prior in a suite
        err.print(f"warning: no time estimate: {exc}", markup=False)
        return {}
    return {c.id: c.seconds for c in plan.cases}


def _measure(runner: Any, cases: list[Any], out: Path, what: str) -> dict[str, Any] | None:
    """Run `cases` with `runner` into `out`, showing progress; None when interrupted."""
    from rich.console import Console

    from eigenbench.console import Progress, fmt_duration

    runner.out_path = out
    err = Console(stderr=True)
    estimates = _estimates(runner, cases, err)
    eta = f" (estimated {fmt_duration(sum(estimates.values()))})" if estimates else ""
    err.print(f"eigenbench: {len(cases)} cases of {what} → {out}{eta}", soft_wrap=True)
    with Progress(len(cases), estimates=estimates) as progress:
        runner.on_record = progress.advance
        try:
            return dict(runner.run(cases))
        except KeyboardInterrupt:
            err.print(
                f"interrupted: {len(runner.run_doc['records'])} records kept in {out}; "
                f"continue with --resume {out}"
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
    runner = Runner(env=env, options=options, out_path=None, command=_command_line())
    if args.resume:
        from eigenbench.results import load_run

        previous = load_run(args.resume)  # a bad file stops here, before anything is written
        runner.resume(previous)
        out = Path(args.out or args.resume)
    else:
        out = Path(args.out) if args.out else RUNS_DIR / f"{runner.run_doc['run_id']}.json"
    run = _measure(runner, cases, out, _what(names, devices))
    if run is None:
        return 130
    Console(width=160).print(results_table(run["records"], title=f"run {run['run_id']}"))
    Console(stderr=True).print(f"wrote {out}: {_status_counts(run)}")
    return _cuda_lost_exit(runner)


def _cuda_lost_exit(runner: Any) -> int:
    """0, or exit 4 with one line when a sticky CUDA error stopped the run's CUDA cases."""
    if runner.cuda_lost is None:
        return 0
    print(f"eigenbench: error: {runner.cuda_lost}", file=sys.stderr)
    return EnvironmentProblem.exit_code


def cmd_check(args: argparse.Namespace) -> int:
    from rich.console import Console

    from eigenbench import env as envmod
    from eigenbench.gate.baseline import baseline_dir, load_runs_from
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
    baseline = _only_suites(load_runs_from(base_path), set(names), base_path)
    out = Path(args.out) if args.out else RUNS_DIR / "check.json"

    def runner() -> Runner:
        return Runner(env=env, options=options, out_path=None, command=_command_line())

    first = runner()
    run = _measure(first, cases, out, _what(names, devices))
    if run is None:
        return 130
    if first.cuda_lost is not None:  # CUDA cases were not measured: nothing to judge them by
        return _cuda_lost_exit(first)
    settings = _compare_settings(args)
    result = compare_runs(baseline, run, **settings)
    again = set(suspects(result))
    if again and not args.no_recheck:
        recheck_out = out.with_name(f"{out.stem}.recheck.json")
        rechecked = _measure(
            runner(),
            [c for c in cases if c.id in again],
            recheck_out,
            f"{len(again)} slower case(s), measured again",
        )
        if rechecked is None:
            return 130
        result = judge_again(baseline, run, rechecked, result, **settings)
    Console(stderr=True).print(f"wrote {out}: {_status_counts(run)}")
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
    devices = _devices(args.device)
    plan = {
        "suites": args.suites,
        "devices": list(devices),
        "quick": args.quick,
        "filter": args.filter,
        "options": _run_options(args, devices).to_dict(),
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
        err.print(f"wrote {path}: {_status_counts(run)}")
    return _show_result(paired_compare(base_run, head_run, threshold=settings["threshold"]), args)


def cmd_plan(args: argparse.Namespace) -> int:
    from rich.console import Console

    from eigenbench import env as envmod
    from eigenbench.console import plan_view
    from eigenbench.run.plan import estimate_plan
    from eigenbench.run.runner import cuda_available, unavailable_reason

    names, devices, options, cases = _plan_run(args, assume_gpu=True)
    machine_key = envmod.collect(with_gpu="cuda" in devices)["machine_key"]
    baseline = _baseline_records(machine_key, Console(stderr=True))
    has_cuda = cuda_available()

    def unavailable(case: Any) -> str | None:
        if case.device == "cuda" and not has_cuda:
            return None  # planned for a GPU machine, whose modules are not known here
        return unavailable_reason(case)

    plan = estimate_plan(cases, options, baseline, unavailable=unavailable)
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


def _only_suites(baseline: dict[str, Any], suites: set[str], path: Path) -> dict[str, Any]:
    """A baseline folder's records of the suites a run measured (a file is used whole)."""
    if not path.is_dir():
        return baseline
    return {**baseline, "records": [r for r in baseline["records"] if r["suite"] in suites]}


def cmd_report(args: argparse.Namespace) -> int:
    from eigenbench.report import render_report
    from eigenbench.results import load_run

    run = load_run(args.run)
    baseline = verdicts = None
    if args.baseline:
        from eigenbench.gate.baseline import load_runs_from
        from eigenbench.gate.compare import compare_runs

        baseline = load_runs_from(args.baseline)
        verdicts = [v.to_dict() for v in compare_runs(baseline, run).verdicts]
    out = Path(args.out) if args.out else REPORTS_DIR / run["run_id"]
    index = render_report(
        run, out, baseline=baseline, verdicts=verdicts, reference_impl=args.reference
    )
    print(index)
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    from eigenbench.selftest import format_selftest, run_selftest

    if args.device == "cuda":
        _devices("cuda")
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
    """Print a CompareResult (warnings, then table or JSON) and return the exit code."""
    from rich.console import Console

    from eigenbench.console import render_table

    err = Console(stderr=True)
    for warning in result.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False)
    if args.json:
        print(result.to_json())
    else:
        Console(width=160).print(render_table(result, show_unchanged=not args.changes_only))
    code = int(result.exit_code)
    if args.report_only and code:
        err.print(f"report only: {len(result.regressions)} regression(s), exit 0 instead of 1")
        return 0
    return code


def cmd_compare(args: argparse.Namespace) -> int:
    from eigenbench.gate.baseline import load_runs_from
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
    baseline = _only_suites(base_run, suites, Path(args.baseline))
    return _show_result(compare_runs(baseline, current, **settings), args)


def cmd_baseline(args: argparse.Namespace) -> int:
    from eigenbench.gate.baseline import save_baselines
    from eigenbench.results import load_run

    if args.keep < 1:
        raise UsageError(f"eigenbench baseline save: --keep must be at least 1, got {args.keep}")
    paths = save_baselines([load_run(path) for path in args.runs], args.root, keep=args.keep)
    for path in paths:
        print(path)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from eigenbench.export import dumps_export, write_export
    from eigenbench.results import load_run

    run = load_run(args.run)
    if args.out:
        print(write_export(run, args.format, args.out))
    else:
        sys.stdout.write(dumps_export(run, args.format))
    return 0


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


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    """What to measure and how: shared by `run`, `check` and `ab`."""
    _add_case_arguments(p)
    p.add_argument(
        "--isolate",
        action="store_true",
        help="each case in a child process: its own peak RSS, killed when it overruns --timeout",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's)")
    _add_measure_arguments(p)


def _add_case_arguments(p: argparse.ArgumentParser) -> None:
    """Which cases: shared by `run`, `check`, `ab` and `plan`."""
    p.add_argument("suites", nargs="+", metavar="SUITE", help="suite names, or `all`")
    p.add_argument("--quick", action="store_true", help="the small grid (CI)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto", "all"), default="cpu")
    p.add_argument("--filter", metavar="TEXT", help="only cases whose id contains TEXT")


def _add_measure_arguments(p: argparse.ArgumentParser) -> None:
    """How long to sample each case: shared by `run`, `check`, `ab` and `plan`."""
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        metavar="N",
        help="sample each case in N rounds spread over the run, pooled (same total budget); "
        "steadier medians between runs on shared machines (default 1)",
    )
    p.add_argument("--min-samples", dest="min_samples", type=int)
    p.add_argument(
        "--max-time",
        dest="max_time_s",
        type=float,
        metavar="SECONDS",
        help="sampling budget per case (default 2)",
    )
    p.add_argument(
        "--rel-ci",
        dest="rel_ci_target",
        type=float,
        metavar="FRACTION",
        help="stop when the median's 95%% interval is within ± this (default 0.01)",
    )
    p.add_argument("--warmup", dest="warmup_s", type=float, metavar="SECONDS")
    p.add_argument(
        "--timeout",
        dest="timeout_s",
        type=float,
        metavar="SECONDS",
        help="hard budget per case; bigger sizes of that impl are then skipped",
    )


def _add_compare_arguments(p: argparse.ArgumentParser) -> None:
    """How to judge changes and report them: shared by `compare` and `check`."""
    p.add_argument(
        "--threshold",
        type=float,
        default=5.0,
        metavar="PCT",
        help="smallest change that counts, in percent (default 5)",
    )
    p.add_argument(
        "--relative-to",
        metavar="IMPL",
        help="compare times relative to IMPL's at the same params in each run",
    )
    p.add_argument(
        "--run-drift",
        type=float,
        metavar="PCT",
        help="sd of the shift shared by every case between two sessions, in percent "
        "(default 1, as measured on a shared 2-core VM; ignored with --relative-to)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--changes-only", action="store_true", help="hide unchanged cases")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="print the verdicts but exit 0 on regressions (noisy shared CI)",
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="eigenbench",
        description="Benchmark GPU eigen and rank workloads: "
        "correct first, then fast, with memory and host-blocking.",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ls = sub.add_parser("list", help="suites, workloads, impls and grids")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    run = sub.add_parser("run", help="measure suites and write a run file")
    _add_run_arguments(run)
    run.add_argument("--out", metavar="RUN.json", help="default: results/runs/<run_id>.json")
    run.add_argument(
        "--resume",
        metavar="RUN.json",
        help="continue an interrupted run: measure only the cases it lacks",
    )
    run.set_defaults(func=cmd_run)

    chk = sub.add_parser(
        "check",
        help="run suites, compare with this machine's baseline, measure slower cases again; "
        "exit 1 on a regression found twice",
    )
    _add_run_arguments(chk)
    chk.add_argument("--out", metavar="RUN.json", help="default: results/runs/check.json")
    chk.add_argument(
        "--baseline",
        metavar="BASE",
        help="a run file or folder (default: results/baselines/<machine_key>/)",
    )
    chk.add_argument(
        "--no-recheck",
        action="store_true",
        help="do not measure slower cases again (one measurement decides)",
    )
    _add_compare_arguments(chk)
    chk.set_defaults(func=cmd_check)

    pl = sub.add_parser(
        "plan",
        help="the cases a run would measure and its estimated time (no GPU needed: "
        "--device cuda lists the CUDA cases as a GPU machine would run them)",
    )
    _add_case_arguments(pl)
    _add_measure_arguments(pl)
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_plan, seed=0, isolate=False, threads=None)

    rep = sub.add_parser("report", help="HTML report and PNG charts of a run")
    rep.add_argument("run", metavar="RUN.json")
    rep.add_argument("--baseline", metavar="BASE.json", help="a run file or a baseline folder")
    rep.add_argument("--out", metavar="DIR", help="default: reports/<run_id>/")
    rep.add_argument("--reference", metavar="IMPL", help="impl the speedups are relative to")
    rep.set_defaults(func=cmd_report)

    st = sub.add_parser("selftest", help="accuracy and overhead of the harness itself")
    st.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    st.add_argument("--json", action="store_true")
    st.add_argument("--quick", action="store_true", help="shorter, for smoke tests")
    st.set_defaults(func=cmd_selftest)

    cmp = sub.add_parser("compare", help="a run against a baseline; exit 1 on a regression")
    cmp.add_argument("baseline", metavar="BASE.json", help="a run file or a folder of them")
    cmp.add_argument("run", metavar="RUN.json", help="a run file or a folder of them")
    _add_compare_arguments(cmp)
    cmp.set_defaults(func=cmd_compare)

    ab = sub.add_parser(
        "ab",
        help="time two setups (revisions, environments) alternately, round by round, and "
        "judge them pair by pair; exit 1 on a regression",
    )
    _add_run_arguments(ab)
    for label, what in (("base", "the reference"), ("head", "the one judged")):
        ab.add_argument(
            f"--{label}-dir",
            metavar="DIR",
            help=f"{what}: a checkout (first on PYTHONPATH, its suites/ used; default: here)",
        )
        ab.add_argument(
            f"--{label}-python", metavar="PYTHON", help=f"{what}: interpreter (default: this one)"
        )
        ab.add_argument(
            f"--{label}-env",
            action="append",
            metavar="KEY=VALUE",
            help=f"{what}: an environment variable (repeatable)",
        )
    ab.add_argument("--out-dir", default=str(RUNS_DIR), metavar="DIR", help="for the two runs")
    _add_compare_arguments(ab)
    ab.set_defaults(func=cmd_ab, rounds=20)

    base = sub.add_parser("baseline", help="promote a run to the stored baselines")
    base_sub = base.add_subparsers(dest="action", required=True, parser_class=_Parser)
    save = base_sub.add_parser("save", help="results/baselines/<machine_key>/<suite>.json")
    save.add_argument(
        "runs", nargs="+", metavar="RUN.json", help="one run, or several saved oldest first"
    )
    save.add_argument("--root", default="results/baselines", metavar="DIR")
    save.add_argument(
        "--keep",
        type=int,
        default=DEFAULT_KEEP,
        metavar="K",
        help="runs the baseline remembers: compare takes each case's level and drift from "
        f"their medians (default {DEFAULT_KEEP}; 1 keeps only the newest)",
    )
    save.set_defaults(func=cmd_baseline)

    exp = sub.add_parser("export", help="pyperf or github-action-benchmark formats")
    exp.add_argument("run", metavar="RUN.json")
    exp.add_argument("--format", required=True, choices=("pyperf", "github-action"))
    exp.add_argument("--out", metavar="FILE", help="default: stdout")
    exp.set_defaults(func=cmd_export)

    env = sub.add_parser("env", help="this machine's fingerprint")
    env.add_argument("--json", action="store_true")
    env.add_argument("--key", action="store_true", help="only the machine key (baseline folder)")
    env.set_defaults(func=cmd_env)
    return p


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `eigenbench` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        signal.signal(signal.SIGTERM, _sigterm)
    except ValueError:  # not the main thread (e.g. called from a test runner thread)
        pass
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except EigenbenchError as exc:
        if debug:
            raise
        print(f"eigenbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("eigenbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `eigenbench compare … | head`: the reader left, not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
