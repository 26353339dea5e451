"""CUDA-graph timing (`--graph`): capture one call, time its replays beside the event time.

A replay launches the captured kernels with one host call, so event time minus graph time is
what launching the call's kernels one by one costs. Calls that synchronise the host, allocate
outside the graph's pool or branch on device values cannot be captured (torch's `eigh` among
them, pytorch#188355): the record then keeps the reason instead of a number.

`capture` acts on torch (passed in, so a fake drives it on the CPU); `graph_record` is the pure
step that turns the two timings into the record's `graph` entry.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eigenbench.units import one_line

WARMUP_CALLS = 3
"""Calls on a side stream before capture: lazy initialisation (cuBLAS/cuSOLVER handles,
workspaces) must not happen inside the capture."""


@dataclass(frozen=True, slots=True)
class CapturedCall:
    """A call captured in a CUDA graph: `replay` runs it again; `output` is its static output
    (overwritten by every replay)."""

    replay: Callable[[], Any]
    output: Any


@dataclass(frozen=True, slots=True)
class NotCapturable:
    """Why the call could not be captured (one line)."""

    reason: str


def capture(fn: Callable[[], Any], torch: Any) -> CapturedCall | NotCapturable:
    """Warm `fn` up on a side stream, then capture one call of it in a CUDA graph."""
    cuda = torch.cuda
    try:
        side = cuda.Stream()
        side.wait_stream(cuda.current_stream())
        with cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                fn()
        cuda.current_stream().wait_stream(side)
        cuda.synchronize()
        graph = cuda.CUDAGraph()
        with cuda.graph(graph):
            output = fn()
    except Exception as exc:  # the capture's own error says why, e.g. a host sync
        _settle(cuda)
        return NotCapturable(f"not capturable: {one_line(exc, 200)}")
    cuda.synchronize()
    return CapturedCall(replay=graph.replay, output=output)


def graph_record(
    event_median_s: float | None,
    graph_samples_s: tuple[float, ...] | list[float],
    replays: int,
) -> dict[str, Any]:
    """The record's `graph`: replay median beside the event median, their difference."""
    graph_median = statistics.median(graph_samples_s) if graph_samples_s else None
    overhead = (
        None if graph_median is None or event_median_s is None else event_median_s - graph_median
    )
    return {
        "capturable": True,
        "reason": None,
        "graph_median_s": graph_median,
        "event_median_s": event_median_s,
        "launch_overhead_s": overhead,
        "replays": replays,
    }


def not_capturable_record(event_median_s: float | None, reason: str) -> dict[str, Any]:
    """The record's `graph` when there is no graph time: why, and the event time alone."""
    return {
        "capturable": False,
        "reason": reason,
        "graph_median_s": None,
        "event_median_s": event_median_s,
        "launch_overhead_s": None,
        "replays": 0,
    }


def _settle(cuda: Any) -> None:
    """After a failed capture: let the device finish what it can (best effort)."""
    with contextlib.suppress(Exception):
        cuda.synchronize()
