"""False alarms and power of the regression gate (`eigenbench check`) on real runs of this machine.

Runs: each repetition times the quick suites, each suite in its own process as CI runs them,
twice in a row in that process: the first pass is the run, the second is what `check` would
measure again for any case called slower (it re-measures right after the run, in-process).

Gate as used: a baseline saved from `--keep` runs (`baseline save --keep`), a run compared
with it, slower cases confirmed by the second pass (`eigenbench.gate.recheck`). A/A: every run
against every window of `--keep` other consecutive runs; power: runs with impl `a` of the
planted suite slowed by a factor, against every window. Also reported, from the same runs:
one-run baselines compared pairwise with no recheck (the issue's literal A/A) and the gate
without its recheck, so each part's share is visible.

    python tools/aa_power.py --runs 20 --power-runs 8 --out results/aa_power-<machine>.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eigenbench.env import collect
from eigenbench.gate.baseline import split_by_suite, with_history
from eigenbench.gate.compare import compare_runs
from eigenbench.gate.noise import RUN_DRIFT
from eigenbench.gate.recheck import judge_again, suspects
from eigenbench.gate.verdicts import CompareResult
from eigenbench.results import load_run

HERE = Path(__file__).resolve().parent
SUITES = ["planted", "eigvalsh_batched"]
THRESHOLD = 0.05
Run = tuple[dict, dict]
"""A repetition: (first pass, second pass), each the suites' records merged into one run."""


def suite_folder(suite: str) -> Path:
    return HERE / "suites" if (HERE / "suites" / f"{suite}.py").exists() else HERE.parent / "suites"


