"""False alarms and power of `eigenbench compare` on real runs of this machine.

A/A: N runs of unchanged quick suites, every pair compared: the share of comparisons with
any `slower` verdict. Power: runs with a planted slowdown of impl `a` of the planted suite,
each compared with each unchanged run: the share flagging `a` slower, per slowdown.

    python tools/aa_power.py --runs 20 --out results/aa_power.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

from eigenbench.compare import compare_runs
from eigenbench.results import load_run

HERE = Path(__file__).resolve().parent


def one_run(out: Path, suite: str, planted: str | None) -> dict:
    """One `eigenbench run SUITE --quick` in its own process, as CI would run it."""
    folder = (
        HERE / "suites" if (HERE / "suites" / f"{suite}.py").exists() else HERE.parent / "suites"
    )
    env = dict(os.environ, EIGENBENCH_PLANTED=planted or "", EIGENBENCH_SUITES=str(folder))
    subprocess.run(
        [sys.executable, "-m", "eigenbench", "run", suite, "--quick", "--out", str(out)],
        check=True,
        cwd=HERE.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return load_run(out)


def runs(tmp: Path, tag: str, n: int, suites: list[str], planted: str | None) -> list[dict]:
    out = []
    for i in range(n):
        merged: dict | None = None
        for suite in suites:
            doc = one_run(tmp / f"{tag}-{i}-{suite}.json", suite, planted)
            merged = (
                doc if merged is None else {**merged, "records": merged["records"] + doc["records"]}
            )
        assert merged is not None
        out.append(merged)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--power-runs", type=int, default=10)
    p.add_argument("--slowdowns", default="1.10,1.07,1.05,1.03")
    p.add_argument("--tmp", default="/tmp/eigenbench-aa")
    p.add_argument("--out", default="-")
    args = p.parse_args()
    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    suites = ["planted", "eigvalsh_batched"]
    base = runs(tmp, "aa", args.runs, suites, None)
    pairs = list(itertools.combinations(base, 2))
    alarms = [compare_runs(a, b) for a, b in pairs]
    n_cases = len(base[0]["records"])
    aa = {
        "runs": len(base),
        "cases_per_run": n_cases,
        "comparisons": len(pairs),
        "with_any_slower": sum(any(v.label == "slower" for v in r.verdicts) for r in alarms),
        "slower_verdicts": sum(sum(v.label == "slower" for v in r.verdicts) for r in alarms),
        "inconclusive_verdicts": sum(
            sum(v.label == "inconclusive" for v in r.verdicts) for r in alarms
        ),
    }
    aa["false_alarm_rate"] = aa["with_any_slower"] / len(pairs)
    power = []
    for s in (float(x) for x in args.slowdowns.split(",")):
        slow = runs(tmp, f"p{s}", args.power_runs, ["planted"], f"a:{s}")
        hits = total = 0
        for a in base:
            a_planted = {**a, "records": [r for r in a["records"] if r["suite"] == "planted"]}
            for b in slow:
                verdicts = compare_runs(a_planted, b).verdicts
                flagged = {v.id for v in verdicts if v.label == "slower"}
                planted_ids = [r["id"] for r in b["records"] if r["impl"] == "a"]
                hits += sum(i in flagged for i in planted_ids)
                total += len(planted_ids)
        power.append({"slowdown": s, "detected": hits, "comparisons": total, "rate": hits / total})
    result = {"a_a": aa, "power": power}
    text = json.dumps(result, indent=1)
    print(text) if args.out == "-" else Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
