"""Peak memory of one call: torch's CUDA allocator, CuPy's pool, or the process's RSS.

Each probe runs the call once more, outside the timed samples, so probing never perturbs
timings. Values are bytes above what was in use before the call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def status_bytes(field: str, path: Path = _STATUS) -> int | None:
    """A `/proc/<pid>/status` figure in bytes (e.g. VmRSS, VmHWM; this process by default)."""
    try:
        match = re.search(rf"^{field}:\s+(\d+)\s*kB", path.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


def cpu_peak_rss(fn: Callable[[], Any]) -> dict[str, Any] | None:
    """Growth of peak RSS during one call (Linux: reset VmHWM via clear_refs, then read it).

    Freed heap pages are first handed back to the OS (glibc `malloc_trim`), so memory the
    call reuses from earlier calls counts again; allocations smaller than a page may still
    hide in the heap, so small figures are lower bounds.
    """
    _trim_heap()
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return None
    before = status_bytes("VmRSS")
    fn()
    peak = status_bytes("VmHWM")
    if before is None or peak is None:
        return None
    return {"peak_bytes": max(0, peak - before), "kind": "cpu_rss_growth"}


def _trim_heap() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: growth figures are then lower bounds
        pass


def torch_cuda_peak(fn: Callable[[], Any]) -> dict[str, Any]:
    """Peak of torch's CUDA allocator during one call, above what was allocated before."""
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return {
        "peak_bytes": int(torch.cuda.max_memory_allocated() - base),
        "kind": "torch_cuda_allocator",
    }


class PeakCounter:
    """Bytes in use and their peak, counting only blocks allocated while counting.

    A block allocated before counting began and freed during it (an earlier output, a
    cached buffer) is not subtracted: the count would go below what the call itself holds
    and the peak would come out low.
    """

    def __init__(self) -> None:
        self.live: dict[int, int] = {}
        self.in_use = 0
        self.peak = 0

    def allocated(self, ptr: int, nbytes: int) -> None:
        self.live[ptr] = nbytes
        self.in_use += nbytes
        self.peak = max(self.peak, self.in_use)

    def freed(self, ptr: int) -> None:
        self.in_use -= self.live.pop(ptr, 0)


class CupyPeakHook:
    """A CuPy memory hook feeding a PeakCounter from the default pool's mallocs and frees."""

    def __init__(self) -> None:
        import cupy

        self.counter = PeakCounter()
        counter = self.counter

        class _Hook(cupy.cuda.memory_hook.MemoryHook):  # type: ignore[misc, name-defined]
            name = "EigenbenchPeakHook"

            def malloc_postprocess(
                self, device_id: int, size: int, mem_size: int, mem_ptr: int, pmem_id: int
            ) -> None:
                counter.allocated(mem_ptr, mem_size)

            def free_postprocess(
                self, device_id: int, mem_size: int, mem_ptr: int, pmem_id: int
            ) -> None:
                counter.freed(mem_ptr)

        self.hook = _Hook()

    @property
    def peak(self) -> int:
        return self.counter.peak


def cupy_pool_peak(fn: Callable[[], Any]) -> dict[str, Any]:
    """Peak bytes CuPy's pool handed out during one call, with torch's allocator peak too."""
    import cupy
    import torch

    probe = CupyPeakHook()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    with probe.hook:
        fn()
        cupy.cuda.get_current_stream().synchronize()
    torch.cuda.synchronize()
    torch_peak = int(torch.cuda.max_memory_allocated() - base)
    return {
        "peak_bytes": int(probe.peak) + torch_peak,
        "kind": "cupy_pool+torch_cuda_allocator",
        "cupy_peak_bytes": int(probe.peak),
        "torch_peak_bytes": torch_peak,
    }


def peak_memory(
    fn: Callable[[], Any], device: str, *, uses_cupy: bool = False
) -> dict[str, Any] | None:
    """The right probe for the device; None where nothing can be measured."""
    if device == "cuda":
        return cupy_pool_peak(fn) if uses_cupy else torch_cuda_peak(fn)
    return cpu_peak_rss(fn)
