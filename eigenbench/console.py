"""What the CLI shows: a progress bar on stderr, and on stdout (rich) the answers of a run
(who is fastest and correct, per workload), its cases, and the plan and compare tables.

Every view fits the Console's width (the terminal's, `COLUMNS` respected): id-like cells
are short (only what varies) and never split; only free text (reasons, notes) folds."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from eigenbench.gate.verdicts import LABELS
from eigenbench.measure.hostload import under_load
from eigenbench.results.merge import is_multi_machine, records_by_machine
from eigenbench.run.plan import SOURCES, remaining_s, source_counts
from eigenbench.run.records import invalid_summary, is_unexpected_invalid
from eigenbench.units import clean_text, fmt_bytes, fmt_duration, fmt_seconds, fmt_sig, safe

if TYPE_CHECKING:
    from eigenbench.gate.verdicts import CompareResult
    from eigenbench.report.answers import Answer
    from eigenbench.run.plan import Plan


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


VERDICT_STYLE = {
    "slower": "bold red",
    "failed": "bold red",
    "invalid": "bold magenta",
    "faster": "green",
    "inconclusive": "yellow",
    "new": "cyan",
    "missing": "cyan",
    "unchanged": "dim",
}


def _median_text(s: float | None) -> str:
    """A median in the compare table: 4 significant digits, "—" when missing or not finite."""
    if s is None or not math.isfinite(s):
        return "—"
    return fmt_seconds(s, 4, by_magnitude=True)


def _noise_caption(result: CompareResult) -> str:
    """What the baseline rests on, how small a slowdown could be seen, how far the run moved."""
    if result.case_drift is None:
        return ""
    runs = result.history_runs
    if result.paired_rounds:
        parts = [f"A/B interleaved: up to {result.paired_rounds} paired rounds per case"]
    else:
        parts = [
            f"baseline: median of up to {runs} runs per case"
            if runs
            else f"drift allowed: {fmt_sig(result.case_drift * 100, 2)} % per case"
            + (f", {fmt_sig(result.run_drift * 100, 2)} % shared" if result.run_drift else "")
        ]
    if result.median_mde is not None:
        parts.append(f"slowdown caught 80 % of the time: {result.median_mde * 100:.2g} % (median)")
    if result.shift is not None:
        parts.append(f"whole-run shift ×{result.shift:.3f}")
    return "; ".join(parts)


DISPATCH_MARK = {True: "≠", False: "=", None: "·"}
"""The compare table's `disp` cell: changed, same, no fingerprint on a side."""


def _dispatch_caption(result: CompareResult) -> str:
    """The dispatch counts, when some case has a fingerprint on both sides; else ''."""
    counts = result.dispatch_counts()
    if not counts["changed"] and not counts["same"]:
        return ""
    parts = [f"{counts['changed']} changed (≠, below)", f"{counts['same']} same (=)"]
    if counts["no_fingerprint"]:
        parts.append(f"{counts['no_fingerprint']} without a fingerprint (·)")
    return "dispatch: " + ", ".join(parts)


def dispatch_notes(result: CompareResult) -> Any:
    """`dispatch changed:` and one line per changed case (`id: description`); None when no
    case changed what it runs."""
    from rich.text import Text

    changed = result.dispatch_changes
    if not changed:
        return None
    fails = " (fails the gate: --fail-on-dispatch-change)" if result.fail_on_dispatch_change else ""
    out = Text(f"dispatch changed in {len(changed)} case(s){fails}:", style="bold magenta")
    for v in changed:
        assert v.dispatch is not None
        out.append("\n  ")
        out.append(clean_text(v.id), style="bold")
        out.append(clean_text(f": {v.dispatch.description}"))
    return out


