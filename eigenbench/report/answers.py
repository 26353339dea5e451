"""Answers of a run: who is fastest and still correct at each case, by how much, at what memory.

Pure: records in, frozen dataclasses out, no I/O. One `Answer` per workload × params ×
device × dtype × phase among the timed records (`ok`, or `invalid` with a summary), in the
order the records come. The fastest *correct* impl (status `ok`) is the answer; an `invalid`
impl is never the answer, and one that is faster is listed under `faster_invalid`. An `ok`
impl timed below the physical floor of its declared cost (`throughput.below_floor`) measured
wrongly: it is never the answer either (nor the runner-up), and is listed under `below_floor`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eigenbench.measure.hostload import under_load
from eigenbench.results import Record
from eigenbench.results.merge import is_multi_machine, records_by_machine

TIMED = ("ok", "invalid")
BELOW_FLOOR_NOTE = "timed below the physical floor: a measurement error"


@dataclass(frozen=True)
class ImplTime:
    """One impl's median and its 95 % interval at a case, with its peak memory."""

    impl: str
    median_s: float
    ci95_low_s: float
    ci95_high_s: float
    peak_bytes: int | None
    fraction_of_peak: float | None = None
    """The record's `throughput.fraction_of_peak` (of the binding roof); None without one."""
    below_floor: bool = False
    """The record's `throughput.below_floor`: timed under the physical floor."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "impl": self.impl,
            "median_s": self.median_s,
            "ci95_low_s": self.ci95_low_s,
            "ci95_high_s": self.ci95_high_s,
            "peak_bytes": self.peak_bytes,
            "fraction_of_peak": self.fraction_of_peak,
            "below_floor": self.below_floor,
        }


@dataclass(frozen=True)
class Speedup:
    """Runner-up median / fastest median, with a conservative interval from the two CIs
    (low = runner-up low / fastest high, high = runner-up high / fastest low)."""

    ratio: float
    low: float
    high: float

    @property
    def includes_one(self) -> bool:
        return self.low <= 1.0 <= self.high

    def to_dict(self) -> dict[str, float]:
        return {"ratio": self.ratio, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Answer:
    """Who wins one case: the fastest correct impl (None when no impl is correct)."""

    suite: str
    workload: str
    params: dict[str, Any]
    device: str
    dtype: str
    phase: str
    fastest: ImplTime | None
    runner_up: ImplTime | None
    speedup: Speedup | None
    tie: bool
    faster_invalid: tuple[str, ...]
    """Invalid impls faster than the fastest correct one; all invalid ones when none is
    correct (fastest to slowest)."""
    under_load: bool = False
    """The winner or the runner-up was measured under load: the margin is uncertain."""
    below_floor: tuple[str, ...] = ()
    """Correct impls timed below the physical floor (a measurement error, never a win),
    fastest to slowest; none of them is the answer."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "params": dict(self.params),
            "device": self.device,
            "dtype": self.dtype,
            "phase": self.phase,
            "fastest": None if self.fastest is None else self.fastest.to_dict(),
            "runner_up": None if self.runner_up is None else self.runner_up.to_dict(),
            "speedup": None if self.speedup is None else self.speedup.to_dict(),
            "tie": self.tie,
            "faster_invalid": list(self.faster_invalid),
            "under_load": self.under_load,
            "below_floor": list(self.below_floor),
            "below_floor_note": BELOW_FLOOR_NOTE if self.below_floor else None,
            "suite": self.suite,
        }


def is_timed(record: Mapping[str, Any]) -> bool:
    """A record with a median to compare: `ok`, or `invalid` with a summary."""
    return record.get("status") in TIMED and bool(record.get("summary"))


def case_key(record: Mapping[str, Any]) -> tuple[str, str, str, str, str, str]:
    """What an answer is about: suite, workload, params (canonical), device, dtype, phase."""
    params = json.dumps(record.get("params") or {}, sort_keys=True, default=str)
    return (
        record.get("suite", ""),
        record["workload"],
        params,
        record["device"],
        record["dtype"],
        record["phase"],
    )


