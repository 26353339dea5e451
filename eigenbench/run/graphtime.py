"""`--graph` for one CUDA case: capture its call, time the replays, check their output."""

from __future__ import annotations

from typing import Any

from eigenbench.measure.clocks import Clock
from eigenbench.measure.graph import NotCapturable, capture, graph_record, not_capturable_record
from eigenbench.measure.loop import MeasureOptions, measure
from eigenbench.spec import Case
from eigenbench.units import one_line


def time_graph(
    case: Case,
    fn: Any,
    clock: Clock,
    options: MeasureOptions,
    expected: Any,
    event_median_s: float | None,
    *,
    torch: Any = None,
) -> dict[str, Any]:
    """The record's `graph`: replays sampled as the calls were, their output validated.

    A replay whose output differs from the reference is reported as not capturable (the
    graph froze something the call must redo, e.g. a host-side branch), never timed.
    """
    if torch is None:
        import torch
    captured = capture(fn, torch)
    if isinstance(captured, NotCapturable):
        return not_capturable_record(event_median_s, captured.reason)
    try:
        m = measure(captured.replay, clock, options)
        torch.cuda.synchronize()
        check = case.workload.validate(captured.output, expected, case.param_dict, case.dtype)
    except Exception as exc:  # the event timing stands; only the graph's is lost
        reason = f"graph replays failed: {one_line(exc, 200)}"
        return not_capturable_record(event_median_s, reason)
    if not check.ok:
        detail = check.detail or "result differs from the reference"
        return not_capturable_record(event_median_s, f"graph replays are wrong: {detail}")
    replays = m.warmup_calls + len(m.samples_s) * m.number
    return graph_record(event_median_s, m.samples_s, replays)


def regraph(graph: dict[str, Any], event_median_s: float) -> dict[str, Any]:
    """`graph` beside a new event median (pooled over `--rounds`): the launch overhead too."""
    replay = graph.get("graph_median_s")
    overhead = None if replay is None else event_median_s - replay
    return {**graph, "event_median_s": event_median_s, "launch_overhead_s": overhead}
