"""Charts of the report model with matplotlib's object API (Agg, no pyplot), as PNG bytes.

Same model → same bytes: fixed sizes and dpi, the default style pinned (a user's matplotlibrc
cannot leak in), no `Software` metadata. Times are drawn in milliseconds, memory in MiB.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from eigenbench.report.files import CHART_KINDS, chart_file_name
from eigenbench.report.machine_charts import machine_jobs
from eigenbench.report.model import (
    ConvergenceGroup,
    MemoryGroup,
    PhaseGroup,
    ReportModel,
    SpeedupGroup,
    SweepGroup,
    VerdictRow,
)
from eigenbench.report.style import (
    BAD,
    DPI,
    PALETTE,
    fmt_tick,
    pinned_style,
    png_bytes,
    short_label,
    styled,
)
from eigenbench.units import fmt_ms, fmt_sig

MAX_CROSSOVERS_DRAWN = 4
_PHASE_COLOURS = {"fwd": "#d62728", "forward": "#d62728", "bwd": "#1f77b4", "backward": "#1f77b4"}
_VERDICT_COLOURS = {
    "slower": "#c0392b",
    "faster": "#2e8b57",
    "failed": "#7f0000",
    "invalid": "#7f0000",
}
_INVALID_MARK: dict[str, Any] = {"ls": "none", "marker": "x", "ms": 9, "mew": 2, "color": BAD}
_INVALID_LABEL = "invalid result (failed validation)"


@dataclass(frozen=True, slots=True)
class Chart:
    """One rendered chart: a file name (no folder), a title, alt text and the PNG bytes."""

    name: str
    kind: str
    title: str
    alt: str
    caption: str
    png: bytes


# --------------------------------------------------------------------------- helpers


def _fmt_x(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _fmt_mult(v: float) -> str:
    if v >= 100:
        return f"{v:.0f}×"
    if v >= 1:
        return f"{v:.1f}×"
    return f"{fmt_sig(v, 2)}×"


def _log_y(ax: Any, values: Sequence[float]) -> None:
    """Log y axis, labelled at 1-2-5 steps over narrow ranges and at decades otherwise.

    Minor ticks are left out on purpose: each tick costs time to lay out, and a report of
    hundreds of cases must render in seconds.
    """
    ax.set_yscale("log")
    pos = [v for v in values if v > 0]
    decades = math.log10(max(pos) / min(pos)) if pos else 0.0
    subs = (1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=subs))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(fmt_tick))
    ax.yaxis.set_minor_locator(ticker.NullLocator())


def _log_x_at(ax: Any, xs: Sequence[float]) -> None:
    """Log x axis ticked at the sizes that were run (thinned to at most 12 labels)."""
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    values = sorted(set(xs))
    step = max(1, math.ceil(len(values) / 12))
    shown = values[::step]
    ax.set_xticks(shown, labels=[_fmt_x(v) for v in shown])


def _log2_ratio_axis(ax: Any, axis: str, lo: float, hi: float) -> None:
    """A log2 ratio axis from lo to hi with a line at 1×; 1.5× steps when the range is narrow."""
    which = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log", base=2)
    (ax.set_ylim if axis == "y" else ax.set_xlim)(lo, hi)
    subs = (1.0, 1.25, 1.5, 1.75) if hi / lo < 4 else (1.0, 1.5) if hi / lo < 40 else (1.0,)
    which.set_major_locator(ticker.LogLocator(base=2, subs=subs))
    which.set_major_formatter(ticker.FuncFormatter(lambda v, _p: f"{v:.3g}×"))
    which.set_minor_locator(ticker.NullLocator())
    (ax.axhline if axis == "y" else ax.axvline)(1.0, color="#444", lw=1)


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI)


def colour_map(labels: Sequence[str]) -> dict[str, str]:
    """A stable colour per label, in first-appearance order."""
    return {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(dict.fromkeys(labels))}


def _legend_right(ax: Any, **kw: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kw
        )


# --------------------------------------------------------------------------- figures


@styled
def sweep_figure(g: SweepGroup, colours: dict[str, str]) -> Figure:
    """Time vs size on log-log axes: median line, ci95 band, fitted exponent, crossovers."""
    fig = _figure(8.0, 4.4)
    fig.subplots_adjust(left=0.09, right=0.64, top=0.9, bottom=0.12)
    ax = fig.add_subplot()
    xs_all: list[float] = []
    any_invalid = False
    for s in g.series:
        xs = [p.x for p in s.points]
        xs_all += xs
        med = [p.median_s * 1e3 for p in s.points]
        colour = colours.get(s.label, "#333")
        label = short_label(s.label)
        if s.exponent is not None:
            label += f"  (∝ {g.x_param}^{s.exponent:.2f})"
        ax.fill_between(
            xs,
            [p.low_s * 1e3 for p in s.points],
            [p.high_s * 1e3 for p in s.points],
            color=colour,
            alpha=0.2,
            linewidth=0,
        )
        ax.plot(xs, med, marker="o", ms=4, lw=1.6, color=colour, label=label)
        bad = [(p.x, p.median_s * 1e3) for p in s.points if not p.valid]
        if bad:
            any_invalid = True
            ax.plot(*zip(*bad, strict=True), **_INVALID_MARK)
    for c in g.crossovers[:MAX_CROSSOVERS_DRAWN]:
        ax.axvline(
            c.x,
            color="#555",
            ls="--",
            lw=1,
            label=f"{g.x_param}≈{c.x:.3g}: {short_label(c.faster_above, 18)}\n"
            f"  overtakes {short_label(c.faster_below, 18)}",
        )
    if any_invalid:
        ax.plot([], [], label=_INVALID_LABEL, **_INVALID_MARK)
    _log_x_at(ax, xs_all)
    _log_y(ax, [v * 1e3 for s in g.series for p in s.points for v in (p.low_s, p.high_s)])
    ax.grid(True, which="major", alpha=0.35)
    ax.set_xlabel(str(g.x_param))
    ax.set_ylabel("median time (ms), band = 95 % interval")
    ax.set_title(short_label(g.title, 70), loc="left")
    _legend_right(ax)
    return fig


@styled
def speedup_figure(g: SpeedupGroup, colours: dict[str, str]) -> Figure:
    """Speedup over the reference impl: lines vs size, or bars when there is one size."""
    if g.x_param is not None:
        fig = _figure(8.0, 4.0)
        fig.subplots_adjust(left=0.1, right=0.64, top=0.88, bottom=0.13)
        ax = fig.add_subplot()
        xs_all: list[float] = []
        for line in g.lines:
            colour = colours.get(line.label, "#333")
            xs_all += line.xs
            ax.fill_between(line.xs, line.lows, line.highs, color=colour, alpha=0.18, lw=0)
            ax.plot(
                line.xs,
                line.speedups,
                marker="o",
                ms=4,
                color=colour,
                label=short_label(line.label),
            )
            bad = [
                (x, v)
                for x, v, ok in zip(line.xs, line.speedups, line.valid, strict=True)
                if not ok
            ]
            if bad:
                ax.plot(*zip(*bad, strict=True), **_INVALID_MARK)
        if not all(all(line.valid) for line in g.lines):
            ax.plot([], [], label=_INVALID_LABEL, **_INVALID_MARK)
        _log_x_at(ax, xs_all)
        lo = min(min(line.lows) for line in g.lines)
        hi = max(max(line.highs) for line in g.lines)
        _log2_ratio_axis(ax, "y", min(lo, 1.0) / 1.3, max(hi, 1.0) * 1.3)
        ax.set_xlabel(str(g.x_param))
        ax.set_ylabel(f"speedup vs {short_label(g.reference, 24)}")
        ax.grid(True, which="major", alpha=0.35)
        _legend_right(ax, title="above 1× = faster")
    else:
        n = len(g.lines)
        fig = _figure(8.0, 1.3 + 0.38 * n)
        fig.subplots_adjust(
            left=0.3, right=0.95, top=1 - 0.55 / (1.3 + 0.38 * n), bottom=0.5 / (1.3 + 0.38 * n)
        )
        ax = fig.add_subplot()
        names = [short_label(line.label, 28) for line in g.lines]
        vals = [line.speedups[0] for line in g.lines]
        ys = list(range(n))[::-1]
        ax.barh(
            ys,
            [v - 1 for v in vals],
            left=1.0,
            height=0.6,
            color=[colours.get(line.label, "#333") for line in g.lines],
        )
        ax.set_yticks(ys, labels=names)
        lo, hi = min([*vals, 1.0]), max([*vals, 1.0])
        _log2_ratio_axis(ax, "x", lo / 1.6, hi * 1.6)
        for y, v in zip(ys, vals, strict=True):
            ax.text(
                v * (1.04 if v >= 1 else 0.96),
                y,
                _fmt_mult(v),
                va="center",
                ha="left" if v >= 1 else "right",
                fontsize=8,
            )
        ax.set_xlabel(f"speedup over {short_label(g.reference, 24)} (right of 1× = faster)")
        ax.grid(True, axis="x", alpha=0.35)
    ax.set_title(short_label(f"speedup vs {g.reference} · {g.title}", 80), loc="left")
    return fig


@styled
def phase_figure(g: PhaseGroup) -> Figure:
    """Phase bars on a log axis with each bar's multiplier over the reference bar above it."""
    n = len(g.bars)
    width = min(12.0, max(6.0, 1.6 + 0.75 * n))
    fig = _figure(width, 4.4)
    fig.subplots_adjust(left=0.6 / width * 1.6, right=0.98, top=0.88, bottom=0.16)
    ax = fig.add_subplot()
    phases = list(dict.fromkeys(b.phase for b in g.bars))
    extra = iter(PALETTE[2:])
    pcol = {ph: _PHASE_COLOURS.get(ph) or next(extra, "#7f7f7f") for ph in phases}
    heights = [b.median_s * 1e3 for b in g.bars]
    xs = list(range(n))
    yerr = [
        [max(0.0, h - b.low_s * 1e3) for h, b in zip(heights, g.bars, strict=True)],
        [max(0.0, b.high_s * 1e3 - h) for h, b in zip(heights, g.bars, strict=True)],
    ]
    ax.bar(
        xs,
        heights,
        width=0.7,
        color=[pcol[b.phase] for b in g.bars],
        edgecolor=["black" if b.is_reference else "none" for b in g.bars],
        linewidth=1.5,
        yerr=yerr,
        ecolor="#333",
        capsize=2,
    )
    _log_y(ax, [v * 1e3 for b in g.bars for v in (b.low_s, b.high_s * 4)])
    for x, b, h in zip(xs, g.bars, heights, strict=True):
        ax.text(
            x,
            b.high_s * 1e3 * 1.12,
            _fmt_mult(b.multiplier),
            ha="center",
            va="bottom",
            fontsize=8,
            fontweight="bold" if b.is_reference else "normal",
            color=BAD if not b.valid else "black",
        )
        if not b.valid:
            ax.text(
                x,
                h / 1.5,
                "invalid",
                ha="center",
                va="top",
                rotation=90,
                color="white",
                fontsize=7,
                fontweight="bold",
            )
    top = max(b.high_s for b in g.bars) * 1e3
    bottom = min(b.low_s for b in g.bars) * 1e3
    ax.set_ylim(bottom / 3, top * 4)
    ax.set_xticks(xs, labels=[f"{b.phase}\n{short_label(b.impl, 14)}" for b in g.bars])
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylabel("median time (ms), log scale")
    ax.grid(True, axis="y", which="major", alpha=0.35)
    handles = [Line2D([], [], color=pcol[ph], lw=6) for ph in phases]
    ax.legend(handles, phases, loc="upper left", ncols=len(phases))
    ax.set_title(short_label(g.title, 90), loc="left")
    ax.set_title(
        f"× = time / {short_label(g.reference, 30)}",
        loc="right",
        fontsize=8,
        fontweight="normal",
        color="#444",
    )
    return fig


