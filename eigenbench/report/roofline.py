"""The roofline chart of one device (matplotlib's object API, Agg, the report's pinned style):
achieved FLOP/s against arithmetic intensity on log-log axes, one point per timed case, and
the roofs min(peak FLOP/s, intensity · peak bytes/s) of the measured peaks per dtype.

The data come built in `RooflineGroup` (`eigenbench.report.build.build_rooflines`); this
module only draws, with the report's pinned style and helpers (`report.style`); `charts`
registers it, and the same group gives the same PNG bytes.
"""

from __future__ import annotations

from typing import Any

from matplotlib import ticker
from matplotlib.figure import Figure

from eigenbench.report.model import RooflineGroup
from eigenbench.report.style import BAD, DPI, PALETTE, fmt_tick, short_label

MARGIN = 4.0
"""How far the x axis reaches beyond the points and knees, as a factor."""
_ROOF_STYLES = ("-", "--", "-.", ":")
_INVALID: dict[str, Any] = {"ls": "none", "marker": "x", "ms": 8, "mew": 2, "color": BAD}
_BELOW: dict[str, Any] = {"ls": "none", "marker": "o", "ms": 13, "mfc": "none", "mew": 1.6}


def _log_axis(axis: Any) -> None:
    axis.set_major_locator(ticker.LogLocator(subs=(1.0,)))
    axis.set_major_formatter(ticker.FuncFormatter(fmt_tick))
    axis.set_minor_locator(ticker.NullLocator())


def roofline_figure(g: RooflineGroup) -> Figure:
    """Points coloured per workload · impl (× for a wrong result, a red ring for a time below
    the floor) under the roofs of the device's measured peaks, one line style per dtype."""
    fig = Figure(figsize=(8.0, 4.6), dpi=DPI)
    fig.subplots_adjust(left=0.1, right=0.6, top=0.9, bottom=0.12)
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.set_yscale("log")
    xs = [p.intensity for p in g.points] + [r.knee for r in g.roofs]
    lo, hi = min(xs) / MARGIN, max(xs) * MARGIN
    ys = [p.flop_per_s for p in g.points]
    for i, r in enumerate(g.roofs):
        knee = min(max(r.knee, lo), hi)
        line_xs = [lo, knee, hi]
        line_ys = [r.attainable(x) for x in line_xs]
        ys += line_ys
        ax.plot(
            line_xs,
            line_ys,
            color="#222",
            lw=1.6,
            ls=_ROOF_STYLES[i % len(_ROOF_STYLES)],
            label=f"{r.dtype} roof (knee {r.knee:.3g} flop/B)",
        )
    names = dict.fromkeys(p.label for p in g.points)
    colours = {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(names)}
    for label, colour in colours.items():
        mine = [p for p in g.points if p.label == label]
        ax.plot(
            [p.intensity for p in mine],
            [p.flop_per_s for p in mine],
            ls="none",
            marker="o",
            ms=6,
            color=colour,
            mec="white",
            mew=0.5,
            label=short_label(label, 34),
        )
    bad = [(p.intensity, p.flop_per_s) for p in g.points if not p.valid]
    if bad:
        ax.plot(*zip(*bad, strict=True), **_INVALID)
        ax.plot([], [], label="invalid result (failed validation)", **_INVALID)
    below = [(p.intensity, p.flop_per_s) for p in g.points if p.below_floor]
    if below:
        ax.plot(*zip(*below, strict=True), mec=BAD, **_BELOW)
        ax.plot([], [], mec=BAD, label="below the floor (measurement error)", **_BELOW)
    ax.set_xlim(lo, hi)
    ax.set_ylim(min(ys) / 2, max(ys) * 3)
    _log_axis(ax.xaxis)
    _log_axis(ax.yaxis)
    ax.grid(True, which="major", alpha=0.35)
    ax.set_xlabel("arithmetic intensity (flop per byte)")
    ax.set_ylabel("achieved FLOP/s")
    ax.set_title(short_label(f"roofline · {g.title}", 90), loc="left")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig


__all__ = ["roofline_figure"]
