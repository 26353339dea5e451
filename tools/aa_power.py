"""False alarms and power of `eigenbench compare` on real runs of this machine.

A/A: N runs of unchanged quick suites, each in its own process as CI runs them, every pair
compared: the share of comparisons with any `slower` verdict. Power: runs of the same
suites with impl `a` of the planted suite slowed by a factor, each compared with each
unchanged run: the share of planted cases flagged `slower`, per factor, and how many other
cases were flagged with them (false discoveries).

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
from pathlib import Path

from eigenbench.compare import compare_runs
from eigenbench.compare_stats import RUN_DRIFT
from eigenbench.env import collect
from eigenbench.results import load_run

HERE = Path(__file__).resolve().parent
SUITES = ["planted", "eigvalsh_batched"]
THRESHOLD = 0.05


def one_run(out: Path, suite: str, planted: str | None, rounds: int) -> dict:
    """One `eigenbench run SUITE --quick` in its own process, as CI would run it."""
    folder = (
        HERE / "suites" if (HERE / "suites" / f"{suite}.py").exists() else HERE.parent / "suites"
    )
    env = dict(os.environ, EIGENBENCH_PLANTED=planted or "", EIGENBENCH_SUITES=str(folder))
    command = [sys.executable, "-m", "eigenbench", "run", suite, "--quick", "--out", str(out)]
    subprocess.run(
        [*command, "--rounds", str(rounds)],
        check=True,
        cwd=HERE.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return load_run(out)


def runs(tmp: Path, tag: str, n: int, planted: str | None, rounds: int) -> list[dict]:
    """`n` runs of the suites, each suite's records merged into one run per repetition."""
    out = []
    for i in range(n):
        docs = [
            one_run(tmp / f"{tag}-{i}-{suite}.json", suite, planted, rounds) for suite in SUITES
        ]
        out.append({**docs[0], "records": [r for d in docs for r in d["records"]]})
    return out


def a_a(base: list[dict]) -> dict:
    """Every pair of unchanged runs compared: how often anything is called slower."""
    pairs = list(itertools.combinations(base, 2))
    results = [compare_runs(a, b, threshold=THRESHOLD) for a, b in pairs]
    labels = [v.label for r in results for v in r.verdicts]
    with_any = sum(any(v.label == "slower" for v in r.verdicts) for r in results)
    return {
        "runs": len(base),
        "cases_per_run": len(base[0]["records"]),
        "comparisons": len(pairs),
        "with_any_slower": with_any,
        "false_alarm_rate": with_any / len(pairs),
        "slower_verdicts": labels.count("slower"),
        "unchanged_verdicts": labels.count("unchanged"),
        "inconclusive_verdicts": labels.count("inconclusive"),
        "median_case_drift": sorted(r.case_drift or 0.0 for r in results)[len(results) // 2],
    }


def power(base: list[dict], slow: list[dict], factor: float) -> dict:
    """Each unchanged run against each slowed run: planted cases caught, others flagged."""
    hits = total = others = 0
    for a, b in itertools.product(base, slow):
        for v in compare_runs(a, b, threshold=THRESHOLD).verdicts:
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--power-runs", type=int, default=8)
    p.add_argument("--slowdowns", default="1.20,1.10,1.08,1.07,1.06")
    p.add_argument("--rounds", type=int, default=1, help="eigenbench run --rounds N")
    p.add_argument("--tmp", default="/tmp/eigenbench-aa")
    p.add_argument("--out", default="-")
    args = p.parse_args()
    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    base = runs(tmp, "aa", args.runs, None, args.rounds)
    curve = []
    for factor in (float(x) for x in args.slowdowns.split(",")):
        slow = runs(tmp, f"p{factor}", args.power_runs, f"a:{factor}", args.rounds)
        curve.append(power(base, slow, factor))
    caught = [c["slowdown"] for c in curve if c["rate"] >= 0.8]
    env = collect(with_gpu=False)
    result = {
        "command": "python " + " ".join(["tools/aa_power.py", *sys.argv[1:]]),
        "started": started,
        "machine_key": env.get("machine_key"),
        "cpu": env.get("cpu"),
        "git_commit": env.get("git_commit"),
        "suites": SUITES,
        "rounds": args.rounds,
        "settings": {"threshold": THRESHOLD, "alpha": 0.05, "run_drift": RUN_DRIFT},
        "a_a": a_a(base),
        "power": curve,
        "smallest_slowdown_caught_80pct": min(caught) if caught else None,
    }
    text = json.dumps(result, indent=1)
    print(text) if args.out == "-" else Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