@styled
def memory_figure(g: MemoryGroup, colours: dict[str, str]) -> Figure:
    """Peak memory per impl as horizontal bars in MiB."""
    n = len(g.bars)
    height = 1.3 + 0.36 * n
    fig = _figure(8.0, height)
    fig.subplots_adjust(left=0.3, right=0.9, top=1 - 0.55 / height, bottom=0.5 / height)
    ax = fig.add_subplot()
    mib = [b.peak_bytes / 2**20 for b in g.bars]
    ys = list(range(n))[::-1]
    ax.barh(
        ys,
        mib,
        height=0.6,
        color=[
            colours.get(f"{b.impl} · {b.device}") or colours.get(b.impl, "#555") for b in g.bars
        ],
    )
    ax.set_yticks(ys, labels=[short_label(b.label, 30) for b in g.bars])
    top = max(mib) if max(mib) > 0 else 1.0
    ax.set_xlim(0, top * 1.22)
    for y, v in zip(ys, mib, strict=True):
        ax.text(v + top * 0.01, y, f"{v:.3g} MiB", va="center", fontsize=8)
    kinds = sorted({b.kind for b in g.bars})
    ax.set_xlabel(f"peak memory (MiB; {', '.join(kinds)})")
    ax.grid(True, axis="x", alpha=0.35)
    ax.set_title(short_label(f"memory · {g.title}", 80), loc="left")
    return fig


