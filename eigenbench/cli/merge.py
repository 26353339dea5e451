"""`eigenbench merge RUN... --out MERGED.json`: runs of one or several machines as one run.

Inputs are run files or folders of one machine's run files (a baseline folder); the union is
`eigenbench.results.merge.merge_runs`. The output is written atomically and never over one of
the inputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from eigenbench.errors import UsageError
from eigenbench.units import clean_text


def _input_files(path: Path) -> list[Path]:
    """The files an input reads: itself, or a folder's run files."""
    if path.is_dir():
        return [p for p in path.glob("*.json") if not p.name.startswith(".")]
    return [path]


def cmd_merge(args: argparse.Namespace) -> int:
    from eigenbench.cli.commands import _command_line
    from eigenbench.gate.baseline import load_runs_from
    from eigenbench.results import save_run
    from eigenbench.results.merge import MergeInput, merge_runs, records_by_machine

    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"eigenbench merge: --out {out} is a folder; name a run file")
    target = out.resolve()
    for given in args.runs:
        if any(f.resolve() == target for f in _input_files(Path(given))):
            raise UsageError(
                f"eigenbench merge: --out {out} is one of its inputs ({given}); "
                "write the merged run to another file"
            )
    inputs = [MergeInput(str(p), load_runs_from(p)) for p in args.runs]  # bad one: exit 3
    result = merge_runs(inputs, prefer=args.prefer, command=_command_line())
    for warning in result.warnings:
        print(clean_text(f"warning: {warning}"), file=sys.stderr)
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
