"""`--isolate`: a case in a child process, its own peak RSS, killed at its budget, deaths named."""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from eigenbench.measure.loop import MeasureOptions
from eigenbench.results import RECORD_SCHEMA
from eigenbench.run import isolate
from eigenbench.run.options import RunOptions
from eigenbench.spec import find_case
from eigenbench.suites import load_suite

MIB = 1 << 20
BIG = 200 * MIB
FAST = MeasureOptions(warmup_s=0.0, min_samples=2, max_samples=3, max_time_s=0.05)
OPTIONS = RunOptions(devices=("cpu",), measure=FAST)

SUITE = textwrap.dedent(
    """
    from __future__ import annotations

    import os
    import signal
    import time

    import numpy as np

    from eigenbench.spec import Impl, Suite, Validation, Workload

    BIG_BYTES = 200 * (1 << 20)

    if os.environ.get("ISO_BREAK"):
        raise RuntimeError("suite broken on purpose")


    def make_inputs(params, device, dtype, seed):
        return np.arange(4.0)


    def reference(inputs, params, phase):
        return float(inputs.sum())


    def validate(output, expected, params, dtype):
        err = abs(float(output) - expected)
        return Validation(err == 0.0, err, err, "numpy float64")


    def small(x):
        return x.sum()


    def big(x):
        block = np.ones(BIG_BYTES // 8)  # every page written: resident
        return x.sum() + block[-1] - 1.0


    def _note_pid():
        path = os.environ.get("ISO_PID_FILE")
        if path:
            with open(path, "w") as fh:
                fh.write(str(os.getpid()))


    def hang(x):
        _note_pid()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL ends it
        while True:
            time.sleep(1)


    def segv(x):
        os.kill(os.getpid(), signal.SIGSEGV)


    def sigkill(x):
        os.kill(os.getpid(), signal.SIGKILL)


    def exit3(x):
        os._exit(3)


    SUITE = Suite(
        "iso",
        (
            Workload(
                name="w",
                impls=tuple(
                    Impl(f.__name__, f) for f in (small, big, hang, segv, sigkill, exit3)
                ),
                make_inputs=make_inputs,
                reference=reference,
                validate=validate,
                grid=[{"n": 4}],
                quick_grid=[{"n": 4}],
                flush_l2=False,
            ),
        ),
    )
    """
)


def case_id(impl: str) -> str:
    return f"w/{impl}/cpu/float32/n=4"


