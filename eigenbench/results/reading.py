"""Reading JSON files that may be hostile: regular files only, a size cap, one number policy.

Every run, baseline and export target goes through `read_json`: special files (a FIFO, a
device, a directory) are refused from `os.stat` before anything is opened, so a FIFO never
blocks; at most `MAX_READ_BYTES` are read; the text must be UTF-8; numbers must be finite and
integers within ±2**63; nesting deeper than `MAX_DEPTH` and strings holding lone surrogates
are refused. Each failure is one `ResultsFileError` naming the file (and the field).
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from eigenbench.errors import ResultsFileError

MAX_READ_BYTES = 1 << 30
"""The largest file read (1 GiB); a bigger one is refused rather than read without limit."""
MAX_DEPTH = 64
"""The deepest nesting of arrays and objects accepted (run files use fewer than 10)."""
INT_LIMIT = 2**63
"""Integers must satisfy |i| < INT_LIMIT."""


class NumberPolicyError(ValueError):
    """A number outside the policy: non-finite, or an integer out of range."""


def bounded_int(text: str) -> int:
    """`parse_int` hook: the integer, unless |i| >= 2**63 (or too many digits to convert)."""
    if len(text) > 20:
        raise NumberPolicyError(f"integers below 2**63 in size, got {text[:24]}…")
    value = int(text)
    if abs(value) >= INT_LIMIT:
        raise NumberPolicyError(f"integers below 2**63 in size, got {text}")
    return value


def reject_constant(name: str) -> float:
    """`parse_constant` hook: NaN, Infinity and -Infinity are not JSON numbers we accept."""
    raise NumberPolicyError(f"finite numbers, got {name}")


def file_kind(mode: int) -> str:
    """What a non-regular file is, in a word or two."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path: str | os.PathLike[str], what: str = "a run file") -> bytes:
    """The bytes of a regular file of at most `MAX_READ_BYTES`; ResultsFileError otherwise."""
    p = Path(path)
    try:
        st = p.stat()  # follows symlinks: a link to /dev/zero is a device
    except FileNotFoundError:
        raise ResultsFileError(p, "/", f"{what}; no such file") from None
    except OSError as exc:
        raise ResultsFileError(p, "/", f"{what} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ResultsFileError(p, "/", f"{what} (a regular file), got {file_kind(st.st_mode)}")
    if st.st_size > MAX_READ_BYTES:
        raise ResultsFileError(
            p, "/", f"{what} of at most {MAX_READ_BYTES} bytes, got {st.st_size}"
        )
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # swapped since the stat
                raise ResultsFileError(p, "/", f"{what} (a regular file)")
            data = fh.read(MAX_READ_BYTES + 1)
    except OSError as exc:
        raise ResultsFileError(p, "/", f"a readable {what} ({exc.strerror or exc})") from None
    if len(data) > MAX_READ_BYTES:
        raise ResultsFileError(p, "/", f"{what} of at most {MAX_READ_BYTES} bytes")
    return data


def read_json(
    path: str | os.PathLike[str], what: str = "a run file", *, check_tree: bool = True
) -> Any:
    """Parse a file under the rules above; the document, or ResultsFileError naming the file.
    `check_tree=False` leaves the depth and string checks to the caller (`validate_run`)."""
    p = Path(path)
    data = read_bytes(p, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultsFileError(
            p, "/", f"a UTF-8 file (invalid byte at offset {exc.start})"
        ) from None
    return parse_json(text, p, check_tree=check_tree)


def parse_json(
    text: str, path: str | os.PathLike[str] = "<json>", *, check_tree: bool = True
) -> Any:
    """`json.loads` with the number policy, then the depth and surrogate checks."""
    try:
        # floats parse natively (fast); one that overflowed to inf is caught by the tree walk
        doc = json.loads(text, parse_int=bounded_int, parse_constant=reject_constant)
    except json.JSONDecodeError as exc:
        raise ResultsFileError(
            path, "/", f"valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise ResultsFileError(path, "/", f"JSON nested at most {MAX_DEPTH} deep") from None
    except ValueError as exc:  # the number hooks (or int()'s own digit limit)
        raise ResultsFileError(path, "/", str(exc).split("\n")[0]) from None
    problem = tree_problem(doc) if check_tree else None
    if problem is not None:
        raise ResultsFileError(path, *problem)
    return doc


def tree_problem(doc: Any) -> tuple[str, str] | None:
    """The first (JSON pointer, expectation) that breaks the depth, string or number rules in
    a parsed or in-memory document, or None. Iterative: deep documents cannot overflow it."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(doc, ())]
    while stack:
        node, path = stack.pop()
        if len(path) > MAX_DEPTH:
            return _pointer(path[:MAX_DEPTH]), f"JSON nested at most {MAX_DEPTH} deep"
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str) or not _utf8(key):
                    return _pointer(path), "keys that are valid Unicode text"
                stack.append((value, (*path, key)))
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                if type(value) is float and math.isfinite(value):
                    continue  # the common case (samples), without a push
                stack.append((value, (*path, i)))
        else:
            problem = leaf_problem(node)
            if problem:
                return _pointer(path), problem
    return None


def leaf_problem(node: Any) -> str | None:
    """What is wrong with a scalar under the policy (non-finite, out of range, a surrogate)."""
    if isinstance(node, bool) or node is None:
        return None
    if isinstance(node, float) and not math.isfinite(node):
        return f"a finite number, got {node!r}"
    if isinstance(node, int) and abs(node) >= INT_LIMIT:
        return "an integer below 2**63 in size"
    if isinstance(node, str) and not _utf8(node):
        return "valid Unicode text (a lone surrogate is not)"
    return None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _pointer(path: tuple[Any, ...]) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)
