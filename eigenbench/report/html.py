"""The report as one self-contained HTML page (Jinja2, autoescaped), chart PNGs beside it."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from eigenbench.report.answer_tables import AXES
from eigenbench.report.build import build_model
from eigenbench.report.charts import Chart, render_charts
from eigenbench.report.files import is_chart_file
from eigenbench.report.model import (
    AnswerRow,
    AnswerTable,
    ReportModel,
    Row,
    VerdictRow,
    WinsTable,
)
from eigenbench.results import write_atomic
from eigenbench.units import fmt_bytes, fmt_ms

CHART_DIR = "charts"
FILE_MODE = 0o644
PAGE_TEMPLATE = "report.html.j2"
STYLE_FILE = "report.css"
"""The page's style sheet, in templates/ beside the page template."""
SCRIPT_FILE = "sort.js"
"""Sorts a table by the clicked header: numbers by data-sort, text otherwise, blanks last."""

# --------------------------------------------------------------------------- formatting


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else fmt_ms(seconds)


def breakable(text: str) -> Markup:
    """Escaped text with a line-break chance after each `/` and `,` (long case ids)."""
    return Markup(str(escape(text)).replace("/", "/<wbr>").replace(",", ",<wbr>"))


def _num(v: float | None) -> str:
    """A data-sort value: repr of the number, or empty (sorted last)."""
    return "" if v is None else repr(float(v))


def _row_view(r: Row) -> dict[str, Any]:
    rel = None
    if r.median_s and r.low_s is not None and r.high_s is not None:
        rel = (r.high_s - r.low_s) / (2 * r.median_s)
    interval = "—" if rel is None else f"{_ms(r.low_s)}–{_ms(r.high_s)} (±{rel * 100:.1f} %)"
    if r.validation_ok is None:
        validation, val_bad, val_title = "—", False, ""
    else:
        err = "" if r.max_rel_err is None else f" · {r.max_rel_err:.1e}"
        validation = ("ok" if r.validation_ok else "WRONG") + err
        val_bad = not r.validation_ok
        val_title = ", ".join(
            f"{name} {value:.3g}" if isinstance(value, float) else f"{name} {value}"
            for name, value in (
                ("max rel err", r.max_rel_err),
                ("max abs err", r.max_abs_err),
                ("reference", r.reference),
            )
            if value is not None
        )
    blocking = {True: "blocks host", False: "no", None: "—"}[r.host_blocking]
    return {
        "id": r.id,
        "impl": r.impl,
        "device": r.device,
        "dtype": r.dtype,
        "phase": r.phase,
        "status": r.status,
        "reason": r.reason or "",
        "notes": "; ".join(r.notes),
        "expected_invalid": r.expected_invalid or "",
        "under_load": r.under_load,
        "noisy": r.noisy,
        "median": _ms(r.median_s),
        "median_sort": _num(r.median_s),
        "interval": interval,
        "interval_sort": _num(rel),
        "memory": fmt_bytes(r.peak_bytes, unit="MiB", with_unit=False),
        "memory_sort": _num(r.peak_bytes),
        "memory_kind": r.memory_kind or "",
        "blocking": blocking,
        "dispatch": r.dispatch or "—",
        "dispatch_title": r.dispatch_detail or "",
        "validation": validation,
        "validation_sort": _num(r.max_rel_err),
        "validation_bad": val_bad,
        "validation_title": val_title,
        "interval_title": "" if rel is None else f"{_ms(r.low_s)}–{_ms(r.high_s)} ms",
    }


def _times(v: float) -> str:
    """A speedup factor: two decimals below 2, one below 100, none above."""
    return f"{v:.2f}" if v < 2 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def _margin(r: AnswerRow) -> str:
    if r.winner is None:
        return ""
    if r.runner_up is None:
        return "only correct impl"
    if r.tie:  # the page puts a "tie" badge before it
        return f"with {r.runner_up}"
    if r.ratio is None or r.low is None or r.high is None:
        return f"faster than {r.runner_up}"
    return f"×{_times(r.ratio)} ({_times(r.low)}–{_times(r.high)}) over {r.runner_up}"


def _percent(fraction: float | None) -> str:
    """A fraction of peak as `42 %`, `4.2 %`, `0.042 %`; empty when unknown."""
    if fraction is None:
        return ""
    pct = 100 * fraction
    return f"{pct:.0f} %" if pct >= 10 else f"{pct:.1f} %" if pct >= 1 else f"{pct:.2g} %"


def _answer_view(t: AnswerTable) -> dict[str, Any]:
    """One workload's answer table as the page shows it, with its faster-but-invalid notes."""
    shared = [v if n in AXES else f"{n}={v}" for n, v in t.fixed if (n, v) != ("phase", "call")]
    rows, invalid, below_floor = [], [], []
    for r in t.rows:
        where = ", ".join(f"{n}={v}" for n, v in zip(t.columns, r.values, strict=True))
        at = f" at {where}" if where else ""
        if r.faster_invalid:
            invalid.append(f"{', '.join(r.faster_invalid)}{at}")
        peak, floor = r.fraction_of_peak, r.below_floor
        if floor:
            below_floor.append(f"{', '.join(floor)}{at}")
        rows.append(
            {
                "cells": r.values,
                "winner": r.winner or ("no answer" if floor else "no correct impl"),
                "peak": _percent(peak),
                "peak_sort": _num(peak),
                "floor_flag": "‡" if floor else "",
                "median": "" if r.median_s is None else _ms(r.median_s),
                "median_sort": _num(r.median_s),
                "margin": _margin(r),
                "ratio_sort": _num(r.ratio),
                "state": "none" if r.winner is None else "tie" if r.tie else "win",
                "flag": "†" if r.faster_invalid else "",
            }
        )
    return {
        "workload": t.workload,
        "machine": t.machine,
        "shared": " · ".join(shared),
        "columns": t.columns,
        "rows": rows,
        "invalid": invalid,
        "below_floor": below_floor,
        "with_peak": any(row["peak"] for row in rows),
        "ties": t.n_ties,
        "unanswered": t.n_unanswered,
    }


