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
    """Host wall time by `time.perf_counter_ns` (CPU work is synchronous)."""

    name = "perf_counter"

    def __init__(self) -> None:
        self.resolution_s = time.get_clock_info("perf_counter").resolution

    def now(self) -> float:
        return time.perf_counter()

    def time(self, fn: Callable[[], Any], number: int) -> float:
        counter = time.perf_counter_ns
        if number == 1:
            start = counter()
            fn()
            return (counter() - start) * 1e-9
        loop = range(number)
        start = counter()
        for _ in loop:
            fn()
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
        self._start.record()
        self._end.record()

    def now(self) -> float:
        return time.perf_counter()

    def time(self, fn: Callable[[], Any], number: int) -> float:
        torch = self._torch
        torch.cuda.synchronize(self.device)
        if self.before_sample is not None:
            self.before_sample()
        start, end = self._start, self._end
        start.record()
        for _ in range(number):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e-3


def clock_for(device: str, *, before_sample: Callable[[], Any] | None = None) -> Clock:
    """The right clock for a device name (`cpu` or `cuda`)."""
    if device == "cuda":
        return CudaEventClock(before_sample=before_sample)
    return PerfCounterClock()