def impl_time(record: Mapping[str, Any]) -> ImplTime:
    """A timed record's median, interval and peak memory."""
    s = record["summary"]
    median = float(s["median_s"])
    tp = record.get("throughput") or {}
    fraction = tp.get("fraction_of_peak")
    return ImplTime(
        impl=record["impl"],
        median_s=median,
        ci95_low_s=float(s.get("ci95_low_s", median)),
        ci95_high_s=float(s.get("ci95_high_s", median)),
        peak_bytes=(record.get("memory") or {}).get("peak_bytes"),
        fraction_of_peak=None if fraction is None else float(fraction),
        below_floor=bool(tp.get("below_floor", False)),
    )


def speedup_of(fastest: ImplTime, runner_up: ImplTime) -> Speedup | None:
    """How much faster `fastest` is than `runner_up`; None when a time is zero."""
    if fastest.median_s <= 0 or fastest.ci95_low_s <= 0 or fastest.ci95_high_s <= 0:
        return None
    return Speedup(
        ratio=runner_up.median_s / fastest.median_s,
        low=runner_up.ci95_low_s / fastest.ci95_high_s,
        high=runner_up.ci95_high_s / fastest.ci95_low_s,
    )


def answer_of(group: Iterable[Mapping[str, Any]]) -> Answer:
    """The answer for the timed records of one case (same key, one or more impls)."""
    records = list(group)
    first = records[0]
    correct: list[ImplTime] = []
    invalid: list[ImplTime] = []
    impossible: list[ImplTime] = []
    chosen: dict[str, Mapping[str, Any]] = {}
    for r in records:
        if r["impl"] not in chosen:  # the first record of an impl wins
            chosen[r["impl"]] = r
            t = impl_time(r)
            if r["status"] != "ok":
                invalid.append(t)
            else:
                (impossible if t.below_floor else correct).append(t)
    correct.sort(key=lambda t: t.median_s)
    invalid.sort(key=lambda t: t.median_s)
    impossible.sort(key=lambda t: t.median_s)
    fastest = correct[0] if correct else None
    runner_up = correct[1] if len(correct) > 1 else None
    speedup = None if fastest is None or runner_up is None else speedup_of(fastest, runner_up)
    faster_invalid = tuple(
        t.impl for t in invalid if fastest is None or t.median_s < fastest.median_s
    )
    loaded = any(under_load(chosen[t.impl]) for t in (fastest, runner_up) if t is not None)
    return Answer(
        suite=first.get("suite", ""),
        workload=first["workload"],
        params=dict(first.get("params") or {}),
        device=first["device"],
        dtype=first["dtype"],
        phase=first["phase"],
        fastest=fastest,
        runner_up=runner_up,
        speedup=speedup,
        tie=speedup is not None and speedup.includes_one,
        faster_invalid=faster_invalid,
        under_load=loaded,
        below_floor=tuple(t.impl for t in impossible),
    )


def answers_of(records: Iterable[Record] | Iterable[Mapping[str, Any]]) -> list[Answer]:
    """One answer per case among the timed records, in the order the cases first come."""
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for r in records:
        if is_timed(r):
            groups.setdefault(case_key(r), []).append(r)
    return [answer_of(group) for group in groups.values()]


def answers_by_machine(run: Mapping[str, Any]) -> list[tuple[str | None, list[Answer]]]:
    """The answers of a run per machine: [(None, answers)] for a run of one machine, else
    (machine key, its answers) per machine (`eigenbench merge`)."""
    if not is_multi_machine(run):
        return [(None, answers_of(run.get("records") or []))]
    return [(key, answers_of(recs)) for key, recs in records_by_machine(run).items()]


def answers_json(run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`show --json`'s answers: `Answer.to_dict()`, with `machine_key` in a run of several."""
    return [
        {**a.to_dict(), **({} if key is None else {"machine_key": key})}
        for key, answers in answers_by_machine(run)
        for a in answers
    ]
