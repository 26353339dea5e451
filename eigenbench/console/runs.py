"""The run's views on stdout (rich): its cases, and its answers (who is fastest and correct,
per workload; per machine in a merged run).

Every view fits the Console's width (the terminal's, `COLUMNS` respected): id-like cells
are short (only what varies) and never split; only free text (reasons, notes) folds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from eigenbench.measure.hostload import under_load
from eigenbench.results.merge import is_multi_machine, records_by_machine
from eigenbench.run.records import invalid_summary, is_unexpected_invalid
from eigenbench.units import clean_text, fmt_bytes, fmt_seconds, safe

if TYPE_CHECKING:
    from eigenbench.report.answers import Answer


STATUS_STYLE = {
    "ok": "green",
    "invalid": "bold red",
    "failed": "bold red",
    "timeout": "yellow",
    "skipped": "dim",
    "interrupted": "yellow",
}


def results_table(
    records: Iterable[Mapping[str, Any]], title: str = "cases", width: int | None = None
) -> Any:
    """A compact rich Table of the records, one row each: case id, median, status (the
    reasons are in `records_view`, the winners in `answers_view`). Ids are whole; when the
    longest does not fit `width`, each is shortened to what varies in its workload."""
    from rich import box
    from rich.table import Table

    records = list(records)
    ids = [r["id"] for r in records]
    if width is not None and _widest(ids) + 19 > width:
        ids = short_ids(records)
    table = Table(
        title=safe(title),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
        pad_edge=False,
    )
    table.add_column("case", no_wrap=True, min_width=_widest(ids))
    table.add_column("median", justify="right", no_wrap=True)
    table.add_column("status", min_width=7)
    for r, case in zip(records, ids, strict=True):
        s = r.get("summary") or {}
        style = STATUS_STYLE.get(r["status"], "")
        status = r["status"] + (" (noisy)" if r.get("noisy") else "")
        table.add_row(
            safe(case),
            fmt_seconds(s.get("median_s")),
            f"[{style}]{safe(status)}[/]" if style else safe(status),
        )
    return table


AXES = ("device", "dtype", "phase")
MISSING = "—"


def _varying_keys(params: Iterable[Mapping[str, Any]]) -> list[str]:
    """The param names whose values differ among `params`, in the order they first come."""
    rows = list(params)
    keys = list(dict.fromkeys(k for p in rows for k in p))
    return [k for k in keys if len({repr(p.get(k, MISSING)) for p in rows}) > 1]


def _varying_axes(items: Iterable[Any], get: Callable[[Any, str], Any]) -> list[str]:
    """Which of device, dtype, phase differ among `items`."""
    rows = list(items)
    return [ax for ax in AXES if len({get(i, ax) for i in rows}) > 1]


def _ratio(x: float) -> str:
    """A speedup: two decimals below 10 (`1.40`), three significant digits above (`26.1`)."""
    return f"{x:.2f}" if x < 10 else f"{x:.3g}"


def _versus(answer: Answer) -> str:
    """The `vs runner-up` cell: `×3.2 (2.9–3.6) over numpy`, `tie with numpy`, or why not."""
    if answer.fastest is None:
        return MISSING
    ru = answer.runner_up
    if ru is None:
        return "only correct impl"
    if answer.tie:
        return f"tie with {ru.impl}"
    sp = answer.speedup
    if sp is None:
        return f"over {ru.impl}"
    return f"×{_ratio(sp.ratio)} ({_ratio(sp.low)}–{_ratio(sp.high)}) over {ru.impl}"


def _note(answer: Answer) -> str:
    """The note cell: the invalid impls that were faster (or, with no correct one, all), the
    impls timed below the physical floor (a measurement error, never a win), and whether the
    margin was measured under load."""
    notes = ["under load: margin uncertain"] if answer.under_load else []
    if answer.faster_invalid:
        what = "wrong" if answer.fastest is None else "faster but wrong"
        notes.append(f"{what}: {', '.join(answer.faster_invalid)}")
    if answer.below_floor:
        from eigenbench.report.answers import BELOW_FLOOR_NOTE

        notes.append(f"{', '.join(answer.below_floor)} {BELOW_FLOOR_NOTE}")
    return "; ".join(notes)


def percent(fraction: float | None) -> str:
    """A fraction of peak as a percentage: `42%`, `4.2%`, `0.042%`; `—` when unknown."""
    if fraction is None:
        return MISSING
    pct = 100 * fraction
    if pct >= 10:
        return f"{pct:.0f}%"
    return f"{pct:.1f}%" if pct >= 1 else f"{pct:.2g}%"


def _no_answer(answer: Answer) -> str:
    """The fastest cell of a case with no answer."""
    return "no answer" if answer.below_floor else "none correct"


def _widest(texts: Iterable[str], *, words: bool = False) -> int:
    """The width a column needs so that no cell (with `words`: no word of a cell) is split."""
    parts = [w for t in texts for w in (t.split() if words else [t])]
    return max(map(len, parts), default=0)


def answers_tables(answers: Sequence[Answer]) -> list[Any]:
    """One rich Table per workload: a row per case, its columns the params (and device,
    dtype, phase) that vary within the workload; the constant ones are in the title."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    by_workload: dict[tuple[str, str], list[Answer]] = {}
    for a in answers:
        by_workload.setdefault((a.suite, a.workload), []).append(a)
    tables = []
    for (suite, workload), group in by_workload.items():
        keys = _varying_keys(a.params for a in group)
        axes = _varying_axes(group, getattr)
        fixed = [f"{k}={v}" for k, v in group[0].params.items() if k not in keys]
        fixed += [getattr(group[0], ax) for ax in AXES if ax not in axes]
        name = workload if suite in (workload, "") else f"{suite}/{workload}"
        table = Table(
            title=f"[bold]{safe(name)}[/] [dim]{safe(', '.join(fixed))}[/]",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            padding=(0, 1, 0, 0),
            pad_edge=False,
        )
        cells = [[clean_text(a.params.get(k, MISSING)) for k in keys] for a in group]
        cells = [
            c + [clean_text(getattr(a, ax)) for ax in axes]
            for c, a in zip(cells, group, strict=True)
        ]
        for i, header in enumerate([*keys, *axes]):
            table.add_column(
                safe(header), no_wrap=True, min_width=_widest([header, *(c[i] for c in cells)])
            )
        fastest = [
            _no_answer(a) if a.fastest is None else clean_text(a.fastest.impl) for a in group
        ]
        table.add_column("fastest", no_wrap=True, min_width=_widest(fastest))
        table.add_column("median", justify="right", no_wrap=True)
        peaks = [None if a.fastest is None else a.fastest.fraction_of_peak for a in group]
        with_peak = any(p is not None for p in peaks)
        if with_peak:
            table.add_column("% peak", justify="right", no_wrap=True)
        versus = [clean_text(_versus(a)) for a in group]
        table.add_column("vs runner-up", overflow="fold", min_width=_widest(versus, words=True))
        table.add_column("peak mem", justify="right", no_wrap=True)
        notes = [clean_text(_note(a)) for a in group]
        if any(notes):
            table.add_column("note", overflow="fold", min_width=_widest(notes, words=True))
        for row, a, fast, vs, note, peak in zip(
            cells, group, fastest, versus, notes, peaks, strict=True
        ):
            f = a.fastest
            table.add_row(
                *map(Text, row),
                Text(_no_answer(a), style="bold red") if f is None else Text(fast, "green"),
                MISSING if f is None else fmt_seconds(f.median_s),
                *([percent(peak)] if with_peak else []),
                Text(vs),
                MISSING if f is None else fmt_bytes(f.peak_bytes),
                *([Text(note, style="magenta")] if any(notes) else []),
            )
        tables.append(table)
    return tables


