"""A run of several machines (`eigenbench merge`) in the report model (pure, no matplotlib).

Each machine's records build their own chart groups and answer tables (titles and tables name
the machine), and two views compare the machines: `build_across`, the same case timed on
every machine (one group per workload: the case timed on the most machines), and
`build_wins`, who wins on which machine (the fastest correct impl per case and machine).
The figures are `eigenbench.report.machine_charts`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from eigenbench.report.answer_tables import build_answers
from eigenbench.report.answers import Answer, answers_of
from eigenbench.report.model import AcrossGroup, AnswerTable, MachineDot, WinsTable
from eigenbench.report.records import (
    is_num,
    is_timed,
    is_valid,
    record_interval,
    record_median,
)
from eigenbench.results import Record


class _Titled(Protocol):
    title: str


_G = TypeVar("_G", bound=_Titled)
AXES = ("device", "dtype", "phase")


def per_machine(
    by_machine: Mapping[str, Sequence[Record]], build: Callable[[Sequence[Record]], Iterable[_G]]
) -> list[_G]:
    """`build` applied to each machine's records, each group's title prefixed by its machine."""
    out: list[_G] = []
    for key, records in by_machine.items():
        for g in build(records):
            out.append(dataclasses.replace(g, title=f"{key} · {g.title}"))  # type: ignore[type-var]
    return out


def machine_answers(by_machine: Mapping[str, Sequence[Record]]) -> tuple[AnswerTable, ...]:
    """The answer tables of each machine, in machine order, each naming its machine."""
    return tuple(
        dataclasses.replace(t, machine=key)
        for key, records in by_machine.items()
        for t in build_answers(records)
    )


def _text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return v if isinstance(v, str) else json.dumps(v, default=str)


def _case(rec: Mapping[str, Any]) -> tuple[str, ...]:
    params = json.dumps(rec.get("params") or {}, sort_keys=True, default=str)
    return (str(rec["workload"]), str(rec["device"]), str(rec["dtype"]), str(rec["phase"]), params)


def _size(params_json: str) -> float:
    out = 1.0
    for v in json.loads(params_json).values():
        if is_num(v) and v > 0:
            out *= float(v)
    return out


def build_across(by_machine: Mapping[str, Sequence[Record]]) -> tuple[AcrossGroup, ...]:
    """Per workload, the case timed on the most machines (then by the most impls, then the
    largest size), with every impl's time on every machine that timed it."""
    cases: dict[tuple[str, ...], dict[tuple[str, str], Record]] = {}
    for key, records in by_machine.items():
        for rec in records:
            if is_timed(rec):
                cases.setdefault(_case(rec), {}).setdefault((str(rec["impl"]), key), rec)
    best: dict[str, tuple[str, ...]] = {}
    for case, found in cases.items():
        current = best.get(case[0])
        if current is None or _rank(found, case) > _rank(cases[current], current):
            best[case[0]] = case
    groups = []
    for workload, case in best.items():
        found = cases[case]
        machines = tuple(k for k in by_machine if any(m == k for _, m in found))
        if len(machines) < 2:
            continue
        dots = []
        for (impl, machine), rec in found.items():
            lo, hi = record_interval(rec)
            dots.append(MachineDot(impl, machine, record_median(rec) or 0.0, lo, hi, is_valid(rec)))
        params = ", ".join(f"{k}={_text(v)}" for k, v in json.loads(case[4]).items())
        phase = "" if case[3] == "call" else case[3]
        title = " · ".join(p for p in (workload, phase, case[1], case[2], params) if p)
        groups.append(AcrossGroup(title, workload, machines, tuple(dots)))
    return tuple(groups)


def _rank(found: Mapping[tuple[str, str], Record], case: tuple[str, ...]) -> tuple[Any, ...]:
    return (len({m for _, m in found}), len(found), _size(case[4]))


def _fields(a: Answer) -> dict[str, str]:
    out = {str(k): _text(v) for k, v in a.params.items()}
    for axis in AXES:
        out.setdefault(axis, getattr(a, axis))
    return out


def build_wins(by_machine: Mapping[str, Sequence[Record]]) -> tuple[WinsTable, ...]:
    """Per workload timed on at least two machines: a row per case, per machine its fastest
    correct impl and median; the columns are the values that vary across the cases."""
    by_workload: dict[str, dict[str, list[Answer]]] = {}
    for key, records in by_machine.items():
        for a in answers_of(records):
            by_workload.setdefault(a.workload, {}).setdefault(key, []).append(a)
    tables = []
    for workload, per in by_workload.items():
        if len(per) < 2:
            continue
        machines = tuple(k for k in by_machine if k in per)
        fields = {k: [(_fields(a), a) for a in answers] for k, answers in per.items()}
        flat = [f for pairs in fields.values() for f, _ in pairs]
        names = list(dict.fromkeys(n for f in flat for n in f))
        columns = tuple(n for n in names if len({f.get(n, "—") for f in flat}) > 1)
        cells: dict[tuple[str, ...], dict[str, tuple[str | None, float | None]]] = {}
        for key, pairs in fields.items():
            for f, a in pairs:
                row = tuple(f.get(n, "—") for n in columns)
                fastest = a.fastest
                cells.setdefault(row, {})[key] = (
                    (None, None) if fastest is None else (fastest.impl, fastest.median_s)
                )
        rows = tuple(
            (row, tuple(cells[row].get(k, ("", None)) for k in machines))
            for row in sorted(cells, key=_row_order)
        )
        tables.append(WinsTable(workload, columns, machines, rows))
    return tuple(tables)


def _row_order(values: tuple[str, ...]) -> tuple[tuple[int, float, str], ...]:
    """Numbers in numeric order, then text."""
    out = []
    for v in values:
        try:
            num = float(v)
        except ValueError:
            num = math.nan
        out.append((0, num, "") if math.isfinite(num) else (1, 0.0, v))
    return tuple(out)
