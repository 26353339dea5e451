"""The runner: validation before timing, skips with reasons, failure isolation, saving."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from factories import RUN_ENV
from fakes import FakeClock

from eigenbench.measure.loop import MeasureOptions
from eigenbench.results import load_run
from eigenbench.run.options import RunOptions
from eigenbench.run.runner import Runner, dominates
from eigenbench.spec import Impl, Suite, Workload, expand
from eigenbench.suites import load_suite
from eigenbench.validate import within_tolerance

ENV = RUN_ENV
FAST = MeasureOptions(warmup_s=0.0, min_samples=10, max_time_s=0.05)


def make_sym(params: Any, device: str, dtype: str, seed: int) -> torch.Tensor:
    g = torch.randn(
        2,
        int(params["n"]),
        int(params["n"]),
        generator=torch.Generator().manual_seed(seed),
        dtype=torch.float64,
    )
    return (g + g.mT).to(getattr(torch, dtype))


def wrong_eigvalsh(a: torch.Tensor) -> torch.Tensor:
    return torch.linalg.eigvalsh(a) * 1.01


def raises(a: torch.Tensor) -> torch.Tensor:
    raise RuntimeError("solver exploded\nsecond line")


def out_of_memory(a: torch.Tensor) -> torch.Tensor:
    if a.shape[-1] >= 8:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
    return torch.linalg.eigvalsh(a)


def workload(*impls: Impl, grid: Any = None) -> Workload:
    return Workload(
        name="eig",
        impls=impls,
        make_inputs=make_sym,
        reference=lambda x, p, ph: np.linalg.eigvalsh(x.double().numpy()),
        validate=within_tolerance("numpy float64"),
        grid=grid or [{"n": 4}, {"n": 8}, {"n": 16}],
        quick_grid=[{"n": 4}],
    )


def run(
    suite: Suite,
    tmp_path: Path,
    *,
    quick: bool = False,
    clock: Any = None,
    devices: tuple[str, ...] = ("cpu", "cuda"),
    opts: MeasureOptions = FAST,
    has_cuda: bool = False,
) -> dict[str, Any]:
    runner = Runner(
        env=ENV,
        options=RunOptions(quick=quick, devices=devices, measure=opts),
        out_path=tmp_path / "run.json",
        command="test",
        clock_factory=(lambda c: clock)
        if clock
        else __import__("eigenbench.run.runner", fromlist=["default_clock"]).default_clock,
        has_cuda=lambda: has_cuda,
    )
    return runner.run(expand(suite, devices=devices, quick=quick))


def by_impl(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in doc["records"]:
        out.setdefault(r["impl"], []).append(r)
    return out


def test_wrong_implementation_is_recorded_invalid_and_still_timed(tmp_path: Path) -> None:
    suite = Suite(
        "s", (workload(Impl("torch", torch.linalg.eigvalsh), Impl("wrong", wrong_eigvalsh)),)
    )
    doc = run(suite, tmp_path, quick=True, devices=("cpu",))
    recs = by_impl(doc)
    assert recs["torch"][0]["status"] == "ok"
    wrong = recs["wrong"][0]
    assert wrong["status"] == "invalid"
    assert wrong["validation"]["ok"] is False
    assert wrong["validation"]["max_rel_err"] > 1e-3
    assert len(wrong["samples_s"]) >= 10 and wrong["summary"]["median_s"] > 0


def test_cuda_and_cupy_cases_are_skipped_with_reasons_on_a_cpu_machine(tmp_path: Path) -> None:
    suite = load_suite("eigvalsh_batched")
    doc = run(suite, tmp_path, quick=True, clock=FakeClock(1e-3))
    skipped = [r for r in doc["records"] if r["status"] == "skipped"]
    assert {r["impl"] for r in skipped} == {"torch", "cupy"}
    assert all(r["device"] == "cuda" for r in skipped)
    assert all(r["reason"] == "no CUDA GPU on this machine" for r in skipped)


def test_missing_module_skips_with_reason(tmp_path: Path) -> None:
    impl = Impl("ghost", torch.linalg.eigvalsh, requires=("no_such_module_xyz",))
    doc = run(Suite("s", (workload(impl),)), tmp_path, quick=True, devices=("cpu",))
    assert doc["records"][0]["status"] == "skipped"
    assert doc["records"][0]["reason"] == "no_such_module_xyz is not installed"


def test_raising_impl_is_failed_with_one_line_and_the_run_goes_on(tmp_path: Path) -> None:
    suite = Suite("s", (workload(Impl("boom", raises), Impl("torch", torch.linalg.eigvalsh)),))
    doc = run(suite, tmp_path, devices=("cpu",), clock=FakeClock(1e-3))
    recs = by_impl(doc)
    assert [r["status"] for r in recs["boom"]] == ["failed"] * 3
    assert recs["boom"][0]["reason"] == "RuntimeError: solver exploded"
    assert [r["status"] for r in recs["torch"]] == ["ok"] * 3


def test_out_of_memory_skips_the_larger_sizes(tmp_path: Path) -> None:
    suite = Suite("s", (workload(Impl("oom", out_of_memory)),))
    doc = run(suite, tmp_path, devices=("cpu",), clock=FakeClock(1e-3))
    statuses = [(r["params"]["n"], r["status"], r["reason"]) for r in doc["records"]]
    assert statuses[0][1] == "ok"
    assert statuses[1][1:] == ("failed", "out of memory")
    assert statuses[2][1] == "skipped" and "ran out of memory" in statuses[2][2]


def test_timeout_records_and_skips_larger_sizes(tmp_path: Path) -> None:
    suite = Suite("s", (workload(Impl("slow", torch.linalg.eigvalsh)),))
    opts = MeasureOptions(warmup_s=0.0, timeout_s=5.0)
    doc = run(suite, tmp_path, devices=("cpu",), clock=FakeClock(1.0), opts=opts)
    assert doc["records"][0]["status"] == "timeout"
    assert [r["status"] for r in doc["records"][1:]] == ["skipped", "skipped"]


def test_records_carry_the_contract_and_the_file_is_saved(tmp_path: Path) -> None:
    suite = Suite("s", (workload(Impl("torch", torch.linalg.eigvalsh)),))
    doc = run(suite, tmp_path, quick=True, devices=("cpu",))
    saved = load_run(tmp_path / "run.json")
    assert saved["status"] == "complete" and saved["finished"]
    rec = saved["records"][0]
    assert rec == doc["records"][0]
    assert rec["timer"] == "perf_counter"
    assert rec["first_call_s"] > 0
    assert rec["stop_reason"] in ("ci_target", "max_time", "max_samples")
    assert (
        rec["summary"]["ci95_low_s"] <= rec["summary"]["median_s"] <= rec["summary"]["ci95_high_s"]
    )
    assert rec["memory"]["kind"] == "cpu_rss_growth"
    assert rec["host_blocking"] is None


def test_interrupt_keeps_finished_cases_and_marks_the_current_one(tmp_path: Path) -> None:
    calls = {"n": 0}

    def interrupts_on_third_size(a: torch.Tensor) -> torch.Tensor:
        if a.shape[-1] == 16:  # a real Ctrl-C (an impl's own KeyboardInterrupt is contained)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        calls["n"] += 1
        return torch.linalg.eigvalsh(a)

    suite = Suite("s", (workload(Impl("t", interrupts_on_third_size)),))
    with pytest.raises(KeyboardInterrupt):
        run(suite, tmp_path, devices=("cpu",), clock=FakeClock(1e-3))
    saved = load_run(tmp_path / "run.json")
    assert saved["status"] == "interrupted"
    assert [r["status"] for r in saved["records"]] == ["ok", "ok", "interrupted"]


def test_dominates_compares_numeric_params_componentwise() -> None:
    assert dominates({"batch": 10, "n": 32}, {"batch": 10, "n": 16})
    assert not dominates({"batch": 1, "n": 64}, {"batch": 10, "n": 16})
    assert not dominates({"n": 64, "family": "ties"}, {"n": 16, "family": "continuous"})


def _rounds_run(
    tmp_path: Path, suite: Suite, rounds: int, clock: Any, on_record: Any = None
) -> dict[str, Any]:
    runner = Runner(
        on_record=on_record,
        env=ENV,
        options=RunOptions(devices=("cpu",), measure=FAST, rounds=rounds),
        out_path=tmp_path / "run.json",
        command="test",
        clock_factory=lambda c: clock,
    )
    return runner.run(expand(suite, devices=("cpu",), quick=False))


def test_rounds_pool_samples_in_alternating_order(tmp_path: Path) -> None:
    order: list[int] = []

    def logs_size(a: torch.Tensor) -> torch.Tensor:
        order.append(a.shape[-1])
        return torch.linalg.eigvalsh(a)

    suite = Suite("s", (workload(Impl("t", logs_size), Impl("bad", raises)),))
    one = _rounds_run(tmp_path, suite, 1, FakeClock(1e-3))
    order.clear()
    doc = _rounds_run(tmp_path, suite, 3, FakeClock(1e-3))
    firsts = [n for i, n in enumerate(order) if i == 0 or order[i - 1] != n]
    assert firsts == [4, 8, 16, 8, 4, 8, 16]  # forward, backward (16 twice), forward (4 twice)
    ok = [r for r in doc["records"] if r["status"] == "ok"]
    assert len(ok) == 3
    for rec, single in zip(ok, one["records"], strict=False):
        assert rec["rounds"] == 3 and len(rec["round_medians_s"]) == 3
        assert rec["summary"]["n"] == len(rec["samples_s"])
        # each round takes a third of the budget: about as many samples as one round did
        assert len(rec["samples_s"]) >= single["summary"]["n"]
        assert rec["summary"]["median_s"] == pytest.approx(1e-3)
    failed = [r for r in doc["records"] if r["status"] == "failed"]
    assert failed and all("rounds" not in r for r in failed)  # never sampled again
    assert load_run(tmp_path / "run.json")["records"] == doc["records"]


def test_a_round_that_raises_keeps_the_earlier_rounds(tmp_path: Path) -> None:
    state = {"round_one_done": False}

    def fails_later(a: torch.Tensor) -> torch.Tensor:
        if state["round_one_done"]:
            raise RuntimeError("flaky")
        return torch.linalg.eigvalsh(a)

    def after_round_one(record: Any, index: int, total: int) -> None:
        state["round_one_done"] = True

    suite = Suite("s", (workload(Impl("t", fails_later), grid=[{"n": 4}]),))
    doc = _rounds_run(tmp_path, suite, 2, FakeClock(1e-3), after_round_one)
    rec = doc["records"][0]
    assert rec["status"] == "ok" and rec["samples_s"] and "rounds" not in rec
    assert rec["warnings"] == ["round 2: RuntimeError: flaky"]


def test_rounds_options_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RunOptions(rounds=0)
    with pytest.raises(ValueError, match="isolate"):
        RunOptions(rounds=2, isolate=True)


def _counted(calls: dict[str, int], fail: BaseException | None = None) -> Any:
    def impl(a: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if fail is not None:
            raise fail
        return torch.linalg.eigvalsh(a)

    return impl


def test_a_case_past_its_timeout_is_called_no_more(tmp_path: Path) -> None:
    """--timeout 0.5 and a 0.4 s call: the cold call, one warm call, then no probes."""
    calls = {"n": 0}
    suite = Suite("s", (workload(Impl("slow", _counted(calls)), grid=[{"n": 4}, {"n": 8}]),))
    opts = MeasureOptions(warmup_s=0.0, min_samples=10, max_time_s=5.0, timeout_s=0.5)
    doc = run(suite, tmp_path, devices=("cpu",), clock=FakeClock(0.4), opts=opts)
    timed_out, bigger = doc["records"]
    assert timed_out["status"] == "timeout"
    assert calls["n"] <= 2
    assert timed_out["memory"] is None
    assert any("not probed" in w for w in timed_out["warnings"])
    assert bigger["status"] == "skipped"  # the bigger size of that impl is not tried


def test_a_first_call_past_the_timeout_ends_the_case_at_once(tmp_path: Path) -> None:
    calls = {"n": 0}
    suite = Suite("s", (workload(Impl("slow", _counted(calls)), grid=[{"n": 4}]),))
    opts = MeasureOptions(warmup_s=0.0, timeout_s=0.5)
    doc = run(suite, tmp_path, devices=("cpu",), clock=FakeClock(0.6), opts=opts)
    (rec,) = doc["records"]
    assert rec["status"] == "timeout" and calls["n"] == 1
    assert rec["summary"] is None and rec["first_call_s"] == pytest.approx(0.6)
    assert load_run(tmp_path / "run.json")["records"] == [rec]  # still a valid run file


def _cuda_run(tmp_path: Path, suite: Suite, **runner_kw: Any) -> tuple[Runner, dict[str, Any]]:
    """A run of CUDA and CPU cases on this CPU machine: the workload ignores the device."""
    runner_kw.setdefault("clock_watch", lambda: None)
    runner = Runner(
        env=ENV,
        options=RunOptions(
            devices=("cuda", "cpu"), measure=FAST, memory=False, host_blocking=False
        ),
        out_path=tmp_path / "run.json",
        command="test",
        clock_factory=lambda c: FakeClock(1e-3),
        has_cuda=lambda: True,
        **runner_kw,
    )
    return runner, runner.run(expand(suite, devices=("cuda", "cpu"), quick=False))


BOTH = frozenset({"cpu", "cuda"})


def test_a_sticky_cuda_error_stops_the_cuda_cases_and_keeps_the_cpu_ones(tmp_path: Path) -> None:
    calls = {"n": 0}
    error = RuntimeError("CUDA error: an illegal memory access was encountered")
    crash = Impl("crash", _counted(calls, error), devices=BOTH)
    fine = Impl("fine", torch.linalg.eigvalsh, devices=BOTH)
    runner, doc = _cuda_run(tmp_path, Suite("s", (workload(crash, fine, grid=[{"n": 4}]),)))
    by_id = {(r["impl"], r["device"]): r for r in doc["records"]}
    assert by_id[("crash", "cuda")]["status"] == "failed"
    later = by_id[("fine", "cuda")]
    assert later["status"] == "skipped" and "CUDA context lost, detected after" in later["reason"]
    assert by_id[("fine", "cpu")]["status"] == "ok"
    assert by_id[("crash", "cpu")]["status"] == "failed"  # the CPU case ran (and raised)
    assert runner.cuda_lost is not None
    assert load_run(tmp_path / "run.json")["cuda_lost"]["after"] == by_id[("crash", "cuda")]["id"]


def test_an_ordinary_cuda_error_does_not_stop_the_cuda_cases(tmp_path: Path) -> None:
    crash = Impl("crash", raises, devices=BOTH)
    fine = Impl("fine", torch.linalg.eigvalsh, devices=BOTH)
    runner, doc = _cuda_run(tmp_path, Suite("s", (workload(crash, fine, grid=[{"n": 4}]),)))
    assert runner.cuda_lost is None and "cuda_lost" not in doc
    assert {r["status"] for r in doc["records"] if r["impl"] == "fine"} == {"ok"}


def test_memory_is_released_after_the_failure_not_inside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache is emptied once the traceback (and the tensors it pins) is gone."""
    import gc
    import weakref

    import eigenbench.run.runner as runner_mod

    pinned: list[Any] = []
    seen: list[bool] = []

    def oom(a: torch.Tensor) -> torch.Tensor:
        big = torch.ones(8)
        pinned.append(weakref.ref(big))
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")

    def release(device: str) -> None:
        gc.collect()
        seen.append(pinned[-1]() is None)

    monkeypatch.setattr(runner_mod, "release_device_memory", release)
    _, doc = _cuda_run(tmp_path, Suite("s", (workload(Impl("oom", oom, devices=BOTH)),)))
    assert [r["reason"] for r in doc["records"]][:1] == ["out of memory"]
    assert seen and all(seen)