LISTED = ("failed", "invalid", "timeout", "interrupted")


def short_ids(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each record's id as `workload/impl` and only what varies within its workload (params,
    device, dtype, phase), e.g. `spearman/torch_naive family=ties`."""
    by_workload: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        by_workload.setdefault(r["workload"], []).append(r)
    varying = {
        w: (_varying_keys(r.get("params") or {} for r in rs), _varying_axes(rs, dict.__getitem__))
        for w, rs in by_workload.items()
    }
    out = []
    for r in records:
        keys, axes = varying[r["workload"]]
        params = r.get("params") or {}
        parts = [str(r[ax]) for ax in axes]
        if keys:
            parts.append(",".join(f"{k}={params.get(k, MISSING)}" for k in keys))
        out.append(" ".join([f"{r['workload']}/{r['impl']}", "/".join(parts)]).strip())
    return out


def _id_reason(short_id: str, reason: str | None) -> Any:
    """`id: reason`, the id in bold."""
    from rich.text import Text

    text = Text(clean_text(short_id), style="bold")
    if reason:
        text.append(": " + " ".join(clean_text(reason).split()))
    return text


def records_view(records: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Status counts, then one line per failed/invalid/timeout case with its reason (ids
    shortened, reasons folded) and one per skipped impl and reason."""
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    order = {s: i for i, s in enumerate(STATUS_STYLE)}
    head = ", ".join(
        f"{n} {s}" for s, n in sorted(counts.items(), key=lambda x: order.get(x[0], 9))
    )
    lines = Table.grid(padding=(0, 1))
    lines.add_column(no_wrap=True)
    lines.add_column(overflow="fold")  # `id: reason`, wrapped at spaces: the id stays whole
    skipped: dict[tuple[str, str], int] = {}
    ids = short_ids(records)
    for r, short in zip(records, ids, strict=True):
        if r["status"] == "skipped":
            key = (f"{r['workload']}/{r['impl']}", r.get("reason") or "")
            skipped[key] = skipped.get(key, 0) + 1
        elif r["status"] in LISTED:
            expected = r["status"] == "invalid" and not is_unexpected_invalid(r)
            status = Text(
                clean_text(r["status"]), style="yellow" if expected else STATUS_STYLE[r["status"]]
            )
            why = r.get("reason")
            if expected:
                why = f"{why} — expected: {r['expected_invalid']}"
            lines.add_row(status, _id_reason(short, why))
        if under_load(r):
            lines.add_row(Text("loaded", "yellow"), _id_reason(short, _load_text(r)))
    for (what, reason), n in skipped.items():
        lines.add_row(Text("skipped", "dim"), _id_reason(f"{what} ×{n}", reason))
    invalid = invalid_summary(records)
    if invalid:  # "3 invalid" → "3 invalid (all expected)"
        head = head.replace(f"{counts['invalid']} invalid", invalid, 1)
    out: list[Any] = [Text(clean_text(f"records: {head or 'none'}"), style="bold")]
    if lines.row_count:
        out.append(Padding(lines, (0, 0, 0, 2)))
    return out


