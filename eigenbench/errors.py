"""Errors that reach the user as one line; the CLI maps each kind to an exit code."""

from __future__ import annotations


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
        super().__init__(f"{self.path}: {self.pointer}: {expected}")


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
