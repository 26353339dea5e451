"""Nothing lost: concurrent writers, resume provenance, `--out` guards, hostile numbers and
special files, duplicate case ids, pyperf exports, file modes (issue 22)."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from factories import make_record, make_run

from eigenbench.cli import main
from eigenbench.errors import ResultsFileError
from eigenbench.gate import baseline as baseline_mod
from eigenbench.gate.baseline import save_baselines
from eigenbench.results import files as files_mod
from eigenbench.results import load_run, save_run

ROOT = Path(__file__).resolve().parents[1]

NAP_SUITE = """
import os
import time
import numpy as np
from eigenbench.spec import Impl, Suite, Workload, Validation

def nap(x):
    gate = os.environ.get("NAP_GATE")
    deadline = time.monotonic() + 120
    while gate and len(x) >= 2 and not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)  # sizes >= 2 wait until the test opens the gate
    time.sleep(0.02)
    return x

WORKLOAD = Workload(
    name="nap", impls=(Impl("sleepy", nap),),
    make_inputs=lambda p, d, t, s: np.zeros(int(p["n"])),
    reference=lambda x, p, ph: x,
    validate=lambda out, ref, p, t: Validation(True, 0.0, 0.0, "itself"),
    grid={"n": [1, 2, 3, 4, 5, 6]}, quick_grid={"n": [1]},
)
SUITE = Suite(name="nap", workloads=(WORKLOAD,))
"""
RUN_NAP = ["run", "nap", "--device", "cpu", "--warmup", "0", "--max-time", "0.05"]


@pytest.fixture
def nap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "nap.py").write_text(NAP_SUITE)
    monkeypatch.setenv("EIGENBENCH_SUITES", str(folder))
    return folder


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "Traceback" not in err
    return err


def _run(tag: str, medians: float = 1e-3, suites: tuple[str, ...] = ("a",)) -> dict[str, Any]:
    recs = [make_record(suite=s, median_s=medians) for s in suites]
    for i, rec in enumerate(recs):
        rec["id"] = f"{rec['id']}/{i}"
    return make_run(recs, run_id=f"20261122T000000Z-{tag}")


# -- 1. concurrent writers ---------------------------------------------------------------


def test_a_second_run_into_the_same_out_exits_4_and_the_first_file_survives(
    nap: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run.json"
    gate = tmp_path / "gate"
    cmd = [sys.executable, "-m", "eigenbench", *RUN_NAP, "--out", str(out)]
    first = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NAP_GATE": str(gate)},
    )
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and load_run(out)["records"]):
            assert time.monotonic() < deadline and first.poll() is None, "first run never wrote"
            time.sleep(0.05)
        second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        gate.touch()  # the first run goes on to the end
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert second.returncode == 4, second.stderr
    line = second.stderr.strip()
    assert line.count("\n") == 0 and "another eigenbench process" in line
    final = load_run(out)
    assert final["status"] == "complete" and len(final["records"]) == 6
    assert not list(tmp_path.glob(".run.json*"))  # no lock or temporary left behind
    assert final["run_id"] not in second.stderr


def test_two_baseline_saves_at_once_keep_both_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = baseline_mod.with_history

    def slow_with_history(*args: Any, **kwargs: Any) -> dict[str, Any]:
        time.sleep(0.3)  # widen the read-fold-write window a lost update needs
        return real(*args, **kwargs)

    monkeypatch.setattr(baseline_mod, "with_history", slow_with_history)
    root = tmp_path / "baselines"
    save_baselines([_run("first")], root)
    errors: list[BaseException] = []

    def save(tag: str) -> None:
        try:
            save_baselines([_run(tag)], root)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(t,)) for t in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    history = load_run(root / "test-machine" / "a.json")["history_run_ids"]
    assert history[0] == "20261122T000000Z-first"
    assert sorted(history[1:]) == ["20261122T000000Z-x", "20261122T000000Z-y"]


def test_baseline_save_is_all_or_nothing_when_the_disk_fills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "baselines"
    suites = ("a", "b", "c", "d")
    save_baselines([_run("old", suites=suites)], root)
    folder = root / "test-machine"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    new = tmp_path / "new.json"
    save_run(_run("new", medians=2e-3, suites=suites), new)
    calls = {"n": 0}
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(files_mod.os, "fsync", full_disk)
    assert main(["baseline", "save", str(new), "--root", str(root)]) == 4
    assert "No space left on device" in _one_line(capsys)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no temporaries


def test_saving_the_same_run_twice_is_a_no_op_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run.json"
    save_run(_run("once"), run)
    root = tmp_path / "baselines"
    assert main(["baseline", "save", str(run), "--root", str(root)]) == 0
    target = root / "test-machine" / "a.json"
    first = target.read_bytes()
    capsys.readouterr()
    assert main(["baseline", "save", str(run), "--root", str(root)]) == 0
    assert "already saved" in _one_line(capsys)
    assert target.read_bytes() == first
    assert main(["baseline", "save", str(run), str(run), "--root", str(tmp_path / "b2")]) == 0
    assert load_run(tmp_path / "b2" / "test-machine" / "a.json")["history_run_ids"] == [
        "20261122T000000Z-once"
    ]


# -- 2. --resume provenance --------------------------------------------------------------


def test_resume_refuses_another_machines_or_options_run_unless_forced(
    nap: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run.json"
    assert main([*RUN_NAP, "--quick", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    doc["env"]["machine_key"] = "another-machine"
    doc["options"]["seed"] = 7
    doc["options"]["measure"]["max_time_s"] = 9.0
    doc["records"] = []
    doc["status"] = "interrupted"
    out.write_text(json.dumps(doc))
    text = out.read_text()
    capsys.readouterr()
    assert main([*RUN_NAP, "--quick", "--resume", str(out)]) == 3
    line = _one_line(capsys)
    assert "machine_key" in line and "seed" in line and "measure.max_time_s" in line
    assert "--force" in line
    assert out.read_text() == text
    assert main([*RUN_NAP, "--quick", "--resume", str(out), "--force"]) == 0
    assert load_run(out)["status"] == "complete"


def test_resume_of_a_matching_run_goes_on(nap: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    assert main([*RUN_NAP, "--quick", "--out", str(out)]) == 0
    assert main([*RUN_NAP, "--quick", "--resume", str(out)]) == 0


# -- 3. --out never overwrites -----------------------------------------------------------


def test_export_out_its_own_input_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = save_run(_run("r"), tmp_path / "run.json")
    text = run.read_text()
    assert main(["export", str(run), "--format", "pyperf", "--out", str(run)]) == 2
    assert "input" in _one_line(capsys)
    assert run.read_text() == text


def test_export_out_a_run_file_or_a_script_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = save_run(_run("r"), tmp_path / "run.json")
    other = save_run(_run("o"), tmp_path / "other.json")
    script = tmp_path / "x.py"
    script.write_text("print('hi')\n")
    for target in (other, script):
        before = target.read_text()
        assert main(["export", str(run), "--format", "pyperf", "--out", str(target)]) == 2
        _one_line(capsys)
        assert target.read_text() == before
    out = tmp_path / "out.json"  # an earlier export may be replaced
    assert main(["export", str(run), "--format", "pyperf", "--out", str(out)]) == 0
    assert main(["export", str(run), "--format", "pyperf", "--out", str(out)]) == 0


def test_run_out_a_script_or_a_baseline_is_refused_before_measuring(
    nap: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = nap / "nap.py"
    before = script.read_text()
    assert main([*RUN_NAP, "--quick", "--out", str(script)]) == 2
    assert "not an eigenbench run file" in _one_line(capsys)
    assert script.read_text() == before
    root = tmp_path / "bl"
    save_baselines([_run("b")], root)
    base = root / "test-machine" / "a.json"
    kept = base.read_bytes()
    assert main([*RUN_NAP, "--quick", "--out", str(base)]) == 2
    assert "baseline" in _one_line(capsys)
    assert base.read_bytes() == kept


def test_check_out_its_own_baseline_is_refused(
    nap: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "base.json"
    assert main([*RUN_NAP, "--quick", "--out", str(base)]) == 0
    kept = base.read_bytes()
    capsys.readouterr()
    args = ["check", *RUN_NAP[1:], "--quick", "--baseline", str(base), "--out", str(base)]
    assert main(args) == 2
    assert "input" in _one_line(capsys)
    assert base.read_bytes() == kept


@pytest.mark.parametrize("case", ["directory", "parent-is-a-file", "name-too-long"])
def test_output_errors_are_one_line_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    run = save_run(_run("r"), tmp_path / "run.json")
    if case == "directory":
        target = tmp_path / "adir"
        target.mkdir()
    elif case == "parent-is-a-file":
        (tmp_path / "afile").write_text("")
        target = tmp_path / "afile" / "x.json"
    else:
        target = tmp_path / ("n" * 300 + ".json")
    assert main(["export", str(run), "--format", "pyperf", "--out", str(target)]) == 4
    _one_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["run.json", *({"directory": ["adir"], "parent-is-a-file": ["afile"]}.get(case, []))]
    )


def test_a_write_error_keeps_the_old_file_and_is_an_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = save_run(_run("r"), tmp_path / "run.json")
    before = target.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    from eigenbench.errors import OutputError

    monkeypatch.setattr(files_mod.os, "fsync", full)
    with pytest.raises(OutputError, match="No space left"):
        save_run(_run("s"), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


# -- 4. one number policy; special files -------------------------------------------------


def _with_first_sample(tmp_path: Path, token: str) -> Path:
    text = json.dumps(_run("n"))
    first = json.dumps(_run("n")["records"][0]["samples_s"][0])
    path = tmp_path / "n.json"
    path.write_text(text.replace(first, token, 1))
    return path


@pytest.mark.parametrize("token", ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1" * 400])
def test_numbers_outside_the_policy_are_refused_on_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], token: str
) -> None:
    path = _with_first_sample(tmp_path, token)
    with pytest.raises(ResultsFileError):
        load_run(path)
    assert main(["show", str(path)]) == 3
    line = _one_line(capsys)
    assert str(path) in line
    if "e400" in token:
        assert "/records/0/samples_s/0: expected a finite number" in line


def test_big_integers_anywhere_are_refused(tmp_path: Path) -> None:
    doc = _run("i")
    doc["env"]["cpu"]["cores"] = 2**63
    path = tmp_path / "i.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsFileError, match="2\\*\\*63"):
        load_run(path)


def test_writing_refuses_non_finite_numbers_naming_the_field(tmp_path: Path) -> None:
    doc = _run("w")
    doc["records"][0]["samples_s"][2] = float("nan")
    target = tmp_path / "w.json"
    with pytest.raises(ResultsFileError, match=r"/records/0/samples_s/2: expected a finite"):
        save_run(doc, target)
    assert not target.exists()
    with pytest.raises(ResultsFileError, match="/env/cpu/cores"):
        save_run({**doc, "env": {**doc["env"], "cpu": {"cores": 10**30}}}, target)


def _hostile(kind: str) -> str:
    if kind == "deep-1000":
        return "[" * 1000 + "]" * 1000
    doc = _run("h")
    if kind == "deep-100":  # inside `options`, which the schema does not walk
        nested: Any = 1
        for _ in range(100):
            nested = [nested]
        doc["options"]["deep"] = nested
    elif kind == "lone-surrogate":
        doc["run_id"] = "r\ud800"
    else:
        doc["options"]["\udfff"] = 1
    return json.dumps(doc)  # ensure_ascii: a lone surrogate becomes a \ud800 escape


@pytest.mark.parametrize("kind", ["deep-1000", "deep-100", "lone-surrogate", "surrogate-key"])
def test_deep_nesting_and_surrogates_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = tmp_path / "h.json"
    path.write_text(_hostile(kind))
    for command in (["show", str(path)], ["export", str(path), "--format", "pyperf"]):
        assert main(command) == 3
        _one_line(capsys)


def test_invalid_utf8_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "u.json"
    path.write_bytes(b'{"schema": "\xff\xfe"}')
    assert main(["show", str(path)]) == 3
    assert "UTF-8" in _one_line(capsys)


def _limited() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a runaway read fails fast


def _show(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eigenbench", "show", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,  # a FIFO read would block here
        preexec_fn=_limited,
    )


def test_a_fifo_and_a_link_to_a_device_are_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    for path, what in ((fifo, "FIFO"), (link, "device")):
        proc = _show(path)
        assert proc.returncode == 3, proc.stderr[-300:]
        assert what in proc.stderr and proc.stderr.strip().count("\n") == 0


def test_a_directory_where_a_file_is_meant_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(tmp_path), "--format", "pyperf"]) == 3
    assert "directory" in _one_line(capsys)


def test_the_size_read_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_run(_run("big"), tmp_path / "big.json")
    from eigenbench.results import reading

    monkeypatch.setattr(reading, "MAX_READ_BYTES", 100)
    with pytest.raises(ResultsFileError, match="at most 100 bytes"):
        load_run(path)


# -- 5. duplicate case ids ---------------------------------------------------------------


def test_duplicate_case_ids_are_refused_by_every_reader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = make_record()
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(make_run([rec, dict(rec)])))
    good = save_run(_run("g"), tmp_path / "good.json")
    commands = [
        ["show", str(path)],
        ["export", str(path), "--format", "pyperf"],
        ["baseline", "save", str(path), "--root", str(tmp_path / "bl")],
        ["compare", str(good), str(path)],
        ["report", str(path), "--out", str(tmp_path / "rep")],
    ]
    for command in commands:
        assert main(command) == 3, command
        line = _one_line(capsys)
        assert rec["id"] in line and "/records/1/id" in line
    assert not (tmp_path / "bl").exists() and not (tmp_path / "rep").exists()


# -- 6. exports pyperf accepts -----------------------------------------------------------


def test_pyperf_reads_the_export_and_its_dates(tmp_path: Path) -> None:
    pyperf = pytest.importorskip("pyperf")
    run = save_run(_run("p", suites=("a", "b")), tmp_path / "run.json")
    out = tmp_path / "p.json"
    assert main(["export", str(run), "--format", "pyperf", "--out", str(out)]) == 0
    suite = pyperf.BenchmarkSuite.load(str(out))
    assert len(suite.get_benchmark_names()) == 2
    start, _ = suite.get_dates()
    assert start.isoformat() == "2026-11-22T00:00:00"
    for bench in suite.get_benchmarks():
        assert bench.mean() > 0 and bench.stdev() >= 0


def test_an_unparsable_start_is_left_out_of_the_export(tmp_path: Path) -> None:
    pyperf = pytest.importorskip("pyperf")
    run = save_run({**_run("p"), "started": "yesterday"}, tmp_path / "run.json")
    out = tmp_path / "p.json"
    assert main(["export", str(run), "--format", "pyperf", "--out", str(out)]) == 0
    assert pyperf.BenchmarkSuite.load(str(out)).get_dates() is None


def test_times_pyperf_cannot_hold_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _run("o")
    doc["records"][0]["samples_s"][0] = 1e308
    run = save_run(doc, tmp_path / "run.json")
    for fmt in ("pyperf", "github-action"):
        assert main(["export", str(run), "--format", fmt]) == 3
        assert "beyond" in _one_line(capsys)


# -- 7. file modes -----------------------------------------------------------------------


def test_files_get_the_usual_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        run = save_run(_run("m"), tmp_path / "run.json")
        save_baselines([load_run(run)], tmp_path / "bl")
        assert main(["export", str(run), "--format", "pyperf", "--out", str(tmp_path / "e")]) == 0
    finally:
        os.umask(old)
    for path in (run, tmp_path / "bl" / "test-machine" / "a.json", tmp_path / "e"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_an_over_long_machine_key_is_a_one_line_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _run("k")
    doc["env"]["machine_key"] = "m" * 300
    run = save_run(doc, tmp_path / "run.json")
    assert main(["baseline", "save", str(run), "--root", str(tmp_path / "bl")]) == 3
    assert "cannot be a file name" in _one_line(capsys)
    assert not (tmp_path / "bl").exists()
