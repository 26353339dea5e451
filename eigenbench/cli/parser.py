"""The command line's arguments: one sub-parser per command, each calling its `cmd_*`."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from eigenbench.cli.commands import (
    RUNS_DIR,
    cmd_ab,
    cmd_baseline,
    cmd_check,
    cmd_compare,
    cmd_env,
    cmd_export,
    cmd_list,
    cmd_plan,
    cmd_report,
    cmd_run,
    cmd_selftest,
    cmd_show,
)
from eigenbench.cli.merge import add_merge_parser
from eigenbench.cli.profile import add_profile_parser
from eigenbench.errors import UsageError
from eigenbench.gate.baseline import DEFAULT_KEEP
from eigenbench.run.options import DEFAULT_ISOLATE_BUDGET_S


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def number(
    kind: type[int] | type[float], low: float, *, low_ok: bool = True
) -> Callable[[str], float]:
    """An argparse `type`: a finite `kind` at least `low` (above it when not `low_ok`);
    anything else (NaN, inf, negative) is a usage error, exit 2, before any work starts."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if value < low or (value == low and not low_ok):
            raise argparse.ArgumentTypeError(
                f"expected {'≥' if low_ok else '>'} {low:g}, got {text}"
            )
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


SECONDS = number(float, 0, low_ok=False)
"""A budget in seconds: finite and above zero."""


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    """What to measure and how: shared by `run`, `check` and `ab`."""
    _add_case_arguments(p)
    p.add_argument(
        "--isolate",
        action="store_true",
        help="each case in a child process: its own peak RSS, killed when it overruns "
        f"--timeout (default {DEFAULT_ISOLATE_BUDGET_S:g} s); it dies with this process",
    )
    p.add_argument(
        "--graph",
        action="store_true",
        help="CUDA cases: also time CUDA-graph replays of the call (launch overhead = event "
        "time - graph time), or record why it cannot be captured",
    )
    p.add_argument(
        "--no-dispatch",
        action="store_true",
        help="do not profile one extra call per case for its dispatch fingerprint",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads", type=number(int, 1), metavar="N", help="torch CPU threads (default: torch's)"
    )
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
        type=number(int, 1),
        default=1,
        metavar="N",
        help="sample each case in N rounds spread over the run, pooled (same total budget); "
        "steadier medians between runs on shared machines (default %(default)s)",
    )
    p.add_argument("--min-samples", dest="min_samples", type=number(int, 2), metavar="N")
    p.add_argument(
        "--max-time",
        dest="max_time_s",
        type=SECONDS,
        metavar="SECONDS",
        help="sampling budget per case (default 2)",
    )
    p.add_argument(
        "--rel-ci",
        dest="rel_ci_target",
        type=number(float, 0, low_ok=False),
        metavar="FRACTION",
        help="stop when the median's 95%% interval is within ± this (default 0.01)",
    )
    p.add_argument(
        "--warmup", dest="warmup_s", type=number(float, 0), metavar="SECONDS", help="(≥ 0)"
    )
    p.add_argument(
        "--timeout",
        dest="timeout_s",
        type=SECONDS,
        metavar="SECONDS",
        help="hard budget per case; bigger sizes of that impl are then skipped. Without "
        "--isolate it is checked between calls (a hung call cannot be stopped: a note says "
        "so); with --isolate the child is killed past it (default with --isolate: "
        f"{DEFAULT_ISOLATE_BUDGET_S:g} s)",
    )


def _add_slurm_arguments(p: argparse.ArgumentParser) -> None:
    """What each Slurm array task asks for: shared by `run --executor submitit` and `plan`."""
    p.add_argument("--slurm-partition", metavar="NAME")
    p.add_argument("--slurm-gpus-per-task", type=number(int, 0), metavar="N")
    p.add_argument(
        "--slurm-time", type=number(int, 1), metavar="MINUTES", help="time limit per task"
    )
    p.add_argument("--slurm-account", metavar="NAME")


def _add_fanout_arguments(p: argparse.ArgumentParser) -> None:
    """Sharded runs (docs/fleet.md): `run` only."""
    p.add_argument(
        "--workers",
        type=number(int, 1),
        default=1,
        metavar="N",
        help="split the cases into N shards run by fresh worker processes (on CUDA one per "
        "visible GPU), merged into the run file as they finish",
    )
    p.add_argument(
        "--workers-per-gpu",
        type=number(int, 1),
        default=1,
        metavar="K",
        help="allow K CUDA workers on one GPU (default 1)",
    )
    p.add_argument(
        "--executor",
        choices=("process", "submitit"),
        default="process",
        help="process: a local process pool; submitit: a Slurm job array when Slurm is "
        "there, else local processes (pip install eigenbench[cluster])",
    )
    p.add_argument(
        "--shard",
        metavar="i/K",
        help="only shard i (0-based) of K in this process (CI matrices, array jobs)",
    )
    _add_slurm_arguments(p)


def _add_compare_arguments(p: argparse.ArgumentParser) -> None:
    """How to judge changes and report them: shared by `compare`, `check` and `ab`."""
    p.add_argument(
        "--threshold",
        type=number(float, 0),
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
        type=number(float, 0),
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
    p.add_argument(
        "--fail-on-dispatch-change",
        action="store_true",
        help="exit 1 when a case's ops, kernels or host syncs changed (its dispatch "
        "fingerprint), whatever its timing; changes are always reported",
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
        help="continue an interrupted run: measure only the cases it lacks (same machine "
        "and options, else exit 3)",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="--resume a run of another machine or other options all the same",
    )
    run.add_argument(
        "--remeasure-peaks",
        action="store_true",
        help="measure this machine's matmul and bandwidth peaks again "
        "(kept in results/peaks/<machine_key>.json)",
    )
    _add_fanout_arguments(run)
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
    pl.add_argument(
        "--shards", type=number(int, 1), metavar="K", help="split the plan into K shards"
    )
    pl.add_argument(
        "--emit",
        choices=("github-matrix", "slurm-array"),
        help="with --shards: a GitHub Actions matrix (JSON) or an sbatch --array script, "
        "each shard a `run --shard i/K` command",
    )
    _add_slurm_arguments(pl)
    pl.set_defaults(func=cmd_plan, seed=0, isolate=False, graph=False, threads=None)

    rep = sub.add_parser("report", help="HTML report and PNG charts of a run")
    rep.add_argument("run", metavar="RUN.json")
    rep.add_argument("--baseline", metavar="BASE.json", help="a run file or a baseline folder")
    rep.add_argument("--out", metavar="DIR", help="default: reports/<run_id>/")
    rep.add_argument("--reference", metavar="IMPL", help="impl the speedups are relative to")
    rep.set_defaults(func=cmd_report)

    show = sub.add_parser(
        "show", help="a stored run again, answers first: who is fastest and still correct"
    )
    show.add_argument("run", metavar="RUN.json")
    show.add_argument("--json", action="store_true", help='{"run_id", "answers": [...]}')
    show.set_defaults(func=cmd_show)

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
        type=number(int, 1),
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

    add_merge_parser(sub)

    env = sub.add_parser("env", help="this machine's fingerprint")
    env.add_argument("--json", action="store_true")
    env.add_argument("--key", action="store_true", help="only the machine key (baseline folder)")
    env.set_defaults(func=cmd_env)

    add_profile_parser(sub)
    return p
