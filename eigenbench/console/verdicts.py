"""The compare table (`compare`, `check`, `ab`): verdicts, noise and dispatch changes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from eigenbench.gate.verdicts import LABELS
from eigenbench.units import clean_text, fmt_seconds, fmt_sig, safe

if TYPE_CHECKING:
    from eigenbench.gate.verdicts import CompareResult


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
