"""What the CLI shows: a progress bar on stderr, and the results, plan and compare tables on
stdout (rich)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from eigenbench.gate.verdicts import LABELS
from eigenbench.run.plan import SOURCES, remaining_s, source_counts
from eigenbench.units import fmt_bytes, fmt_duration, fmt_seconds

if TYPE_CHECKING:
    from eigenbench.gate.verdicts import CompareResult
    from eigenbench.run.plan import Plan


STATUS_STYLE = {
    "ok": "green",
    "invalid": "bold red",
    "failed": "bold red",
    "timeout": "yellow",
    "skipped": "dim",
    "interrupted": "yellow",
}


def results_table(records: Iterable[Mapping[str, Any]], title: str = "eigenbench") -> Any:
    """A rich Table of the records: case, median, interval, validation, memory, status."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("case", overflow="fold")
    table.add_column("median", justify="right")
    table.add_column("95% CI", justify="right")
    table.add_column("first call", justify="right")
    table.add_column("max rel err", justify="right")
    table.add_column("peak mem", justify="right")
    table.add_column("host blocks", justify="center")
    table.add_column("status")
    for r in records:
        s = r.get("summary") or {}
        v = r.get("validation") or {}
        mem = (r.get("memory") or {}).get("peak_bytes")
        err = v.get("max_rel_err")
        style = STATUS_STYLE.get(r["status"], "")
        status = r["status"] + (" (noisy)" if r.get("noisy") else "")
        if r.get("reason"):
            status += f": {r['reason']}"
        conv = r.get("convergence")
        if conv:
            status += (
                f"; target {conv['target']:.0e} in {conv['steps_to_target']} steps, "
                f"{fmt_seconds(conv['seconds_to_target'])}"
                if conv["reached"]
                else f"; target {conv['target']:.0e} not reached in {conv.get('steps_taken')} steps"
            )
        hb = r.get("host_blocking")
        table.add_row(
            r["id"],
            fmt_seconds(s.get("median_s")),
            f"{fmt_seconds(s.get('ci95_low_s'))} – {fmt_seconds(s.get('ci95_high_s'))}"
            if s
            else "—",
            fmt_seconds(r.get("first_call_s")),
            "—" if err is None else f"{err:.1e}",
            fmt_bytes(mem),
            "—" if hb is None else ("yes" if hb else "no"),
            f"[{style}]{status}[/]" if style else status,
        )
    return table


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
            else f"drift allowed: {result.case_drift * 100:.2g} % per case"
            + (f", {result.run_drift * 100:.2g} % shared" if result.run_drift else "")
        ]
    if result.median_mde is not None:
        parts.append(f"slowdown caught 80 % of the time: {result.median_mde * 100:.2g} % (median)")
    if result.shift is not None:
        parts.append(f"whole-run shift ×{result.shift:.3f}")
    return "; ".join(parts)


def render_table(result: CompareResult, *, show_unchanged: bool = True) -> Any:
    """A rich Table of the verdicts (regressions first); the CLI prints it."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    rel = f", relative to {result.relative_to}" if result.relative_to else ""
    counts = ", ".join(f"{n} {k}" for k, n in result.counts().items() if n)
    table = Table(
        title=f"compare: threshold {result.threshold * 100:.3g} %, BH q = {result.alpha:g}{rel}",
        caption="\n".join(filter(None, [counts or "no cases", _noise_caption(result)])),
    )
    for name, justify in (
        ("case", "left"),
        ("baseline", "right"),
        ("current", "right"),
        ("ratio", "right"),
        ("95 % interval", "right"),
        ("q", "right"),
        ("verdict", "left"),
        ("why", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    order = {label: i for i, label in enumerate(LABELS)}
    rows = sorted(result.verdicts, key=lambda v: (not v.is_regression, order[v.label]))
    for v in rows:
        if v.label == "unchanged" and not show_unchanged:
            continue
        table.add_row(
            escape(v.id),
            _median_text(v.baseline_median_s),
            _median_text(v.current_median_s),
            "—" if v.ratio is None else f"{v.ratio:.3f}",
            "—" if v.ci_low is None or v.ci_high is None else f"{v.ci_low:.3f}–{v.ci_high:.3f}",
            "—" if v.q_value is None else f"{v.q_value:.2g}",
            Text(v.label, style=VERDICT_STYLE[v.label]),
            escape(v.reason or ""),
        )
    return table


def plan_view(plan: Plan, title: str) -> Any:
    """A rich Table of a plan: cases, estimated time and sources per suite × device."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_footer=True)
    total_sources = _sources_text(source_counts(plan.cases))
    table.add_column("suite", footer="total", overflow="fold")
    table.add_column("device")
    table.add_column("cases", justify="right", footer=str(len(plan.cases)))
    table.add_column("estimate", justify="right", footer=fmt_duration(plan.total_s))
    table.add_column("sources", footer=total_sources, overflow="fold")
    for g in plan.groups():
        table.add_row(
            g.suite, g.device, str(g.cases), fmt_duration(g.seconds), _sources_text(g.sources)
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

    With `estimates` (seconds by case id, see `eigenbench.plan`) it shows the time left:
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
            TextColumn("{task.fields[case]}", table_column=Column(overflow="fold")),
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
        self._progress.update(self._task, completed=index + 1, total=total, case=record["id"])


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
