"""Does a CUDA call return to Python only after its GPU work (and all queued work) is done?

Method: queue a sleep kernel of known length on the current stream, then make the call and
note when it returns. A call that blocks the host returns only after the sleep kernel has
finished (the stream is in order); a non-blocking call returns while it is still running.
torch's sync-debug mode ("warn") is run around the same call and its warnings are kept as
further evidence (it sees torch's own synchronisations, not CuPy's).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

_CYCLES_PER_S: dict[int, float] = {}


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


def detect_host_blocking(fn: Callable[[], Any], *, guard_s: float = 0.05) -> dict[str, Any]:
    """Run `fn` once behind a `guard_s` sleep kernel and report whether it blocked the host.

    Call it after warm-up: a first call that compiles kernels for longer than `guard_s`
    would look blocking.
    """
    import torch

    torch.cuda.synchronize()
    gpu_sleep(guard_s)
    marker = torch.cuda.Event()
    marker.record()
    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            t0 = time.perf_counter()
            fn()
            host_s = time.perf_counter() - t0
            done = marker.query()
        finally:
            torch.cuda.set_sync_debug_mode(previous)
    torch.cuda.synchronize()
    sync_warnings = sorted(
        {str(w.message).splitlines()[0] for w in caught if "synchroniz" in str(w.message).lower()}
    )
    return {
        "host_blocking": bool(done),
        "evidence": {
            "guard_kernel_s": guard_s,
            "host_return_s": host_s,
            "queued_work_done_at_return": bool(done),
            "torch_sync_warnings": sync_warnings[:5],
        },
    }
