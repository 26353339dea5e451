"""Advisory locks (`fcntl.flock`) that keep two eigenbench processes from writing one file.

- `file_lock(path)`: held while a run file is written; a second writer of the same path is
  refused at once (OutputError, exit 4) instead of silently replacing the first one's file.
  The lock lives in a hidden sidecar, `.<name>.lock`, removed when released.
- `folder_lock(folder)`: held while baselines under `folder` are read, folded and written;
  a second `baseline save` waits for the first, so neither update is lost.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eigenbench.errors import OutputError


def lock_path(path: Path) -> Path:
    """The sidecar lock file of `path`."""
    return path.parent / f".{path.name[:200]}.lock"


@contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the write lock of `path` (created beside it); OutputError when another process
    holds it or the folder cannot be written."""
    target = Path(path)
    side = lock_path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    while True:
        try:
            fd = os.open(side, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(
                f"{target} is being written by another eigenbench process; "
                "wait for it or choose another --out"
            ) from None
        try:  # the holder before us may have removed the sidecar we opened: lock the new one
            same = os.path.samestat(os.fstat(fd), side.stat())
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        side.unlink(missing_ok=True)
        os.close(fd)


@contextmanager
def folder_lock(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the lock of a folder (created if missing), waiting for another holder."""
    d = Path(folder)
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise OutputError(f"cannot write into {d}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
