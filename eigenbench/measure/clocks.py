"""Clocks: one protocol that gives both samples (`time`) and budgets (`now`).

The sampler uses nothing else, so a fake clock in the tests drives it exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Measures calls. `time(fn, number)` returns the seconds for `number` synchronised calls."""

    name: str
    resolution_s: float

    def now(self) -> float:
        """Monotonic seconds, for budgets."""
        ...

    def time(self, fn: Callable[[], Any], number: int) -> float:
        """Seconds spent in `number` calls of `fn`, with all device work finished."""
        ...


class PerfCounterClock:
    """Host wall time by `time.perf_counter_ns` (CPU work is synchronous).

    `sync` (e.g. `torch.cuda.synchronize`) fences each sample on both sides, for code that may
    queue GPU work without saying so (a closure over CUDA tensors).
    """

    name = "perf_counter"
    min_sample_s = 1e-3
    """Shortest sample: far above the timer's resolution and a call's overhead."""

    def __init__(self, sync: Callable[[], Any] | None = None) -> None:
        self.resolution_s = time.get_clock_info("perf_counter").resolution
        self.sync = sync

    def now(self) -> float:
        return time.perf_counter()

    def time(self, fn: Callable[[], Any], number: int) -> float:
        counter, sync = time.perf_counter_ns, self.sync
        if sync is not None:
            sync()
        loop = range(number)
        start = counter()
        for _ in loop:
            fn()
        if sync is not None:
            sync()
        return (counter() - start) * 1e-9


class CudaEventClock:
    """Device time by CUDA events: sync → start event → calls → end event → end.synchronize().

    `before_sample` (e.g. an L2 flush) runs on the stream before the start event, so it is
    not timed but the timed calls find a cold cache. The two events are made (and recorded
    once, which is when torch creates their CUDA handles) here, so no event is created
    inside a timed sample.
    """

    name = "cuda_event"
    resolution_s = 0.5e-6  # cudaEventElapsedTime resolution (CUDA runtime docs)
    min_sample_s = 100e-6
    """Shortest sample: 200× the event resolution; shorter calls are repeated within one."""

    def __init__(self, device: Any = None, before_sample: Callable[[], Any] | None = None) -> None:
        import torch

        self._torch = torch
        self.device = torch.device("cuda" if device is None else device)
        self.before_sample = before_sample
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)
        stream = torch.cuda.current_stream(self.device)
        self._start.record(stream)
        self._end.record(stream)

    def now(self) -> float:
        return time.perf_counter()

    def time(self, fn: Callable[[], Any], number: int) -> float:
        torch = self._torch
        torch.cuda.synchronize(self.device)
        if self.before_sample is not None:
            self.before_sample()
        start, end = self._start, self._end
        stream = torch.cuda.current_stream(self.device)  # the clock's device, not the current one
        start.record(stream)
        for _ in range(number):
            fn()
        end.record(stream)
        end.synchronize()
        return start.elapsed_time(end) * 1e-3


def clock_for(device: str, *, before_sample: Callable[[], Any] | None = None) -> Clock:
    """The right clock for a device name (`cpu` or `cuda`)."""
    if device == "cuda":
        return CudaEventClock(before_sample=before_sample)
    return PerfCounterClock()


MIN_SAMPLE_S = {"cpu": PerfCounterClock.min_sample_s, "cuda": CudaEventClock.min_sample_s}
"""Shortest sample of each device's clock (calls are repeated within a sample to reach it)."""
