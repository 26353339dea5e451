"""What the CLI shows: a progress bar on stderr and a results table on stdout (rich)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def fmt_seconds(s: float | None) -> str:
    """Seconds in the unit a reader expects (s, ms, µs, ns)."""
    if s is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def fmt_bytes(b: float | None) -> str:
    if b is None:
        return "—"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= scale:
            return f"{b / scale:.3g} {unit}"
    return f"{int(b)} B"


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


class Progress:
    """A transient progress bar on stderr; silent when stderr is not a terminal."""

    def __init__(self, total: int, description: str = "measuring") -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self._console = Console(stderr=True)
        self._progress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[case]}"),
            console=self._console,
            transient=True,
            disable=not self._console.is_terminal,
        )
        self._task = self._progress.add_task(description, total=total, case="")

    def __enter__(self) -> Progress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)  # type: ignore[arg-type]

    def update(self, done: int, total: int) -> None:
        """Progress as counts (when there is no record per step)."""
        self._progress.update(self._task, completed=done, total=total)

    def advance(self, record: Mapping[str, Any], index: int, total: int) -> None:
        self._progress.update(self._task, completed=index + 1, case=record["id"])