@pytest.fixture(scope="module")
def suites(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("suites")
    (folder / "iso.py").write_text(SUITE)
    return folder


def run(suites: Path, impl: str, timeout_s: float | None = 30.0) -> dict:
    return isolate.run_isolated(
        "iso", case_id(impl), OPTIONS, timeout_s=timeout_s, suites_folder=suites
    )


def check_schema(record: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(record, RECORD_SCHEMA)


def own_hwm() -> int:
    text = Path("/proc/self/status").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# ---------------------------------------------------------------- real children


def test_big_allocation_peak_is_the_case_growth(suites: Path) -> None:
    rec = run(suites, "big")
    check_schema(rec)
    assert rec["status"] == "ok", rec["reason"]
    assert rec["isolated"] is True
    assert rec["validation"]["ok"] is True
    mem = rec["memory"]
    assert mem["kind"] == "cpu_child_maxrss"
    assert mem["rss_before_bytes"] > 10 * MIB  # python and numpy were loaded
    assert mem["peak_rss_bytes"] == mem["rss_before_bytes"] + mem["peak_bytes"]
    assert 0.95 * BIG <= mem["peak_bytes"] <= BIG + 20 * MIB, mem


def test_small_case_is_not_charged_the_parents_high_water_mark(suites: Path) -> None:
    """A child started by vfork+exec inherits the parent's peak RSS into its ru_maxrss."""
    hog = np.ones(600 * MIB // 8)  # raise this (the parent) process's VmHWM for good
    del hog
    rec = run(suites, "small")
    assert rec["status"] == "ok", rec["reason"]
    mem = rec["memory"]
    assert own_hwm() > mem["peak_rss_bytes"] + 300 * MIB  # the trap was really set
    assert 0 <= mem["peak_bytes"] < 20 * MIB, mem


def test_hanging_case_is_killed_at_its_budget(
    suites: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    monkeypatch.setenv("ISO_PID_FILE", str(pid_file))
    t0 = time.monotonic()
    rec = run(suites, "hang", timeout_s=1.0)
    elapsed = time.monotonic() - t0
    check_schema(rec)
    assert rec["status"] == "timeout"
    assert rec["reason"] == "killed after 1 s (case budget)"
    assert rec["isolation"]["exit"] == "signal SIGKILL"  # it ignored SIGTERM
    # budget counts from the case start; the SIGTERM grace is 0.5 s
    assert elapsed - rec["isolation"]["startup_s"] < 1.0 + 2.0
    assert elapsed < 1.0 + 15.0
    assert pid_gone(int(pid_file.read_text()))
    assert rec["memory"] is None  # a killed case never reaches the memory chart


@pytest.mark.parametrize(
    ("impl", "words"),
    [
        ("segv", "child process died: signal SIGSEGV"),
        ("sigkill", "out of memory? child process killed by SIGKILL"),
        ("exit3", "child process exited with code 3"),
    ],
)
def test_dying_child_gives_a_failed_record_with_a_reason(
    suites: Path, impl: str, words: str
) -> None:
    rec = run(suites, impl)
    check_schema(rec)
    assert rec["status"] == "failed"
    assert rec["reason"].startswith(words), rec["reason"]
    assert "\n" not in rec["reason"]
    assert rec["id"] == case_id(impl)


def test_unknown_case_id_is_a_failed_record(suites: Path) -> None:
    rec = isolate.run_isolated(
        "iso", "w/nope/cpu/float32/n=4", OPTIONS, timeout_s=5.0, suites_folder=suites
    )
    check_schema(rec)
    assert rec["status"] == "failed"
    assert "no case 'w/nope/cpu/float32/n=4' in suite 'iso'" in rec["reason"]
    assert (rec["workload"], rec["impl"], rec["params"]) == ("w", "nope", {"n": "4"})


def test_error_in_the_child_before_the_case_is_a_failed_record(
    suites: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = find_case(
        load_suite("iso", suites), case_id("small"), devices=OPTIONS.devices, quick=OPTIONS.quick
    )
    assert case is not None
    monkeypatch.setenv("ISO_BREAK", "1")  # the child's import of the suite now fails
    rec = isolate.run_isolated(
        "iso", case.id, OPTIONS, timeout_s=30.0, suites_folder=suites, case=case
    )
    check_schema(rec)
    assert rec["status"] == "failed"
    assert rec["reason"].startswith("SuiteError: "), rec["reason"]
    assert "RuntimeError: suite broken on purpose" in rec["reason"]
    assert rec["version"] == case.version
    with pytest.raises(ValueError, match="differs from case_id"):
        isolate.run_isolated("iso", "w/x/cpu/float32/n=4", OPTIONS, timeout_s=1.0, case=case)


def test_ctrl_c_in_the_parent_kills_the_child(
    suites: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    monkeypatch.setenv("ISO_PID_FILE", str(pid_file))
    real = isolate._overdue

    def interrupt_once_started(now, t0, case_t0, *rest):  # type: ignore[no-untyped-def]
        if case_t0 is not None and pid_file.exists() and pid_file.read_text():
            raise KeyboardInterrupt
        return real(now, t0, case_t0, *rest)

    monkeypatch.setattr(isolate, "_overdue", interrupt_once_started)
    with pytest.raises(KeyboardInterrupt):
        run(suites, "hang", timeout_s=60.0)
    assert pid_gone(int(pid_file.read_text()))


# ---------------------------------------------------------------- pure parts


def test_run_options_round_trip() -> None:
    opts = RunOptions(
        quick=True,
        devices=("cpu", "cuda"),
        measure=MeasureOptions(warmup_s=0.0, min_samples=3, timeout_s=2.5),
        seed=7,
        memory=False,
        host_blocking=False,
    )
    assert RunOptions.from_dict(opts.to_dict()) == opts
    assert RunOptions.from_dict(RunOptions().to_dict()) == RunOptions()


def test_run_options_reject_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown keys \\['bogus'\\]"):
        RunOptions.from_dict({**RunOptions().to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="measure: unknown keys"):
        RunOptions.from_dict({"measure": {"nope": 1}})
    with pytest.raises(TypeError, match="mapping"):
        RunOptions.from_dict([])  # type: ignore[arg-type]


def test_peak_source_prefers_the_childs_reset_hwm_then_its_own_maxrss() -> None:
    assert isolate.choose_peak_rss(100, 900, 800, 50) == (100, "child_vmhwm")
    assert isolate.choose_peak_rss(None, 900, 800, 50) == (900, "wait4_maxrss")
    # maxrss no higher than what the child inherited from the parent: not its own figure
    assert isolate.choose_peak_rss(None, 800, 800, 50) == (50, "polled_vmhwm")
    assert isolate.choose_peak_rss(None, 800, None, None) == (None, None)


def test_death_reasons() -> None:
    segv = signal.SIGSEGV.value  # a wait status for "killed by signal n" is n
    kill = signal.SIGKILL.value
    assert isolate.death_reason(segv) == "child process died: signal SIGSEGV"
    oom = isolate.death_reason(kill, peak_rss_bytes=3 * 2**30)
    assert "out of memory" in oom
    assert "3.00 GiB" in oom
    tail = "Traceback (most recent call last):\n  ...\nImportError: no module named x\n"
    assert (
        isolate.death_reason(2 << 8, stderr_tail=tail)
        == "child process exited with code 2: ImportError: no module named x"
    )
    assert isolate.death_reason(1 << 8) == "child process exited with code 1 and left no result"


def test_memory_figures_per_device() -> None:
    cpu, cuda = SimpleNamespace(device="cpu"), SimpleNamespace(device="cuda")
    own = {"peak_bytes": 5 * MIB, "kind": "torch_cuda_allocator"}
    assert isolate._memory(cpu, None, 300 * MIB, 100 * MIB) == {  # type: ignore[arg-type]
        "peak_bytes": 200 * MIB,
        "peak_rss_bytes": 300 * MIB,
        "rss_before_bytes": 100 * MIB,
        "kind": "cpu_child_maxrss",
    }
    on_gpu = isolate._memory(cuda, own, 300 * MIB, 100 * MIB)  # type: ignore[arg-type]
    assert on_gpu == {**own, "host_peak_bytes": 200 * MIB, "peak_rss_bytes": 300 * MIB}
    assert isolate._memory(cuda, None, 300 * MIB, 100 * MIB) is None  # type: ignore[arg-type]


@pytest.mark.gpu
def test_cuda_case_keeps_its_allocator_peak_and_adds_host_rss() -> None:
    from eigenbench.spec import expand

    opts = RunOptions(quick=True, devices=("cuda",), measure=FAST, host_blocking=False)
    root = Path(__file__).resolve().parents[1] / "suites"
    suite = load_suite("eigvalsh_batched", root)
    case = next(c for c in expand(suite, devices=["cuda"], quick=True) if c.impl.name == "torch")
    rec = isolate.run_isolated(
        suite.name, case.id, opts, timeout_s=120.0, suites_folder=root, case=case
    )
    check_schema(rec)
    assert rec["status"] == "ok", rec["reason"]
    mem = rec["memory"]
    assert mem["kind"] == "torch_cuda_allocator"
    assert mem["peak_bytes"] > 0
    assert mem["peak_rss_bytes"] > mem["host_peak_bytes"] >= 0
