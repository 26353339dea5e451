"""The answers of a run as one table per workload: who wins each case, by how much (pure).

Built from `eigenbench.report.answers.answers_of`; the columns of a workload's table are the
parameters that vary across its cases, plus device, dtype and phase only where they vary.
What every case shares is kept as `fixed` for the table's heading.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eigenbench.report.answers import Answer, answers_of
from eigenbench.report.model import AnswerRow, AnswerTable

AXES = ("device", "dtype", "phase")
"""Answer fields shown as columns where they vary, after the parameters."""


def _text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return v if isinstance(v, str) else json.dumps(v, default=str)


def _fields(a: Answer) -> dict[str, str]:
    """A case's (name, text) pairs: parameters first, then device, dtype and phase."""
    out = {str(k): _text(v) for k, v in a.params.items()}
    for axis in AXES:
        out.setdefault(axis, getattr(a, axis))
    return out


def _sort_key(values: Sequence[str], seen: Sequence[Mapping[str, int]]) -> tuple[Any, ...]:
    """Numbers in numeric order, other values in the order they first came."""
    key: list[tuple[int, float]] = []
    for v, order in zip(values, seen, strict=True):
        try:
            num = float(v)
        except ValueError:
            num = math.nan
        key.append((0, num) if math.isfinite(num) else (1, float(order[v])))
    return tuple(key)


def _row(a: Answer, values: tuple[str, ...]) -> AnswerRow:
    s = a.speedup
    return AnswerRow(
        values=values,
        winner=None if a.fastest is None else a.fastest.impl,
        median_s=None if a.fastest is None else a.fastest.median_s,
        runner_up=None if a.runner_up is None else a.runner_up.impl,
        ratio=None if s is None else s.ratio,
        low=None if s is None else s.low,
        high=None if s is None else s.high,
        tie=a.tie,
        faster_invalid=a.faster_invalid,
        fraction_of_peak=None if a.fastest is None else a.fastest.fraction_of_peak,
        below_floor=a.below_floor,
    )


def answer_table(workload: str, answers: Sequence[Answer]) -> AnswerTable:
    """One workload's table; `answers` are its cases."""
    fields = [_fields(a) for a in answers]
    names = list(dict.fromkeys(k for f in fields for k in f))
    columns = [n for n in names if len({f.get(n, "—") for f in fields}) > 1]
    fixed = tuple((n, fields[0][n]) for n in names if n not in columns)
    seen: list[dict[str, int]] = [{} for _ in columns]
    for f in fields:
        for i, n in enumerate(columns):
            seen[i].setdefault(f.get(n, "—"), len(seen[i]))
    rows = [
        _row(a, tuple(f.get(n, "—") for n in columns)) for a, f in zip(answers, fields, strict=True)
    ]
    rows.sort(key=lambda r: _sort_key(r.values, seen))
    return AnswerTable(workload, tuple(columns), fixed, tuple(rows))


def build_answers(records: Iterable[Mapping[str, Any]]) -> tuple[AnswerTable, ...]:
    """One answer table per workload among the timed records, in the order workloads come."""
    by_workload: dict[str, list[Answer]] = {}
    for a in answers_of(records):
        by_workload.setdefault(a.workload, []).append(a)
    return tuple(answer_table(wl, group) for wl, group in by_workload.items())
