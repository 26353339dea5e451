"""Errors that reach the user as one line; the CLI maps each kind to an exit code."""

from __future__ import annotations

from collections.abc import Sequence


class EigenbenchError(Exception):
    """Base of every error the CLI reports as one line instead of a traceback."""

    exit_code = 3


class UsageError(EigenbenchError):
    """A command-line argument that cannot be honoured."""

    exit_code = 2


class InputFileError(EigenbenchError):
    """A file (run, baseline, suite) that is missing, unreadable or malformed.

    The message names the file, the field (as a JSON pointer) and what was expected.
    """

    exit_code = 3

    def __init__(self, path: object, pointer: str, expected: str) -> None:
        self.path = str(path)
        self.pointer = pointer or "/"
        self.expected = expected
        where = "" if self.pointer == "/" else f"{self.pointer}: "  # the whole file: no pointer
        super().__init__(f"{self.path}: {where}expected {expected}")


class ResultsFileError(InputFileError):
    """A run or baseline file that does not match the schema."""


class SuiteError(EigenbenchError):
    """A suite declaration that cannot be loaded or expanded."""

    exit_code = 3


class EnvironmentProblem(EigenbenchError):
    """The machine cannot do what was asked (e.g. `--device cuda` without a GPU)."""

    exit_code = 4


class MissingDependency(EigenbenchError):
    """An optional module (CuPy, SciPy, …) is needed for this and is not installed."""

    exit_code = 4


class CompareError(EigenbenchError):
    """Two runs that cannot be compared (duplicate case ids, different workload versions)."""

    exit_code = 3


class VersionMismatchError(CompareError):
    """A case whose workload version differs between baseline and current run."""

    def __init__(self, mismatches: Sequence[tuple[str, str, str]]) -> None:
        self.mismatches = list(mismatches)
        case, old, new = self.mismatches[0]
        more = len(self.mismatches) - 1
        tail = f" (and {more} more case{'s' if more > 1 else ''})" if more else ""
        super().__init__(
            f"case {case!r}: baseline has workload version {old!r}, current run has {new!r}"
            f"{tail}; timings of different versions are not comparable — save a new baseline"
        )


class BaselineError(EigenbenchError):
    """A run that cannot be saved as a baseline (no records, unsafe machine or suite name)."""

    exit_code = 3


class AbError(EigenbenchError):
    """A side that could not be started or answered with an error."""

    exit_code = 4


class ExportError(EigenbenchError):
    """A run that has nothing the target format can hold."""

    exit_code = 3


class OutputError(EnvironmentProblem):
    """A file that cannot be written (read-only, disk full, a directory, name too long) or
    that another eigenbench process is writing; nothing half-written is left."""

    exit_code = 4