def _load_text(r: Mapping[str, Any]) -> str:
    load = r["host_load"]
    start, end = load.get("loadavg_1m_start"), load.get("loadavg_1m_end")
    average = "" if start is None or end is None else f" (load average {start:.1f}→{end:.1f})"
    return (
        f"measured under load: other processes kept {load['others_cores']:.1f} cores busy"
        f"{average}; its timing is uncertain"
    )


def answers_view(run: Mapping[str, Any], answers: Sequence[Answer]) -> list[Any]:
    """What `show` prints (and `run` ends with): a line on the run, the answers per workload,
    then the records that did not answer."""
    from rich.text import Text

    head = Text(clean_text(f"run {run.get('run_id', '?')}"), style="bold")
    machine = (run.get("env") or {}).get("machine_key")
    if machine:
        head.append(clean_text(f" on {machine}"), style="dim")
    if is_multi_machine(run):  # a merged run: the same view per machine, its own answers
        return [
            head,
            *(
                part
                for key, recs in records_by_machine(run).items()
                for part in _machine_view(key, recs)
            ),
        ]
    out: list[Any] = [head]
    if not answers:
        out.append(Text("no timed cases: nothing to answer"))
    for table in answers_tables(answers):
        out += [Text(""), table]
    return [*out, Text(""), *records_view(run.get("records") or [])]


def _machine_view(key: str, records: Sequence[Mapping[str, Any]]) -> list[Any]:
    """One machine's part of a merged run's view: its answers, then its other records."""
    from rich.text import Text

    from eigenbench.report.answers import answers_of

    tables = answers_tables(answers_of(records)) or [Text("no timed cases: nothing to answer")]
    out: list[Any] = [Text(""), Text(clean_text(f"on {key}"), style="bold cyan")]
    return [*out, *(p for t in tables for p in (Text(""), t)), Text(""), *records_view(records)]