@styled
def convergence_figure(g: ConvergenceGroup, colours: dict[str, str]) -> Figure:
    """Loss against elapsed time (log y), the target as a dashed line, reach points starred."""
    fig = _figure(8.0, 4.2)
    fig.subplots_adjust(left=0.09, right=0.64, top=0.9, bottom=0.12)
    ax = fig.add_subplot()
    targets = []
    for c in g.curves:
        colour = colours.get(c.label.split(" (")[0], "#333")
        if c.reached and c.seconds_to_target is not None:
            steps = f"\n  {c.steps_to_target} steps" if c.steps_to_target is not None else ""
            label = f"{short_label(c.label)}: target in\n  {fmt_ms(c.seconds_to_target)} ms{steps}"
        else:
            label = f"{short_label(c.label)}: target not reached"
        ax.plot([t * 1e3 for t in c.times_s], c.losses, lw=1.5, color=colour, label=label)
        if c.reached and c.seconds_to_target is not None:
            ax.plot(
                [c.seconds_to_target * 1e3],
                [c.target],
                marker="*",
                ms=11,
                color=colour,
                mec="black",
                mew=0.6,
                ls="none",
            )
        if c.target > 0 and c.target not in targets:
            targets.append(c.target)
    for t in targets:
        ax.axhline(t, color="#555", ls="--", lw=1, label=f"target loss {t:.3g}")
    _log_y(ax, [v for c in g.curves for v in c.losses] + targets)
    ax.set_xlim(left=0)
    ax.set_xlabel("elapsed time (ms)")
    ax.set_ylabel("loss (log scale)")
    ax.grid(True, which="major", alpha=0.35)
    ax.set_title(short_label(f"convergence · {g.title}", 70), loc="left")
    _legend_right(ax)
    return fig