@pytest.mark.parametrize(
    "message",
    [
        "CUDA out of memory. Tried to allocate 2.00 GiB",
        "cusolver error: CUSOLVER_STATUS_ALLOC_FAILED, when calling `cusolverDnCreate(handle)`",
        "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory",
    ],
)
def test_allocation_failures_count_as_out_of_memory(message: str) -> None:
    from eigenbench.run.records import is_out_of_memory

    assert is_out_of_memory(RuntimeError(message))
    assert not is_out_of_memory(RuntimeError("solver did not converge"))


def test_gpu_clocks_are_read_during_the_sampling_of_cuda_cases(tmp_path: Path) -> None:
    from eigenbench.measure.gpuclocks import ClockWatch, Reading

    polls: list[int] = []

    def read() -> Reading:
        polls.append(1)
        return Reading(1980.0 if len(polls) < 3 else 1200.0, 2619.0, 0x8, 60.0, 300.0)

    fine = Impl("fine", torch.linalg.eigvalsh, devices=BOTH)
    _, doc = _cuda_run(
        tmp_path,
        Suite("s", (workload(fine, grid=[{"n": 4}]),)),
        clock_watch=lambda: ClockWatch(read, max_sm_mhz=1980.0, interval_s=1.0),
    )
    cuda, cpu = doc["records"]
    clocks = cuda["gpu_clocks"]
    assert clocks["tool"] == "nvml" and clocks["readings"] == len(polls) >= 2
    assert clocks["reasons"] == ["hw_slowdown"]
    assert any("hw_slowdown" in w for w in cuda["warnings"])
    assert "gpu_clocks" not in cpu


