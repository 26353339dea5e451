"""The plan table and the progress bar (stderr) with its estimated time left."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from eigenbench.run.plan import SOURCES, remaining_s, source_counts
from eigenbench.units import clean_text, fmt_duration, safe

if TYPE_CHECKING:
    from eigenbench.run.plan import Plan


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