def one_run(
    tmp: Path, tag: str, suite: str, planted: str | None, rounds: int, reuse: bool
) -> tuple[dict, dict]:
    """A worker process timing `suite --quick` twice in a row (run, then recheck pass); with
    `reuse`, the files such a process wrote before."""
    env = dict(
        os.environ, EIGENBENCH_PLANTED=planted or "", EIGENBENCH_SUITES=str(suite_folder(suite))
    )
    outs = [tmp / f"{tag}-{suite}-pass{p}.json" for p in (1, 2)]
    if reuse:
        if not all(out.exists() for out in outs):
            raise SystemExit(f"--reuse: {outs[0]} or its second pass is missing")
        return load_run(outs[0]), load_run(outs[1])
    subprocess.run(
        [sys.executable, __file__, "--worker", suite, str(rounds), *map(str, outs)],
        check=True,
        cwd=HERE.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return load_run(outs[0]), load_run(outs[1])


def worker(suite: str, rounds: str, first: str, second: str) -> None:
    from eigenbench.cli import main

    for out in (first, second):
        if main(["run", suite, "--quick", "--rounds", rounds, "--out", out]) != 0:
            raise SystemExit(f"eigenbench run {suite} failed")


def runs(tmp: Path, tag: str, n: int, planted: str | None, rounds: int, reuse: bool) -> list[Run]:
    out = []
    for i in range(n):
        docs = [one_run(tmp, f"{tag}-{i}", suite, planted, rounds, reuse) for suite in SUITES]
        out.append(tuple(_merge([d[p] for d in docs]) for p in (0, 1)))  # type: ignore[misc]
    return out


def _merge(docs: list[dict]) -> dict:
    return {**docs[0], "records": [r for d in docs for r in d["records"]]}


def baseline_of(window: list[Run], keep: int) -> dict:
    """What `baseline save --keep` builds from these runs' first passes, oldest first."""
    parts = []
    for suite in SUITES:
        base = None
        for first, _ in window:
            base = with_history(base, split_by_suite(first)[suite], keep)
        parts.append(base)
    return _merge(parts)


def gate(base: dict, run: Run, recheck: bool) -> CompareResult:
    """`eigenbench check`'s verdicts: compare, then confirm slower cases with the second pass."""
    settings = {"threshold": THRESHOLD}
    first = compare_runs(base, run[0], **settings)
    again = set(suspects(first))
    if not recheck or not again:
        return first
    second_pass = {**run[1], "records": [r for r in run[1]["records"] if r["id"] in again]}
    return judge_again(base, run[0], second_pass, first, **settings)


def windows(n: int, keep: int, skip: int | None) -> list[tuple[int, ...]]:
    """Indices of every `keep` cyclically consecutive runs out of `n`, none of them `skip`."""
    starts = range(n) if skip is None else [(skip + o) % n for o in range(1, n - keep + 1)]
    return [tuple((s + t) % n for t in range(keep)) for s in starts]


def a_a(judge: Callable[[dict, Run], CompareResult], pairs: list) -> dict:
    """Share of comparisons with any `slower` verdict."""
    results = [judge(b, r) for b, r in pairs]
    labels = [v.label for res in results for v in res.verdicts]
    with_any = sum(any(v.label == "slower" for v in res.verdicts) for res in results)
    return {
        "comparisons": len(results),
        "with_any_slower": with_any,
        "false_alarm_rate": with_any / len(results),
        "slower_verdicts": labels.count("slower"),
        "unchanged_verdicts": labels.count("unchanged"),
        "inconclusive_verdicts": labels.count("inconclusive"),
    }


def power(pairs: list, judge: Callable[[dict, Run], CompareResult], factor: float) -> dict:
    """Planted cases flagged `slower`, and other cases flagged with them."""
    hits = total = others = 0
    for b, r in pairs:
        for v in judge(b, r).verdicts:
            planted = v.id.startswith("planted/a/")
            hits += planted and v.label == "slower"
            total += planted
            others += not planted and v.label == "slower"
    return {
        "slowdown": factor,
        "detected": hits,
        "planted_cases": total,
        "rate": hits / total,
        "other_slower_verdicts": others,
    }


def evaluate(base: list[Run], slowed: dict[float, list[Run]], keep: int) -> dict[str, Any]:
    """The gate and its parts, A/A and power, from the same runs."""
    out: dict[str, Any] = {}
    n = len(base)
    built = {w: baseline_of([base[i] for i in w], keep) for w in windows(n, keep, None)}
    aa_pairs = [(built[w], base[j]) for j in range(n) for w in windows(n, keep, j)]
    power_pairs = {f: [(b, r) for b in built.values() for r in s] for f, s in slowed.items()}
    for name, recheck in (("gate", True), ("gate_without_recheck", False)):

        def judge(b: dict, r: Run, recheck: bool = recheck) -> CompareResult:
            return gate(b, r, recheck)

        curve = [power(pairs, judge, f) for f, pairs in power_pairs.items()]
        caught = [c["slowdown"] for c in curve if c["rate"] >= 0.8]
        out[name] = {
            "baseline_runs": keep,
            "a_a": a_a(judge, aa_pairs),
            "power": curve,
            "smallest_slowdown_caught_80pct": min(caught) if caught else None,
        }
    pairs = [(a[0], b) for a, b in itertools.combinations(base, 2)]  # (baseline, run)
    single = {f: [(a[0], r) for a in base for r in s] for f, s in slowed.items()}

    def one_run_judge(b: dict, r: Run) -> CompareResult:
        return gate(b, r, recheck=False)

    out["one_run_baseline_pairwise"] = {
        "a_a": a_a(one_run_judge, pairs),
        "power": [power(p, one_run_judge, f) for f, p in single.items()],
    }
    return out


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--power-runs", type=int, default=8)
    p.add_argument("--slowdowns", default="1.30,1.20,1.10,1.08,1.06")
    p.add_argument("--keep", type=int, default=5, help="runs in each baseline (--keep)")
    p.add_argument("--rounds", type=int, default=1, help="eigenbench run --rounds N")
    p.add_argument("--tmp", default="/tmp/eigenbench-aa")
    p.add_argument("--out", default="-")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="judge the runs already in --tmp again (after a change to compare)",
    )
    args = p.parse_args()
    if not 1 <= args.keep < args.runs:
        p.error("--keep must be at least 1 and below --runs")
    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    base = runs(tmp, "aa", args.runs, None, args.rounds, args.reuse)
    slowed = {
        float(f): runs(tmp, f"p{f}", args.power_runs, f"a:{f}", args.rounds, args.reuse)
        for f in args.slowdowns.split(",")
    }
    env = collect(with_gpu=False)
    result = {
        "command": "python " + " ".join(["tools/aa_power.py", *sys.argv[1:]]),
        "started": started,
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine_key": env.get("machine_key"),
        "cpu": env.get("cpu"),
        "git_commit": env.get("git_commit"),
        "suites": SUITES,
        "rounds": args.rounds,
        "cases_per_run": len(base[0][0]["records"]),
        "runs_measured": [
            min(r[0]["started"] for r in base),
            max(r[1]["finished"] for group in [base, *slowed.values()] for r in group),
        ],
        "reused_runs": args.reuse,
        "settings": {"threshold": THRESHOLD, "alpha": 0.05, "run_drift": RUN_DRIFT},
        **evaluate(base, slowed, args.keep),
    }
    text = json.dumps(result, indent=1)
    print(text) if args.out == "-" else Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