def test_an_impl_that_turns_wrong_while_timed_is_invalid(tmp_path: Path) -> None:
    """Right for its first three calls, wrong after (as pytorch#192483 reports for eigh)."""
    calls = {"n": 0}

    def turns_wrong(a: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        w = torch.linalg.eigvalsh(a)
        return w if calls["n"] <= 3 else w * 1.5

    suite = Suite("s", (workload(Impl("flaky", turns_wrong), grid=[{"n": 4}]),))
    (rec,) = run(suite, tmp_path, devices=("cpu",), clock=FakeClock(1e-3))["records"]
    assert rec["status"] == "invalid"
    # the check is the call after the timed ones; the memory and dispatch probes' come after
    assert rec["reason"].startswith(f"wrong after {calls['n'] - 2} calls:")
    steady = Suite("s", (workload(Impl("torch", torch.linalg.eigvalsh), grid=[{"n": 4}]),))
    (ok,) = run(steady, tmp_path, devices=("cpu",), clock=FakeClock(1e-3))["records"]
    assert ok["status"] == "ok"


def test_a_resume_finishes_the_rounds_and_fingerprints_an_interrupt_cut_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted after its last case was timed (in rounds 2..R, or in the deferred CUDA
    fingerprints), a run kept round-1 records; `--resume` called it complete as they were."""
    both = frozenset({"cpu", "cuda"})
    suite = Suite("s", (workload(Impl("torch", torch.linalg.eigvalsh, devices=both)),))
    cases = list(expand(suite, devices=("cuda", "cpu"), quick=True))
    probed: list[str] = []

    def probe(fn: Any, device: str) -> tuple[Any, str | None]:
        probed.append(device)
        return None, "fake"

    monkeypatch.setattr("eigenbench.run.runner.probe_dispatch", probe)

    def runner(rounds: int) -> Runner:
        options = RunOptions(devices=("cuda", "cpu"), measure=FAST, rounds=rounds, memory=False)
        return Runner(
            env=ENV,
            options=dataclasses.replace(options, host_blocking=False),
            out_path=tmp_path / "run.json",
            command="test",
            clock_factory=lambda c: FakeClock(1e-3),
            has_cuda=lambda: True,
            clock_watch=lambda: None,
        )

    cut = runner(1).run(cases)  # the state an interrupt leaves after round 1
    for record in cut["records"]:
        if record["device"] == "cuda":  # its fingerprint was to come after every case
            del record["dispatch"], record["dispatch_reason"]
    probed.clear()
    again = runner(3)
    again.resume(cut)
    doc = again.run(cases)
    assert [r["rounds"] for r in doc["records"]] == [3, 3]
    assert all(r["dispatch_reason"] == "fake" for r in doc["records"])
    assert probed == ["cuda"]  # the CPU case's fingerprint is taken with the case itself
