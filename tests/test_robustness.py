"""Failure paths end to end: signals mid-suite, resume, bad suite files, fuzzed run files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from factories import make_record, make_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eigenbench.cli import main
from eigenbench.errors import ResultsFileError
from eigenbench.results import load_run, save_run

ROOT = Path(__file__).resolve().parents[1]
RUN_SLOW = [sys.executable, "-m", "eigenbench", "run", "slow", "--device", "cpu"]

SLOW_SUITE = """
import time
import numpy as np
from eigenbench.spec import Impl, Suite, Workload, Validation

def nap(x):
    time.sleep(0.02)
    return x

WORKLOAD = Workload(
    name="nap", impls=(Impl("sleepy", nap),),
    make_inputs=lambda p, d, t, s: np.zeros(int(p["n"])),
    reference=lambda x, p, ph: x,
    validate=lambda out, ref, p, t: Validation(True, 0.0, 0.0, "itself"),
    grid={"n": [1, 2, 3, 4, 5, 6, 7, 8]}, quick_grid={"n": [1]},
)
SUITE = Suite(name="slow", workloads=(WORKLOAD,))
"""


@pytest.fixture
def suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "slow.py").write_text(SLOW_SUITE)
    monkeypatch.setenv("EIGENBENCH_SUITES", str(folder))
    return folder


def _start(out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *RUN_SLOW,
            "--out",
            str(out),
            "--warmup",
            "0",
            "--max-time",
            "0.3",
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ,
    )


def _wait_for_records(path: Path, n: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if len(json.loads(path.read_text())["records"]) >= n:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{path} never held {n} records")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_suite_keeps_finished_cases_then_resume_completes(
    suites: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    out = tmp_path / "run.json"
    proc = _start(out)
    _wait_for_records(out, 2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    interrupted = load_run(out)
    assert interrupted["status"] == "interrupted"
    statuses = [r["status"] for r in interrupted["records"]]
    assert statuses[:2] == ["ok", "ok"]
    assert set(statuses) <= {"ok", "interrupted"}
    assert "--resume" in err

    resumed = subprocess.run(
        [
            *RUN_SLOW,
            "--resume",
            str(out),
            "--warmup",
            "0",
            "--max-time",
            "0.3",  # the interrupted run's options: --resume refuses others (exit 3)
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
    )
    assert resumed.returncode == 0, resumed.stderr
    final = load_run(out)
    assert final["status"] == "complete"
    assert final["run_id"] == interrupted["run_id"]
    ids = [r["id"] for r in final["records"]]
    assert len(ids) == len(set(ids)) == 8
    kept = [r for r in interrupted["records"] if r["status"] == "ok"]
    assert final["records"][: len(kept)] == kept  # finished cases were not measured again
    assert all(r["status"] == "ok" for r in final["records"])


def test_resume_from_a_corrupt_file_exits_3_and_leaves_it_alone(
    suites: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "eigenbench.run/1", "records": [')
    assert main(["run", "slow", "--resume", str(bad)]) == 3
    assert bad.read_text() == '{"schema": "eigenbench.run/1", "records": ['
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def broken(:", "failed to import: SyntaxError"),
        ("SUITE = 3", "SUITE must be an eigenbench.spec.Suite"),
        ("x = 1", "defines no SUITE"),
        (
            SLOW_SUITE.replace('grid={"n": [1, 2, 3, 4, 5, 6, 7, 8]}', 'grid={"n": []}'),
            "grid: is empty",
        ),
        (SLOW_SUITE.replace('name="slow"', 'name="other"'), "expected 'slow'"),
    ],
)
def test_bad_suite_files_exit_3_with_one_line(
    suites: Path, source: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (suites / "slow.py").write_text(source)
    assert main(["run", "slow", "--quick"]) == 3
    err = capsys.readouterr().err.strip()
    assert message in err and "slow.py" in err
    assert err.count("\n") == 0
    assert main(["list"]) == 3


def test_debug_shows_the_traceback(suites: Path) -> None:
    (suites / "slow.py").write_text("SUITE = 3")
    from eigenbench.errors import SuiteError

    with pytest.raises(SuiteError):
        main(["--debug", "run", "slow"])


def agrees_with_jsonschema(doc: Any) -> None:
    """Our dependency-free checker accepts exactly what jsonschema accepts."""
    if doc is None:
        return
    jsonschema = pytest.importorskip("jsonschema")
    from eigenbench.results import RUN_SCHEMA
    from eigenbench.results.jsoncheck import first_error

    ours = first_error(doc, RUN_SCHEMA) is None
    theirs = jsonschema.Draft202012Validator(RUN_SCHEMA).is_valid(doc)
    assert ours == theirs, first_error(doc, RUN_SCHEMA)


def _mutations() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 10**6),
        st.floats(allow_nan=False),
        st.text(max_size=8),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=6,
    )


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


BASE = make_run([make_record(), make_record(impl="numpy", status="skipped")])
PATHS = _paths(BASE)[1:]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), _mutations(), st.booleans(), st.integers(0, 4000))
def test_fuzzed_run_files_load_or_fail_cleanly(
    tmp_path_factory: pytest.TempPathFactory,
    path: tuple[Any, ...],
    value: Any,
    delete: bool,
    cut: int,
) -> None:
    doc = json.loads(json.dumps(BASE))
    target = doc
    for key in path[:-1]:
        target = target[key]
    if delete and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = value
    text = json.dumps(doc)
    if cut % 3 == 0:
        text = text[: cut % max(1, len(text))]  # truncated file, as after a crash
    f = tmp_path_factory.mktemp("fuzz") / "run.json"
    f.write_text(text)
    agrees_with_jsonschema(doc if cut % 3 else None)
    try:
        loaded = load_run(f)
    except ResultsFileError as exc:
        assert "\n" not in str(exc) and str(f) in str(exc)  # noqa: PT017
    else:
        save_run(loaded, f)  # anything the loader accepts can be written back


def _declare(**fields: str) -> str:
    """SLOW_SUITE with some Workload fields replaced by source text."""
    source = SLOW_SUITE
    defaults = {
        "name": '"nap"',
        "impls": '(Impl("sleepy", nap),)',
        "grid": '{"n": [1, 2, 3, 4, 5, 6, 7, 8]}',
        "quick_grid": '{"n": [1]}',
    }
    for key, value in fields.items():
        old = f"{key}={defaults[key]}"
        assert old in source, old
        source = source.replace(old, f"{key}={value}")
    return source


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (_declare(grid='"n=1,2"'), "workload 'nap': grid: must be a mapping"),
        (_declare(grid='{"n": 5}'), "workload 'nap': grid: param 'n' must map to a list"),
        (_declare(quick_grid="None"), "workload 'nap': quick_grid: must be a mapping"),
        (_declare(grid='{"n": [1, float("nan")]}'), "grid: param 'n' must be a finite number"),
        (_declare(quick_grid='[{"n": float("inf")}]'), "quick_grid: param 'n' must be a finite"),
        (_declare(grid='{"n": [1e400]}'), "grid: param 'n' must be a finite number, got inf"),
        (_declare(impls='Impl("sleepy", nap)'), "workload 'nap': impls: must be a tuple or list"),
        (
            _declare(impls='(Impl("sleepy", nap, when=lambda p, d: 1 / 0),)'),
            "impl 'sleepy': when({'n': 1}, 'cpu') raised ZeroDivisionError",
        ),
        (_declare(name="7"), "workload 7: name: must be a string, got int"),
        (_declare(impls="(Impl(None, nap),)"), "impl name: must be a string, got NoneType"),
        (_declare(name='"a/b"'), "name: must not hold '/'"),
        (_declare(name='"n" * 101'), "name: must be 1 to 100 characters, got 101"),
        (
            SLOW_SUITE.replace("workloads=(WORKLOAD,)", "workloads=WORKLOAD"),
            "suite 'slow': workloads: must be a tuple or list, got Workload",
        ),
        (
            SLOW_SUITE.replace('name="slow"', "name=b'slow'"),
            "SUITE.name: must be a string, got bytes",
        ),
    ],
    ids=[
        "grid-str",
        "grid-dict-of-scalars",
        "grid-none",
        "grid-nan",
        "grid-inf",
        "grid-1e400",
        "impls-not-a-tuple",
        "raising-when",
        "workload-name-int",
        "impl-name-none",
        "name-with-slash",
        "name-too-long",
        "workloads-not-a-tuple",
        "suite-name-bytes",
    ],
)
def test_malformed_declarations_exit_3_naming_file_and_field(
    suites: Path, source: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (suites / "slow.py").write_text(source)
    for command in (["run", "slow", "--quick"], ["list", "--json"], ["plan", "slow"]):
        assert main(command) == 3
        out, err = capsys.readouterr()
        assert message in err and "slow.py" in err, err
        assert err.strip().count("\n") == 0 and not out


def test_suite_names_longer_than_a_file_name_exit_3_in_one_line(
    suites: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long = "s" * 200  # a valid file name, too long a suite name
    (suites / f"{long}.py").write_text(SLOW_SUITE.replace('name="slow"', f'name="{long}"'))
    assert main(["run", long, "--quick"]) == 3
    err = capsys.readouterr().err.strip()
    assert "at most 100" in err and err.count("\n") == 0


def test_a_reader_that_leaves_the_pipe_is_not_an_error() -> None:
    """`eigenbench list --json | head -c 1`: the reader gone is exit 0, no traceback (the
    BrokenPipeError clause stood after its base class OSError's)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "eigenbench", "list", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # no reader from the start: the first write fails
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 0, err
    assert "Traceback" not in err
