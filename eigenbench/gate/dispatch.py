"""Dispatch verdicts: did a case run something else (ops, kernels, host syncs) than before?

Pure. A record's `dispatch` (`eigenbench.results.schema.DISPATCH_SCHEMA`) counts what one
profiled call ran: aten ops, grouped kernel names and host synchronisations. Two of them
differ when any name appears, disappears or changes its count per call; the tool, the short
form and every time are ignored. Counts are deterministic where times are not: two runs of
the same code never differ, so any difference is a change in what runs (torch gates its CI
on counts for the same reason, pytorch PR #140029).

A record without a fingerprint on either side (an older run, a pure-NumPy impl: `null` with
`dispatch_reason`) gives no verdict, never a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SECTIONS = ("ops", "kernels", "syncs")
"""The parts of a fingerprint that are compared, in the order they are described."""
SHOWN_PER_SECTION = 3
"""Names a description lists per section before `+N more`."""


@dataclass(frozen=True)
class CountChange:
    """One name whose count differs: `base` 0 means added, `head` 0 removed."""

    name: str
    base: int
    head: int

    @property
    def kind(self) -> str:
        """`added`, `removed` or `recounted`."""
        if self.base == 0:
            return "added"
        return "removed" if self.head == 0 else "recounted"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "base": self.base, "head": self.head, "kind": self.kind}


@dataclass(frozen=True)
class DispatchChange:
    """How two fingerprints differ, per section (ops, kernels, syncs), names sorted."""

    ops: tuple[CountChange, ...] = ()
    kernels: tuple[CountChange, ...] = ()
    syncs: tuple[CountChange, ...] = ()
    calls: tuple[int, int] = (1, 1)
    """Profiled calls (base, head) the counts cover; counts are compared per call."""

    def section(self, name: str) -> tuple[CountChange, ...]:
        return {"ops": self.ops, "kernels": self.kernels, "syncs": self.syncs}[name]

    def of_kind(self, section: str, kind: str) -> tuple[CountChange, ...]:
        """The `added`, `removed` or `recounted` names of one section."""
        return tuple(c for c in self.section(section) if c.kind == kind)

    @property
    def description(self) -> str:
        """One line, e.g. `kernels: syevd ×500 → syevjBatched ×1; syncs 500 → 0`."""
        parts = [_describe(s, self.section(s)) for s in SECTIONS if self.section(s)]
        if self.calls[0] != self.calls[1]:
            parts.append(f"per call ({self.calls[0]} → {self.calls[1]} profiled calls)")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {s: [c.to_dict() for c in self.section(s)] for s in SECTIONS}
        out["calls"] = list(self.calls)
        return out


@dataclass(frozen=True)
class DispatchVerdict:
    """A case's dispatch verdict: `changed` True / False, or None (no fingerprint on a side,
    `description` says which and why)."""

    changed: bool | None
    description: str | None = None
    change: DispatchChange | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"changed": self.changed, "description": self.description}
        if self.change is not None:
            out.update(self.change.to_dict())
        return out


def fingerprint(record: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The record's `dispatch` when it is a usable fingerprint, else None."""
    fp = None if record is None else record.get("dispatch")
    if not isinstance(fp, Mapping) or not all(_is_counts(fp.get(s)) for s in SECTIONS):
        return None
    calls = fp.get("calls", 1)
    return fp if isinstance(calls, int) and not isinstance(calls, bool) and calls >= 1 else None


def diff_fingerprints(base: Mapping[str, Any], head: Mapping[str, Any]) -> DispatchChange | None:
    """What changed from `base` to `head` (fingerprints as `fingerprint` accepts), or None
    when they count the same per call. Zero counts are the same as absent names."""
    calls = (int(base.get("calls", 1)), int(head.get("calls", 1)))
    sections = {s: _diff_counts(base[s], head[s], calls) for s in SECTIONS}
    if not any(sections.values()):
        return None
    return DispatchChange(**sections, calls=calls)


def judge_dispatch(
    base: Mapping[str, Any] | None, head: Mapping[str, Any] | None
) -> DispatchVerdict | None:
    """The dispatch verdict of one case from its two records; None when a side has no
    record (a `new` or `missing` case: nothing to compare)."""
    if base is None or head is None:
        return None
    fps = fingerprint(base), fingerprint(head)
    for side, rec, fp in (("baseline", base, fps[0]), ("current", head, fps[1])):
        if fp is None:
            return DispatchVerdict(changed=None, description=_why_none(side, rec))
    assert fps[0] is not None and fps[1] is not None
    change = diff_fingerprints(fps[0], fps[1])
    if change is None:
        return DispatchVerdict(changed=False)
    return DispatchVerdict(changed=True, description=change.description, change=change)


def judge_all(
    ids: Iterable[str],
    base: Mapping[str, Mapping[str, Any]],
    head: Mapping[str, Mapping[str, Any]],
) -> dict[str, DispatchVerdict | None]:
    """`judge_dispatch` of every case id, from the two runs' records by id."""
    return {i: judge_dispatch(base.get(i), head.get(i)) for i in ids}


def _is_counts(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(n, int) and not isinstance(n, bool) and n >= 0
        for k, n in value.items()
    )


def _diff_counts(
    base: Mapping[str, int], head: Mapping[str, int], calls: tuple[int, int]
) -> tuple[CountChange, ...]:
    """Names whose count per call differs (exact: cross-multiplied by the calls)."""
    names = {k for k, n in base.items() if n} | {k for k, n in head.items() if n}
    changes = [
        CountChange(name, base.get(name, 0), head.get(name, 0))
        for name in names
        if base.get(name, 0) * calls[1] != head.get(name, 0) * calls[0]
    ]
    return tuple(sorted(changes, key=lambda c: (-max(c.base, c.head), c.name)))


def _listed(changes: tuple[CountChange, ...], count: str) -> str:
    """`a ×3, b ×1 +2 more`: the first names with their `count` (base or head)."""
    shown = [f"{c.name} ×{getattr(c, count)}" for c in changes[:SHOWN_PER_SECTION]]
    more = len(changes) - SHOWN_PER_SECTION
    return ", ".join(shown) + (f" +{more} more" if more > 0 else "")


def _describe(section: str, changes: tuple[CountChange, ...]) -> str:
    """One section's changes in a few words."""
    if section == "syncs":
        before, after = sum(c.base for c in changes), sum(c.head for c in changes)
        if before != after:
            return f"syncs {before} → {after}"
    removed = tuple(c for c in changes if c.kind == "removed")
    added = tuple(c for c in changes if c.kind == "added")
    recounted = tuple(c for c in changes if c.kind == "recounted")
    parts = []
    if removed and added:
        parts.append(f"{_listed(removed, 'base')} → {_listed(added, 'head')}")
    elif removed:
        parts.append(f"−{_listed(removed, 'base')}")
    elif added:
        parts.append(f"+{_listed(added, 'head')}")
    shown = [f"{c.name} ×{c.base} → ×{c.head}" for c in recounted[:SHOWN_PER_SECTION]]
    if len(recounted) > SHOWN_PER_SECTION:
        shown.append(f"+{len(recounted) - SHOWN_PER_SECTION} more")
    parts += shown
    return f"{section}: " + ", ".join(parts)


def _why_none(side: str, record: Mapping[str, Any]) -> str:
    reason = record.get("dispatch_reason")
    return f"no fingerprint in the {side} run" + (f" ({reason})" if reason else "")
