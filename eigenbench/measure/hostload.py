"""How busy the rest of the machine was while a case ran: load average and others' CPU time.

On a shared machine a neighbour's burst of work can make a case look 2× slower, or 500×
(seen: eigh_backward v3 `fwd` 282 ms in one run, 0.49 ms in the next). A timing taken under
such contention is not a fact about the code, so every record carries `host_load`: the
1-minute load average at the start and end of the case and the CPU time that *other*
processes took meanwhile (all CPU time in `/proc/stat` minus this process's own), as an
average number of busy cores. `under_load` is set when others kept at least
`UNDER_LOAD_CORES` busy on average; `compare` then calls the case `inconclusive`.

Linux only (`/proc`); elsewhere `host_load` is None. `load_between` is pure.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNDER_LOAD_CORES = 0.5
"""Other processes busy on half a core or more, on average over the case: contention."""
MIN_WINDOW_S = 0.2
"""/proc/stat counts in ticks per core: shorter cases are recorded, never judged (and the
window grows with the cores, whose rounding adds up: see `min_window_s`)."""


def min_window_s(cores: int, tick_s: float = 0.01) -> float:
    """The shortest case whose others' CPU is judged: long enough that the ticks' rounding
    (about one tick per core over the window) stays under a quarter of the threshold
    (0.2 s on 2 cores, 1.3 s on 16)."""
    return max(MIN_WINDOW_S, cores * tick_s / (0.25 * UNDER_LOAD_CORES))


_BUSY_FIELDS = (0, 1, 2, 5, 6)  # user nice system irq softirq: processes, not steal or idle


@dataclass(frozen=True, slots=True)
class LoadSnapshot:
    """What `/proc` and this process's clocks said at one moment."""

    wall_s: float
    loadavg_1m: float
    busy_s: float
    """CPU seconds spent by every process so far (all cores), from /proc/stat."""
    own_s: float
    """CPU seconds spent by this process (and its waited-for children) so far."""


def parse_loadavg(text: str) -> float:
    """The 1-minute load average from /proc/loadavg."""
    return float(text.split()[0])


def parse_busy_s(text: str, ticks_per_s: float) -> float:
    """Busy CPU seconds of all cores from the `cpu` line of /proc/stat."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            fields = [int(v) for v in line.split()[1:]]
            return sum(fields[i] for i in _BUSY_FIELDS if i < len(fields)) / ticks_per_s
    raise ValueError("/proc/stat has no aggregate cpu line")


def snapshot(
    proc: Path = Path("/proc"), clock: Callable[[], float] = time.perf_counter
) -> LoadSnapshot | None:
    """The machine's load now, or None where /proc cannot be read."""
    try:
        ticks = float(os.sysconf("SC_CLK_TCK"))
        load = parse_loadavg((proc / "loadavg").read_text())
        busy = parse_busy_s((proc / "stat").read_text(), ticks)
    except (OSError, ValueError):
        return None
    usages = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    own = sum(r.ru_utime + r.ru_stime for r in usages)
    return LoadSnapshot(clock(), load, busy, own)


def load_between(start: LoadSnapshot | None, end: LoadSnapshot | None) -> dict[str, Any] | None:
    """The record's `host_load` from two snapshots (None when either is missing)."""
    if start is None or end is None or end.wall_s <= start.wall_s:
        return None
    wall = end.wall_s - start.wall_s
    others = max(0.0, (end.busy_s - start.busy_s) - (end.own_s - start.own_s))
    cores = others / wall
    return {
        "loadavg_1m_start": start.loadavg_1m,
        "loadavg_1m_end": end.loadavg_1m,
        "wall_s": wall,
        "others_cpu_s": others,
        "others_cores": cores,
        "under_load": wall >= min_window_s(os.cpu_count() or 1) and cores >= UNDER_LOAD_CORES,
    }


def merge_loads(first: Any, later: Any) -> dict[str, Any] | None:
    """One `host_load` for samples pooled from two windows (rounds): CPU time and wall time
    added up, under load if either window was (a loaded round moves the pooled median)."""
    if not isinstance(first, dict) or not isinstance(later, dict):
        return first if isinstance(first, dict) else later
    wall = first.get("wall_s", 0.0) + later.get("wall_s", 0.0)
    others = first.get("others_cpu_s", 0.0) + later.get("others_cpu_s", 0.0)
    return {
        "loadavg_1m_start": first.get("loadavg_1m_start"),
        "loadavg_1m_end": later.get("loadavg_1m_end"),
        "wall_s": wall,
        "others_cpu_s": others,
        "others_cores": others / wall if wall > 0 else later["others_cores"],
        "under_load": bool(first.get("under_load") or later.get("under_load")),
    }


def under_load(record: Any) -> bool:
    """Whether a record says it was measured under contention."""
    load = record.get("host_load") if isinstance(record, dict) else None
    return bool(isinstance(load, dict) and load.get("under_load"))
