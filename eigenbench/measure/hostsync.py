"""Does a CUDA call return to Python only after its GPU work (and all queued work) is done?

Method: queue a sleep kernel of known length (the guard) on the current stream, then make the
call and note whether the guard had finished when the call returned. The stream is in order,
so a call that blocks the host returns only after the guard; a call that does not returns
while it still runs — provided the guard outlasts the call's own time on the host. A call
that takes long to *launch* (thousands of kernels, a per-matrix solver loop) would otherwise
outlast a short guard and look blocking, so the guard is sized from the call's measured
time: at least twice it, plus a margin. (A call's event-timed duration bounds its host launch
time: the GPU cannot finish work before the host has queued it.) torch's sync-debug mode
("warn") runs around the same call and its warnings are kept as further evidence (it sees
torch's own synchronisations, not CuPy's).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Protocol

_CYCLES_PER_S: dict[int, float] = {}
GUARD_MARGIN_S = 0.05


def sleep_cycles_per_second() -> float:
    """Calibrate `torch.cuda._sleep`: clock cycles the spin kernel counts per second."""
    import torch

    dev = torch.cuda.current_device()
    if dev not in _CYCLES_PER_S:
        cycles = 10_000_000
        torch.cuda._sleep(cycles)  # warm the kernel up
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        best = float("inf")
        for _ in range(3):
            start.record()
            torch.cuda._sleep(cycles)
            end.record()
            end.synchronize()
            best = min(best, start.elapsed_time(end) * 1e-3)
        _CYCLES_PER_S[dev] = cycles / best
    return _CYCLES_PER_S[dev]


def gpu_sleep(seconds: float) -> None:
    """Queue a kernel that keeps the GPU busy for about `seconds` (does not block the host)."""
    import torch

    torch.cuda._sleep(max(1, int(seconds * sleep_cycles_per_second())))


class Marker(Protocol):
    def query(self) -> bool:
        """Whether all work queued before the marker has finished."""
        ...


class Gpu(Protocol):
    """What the probe needs of the device; `TorchGpu` is the real one, tests pass a fake."""

    def synchronize(self) -> None: ...

    def sleep(self, seconds: float) -> None: ...

    def marker(self) -> Marker: ...

    def sync_warnings(self) -> contextlib.AbstractContextManager[list[str]]: ...


class TorchGpu:
    """The current CUDA device and stream, through torch."""

    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize()

    def sleep(self, seconds: float) -> None:
        gpu_sleep(seconds)

    def marker(self) -> Marker:
        import torch

        event = torch.cuda.Event()
        event.record()
        return event

    @contextlib.contextmanager
    def sync_warnings(self) -> Iterator[list[str]]:
        """torch's sync-debug warnings raised inside, first lines, deduplicated."""
        import torch

        found: list[str] = []
        previous = torch.cuda.get_sync_debug_mode()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                yield found
            finally:
                torch.cuda.set_sync_debug_mode(previous)
        messages = {str(w.message).splitlines()[0] for w in caught}
        found.extend(sorted(m for m in messages if "synchroniz" in m.lower()))


def guard_seconds(call_s: float, margin_s: float = GUARD_MARGIN_S) -> float:
    """A guard that outlasts the call's host time: twice its measured time, plus a margin."""
    return margin_s + 2.0 * max(0.0, call_s)


def detect_host_blocking(
    fn: Callable[[], Any],
    *,
    call_s: float | None = None,
    margin_s: float = GUARD_MARGIN_S,
    gpu: Gpu | None = None,
    now: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Run `fn` once behind a guard kernel and report whether it blocked the host.

    `call_s` is the call's measured (event-timed) duration; without it one unguarded call
    measures its host time first. Call after warm-up: a first call that compiles kernels
    would look slow.
    """
    gpu = gpu or TorchGpu()
    if call_s is None:
        gpu.synchronize()
        t0 = now()
        fn()
        call_s = now() - t0
    guard_s = guard_seconds(call_s, margin_s)
    gpu.synchronize()
    gpu.sleep(guard_s)
    marker = gpu.marker()
    with gpu.sync_warnings() as sync_warnings:
        t0 = now()
        fn()
        host_s = now() - t0
        done = marker.query()
    gpu.synchronize()
    return {
        "host_blocking": bool(done),
        "evidence": {
            "guard_kernel_s": guard_s,
            "call_s": call_s,
            "host_return_s": host_s,
            "queued_work_done_at_return": bool(done),
            "torch_sync_warnings": sync_warnings[:5],
        },
    }