def _wins_view(t: WinsTable) -> dict[str, Any]:
    """Who wins on which machine for one workload, as the page shows it."""
    rows = []
    for values, cells in t.rows:
        views = [
            {
                "state": "none" if winner is None else "win" if winner else "absent",
                "winner": winner or "",
                "median": "" if median is None else f"{_ms(median)} ms",
            }
            for winner, median in cells
        ]
        rows.append((values, views))
    return {"workload": t.workload, "columns": t.columns, "machines": t.machines, "rows": rows}


def _verdict_view(v: VerdictRow) -> dict[str, Any]:
    ratio = v.ratio
    if ratio is None:
        change, arrow = "—", ""
    else:
        change = f"{(ratio - 1) * 100:+.1f} %"
        arrow = {"slower": "▲", "faster": "▼"}.get(v.label, "")
    interval = "—"
    if v.ci_low is not None and v.ci_high is not None:
        interval = f"{v.ci_low:.3f}–{v.ci_high:.3f}"
    return {
        "id": v.id,
        "label": v.label,
        "ratio": "—" if ratio is None else f"{ratio:.3f}",
        "ratio_sort": _num(ratio),
        "change": change,
        "arrow": arrow,
        "interval": interval,
        "p": "—" if v.p_value is None else f"{v.p_value:.2g}",
        "p_sort": _num(v.p_value),
        "base": _ms(v.baseline_median_s),
        "base_sort": _num(v.baseline_median_s),
        "cur": _ms(v.current_median_s),
        "cur_sort": _num(v.current_median_s),
        "reason": v.reason or "",
        "regression": v.regression,
    }


def _asset(env: Environment, name: str) -> str:
    """A file of templates/ as it is, never rendered: inlined in the page and hashed for its CSP."""
    assert env.loader is not None  # _environment sets it
    source, _, _ = env.loader.get_source(env, name)
    return source


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("eigenbench.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["breakable"] = breakable
    return env


# --------------------------------------------------------------------------- rendering


def render_html(model: ReportModel, charts: Sequence[Chart]) -> str:
    """The report page as a string: one file, charts inlined as data URIs, no external loads."""
    chart_views = [
        {
            "name": c.name,
            "kind": c.kind,
            "title": c.title,
            "alt": c.alt,
            "caption": c.caption,
            "src": Markup("data:image/png;base64,") + base64.b64encode(c.png).decode("ascii"),
        }
        for c in charts
    ]
    problems = [_row_view(r) for r in model.problems]
    verdicts = [_verdict_view(v) for v in model.verdicts] if model.verdicts is not None else None
    regressions = [v for v in verdicts or [] if v["regression"]]
    env = _environment()
    css = _asset(env, STYLE_FILE)
    script = _asset(env, SCRIPT_FILE)
    return env.get_template(PAGE_TEMPLATE).render(
        title=f"eigenbench report · {model.run_id}",
        model=model,
        answers=[_answer_view(t) for t in model.answers],
        wins=[_wins_view(t) for t in model.wins],
        rows=[_row_view(r) for r in model.rows],
        problems=problems,
        expected=[_row_view(r) for r in model.rows if r.expected_invalid],
        loaded=[_row_view(r) for r in model.rows if r.under_load],
        skipped=[_row_view(r) for r in model.skipped],
        verdicts=verdicts,
        regressions=regressions,
        charts=chart_views,
        omitted=sorted(model.omitted.items()),
        css=Markup(css),
        script=Markup(script),
        csp=(
            "default-src 'none'; img-src data:; "
            f"style-src '{_csp_hash(css)}'; script-src '{_csp_hash(script)}'"
        ),
    )


def render_report(
    run: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    *,
    baseline: Mapping[str, Any] | None = None,
    verdicts: Sequence[Mapping[str, Any]] | None = None,
    reference_impl: str | None = None,
) -> Path:
    """Write `out_dir/index.html` and `out_dir/charts/*.png` for a loaded run; return the page.

    `verdicts` are `compare`'s verdict dicts (ratio = current / baseline); with only a
    `baseline`, the regression section shows plain median ratios per matching case.
    `reference_impl` is the impl speedups and phase multipliers are taken against.
    """
    model = build_model(run, baseline=baseline, verdicts=verdicts, reference_impl=reference_impl)
    charts = render_charts(model)
    out = Path(out_dir)
    chart_dir = out / CHART_DIR
    chart_dir.mkdir(parents=True, exist_ok=True)
    names = {c.name for c in charts}
    for old in chart_dir.glob("*.png"):  # charts of an earlier render of this folder
        if old.name not in names and is_chart_file(old.name):
            old.unlink()
    for c in charts:  # a report is meant to be read by others
        write_atomic(chart_dir / c.name, c.png, mode=FILE_MODE)
    return write_atomic(out / "index.html", render_html(model, charts), mode=FILE_MODE)
