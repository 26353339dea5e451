"""False alarms and power of `eigenbench ab` (interleaved A/B) on real runs of this machine.

A/A: `--aa` repetitions, each an A/B measurement of the quick `planted` and
`eigvalsh_batched` suites with both sides set up alike (each suite its own `ab`, as the
command runs it); a repetition is a false alarm if any case is called `slower`. Power:
`--power` A/B measurements of the planted suite per slowdown, the head side with impl `a`
doing that factor more work (`EIGENBENCH_PLANTED`); how often each planted case is
called `slower`, and how often any other case is.

    python tools/ab_power.py --aa 20 --power 12 --out results/ab_power-<machine>.json

`--reuse` judges the runs kept in `--tmp` again (after a change to `eigenbench.gate.paired`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import zlib
from pathlib import Path
from typing import Any

from aa_power import THRESHOLD, suite_folder  # tools/ is on sys.path when run as a script

from eigenbench.env import collect
from eigenbench.gate.ab import Setup, run_ab
from eigenbench.gate.paired import paired_compare
from eigenbench.gate.verdicts import CompareResult
from eigenbench.results import load_run, save_run
from eigenbench.run.options import RunOptions

SUITES = ["planted", "eigvalsh_batched"]
PLANTED = "a"


def one_ab(tmp: Path, tag: str, suite: str, planted: str | None, rounds: int, reuse: bool):
    """The base and head runs of one `ab` of `suite --quick` (or those kept from before)."""
    paths = [tmp / f"{tag}-{suite}-{side}.json" for side in ("base", "head")]
    if reuse:
        if not all(p.exists() for p in paths):
            raise SystemExit(f"--reuse: {paths[0]} or its head is missing")
        return load_run(paths[0]), load_run(paths[1])
    suites_env = {"EIGENBENCH_SUITES": str(suite_folder(suite))}
    head_env = {**suites_env, **({"EIGENBENCH_PLANTED": planted} if planted else {})}
    plan = {
        "suites": [suite],
        "devices": ["cpu"],
        "quick": True,
        "filter": None,
        "options": RunOptions(quick=True, devices=("cpu",), rounds=rounds).to_dict(),
        "command": f"tools/ab_power.py {tag}",
    }
    base, head = Setup("base", env=suites_env), Setup("head", env=head_env)
    runs = run_ab(base, head, plan, rounds=rounds, seed=zlib.crc32(tag.encode()))
    for path, run in zip(paths, runs, strict=True):
        save_run(run, path)
    return runs


def slower(result: CompareResult) -> list[str]:
    return [v.id for v in result.verdicts if v.label == "slower"]


def planted_case(case_id: str) -> bool:
    return case_id.startswith(f"planted/{PLANTED}/")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--aa", type=int, default=20, help="A/A repetitions (both suites)")
    p.add_argument("--power", type=int, default=12, help="planted A/B runs per slowdown")
    p.add_argument("--slowdowns", default="1.10,1.08,1.06", help="comma-separated factors")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--tmp", default="/tmp/eigenbench-ab")
    p.add_argument("--reuse", action="store_true", help="judge the runs kept in --tmp again")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    factors = [float(f) for f in args.slowdowns.split(",")]

    def judge(tag: str, suite: str, planted: str | None) -> CompareResult:
        base, head = one_ab(tmp, tag, suite, planted, args.rounds, args.reuse)
        return paired_compare(base, head, threshold=THRESHOLD)

    aa = []
    for i in range(args.aa):
        results = [judge(f"aa{i}", suite, None) for suite in SUITES]
        found = [c for r in results for c in slower(r)]
        aa.append({"slower": found, "mde": [r.median_mde for r in results]})
        print(f"A/A {i + 1}/{args.aa}: {len(found)} slower {found}", file=sys.stderr, flush=True)
    power: dict[str, Any] = {}
    for f in factors:
        rows = []
        for i in range(args.power):
            r = judge(f"p{f}-{i}", "planted", f"{PLANTED}:{f}")
            tested = [v for v in r.verdicts if planted_case(v.id)]
            rows.append(
                {
                    "caught": sum(v.label == "slower" for v in tested),
                    "planted_cases": len(tested),
                    "changes": [v.change for v in tested],
                    "other_slower": [c for c in slower(r) if not planted_case(c)],
                }
            )
            print(f"×{f} {i + 1}/{args.power}: {rows[-1]}", file=sys.stderr, flush=True)
        caught = sum(r["caught"] for r in rows)
        cases = sum(r["planted_cases"] for r in rows)
        power[f"{f:g}"] = {
            "caught": caught,
            "planted_cases": cases,
            "rate": caught / cases if cases else None,
            "comparisons_with_other_slower": sum(bool(r["other_slower"]) for r in rows),
            "runs": rows,
        }
    false_alarms = sum(bool(r["slower"]) for r in aa)
    doc = {
        "tool": "tools/ab_power.py",
        "command": " ".join(["python", *sys.argv]),
        "machine_key": collect(with_gpu=False)["machine_key"],
        "started": started,
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "reused_runs": args.reuse,
        "rounds": args.rounds,
        "threshold": THRESHOLD,
        "aa": {
            "comparisons": len(aa),
            "with_false_slower": false_alarms,
            "rate": false_alarms / len(aa) if aa else None,
            "runs": aa,
        },
        "power": power,
    }
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    summary = {f: (v["caught"], v["planted_cases"]) for f, v in power.items()}
    print(f"A/A: {false_alarms}/{len(aa)} with a false slower; caught: {summary}")


if __name__ == "__main__":
    main()
