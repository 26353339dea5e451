"""Command line: a thin adapter from arguments to the library; exit codes per the contract.

0 ok · 1 regression found · 2 usage error · 3 invalid input file or suite · 4 environment
error · 130 interrupted. Results go to stdout, progress and errors to stderr.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

from eigenbench.cli.parser import build_parser
from eigenbench.errors import EigenbenchError

__all__ = ["build_parser", "main"]


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `eigenbench` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]  # before or after the sub-command alike
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
