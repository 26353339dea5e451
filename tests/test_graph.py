"""`--graph`: capture, replay timing and the record's `graph`, driven on the CPU by a fake
torch.cuda; the real capture runs on a GPU only."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from factories import RUN_ENV
from fakes import FakeClock

from eigenbench.measure.graph import CapturedCall, NotCapturable, capture, graph_record
from eigenbench.measure.loop import MeasureOptions
from eigenbench.results import validate_run
from eigenbench.run.graphtime import time_graph
from eigenbench.run.options import RunOptions
from eigenbench.run.runner import Runner
from eigenbench.spec import Impl, Suite, Workload, expand
from eigenbench.validate import within_tolerance

FAST = MeasureOptions(warmup_s=0.0, min_samples=3, max_samples=5, max_time_s=0.01)


class FakeGraph:
    """Records the calls made while capturing; `replay` makes them again."""

    def __init__(self) -> None:
        self.captured: list[Callable[[], Any]] = []
        self.replays = 0

    def replay(self) -> None:
        self.replays += 1


class FakeCuda:
    """The part of torch.cuda that `capture` uses. `refuse` makes capture fail as a
    synchronising call does on a real GPU."""

    def __init__(self, refuse: str | None = None) -> None:
        self.refuse = refuse
        self.capturing = False
        self.graphs: list[FakeGraph] = []
        self.log: list[str] = []

    def Stream(self) -> Any:
        return _FakeStream()

    def current_stream(self) -> Any:
        return _FakeStream()

    @contextlib.contextmanager
    def stream(self, s: Any) -> Iterator[None]:
        self.log.append("side stream")
        yield

    def synchronize(self) -> None:
        if self.capturing:
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
        self.log.append("sync")

    def CUDAGraph(self) -> FakeGraph:
        g = FakeGraph()
        self.graphs.append(g)
        return g

    @contextlib.contextmanager
    def graph(self, g: FakeGraph) -> Iterator[None]:
        self.capturing = True
        try:
            if self.refuse:
                raise RuntimeError(self.refuse)
            yield
        finally:
            self.capturing = False


class _FakeStream:
    def wait_stream(self, other: Any) -> None:
        pass


class FakeTorch:
    def __init__(self, cuda: FakeCuda) -> None:
        self.cuda = cuda


def test_a_capturable_call_is_warmed_on_a_side_stream_then_captured_once() -> None:
    cuda, calls = FakeCuda(), []
    result = capture(lambda: calls.append(len(calls)) or "out", FakeTorch(cuda))
    assert isinstance(result, CapturedCall) and result.output == "out"
    assert len(calls) == 4  # 3 warm-up calls, then the captured one
    assert cuda.log[0] == "side stream" and len(cuda.graphs) == 1
    result.replay()
    assert cuda.graphs[0].replays == 1 and len(calls) == 4  # a replay does not call fn


def test_a_call_that_synchronises_the_host_is_not_capturable_and_says_why() -> None:
    cuda = FakeCuda()

    def syncs() -> None:
        cuda.synchronize()  # as torch's eigh does (pytorch#188355)

    result = capture(syncs, FakeTorch(cuda))
    assert isinstance(result, NotCapturable)
    assert result.reason.startswith("not capturable: RuntimeError:")
    assert "operation not permitted when stream is capturing" in result.reason
    assert not cuda.capturing


def test_graph_record_keeps_both_times_and_their_difference() -> None:
    rec = graph_record(30e-6, [10e-6, 12e-6, 11e-6], replays=40)
    assert rec["graph_median_s"] == pytest.approx(11e-6)
    assert rec["launch_overhead_s"] == pytest.approx(19e-6)
    assert rec["capturable"] is True and rec["reason"] is None and rec["replays"] == 40
    empty = graph_record(None, [], replays=0)
    assert empty["graph_median_s"] is None and empty["launch_overhead_s"] is None


def _sym(p: dict[str, Any], device: str, dtype: str, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(p["n"], p["n"], generator=g, dtype=torch.float64)
    return a + a.T


def _suite(impl: Impl) -> Suite:
    w = Workload(
        name="eig",
        impls=(impl,),
        make_inputs=_sym,
        reference=lambda x, p, ph: torch.linalg.eigvalsh(x).numpy(),
        validate=within_tolerance("torch float64"),
        grid=[{"n": 4}],
        quick_grid=[{"n": 4}],
    )
    return Suite("s", (w,))


def _graph_run(
    tmp_path: Path, impl: Impl, cuda: FakeCuda, *, graph: bool = True, rounds: int = 1
) -> list[dict[str, Any]]:
    options = RunOptions(
        devices=("cuda", "cpu"),
        measure=FAST,
        memory=False,
        host_blocking=False,
        graph=graph,
        rounds=rounds,
    )
    runner = Runner(
        env=RUN_ENV,
        options=options,
        out_path=tmp_path / "run.json",
        command="test",
        clock_factory=lambda c: FakeClock(1e-3),
        has_cuda=lambda: True,
        clock_watch=lambda: None,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            "eigenbench.run.runner.time_graph", functools.partial(time_graph, torch=FakeTorch(cuda))
        )
        doc = runner.run(expand(_suite(impl), devices=("cuda", "cpu"), quick=False))
    validate_run(doc)
    return list(doc["records"])


BOTH = frozenset({"cpu", "cuda"})


def test_graph_runs_keep_event_and_graph_time_on_cuda_records_only(tmp_path: Path) -> None:
    cuda = FakeCuda()
    records = _graph_run(tmp_path, Impl("torch", torch.linalg.eigvalsh, devices=BOTH), cuda)
    by_device = {r["device"]: r for r in records}
    rec_cuda, rec_cpu = by_device["cuda"], by_device["cpu"]
    g = rec_cuda["graph"]
    assert g["capturable"] is True and g["replays"] == cuda.graphs[0].replays > 0
    assert g["event_median_s"] == rec_cuda["summary"]["median_s"]
    assert g["graph_median_s"] == pytest.approx(1e-3)  # the fake clock's call time
    assert "graph" not in rec_cpu


def test_without_the_flag_nothing_is_captured(tmp_path: Path) -> None:
    cuda = FakeCuda()
    records = _graph_run(
        tmp_path, Impl("torch", torch.linalg.eigvalsh, devices=BOTH), cuda, graph=False
    )
    assert all("graph" not in r for r in records) and cuda.graphs == []


def test_an_uncapturable_call_keeps_its_timing_and_the_reason(tmp_path: Path) -> None:
    cuda = FakeCuda(refuse="CUDA error: operation not permitted when stream is capturing")
    records = _graph_run(tmp_path, Impl("torch", torch.linalg.eigvalsh, devices=BOTH), cuda)
    rec = next(r for r in records if r["device"] == "cuda")
    assert rec["status"] == "ok" and rec["summary"] is not None
    assert rec["graph"]["capturable"] is False
    assert "not permitted when stream is capturing" in rec["graph"]["reason"]
    assert rec["graph"]["graph_median_s"] is None


def test_replays_whose_output_is_wrong_are_not_timed_as_a_graph(tmp_path: Path) -> None:
    """The static output is checked after the replays: a graph that froze a wrong value
    is reported, not timed."""
    cuda = FakeCuda()

    def drifting(a: torch.Tensor) -> torch.Tensor:
        w = torch.linalg.eigvalsh(a)
        return w * 2 if cuda.capturing else w  # right when called, wrong when captured

    records = _graph_run(tmp_path, Impl("drift", drifting, devices=BOTH), cuda)
    rec = next(r for r in records if r["device"] == "cuda")
    assert rec["graph"]["capturable"] is False
    assert rec["graph"]["reason"].startswith("graph replays are wrong:")


@pytest.mark.gpu
def test_real_capture_times_replays_and_refuses_torch_eigh() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    a = torch.randn(64, 64, device="cuda")
    captured = capture(lambda: a @ a, torch)
    assert isinstance(captured, CapturedCall)
    captured.replay()
    torch.cuda.synchronize()
    assert torch.allclose(captured.output, a @ a)
    s = torch.randn(8, 40, 40, device="cuda")
    s = s + s.mT
    refused = capture(lambda: torch.linalg.eigh(s), torch)
    if isinstance(refused, NotCapturable):
        assert refused.reason.startswith("not capturable:")


def test_replays_that_raise_leave_the_case_ok_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: FakeGraph) -> None:
        raise RuntimeError("CUDA error: replay failed")

    monkeypatch.setattr(FakeGraph, "replay", broken)
    records = _graph_run(tmp_path, Impl("torch", torch.linalg.eigvalsh, devices=BOTH), FakeCuda())
    rec = next(r for r in records if r["device"] == "cuda")
    assert rec["status"] == "ok" and rec["summary"] is not None
    assert rec["graph"]["capturable"] is False
    assert rec["graph"]["reason"] == "graph replays failed: RuntimeError: CUDA error: replay failed"


def test_graph_follows_the_pooled_median_of_later_rounds() -> None:
    from eigenbench.run.graphtime import regraph

    g = graph_record(30e-6, [10e-6], replays=5)
    again = regraph(g, 26e-6)
    assert again["event_median_s"] == 26e-6
    assert again["launch_overhead_s"] == pytest.approx(16e-6)
    assert again["graph_median_s"] == 10e-6 and again["replays"] == 5
    refused = regraph({**g, "graph_median_s": None, "capturable": False}, 26e-6)
    assert refused["launch_overhead_s"] is None


def test_with_rounds_the_graph_sits_beside_the_pooled_median(tmp_path: Path) -> None:
    records = _graph_run(
        tmp_path, Impl("torch", torch.linalg.eigvalsh, devices=BOTH), FakeCuda(), rounds=3
    )
    rec = next(r for r in records if r["device"] == "cuda")
    assert rec["rounds"] == 3
    assert rec["graph"]["event_median_s"] == rec["summary"]["median_s"]
