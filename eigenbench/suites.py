"""Finding and loading suite files (`suites/<name>.py` defining `SUITE`)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from pathlib import Path

from eigenbench.errors import SuiteError
from eigenbench.run.contain import deferred_interrupts
from eigenbench.spec import MAX_NAME_CHARS, Case, Suite, check_suite, expand


def suites_dir() -> Path:
    """`$EIGENBENCH_SUITES`, else `./suites`, else the `suites/` beside the package."""
    env = os.environ.get("EIGENBENCH_SUITES")
    if env:
        return Path(env)
    here = Path.cwd() / "suites"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[1] / "suites"


def available(folder: Path | None = None) -> list[str]:
    """Names of the suite files in the folder, sorted."""
    d = folder or suites_dir()
    return sorted(p.stem for p in d.glob("*.py") if not p.name.startswith("_"))


def load_suite(name: str, folder: Path | None = None) -> Suite:
    """Import `suites/<name>.py` and return its checked `SUITE`; SuiteError on any problem."""
    d = folder or suites_dir()
    path = d / f"{name}.py"
    if len(name) > MAX_NAME_CHARS:
        raise SuiteError(f"unknown suite {name[:40]!r}…: names are at most {MAX_NAME_CHARS} chars")
    if not path.is_file():
        known = ", ".join(available(d)) or "none"
        raise SuiteError(f"unknown suite {name!r}: no {path} (available: {known})")
    module_name = f"eigenbench_suite_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise SuiteError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with contextlib.redirect_stdout(sys.stderr):  # a suite's prints never reach --json
            with deferred_interrupts():  # a signal inside torch's import would abort
                spec.loader.exec_module(module)
            if not hasattr(module, "SUITE"):
                raise SuiteError(f"{path}: defines no SUITE = eigenbench.spec.Suite(...)")
            suite = check_suite(module.SUITE, str(path))
    except SuiteError:
        raise
    except Exception as exc:  # a broken suite file must not take the CLI down with a traceback
        raise SuiteError(f"{path}: failed to import: {type(exc).__name__}: {exc}") from exc
    if suite.name != name:
        raise SuiteError(f"{path}: SUITE.name is {suite.name!r}, expected {name!r} (the file name)")
    return suite


def load_suites(names: list[str]) -> list[Suite]:
    """The named suites (`["all"]`: every suite), checked; SuiteError on the first bad one."""
    return [load_suite(name) for name in (available() if names == ["all"] else names)]


def cases_of(
    suites: list[Suite], *, devices: tuple[str, ...], quick: bool, text: str | None = None
) -> list[Case]:
    """The suites' cases on these devices, in order; with `text`, those whose id contains it."""
    cases = [c for s in suites for c in expand(s, devices=devices, quick=quick)]
    return [c for c in cases if text in c.id] if text else cases