@styled
def baseline_figure(rows: Sequence[VerdictRow], limit: int) -> Figure | None:
    """Speedup over the baseline per case (log2 axis): the `limit` largest changes."""
    pts = [(r, r.speedup) for r in rows if r.speedup is not None]
    if not pts:
        return None
    pts = sorted(pts, key=lambda rs: (-abs(math.log(rs[1])), rs[0].id))[:limit]
    pts.sort(key=lambda rs: (rs[1], rs[0].id))
    n = len(pts)
    height = 1.4 + 0.3 * n
    fig = _figure(9.0, height)
    fig.subplots_adjust(left=0.44, right=0.95, top=1 - 0.6 / height, bottom=0.55 / height)
    ax = fig.add_subplot()
    ys = list(range(n))
    vals = [s for _, s in pts]
    colours = [_bar_colour(r.label, s) for r, s in pts]
    ax.barh(ys, [v - 1 for v in vals], left=1.0, height=0.6, color=colours)
    lows, highs = [], []
    for r, s in pts:
        if r.ci_low is not None and r.ci_high is not None and r.ci_low > 0 and r.ci_high > 0:
            lows.append(max(0.0, s - 1 / r.ci_high))
            highs.append(max(0.0, 1 / r.ci_low - s))
        else:
            lows.append(0.0)
            highs.append(0.0)
    ax.errorbar(vals, ys, xerr=[lows, highs], fmt="none", ecolor="#333", capsize=2, lw=0.8)
    ax.set_yticks(ys, labels=[short_label(r.id, 60) for r, _ in pts])
    lo, hi = min([*vals, 1.0]), max([*vals, 1.0])
    _log2_ratio_axis(ax, "x", lo / 1.4, hi * 1.4)
    ax.set_xlabel("speedup over baseline = baseline / current (right of 1× = faster)")
    ax.grid(True, axis="x", alpha=0.35)
    more = len([1 for r in rows if r.speedup is not None]) - n
    title = "current vs baseline" + (f" · the {n} largest changes" if more > 0 else "")
    ax.set_title(title, loc="left")
    return fig


