"""`eigenbench merge RUN... --out MERGED.json`: runs of one or several machines as one run.

Inputs are run files or folders of one machine's run files (a baseline folder); the union is
`eigenbench.results.merge.merge_runs`. The output is written atomically and never over one of
the inputs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from eigenbench.cli.outputs import check_out
from eigenbench.results.locks import file_lock
from eigenbench.units import clean_text


def cmd_merge(args: argparse.Namespace) -> int:
    from eigenbench.cli.commands import _command_line
    from eigenbench.gate.baseline import load_runs_from
    from eigenbench.results import save_run
    from eigenbench.results.merge import MergeInput, merge_runs, records_by_machine

    out = check_out(args.out, kind="run", inputs=args.runs, command="merge")
    inputs = [MergeInput(str(p), load_runs_from(p)) for p in args.runs]  # bad one: exit 3
    result = merge_runs(inputs, prefer=args.prefer, command=_command_line())
    for warning in result.warnings:
        print(clean_text(f"warning: {warning}"), file=sys.stderr)
    with file_lock(out):  # a second writer of the same file: one line, exit 4
        save_run(result.run, out)
    machines = records_by_machine(result.run)
    per = ", ".join(f"{k} ({len(v)})" for k, v in machines.items())
    replaced = f"; kept the newer of {result.replaced} duplicate(s)" if result.replaced else ""
    print(
        clean_text(
            f"merged {len(result.run['records'])} records of {len(inputs)} input(s) from "
            f"{len(machines)} machine(s): {per}{replaced}"
        ),
        file=sys.stderr,
    )
    print(out)
    return 0


def add_merge_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """The `merge` sub-command."""
    from eigenbench.results.merge import PREFER

    m = sub.add_parser(
        "merge",
        help="runs from one or several machines as one run (show, report, compare, export "
        "read it per machine)",
    )
    m.add_argument("runs", nargs="+", metavar="RUN", help="run files or baseline folders")
    m.add_argument("--out", required=True, metavar="MERGED.json", help="the merged run")
    m.add_argument(
        "--prefer",
        choices=PREFER,
        help="a case measured twice on one machine: keep the newer run's record "
        "(default: refuse, naming both files)",
    )
    m.set_defaults(func=cmd_merge)
