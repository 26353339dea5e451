"""The cross-machine charts of a merged run (matplotlib's object API, Agg, the pinned style).

`across_figure`: the same case on every machine, a dot per impl and machine (log time, the
95 % interval as a bar, × for a wrong result). `wins_figure`: who wins on which machine, a
heat map of cases × machines coloured by the fastest correct impl, its name in the cell.
The data come built by `eigenbench.report.machines`; `charts` registers both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from eigenbench.report.model import AcrossGroup, ReportModel, WinsTable
from eigenbench.report.style import BAD, DPI, PALETTE, fmt_tick, short_label
from eigenbench.units import fmt_ms

MAX_WIN_ROWS = 40
"""Most cases a heat map draws (the page's table lists them all)."""
_NONE = "#dddddd"
LABEL_IN = 2.5
"""Inches left of a heat map for its row labels (34 characters at 8 points)."""


def across_figure(g: AcrossGroup) -> Figure:
    """One row per impl, one dot per machine (coloured per machine, nudged apart)."""
    impls = list(dict.fromkeys(d.impl for d in g.dots))
    colours = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(g.machines)}
    fig = Figure(figsize=(8.0, 1.4 + 0.45 * len(impls)), dpi=DPI)
    fig.subplots_adjust(left=0.2, right=0.62, top=0.84, bottom=0.22)
    ax = fig.add_subplot()
    step = 0.6 / max(len(g.machines), 1)
    for j, machine in enumerate(g.machines):
        mine = [d for d in g.dots if d.machine == machine]
        ys = [impls.index(d.impl) + (j - (len(g.machines) - 1) / 2) * step for d in mine]
        xs = [d.median_s * 1e3 for d in mine]
        err = [
            [(d.median_s - d.low_s) * 1e3 for d in mine],
            [(d.high_s - d.median_s) * 1e3 for d in mine],
        ]
        ax.errorbar(
            xs,
            ys,
            xerr=err,
            ls="none",
            marker="o",
            ms=6,
            color=colours[machine],
            label=short_label(machine, 40),
        )
        bad = [(x, y) for x, y, d in zip(xs, ys, mine, strict=True) if not d.valid]
        if bad:
            ax.plot(*zip(*bad, strict=True), ls="none", marker="x", ms=9, mew=2, color=BAD)
    ax.set_xscale("log")
    lows = [d.low_s * 1e3 for d in g.dots if d.low_s > 0]
    highs = [d.high_s * 1e3 for d in g.dots]
    if lows and highs:
        ax.set_xlim(min(lows) / 1.6, max(highs) * 1.6)
    ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(fmt_tick))
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.set_yticks(range(len(impls)), [short_label(i, 24) for i in impls])
    ax.set_ylim(len(impls) - 0.5, -0.5)
    ax.grid(True, axis="x", which="major", alpha=0.35)
    ax.set_xlabel("median time (ms, log scale)")
    ax.set_title(short_label(f"across machines · {g.title}", 64), loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig


def wins_figure(t: WinsTable) -> Figure:
    """Cases (rows) × machines (columns), each cell the winner's colour, name and median."""
    rows = t.rows[:MAX_WIN_ROWS]
    winners = [w for _, cells in rows for w, _ in cells if w]
    colours = {w: PALETTE[i % len(PALETTE)] for i, w in enumerate(dict.fromkeys(winners))}
    width, height = min(LABEL_IN + 2.0 * len(t.machines), 14.0), 1.5 + 0.32 * len(rows)
    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(left=LABEL_IN / width, right=0.98, top=1 - 0.9 / height, bottom=0.02)
    ax = fig.add_subplot()
    for i, (_, cells) in enumerate(rows):
        for j, (winner, median) in enumerate(cells):
            colour = colours.get(winner or "", _NONE)
            ax.add_patch(Rectangle((j, i), 1, 1, facecolor=colour, edgecolor="white", lw=1.5))
            text = "" if winner == "" else "none correct" if winner is None else winner
            if median is not None:
                text += f" · {fmt_ms(median)} ms"
            ax.text(
                j + 0.5,
                i + 0.5,
                short_label(text, 30),
                ha="center",
                va="center",
                fontsize=7.5,
                color="white" if winner else "#333333",
            )
    ax.set_xlim(0, len(t.machines))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks([j + 0.5 for j in range(len(t.machines))])
    ax.set_xticklabels([short_label(m, 34) for m in t.machines], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks([i + 0.5 for i in range(len(rows))])
    ax.set_yticklabels([_row_label(t.columns, values) for values, _ in rows], fontsize=8)
    ax.tick_params(length=0)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    cut = f" (first {MAX_WIN_ROWS} of {len(t.rows)})" if len(t.rows) > len(rows) else ""
    ax.set_title(
        short_label(f"who wins on which machine · {t.workload}{cut}", 80), loc="left", pad=22
    )
    return fig


def machine_jobs(model: ReportModel) -> list[tuple[str, str, str, Callable[[], Figure]]]:
    """The cross-machine charts of a model as `render_charts` jobs (kind, key, caption, draw),
    in page order; none for a run of one machine."""
    jobs: list[tuple[str, str, str, Callable[[], Figure]]] = []
    for g in model.across:
        jobs.append(("machines", g.title, g.caption, functools.partial(across_figure, g)))
    for t in model.wins:
        jobs.append(("wins", t.workload, t.caption, functools.partial(wins_figure, t)))
    return jobs


def _row_label(columns: Any, values: Any) -> str:
    return short_label(", ".join(f"{c}={v}" for c, v in zip(columns, values, strict=True)), 34)


__all__ = ["across_figure", "machine_jobs", "wins_figure"]