def _bar_colour(label: str, speedup: float) -> str:
    if label == "compared":  # a plain baseline ratio, no test behind it
        return _VERDICT_COLOURS["faster"] if speedup > 1 else _VERDICT_COLOURS["slower"]
    return _VERDICT_COLOURS.get(label, "#8a8a8a")


# --------------------------------------------------------------------------- all charts


def render_charts(model: ReportModel, *, baseline_limit: int = 30) -> list[Chart]:
    """Every chart of the model, in page order, with unique file names."""
    labels = [s.label for g in model.sweeps for s in g.series]
    labels += [line.label for g in model.speedups for line in g.lines]
    labels += [b.impl for g in model.memory for b in g.bars]
    labels += [c.label.split(" (")[0] for g in model.convergence for c in g.curves]
    colours = colour_map(labels)
    jobs: list[tuple[str, str, str, Callable[[], Figure | None]]] = []  # kind, key, caption

    def add(kind: str, key: str, caption: str, fn: Callable[..., Figure | None], *a: Any) -> None:
        jobs.append((kind, key, caption, functools.partial(fn, *a)))

    if model.verdicts:
        caption = "Speedup of each case over the baseline; bars right of 1× are faster."
        add("baseline", "", caption, baseline_figure, model.verdicts, baseline_limit)
    jobs += machine_jobs(model)  # a run of several machines (`eigenbench merge`); else none
    for g in model.sweeps:
        add("sweep", g.title, _sweep_caption(g), sweep_figure, g, colours)
    for sg in model.speedups:
        add("speedup", sg.title, sg.caption, speedup_figure, sg, colours)
    for pg in model.phases:
        caption = f"Median time per phase and impl (log scale); × = multiple of {pg.reference}."
        add("phases", pg.title, caption, phase_figure, pg)
    for mg in model.memory:
        add("memory", mg.title, "Peak memory per impl at this size.", memory_figure, mg, colours)
    for cg in model.convergence:
        caption = "Loss against elapsed time; stars mark where the target was reached."
        add("loss", cg.title, caption, convergence_figure, cg, colours)
    if model.rooflines:
        from eigenbench.report.roofline import roofline_figure  # matplotlib only when needed

        for rg in model.rooflines:
            add("roofline", rg.title, rg.caption, roofline_figure, rg)

    charts = []
    with pinned_style():
        for i, (kind, key, caption, make) in enumerate(jobs, start=1):
            fig = make()
            if fig is None:
                continue
            title = f"{CHART_KINDS[kind]} · {key}" if key else CHART_KINDS[kind]
            name = chart_file_name(i, kind, key)
            charts.append(Chart(name, kind, title, f"{title} (chart)", caption, png_bytes(fig)))
    return charts


def _sweep_caption(g: SweepGroup) -> str:
    fits = "; ".join(
        f"{s.label}: time ∝ {g.x_param}^{s.exponent:.2f}"
        for s in g.series
        if s.exponent is not None
    )
    text = f"Median time vs {g.x_param} (log-log; band: 95 % interval). {fits}."
    crossings = "; ".join(
        f"{c.faster_above} faster than {c.faster_below} above {g.x_param}≈{c.x:.3g}"
        for c in g.crossovers
    )
    return text + (f" Crossovers: {crossings}." if crossings else "")


__all__ = [
    "Chart",
    "baseline_figure",
    "colour_map",
    "convergence_figure",
    "memory_figure",
    "phase_figure",
    "png_bytes",
    "render_charts",
    "speedup_figure",
    "sweep_figure",
]
