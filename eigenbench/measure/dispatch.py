"""What a call ran, under `torch.profiler`: the record's `dispatch` fingerprint (one untimed
call) and the rows of `eigenbench profile` (warm calls).

The calls run inside a `record_function` marker; on CUDA the device is synchronised before
the profile (no earlier kernel leaks in) and after the calls, still inside the profile (every
kernel is seen, CuPy's too: CUPTI sees them all) but outside the marker (that synchronisation
is not the call's). The counting itself is pure: `eigenbench.measure.kernel_names`.

On CUDA, Kineto leaves CUPTI attached after a profile unless `TEARDOWN_CUPTI=1`
(pytorch#144455), which may slow the launches of anything timed later in the process: the
runner therefore profiles CUDA cases only after every case of the run is timed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eigenbench.measure.kernel_names import (
    DEVICE_KINDS,
    MARKER,
    Dispatch,
    EventKind,
    TraceEvent,
    fingerprint,
    group_kernel_name,
    in_call,
    is_op,
)
from eigenbench.units import one_line

_ACTIVITY: dict[str, EventKind] = {
    "cpu_op": "op",
    "cuda_runtime": "runtime",
    "cuda_driver": "runtime",
    "kernel": "kernel",
    "gpu_memcpy": "memcpy",
    "gpu_memset": "memset",
    "user_annotation": "annotation",
}


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """One line of `eigenbench profile`'s table: an op or a kernel group over all calls."""

    kind: str
    """"op" or "kernel" (copies and sets included)."""
    name: str
    count: int
    self_cpu_us: float
    device_us: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "count": self.count,
            "self_cpu_us": round(self.self_cpu_us, 3),
            "device_us": round(self.device_us, 3),
        }


def profile_calls(fn: Callable[[], Any], device: str, calls: int = 1) -> Any:
    """`calls` calls of `fn` under torch's Kineto profiler (CPU, and CUDA activity on CUDA);
    the finished profiler object (`.function_events`, `.export_chrome_trace(path)`).

    `torch.autograd.profiler.profile`, the engine behind `torch.profiler.profile`: the
    latter's first use imports torch._inductor and dynamo (1.5 s idle, 5 s on a loaded
    2-core machine) only to read a CUDA-graph setting, a cost every `--isolate` child paid.
    """
    from torch.autograd.profiler import profile, record_function

    if device == "cuda":
        _synchronize()
    with (
        _without_usdt_lines(),
        profile(use_kineto=True, use_device="cuda" if device == "cuda" else None) as prof,
    ):
        with record_function(MARKER):
            for _ in range(calls):
                fn()
        if device == "cuda":
            _synchronize()
    return prof


@contextlib.contextmanager
def _without_usdt_lines() -> Iterator[None]:
    """Keep the lines Kineto's C++ writes to fd 2 at each profiler start and stop
    (`USDT:… profiler_start`) off the terminal; every other line written meanwhile (the
    call's own warnings) is passed on once the profile ends."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (e.g. a captured stream): leave it be
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [ln for ln in caught.read().splitlines(True) if not ln.startswith(b"USDT:")]
            if kept:
                os.write(2, b"".join(kept))


def _synchronize() -> None:
    import torch

    torch.cuda.synchronize()  # the whole device: CuPy's streams too


def trace_events(events: Iterable[Any]) -> list[TraceEvent]:
    """Profiler `FunctionEvent`s as `TraceEvent`s (parents from `cpu_parent`)."""
    out = []
    for e in events:
        kind = event_kind(e)
        parents = []
        parent = getattr(e, "cpu_parent", None)
        while parent is not None:
            parents.append(str(parent.name))
            parent = getattr(parent, "cpu_parent", None)
        span = e.time_range
        device = kind in DEVICE_KINDS
        out.append(
            TraceEvent(
                name=str(e.name),
                kind=kind,
                start_us=float(span.start),
                end_us=float(span.end),
                parents=tuple(parents),
                self_cpu_us=0.0 if device else float(getattr(e, "self_cpu_time_total", 0) or 0),
                device_us=float(span.end - span.start)
                if device
                else float(getattr(e, "self_device_time_total", 0) or 0),
            )
        )
    return out


def event_kind(e: Any) -> EventKind:
    """The kind of a profiler event: by its activity type, else by device and annotation."""
    activity = getattr(e, "activity_type", None)
    if activity in _ACTIVITY:
        return _ACTIVITY[activity]
    if activity is not None:
        return "other"  # python functions, device-side annotations, …
    if getattr(e, "is_user_annotation", False):
        return "annotation"
    if str(getattr(e, "device_type", "")).endswith("CUDA"):
        return "kernel"
    return "op" if is_op(str(e.name)) else "other"


def probe_dispatch(
    fn: Callable[[], Any],
    device: str,
    *,
    profile: Callable[[Callable[[], Any], str, int], Any] = profile_calls,
) -> tuple[Dispatch | None, str | None]:
    """One profiled call: (its fingerprint, None), or (None, why nothing was recorded).
    A profiler failure is a reason, never an exception."""
    try:
        prof = profile(fn, device, 1)
        events = trace_events(prof.function_events)
    except Exception as exc:  # the measurement stands; only the fingerprint is lost
        return None, f"profiler failed: {one_line(exc, 200)}"
    found = fingerprint(events, device, calls=1)
    if found is None:
        return None, "no torch op and no CUDA kernel recorded (NumPy/SciPy or pure Python code)"
    return found, None


def profile_rows(events: Sequence[TraceEvent], top: int) -> list[ProfileRow]:
    """Ops and kernel groups inside the calls with their counts and self times, the most
    time-consuming `top` first (ties by name)."""
    acc: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for e in in_call(events):
        if e.kind in DEVICE_KINDS:
            key = ("kernel", group_kernel_name(e.name, e.kind))
        elif e.kind == "op" and is_op(e.name):
            key = ("op", e.name)
        else:
            continue
        row = acc[key]
        row[0] += 1
        row[1] += e.self_cpu_us
        row[2] += e.device_us
    rows = [ProfileRow(k, n, int(v[0]), v[1], v[2]) for (k, n), v in acc.items()]
    rows.sort(key=lambda r: (-(r.self_cpu_us + r.device_us), r.kind, r.name))
    return rows[:top]
