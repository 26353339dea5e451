"""Keeping one case from reaching the next (without `--isolate`) and telling real interrupts
from an impl's own `KeyboardInterrupt`.

- `install_interrupts`: SIGINT and SIGTERM count themselves, then raise KeyboardInterrupt; a
  KeyboardInterrupt while the count stood still was raised by code (an impl), not by a user.
- `GlobalState`: what an impl may change for every later case (working directory, torch
  threads, default dtype and grad mode, NumPy's error handling), taken before a case and put
  back after it; `restore` names what differed.
- `stdout_to_stderr`: what suites and impls print never reaches a `--json` stream on stdout.

Light: imports only the standard library (loaded first by `python -m eigenbench`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_signals = [0]


def _on_signal(signum: int, frame: object) -> None:
    _signals[0] += 1
    raise KeyboardInterrupt


def _count_only(signum: int, frame: object) -> None:
    _signals[0] += 1


def defer_interrupts_at_start() -> None:
    """Under `python -m eigenbench`, while the package itself imports: SIGINT and SIGTERM
    are only counted (an exception there would be a traceback); `__main__` then exits 130."""
    argv = getattr(sys, "orig_argv", [])
    as_cli = (
        sys.argv[:1] == ["-m"]
        and "-m" in argv
        and argv[argv.index("-m") + 1 :][:1] == ["eigenbench"]
    )
    if as_cli:
        count_interrupts()


def count_interrupts() -> None:
    """From now on SIGINT and SIGTERM are only counted (`signals()`), never raised: for the
    first and last lines of the command, where an exception would be a traceback."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _count_only)


def ignore_interrupts() -> None:
    """SIGINT and SIGTERM ignored: for the command's very last lines, once its exit code is
    known (Python's teardown would restore their default, deadly action)."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def install_interrupts() -> bool:
    """SIGINT and SIGTERM raise KeyboardInterrupt after counting themselves; False where
    signal handlers cannot be set (not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    return True


@contextlib.contextmanager
def interrupts() -> Iterator[None]:
    """`install_interrupts` for the duration, unless already installed; the handlers found
    are put back after."""
    if installed() or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    install_interrupts()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Where our handlers are installed: SIGINT and SIGTERM only counted for the duration,
    then raised as KeyboardInterrupt. For imports: an exception raised inside an extension
    module's initialisation (torch) can abort the process instead of unwinding."""
    if not installed():
        yield
        return
    before = signals()
    count_interrupts()
    try:
        yield
    finally:
        install_interrupts()
    if signals() > before:
        raise KeyboardInterrupt


def installed() -> bool:
    """Whether SIGINT goes through `install_interrupts`'s handler (the count can be trusted)."""
    return signal.getsignal(signal.SIGINT) is _on_signal


def signals() -> int:
    """How many SIGINT or SIGTERM arrived through the handler in this process so far."""
    return _signals[0]


def is_real_interrupt(since: int) -> bool:
    """A KeyboardInterrupt just caught came from a signal after `signals()` was `since` (or
    cannot be told apart: the handler is not installed)."""
    return signals() > since or not installed()


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Python-level prints go to stderr for the duration (stdout is for results)."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


class ImplExit(Exception):
    """An impl's `sys.exit` or own KeyboardInterrupt, contained; its message says which."""


@contextlib.contextmanager
def impl_code() -> Iterator[None]:
    """Around code that calls an impl: its prints go to stderr, and its `sys.exit` or own
    KeyboardInterrupt becomes `ImplExit`; a real interrupt (a signal) passes unchanged."""
    since = signals()
    try:
        with stdout_to_stderr():
            yield
    except KeyboardInterrupt as exc:
        if is_real_interrupt(since):
            raise
        raise ImplExit(exit_reason(exc)) from None
    except SystemExit as exc:
        raise ImplExit(exit_reason(exc)) from None


@dataclass(frozen=True, slots=True)
class GlobalState:
    """Process-wide settings a case may change, as they were before it ran."""

    cwd: str | None
    torch_threads: int | None
    torch_dtype: Any
    torch_grad: bool | None
    numpy_err: dict[str, str] | None

    @classmethod
    def take(cls) -> GlobalState:
        """The current settings (torch and NumPy only when already imported)."""
        try:
            cwd: str | None = str(Path.cwd())
        except OSError:  # the directory was removed under us
            cwd = None
        torch, np = sys.modules.get("torch"), sys.modules.get("numpy")
        return cls(
            cwd=cwd,
            torch_threads=torch.get_num_threads() if torch is not None else None,
            torch_dtype=torch.get_default_dtype() if torch is not None else None,
            torch_grad=bool(torch.is_grad_enabled()) if torch is not None else None,
            numpy_err=dict(np.geterr()) if np is not None else None,
        )

    def restore(self) -> list[str]:
        """Put back what differs now (each best effort) and return its names."""
        now = GlobalState.take()
        changed = []
        torch, np = sys.modules.get("torch"), sys.modules.get("numpy")
        if self.cwd is not None and now.cwd != self.cwd:
            changed.append("working directory")
            with contextlib.suppress(OSError):
                os.chdir(self.cwd)
        if torch is not None and self.torch_threads is not None:
            if now.torch_threads != self.torch_threads:
                changed.append("torch threads")
                torch.set_num_threads(self.torch_threads)
            if now.torch_dtype != self.torch_dtype:
                changed.append("torch default dtype")
                torch.set_default_dtype(self.torch_dtype)
            if now.torch_grad != self.torch_grad:
                changed.append("torch grad mode")
                torch.set_grad_enabled(bool(self.torch_grad))
        if np is not None and self.numpy_err is not None and now.numpy_err != self.numpy_err:
            changed.append("numpy error handling (np.seterr)")
            np.seterr(**self.numpy_err)
        return changed


def changed_warning(changed: list[str]) -> str:
    """The record's warning for settings a case changed and the runner put back."""
    return f"the case changed global state, restored after it: {', '.join(changed)}"


def exit_reason(exc: BaseException) -> str:
    """The failed record's reason for an impl that raised SystemExit or KeyboardInterrupt."""
    if isinstance(exc, SystemExit):
        return f"the impl called sys.exit({exc.code!r}) (SystemExit); contained, the run went on"
    return "the impl raised KeyboardInterrupt itself (no signal); contained, the run went on"