def render_table(result: CompareResult, *, show_unchanged: bool = True) -> Any:
    """A rich Table of the verdicts (regressions first); the CLI prints it. With
    fingerprints, a narrow `disp` column and, under the table, what changed per case (a
    dispatch change shows even when its timing is unchanged and `show_unchanged` is off)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    rel = f", relative to {result.relative_to}" if result.relative_to else ""
    counts = ", ".join(f"{n} {k}" for k, n in result.counts().items() if n)
    dispatch = _dispatch_caption(result)
    table = Table(
        title=safe(
            f"compare: threshold {result.threshold * 100:.3g} %, BH q = {result.alpha:g}{rel}"
        ),
        caption=safe(
            "\n".join(filter(None, [counts or "no cases", dispatch, _noise_caption(result)]))
        ),
    )
    columns = [
        ("case", "left"),
        ("baseline", "right"),
        ("current", "right"),
        ("ratio", "right"),
        ("95 % interval", "right"),
        ("q", "right"),
        ("verdict", "left"),
        *([("disp", "center")] if dispatch else []),
        ("why", "left"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    order = {label: i for i, label in enumerate(LABELS)}
    rows = sorted(
        result.verdicts,
        key=lambda v: (not v.is_regression, not v.dispatch_changed, order[v.label]),
    )
    for v in rows:
        if v.label == "unchanged" and not show_unchanged and not v.dispatch_changed:
            continue
        mark = "" if v.dispatch is None else DISPATCH_MARK[v.dispatch.changed]
        table.add_row(
            safe(v.id),
            _median_text(v.baseline_median_s),
            _median_text(v.current_median_s),
            "—" if v.ratio is None else f"{v.ratio:.3f}",
            "—" if v.ci_low is None or v.ci_high is None else f"{v.ci_low:.3f}–{v.ci_high:.3f}",
            "—" if v.q_value is None else f"{v.q_value:.2g}",
            Text(v.label, style=VERDICT_STYLE[v.label]),
            *(
                [Text(mark, style="bold magenta" if v.dispatch_changed else "dim")]
                if dispatch
                else []
            ),
            safe(v.reason or ""),
        )
    notes = dispatch_notes(result)
    return table if notes is None else Group(table, notes)


def plan_view(plan: Plan, title: str) -> Any:
    """A rich Table of a plan: cases, estimated time and sources per suite × device."""
    from rich import box
    from rich.table import Table

    table = Table(title=safe(title), title_justify="left", box=box.SIMPLE_HEAD, show_footer=True)
    total_sources = _sources_text(source_counts(plan.cases))
    table.add_column("suite", footer="total", overflow="fold")
    table.add_column("device")
    table.add_column("cases", justify="right", footer=str(len(plan.cases)))
    table.add_column("estimate", justify="right", footer=fmt_duration(plan.total_s))
    table.add_column("sources", footer=total_sources, overflow="fold")
    for g in plan.groups():
        table.add_row(
            safe(g.suite),
            safe(g.device),
            str(g.cases),
            fmt_duration(g.seconds),
            _sources_text(g.sources),
        )
    if plan.timeouts:
        table.caption = f"{plan.timeouts} case(s) expected to reach the timeout"
        table.caption_justify = "left"
    return table


def _sources_text(counts: Mapping[str, int]) -> str:
    """Counts as `baseline 40, declared 15`, in `SOURCES` order; one source alone by name."""
    present = [(s, counts[s]) for s in SOURCES if counts.get(s)]
    if len(present) == 1:
        return present[0][0]
    return ", ".join(f"{s} {n}" for s, n in present)


class Progress:
    """A transient progress bar on stderr; silent when stderr is not a terminal.

    With `estimates` (seconds by case id, see `eigenbench.run.plan`) it shows the time left:
    the estimates of the cases not yet done, scaled by how the finished ones compared with
    theirs (`plan.remaining_s`), counting down between cases.
    """

    def __init__(
        self,
        total: int,
        description: str = "measuring",
        *,
        estimates: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress
        from rich.table import Column

        self._clock = clock
        self._left = dict(estimates or {})
        self._done_estimated = 0.0
        self._start = clock()
        self._remaining = (sum(self._left.values()), self._start)
        columns: list[Any] = [
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ]
        if self._left:
            columns.append(_remaining_column(self))
        self._console = Console(stderr=True)
        self._progress = RichProgress(
            *columns,
            TextColumn("{task.fields[case]}", markup=False, table_column=Column(overflow="fold")),
            console=self._console,
            transient=True,
            disable=not self._console.is_terminal,
        )
        self._task = self._progress.add_task(description, total=total, case="")

    def remaining(self) -> float | None:
        """Seconds left by the estimates, counted down since the last finished case; None
        without estimates."""
        if not self._left and not self._done_estimated:
            return None
        seconds, since = self._remaining
        return max(0.0, seconds - (self._clock() - since))

    def __enter__(self) -> Progress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)  # type: ignore[arg-type]

    def update(self, done: int, total: int) -> None:
        """Progress as counts (when there is no record per step)."""
        self._progress.update(self._task, completed=done, total=total)

    def advance(self, record: Mapping[str, Any], index: int, total: int) -> None:
        """A case finished (the runner's `on_record`)."""
        now = self._clock()
        self._done_estimated += self._left.pop(record["id"], 0.0)
        left = sum(self._left.values())
        self._remaining = (remaining_s(left, self._done_estimated, now - self._start), now)
        case = clean_text(record["id"])
        self._progress.update(self._task, completed=index + 1, total=total, case=case)


def _remaining_column(progress: Progress) -> Any:
    """A rich column showing `progress.remaining()`."""
    from rich.progress import ProgressColumn
    from rich.table import Column
    from rich.text import Text

    class RemainingColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            left = progress.remaining()
            return Text("" if left is None else f"~{fmt_duration(left)} left", style="cyan")

    return RemainingColumn(table_column=Column(no_wrap=True))
