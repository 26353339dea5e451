"""Command line: a thin adapter from arguments to the library; exit codes per the contract.

0 ok · 1 regression found · 2 usage error · 3 invalid input file or suite · 4 environment
error · 130 interrupted. Results go to stdout, progress and errors to stderr.

`--out` that would replace an input of the command, a baseline or a file of another kind is a
usage error (2); a target that cannot be written, or is being written by another eigenbench
process, is an environment error (4); `--resume` of another machine's or options' run is 3
(`eigenbench.cli.outputs`).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
from collections.abc import Sequence

from eigenbench.cli.parser import build_parser
from eigenbench.errors import EigenbenchError
from eigenbench.run import contain
from eigenbench.units import clean_text

__all__ = ["build_parser", "main"]

TIMEOUT_WITHOUT_ISOLATE = (
    "eigenbench: note: without --isolate, --timeout is checked between calls: a call that "
    "hangs cannot be stopped (add --isolate to kill it at its budget)"
)


def _notes(args: argparse.Namespace) -> None:
    """One-line notes on options that do less than they seem to (stderr)."""
    if getattr(args, "timeout_s", None) is not None and getattr(args, "isolate", True) is False:
        if args.command in ("run", "check"):
            print(TIMEOUT_WITHOUT_ISOLATE, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `eigenbench` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]  # before or after the sub-command alike
    signals = contain.signals()
    with contain.interrupts():  # SIGINT and SIGTERM: KeyboardInterrupt, counted
        code = _command(argv, debug)
    if contain.signals() > signals and code != 130:  # an interrupt some code caught
        print("eigenbench: interrupted", file=sys.stderr)
        return 130
    return code


def _command(argv: list[str], debug: bool) -> int:
    """The command's exit code; errors as one line (tracebacks with `debug`)."""
    try:
        args = build_parser().parse_args(argv)
        _notes(args)
        return int(args.func(args))
    except EigenbenchError as exc:
        if debug:
            raise
        print(clean_text(f"eigenbench: error: {exc}"), file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # e.g. `eigenbench compare … | head`: the reader left, not an error
        # (before OSError, its base class) stdout goes to /dev/null so that the interpreter's
        # last flush does not fail on the closed pipe again
        with contextlib.suppress(OSError, ValueError):  # no real fd 1 (an in-process caller)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return 0
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG or debug:
            raise
        print(clean_text(f"eigenbench: error: {exc.filename}: file name too long"), file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print("eigenbench: interrupted", file=sys.stderr)
        return 130
