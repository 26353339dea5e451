"""CUDA timing and memory on the CPU: the event clock under a fake `torch.cuda`, CuPy peaks."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from eigenbench.measure.clocks import CudaEventClock
from eigenbench.measure.loop import default_min_sample_s


class _Log:
    def __init__(self) -> None:
        self.events: list[str] = []


def _fake_cuda(monkeypatch: pytest.MonkeyPatch, log: _Log) -> None:
    """torch.cuda.Event whose CUDA handle, as in torch, is created at its first record."""

    class FakeEvent:
        def __init__(self, enable_timing: bool = False) -> None:
            self.created = False
            self.t = 0.0

        def record(self, stream: Any = None) -> None:
            if not self.created:
                log.events.append("create")
                self.created = True
            log.events.append("record")
            self.t = float(len(log.events))

        def synchronize(self) -> None:
            log.events.append("sync")

        def elapsed_time(self, end: FakeEvent) -> float:
            return end.t - self.t  # milliseconds

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: log.events.append("sync"))


def test_no_event_is_created_inside_a_timed_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    log = _Log()
    _fake_cuda(monkeypatch, log)
    clock = CudaEventClock(device="cuda:0")
    log.events.clear()
    for number in (1, 3):
        clock.time(lambda: log.events.append("call"), number)
    assert "create" not in log.events
    assert log.events[:4] == ["sync", "record", "call", "record"]


def test_events_are_reused_and_the_time_is_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    log = _Log()
    _fake_cuda(monkeypatch, log)
    clock = CudaEventClock(device="cuda:0")
    seconds = clock.time(lambda: log.events.append("call"), 2)
    assert seconds == pytest.approx(3e-3)  # record, call, call, record: 3 fake ms apart
    assert log.events.count("create") == 2  # both made once, in __init__


def test_cuda_samples_last_at_least_100_microseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the README says; calls shorter than that are repeated within one sample."""
    _fake_cuda(monkeypatch, _Log())
    assert default_min_sample_s(CudaEventClock(device="cuda:0")) == pytest.approx(100e-6)


def test_cupy_peak_ignores_frees_of_blocks_allocated_before_the_probe() -> None:
    """An earlier output freed inside the probed call must not lower the call's own peak."""
    from eigenbench.measure.memory import PeakCounter

    c = PeakCounter()
    c.freed(ptr=0xA0)  # the previous call's output, allocated before counting: 4 MiB
    c.allocated(0xB0, 1 << 20)
    c.allocated(0xC0, 2 << 20)
    assert c.peak == 3 << 20
    c.freed(0xB0)
    c.allocated(0xD0, 1 << 20)
    assert (c.in_use, c.peak) == (3 << 20, 3 << 20)
