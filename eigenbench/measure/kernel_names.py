"""What one profiled call ran, as counts (pure): op, kernel and host-sync counts and their
short form, from profiler events turned into `TraceEvent`s.

Kernel names are grouped so the same path gives the same fingerprint run to run: template
arguments, parameter lists, hex addresses and clone suffixes go; the counts stay.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict

MARKER = "eigenbench.call"
"""The user annotation around the profiled calls: ops and syncs count only inside it."""

EventKind = Literal["op", "runtime", "kernel", "memcpy", "memset", "annotation", "other"]
DEVICE_KINDS = ("kernel", "memcpy", "memset")

_OP = re.compile(r"^[A-Za-z_]\w*::\w+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_SUFFIX = re.compile(r"(_v\d+|_ptsz|_ptds)+$")
SYNC_CALLS: Mapping[str, str] = {
    "cudaStreamSynchronize": "stream_sync",
    "cuStreamSynchronize": "stream_sync",
    "cudaDeviceSynchronize": "device_sync",
    "cuCtxSynchronize": "device_sync",
    "cudaEventSynchronize": "event_sync",
    "cuEventSynchronize": "event_sync",
    "cudaMemcpy": "sync_memcpy",
    "cudaMemcpy2D": "sync_memcpy",
    "cudaMemcpyFromSymbol": "sync_memcpy",
    "cuMemcpy": "sync_memcpy",
    "cuMemcpyDtoH": "sync_memcpy",
    "cuMemcpy2D": "sync_memcpy",
}
"""Runtime and driver calls that block the host until the device catches up, by kind."""
ITEM_OP = "aten::_local_scalar_dense"
"""`tensor.item()`: a device-to-host copy the host waits for (on CUDA)."""


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One profiler event, as much of it as the counts need (fakes build these in tests)."""

    name: str
    kind: EventKind
    start_us: float = 0.0
    end_us: float = 0.0
    parents: tuple[str, ...] = ()
    """Names of the enclosing CPU events, innermost first."""
    self_cpu_us: float = 0.0
    device_us: float = 0.0
    """Device time: a kernel's duration, an op's own kernels (self device time)."""


class Dispatch(TypedDict):
    """A record's `dispatch` (results/schema.py DISPATCH_SCHEMA)."""

    tool: str
    calls: int
    ops: dict[str, int]
    kernels: dict[str, int]
    syncs: dict[str, int]
    short: str


def is_op(name: str) -> bool:
    """A dispatcher op (`aten::linalg_eigh`, `prims::…`, a custom `ns::op`)."""
    return _OP.match(name) is not None


def group_kernel_name(name: str, kind: EventKind = "kernel") -> str:
    """A kernel's stable name: no `void`, template arguments, parameter list, hex or clone
    suffix; a return type before the name goes too. Copies and sets keep their own names."""
    text = _HEX.sub("", name).strip()
    if kind in ("memcpy", "memset"):
        return " ".join(text.split())
    text = text.replace("(anonymous namespace)", "anon")
    text = _strip_brackets(text, "<", ">")
    text = re.sub(r"\[[^\]]*\]", "", text)  # [clone .kd], launch-config annotations
    text = text.split("(", 1)[0].strip()
    if text.startswith("void "):
        text = text[5:]
    words = text.split()
    return words[-1] if words else " ".join(name.split()) or "?"


def _strip_brackets(text: str, open_: str, close: str) -> str:
    """`text` without its bracketed parts (nested ones too); `operator<` stays readable."""
    out, depth = [], 0
    for ch in text:
        if ch == open_:
            depth += 1
        elif ch == close and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


def call_window(events: Sequence[TraceEvent]) -> tuple[float, float] | None:
    """The span of the marker annotation(s) around the calls, or None without one."""
    marks = [e for e in events if e.kind == "annotation" and e.name == MARKER]
    if not marks:
        return None
    return min(e.start_us for e in marks), max(e.end_us for e in marks)


def in_call(events: Sequence[TraceEvent]) -> list[TraceEvent]:
    """The host-side events that started inside the calls (any thread; the synchronisation
    after them is outside); device events all count (the profile starts with an idle device)."""
    window = call_window(events)
    out = []
    for e in events:
        if e.kind in DEVICE_KINDS or window is None:
            out.append(e)
        elif e.kind != "annotation" and window[0] <= e.start_us <= window[1]:
            out.append(e)
    return out


def op_counts(events: Iterable[TraceEvent]) -> dict[str, int]:
    """Every dispatcher op, nested ones included, by name."""
    return _sorted(Counter(e.name for e in events if e.kind == "op" and is_op(e.name)))


def top_level_ops(events: Iterable[TraceEvent]) -> dict[str, int]:
    """The ops the code called itself: those inside no other op."""
    return _sorted(
        Counter(
            e.name
            for e in events
            if e.kind == "op" and is_op(e.name) and not any(is_op(p) for p in e.parents)
        )
    )


def kernel_counts(events: Iterable[TraceEvent]) -> dict[str, int]:
    """Device kernels, copies and sets by grouped name."""
    return _sorted(
        Counter(group_kernel_name(e.name, e.kind) for e in events if e.kind in DEVICE_KINDS)
    )


def runtime_name(name: str) -> str:
    """A runtime or driver call's name without its API-version suffix (`_v2`, `_ptsz`)."""
    return _SUFFIX.sub("", name)


def sync_counts(events: Sequence[TraceEvent], device: str) -> dict[str, int]:
    """Host synchronisations by kind: blocking runtime calls (`item` when inside
    `aten::_local_scalar_dense`); on CUDA without runtime events (CPU activity only), each
    `.item()` counts as one. Nothing on the CPU: no device to wait for."""
    if device != "cuda":
        return {}
    counts: Counter[str] = Counter()
    runtime = [e for e in events if e.kind == "runtime"]
    for e in runtime:
        kind = SYNC_CALLS.get(runtime_name(e.name))
        if kind is not None:
            counts["item" if ITEM_OP in e.parents else kind] += 1
    if not runtime:
        counts["item"] += sum(1 for e in events if e.kind == "op" and e.name == ITEM_OP)
    return _sorted(counts)


def short_form(
    top_ops: Mapping[str, int], kernels: Mapping[str, int], syncs: Mapping[str, int], *, n: int = 2
) -> str:
    """E.g. `aten::linalg_eigh ×1 · syevjBatched ×1 · 0 syncs`: the most frequent top-level
    ops and kernels, then the number of host synchronisations."""
    parts = [f"{k} ×{v}" for k, v in _top(top_ops, n)]
    parts += [f"{k} ×{v}" for k, v in _top(kernels, n)]
    more = len(kernels) - min(n, len(kernels))
    if more > 0:
        parts[-1] += f" (+{more} more)"
    total = sum(syncs.values())
    parts.append(f"{total} sync{'' if total == 1 else 's'}")
    return " · ".join(parts)


def fingerprint(events: Sequence[TraceEvent], device: str, calls: int = 1) -> Dispatch | None:
    """The record's `dispatch` from one profile's events, or None when no op and no kernel ran."""
    inside = in_call(events)
    ops, kernels = op_counts(inside), kernel_counts(inside)
    if not ops and not kernels:
        return None
    syncs = sync_counts(inside, device)
    return Dispatch(
        tool="torch.profiler",
        calls=calls,
        ops=ops,
        kernels=kernels,
        syncs=syncs,
        short=short_form(top_level_ops(inside), kernels, syncs),
    )


def _top(counts: Mapping[str, int], n: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def _sorted(counts: Mapping[str, int]) -> dict[str, int]:
    return {k: int(counts[k]) for k in sorted(counts)}
