"""The report as one self-contained HTML page (Jinja2, autoescaped), chart PNGs beside it."""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from eigenbench.errors import InputFileError
from eigenbench.report.charts import Chart, fmt_ms, render_charts
from eigenbench.report.model import ReportModel, Row, VerdictRow, build_model
from eigenbench.results import list_runs, write_atomic

CHART_DIR = "charts"
FILE_MODE = 0o644
CHART_PREFIXES = ("baseline", "sweep", "speedup", "phases", "memory", "loss")

# Sorts a table by the clicked header: numbers by data-sort, text otherwise, blanks last.
SORT_JS = """\
(() => {
  const key = (tr, col) => {
    const td = tr.cells[col];
    const raw = td.dataset.sort !== undefined ? td.dataset.sort : td.textContent.trim();
    if (raw === "") return null;
    const n = Number(raw);
    return Number.isNaN(n) ? raw.toLowerCase() : n;
  };
  const cmp = (x, y) => (typeof x === "number" && typeof y === "number")
    ? x - y : String(x).localeCompare(String(y), undefined, {numeric: true});
  document.querySelectorAll("table.sortable").forEach((table) => {
    const heads = Array.from(table.tHead.rows[0].cells);
    heads.forEach((th, col) => {
      const sort = () => {
        const asc = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows, (tr, i) => [key(tr, col), i, tr]);
        rows.sort((a, b) => (a[0] === null || b[0] === null)
          ? (a[0] === null) - (b[0] === null) || a[1] - b[1]
          : (asc ? cmp(a[0], b[0]) : cmp(b[0], a[0])) || a[1] - b[1]);
        body.append(...rows.map((r) => r[2]));
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  });
})();
"""

CSS = """\
:root { --bad: #b3261e; --bad-bg: #fdecea; --warn: #8a5a00; --warn-bg: #fff4e0;
  --ok: #1e6b3a; --muted: #5f6368; --line: #dadce0; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
  max-width: 1400px; padding: 1rem 1.5rem 3rem; color: #202124; font-size: 14px; }
h1 { font-size: 1.4rem; margin: 0.2rem 0 0.6rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 0.6rem; border-bottom: 1px solid var(--line);
  padding-bottom: 0.2rem; }
nav a { margin-right: 1rem; }
code, .id { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
.summary { border: 1px solid var(--line); border-radius: 6px; padding: 0.8rem 1rem;
  margin: 0.8rem 0; background: #f8f9fa; }
.summary.has-problems { border: 2px solid var(--bad); background: var(--bad-bg); }
.summary h2 { margin: 0 0 0.4rem; border: 0; }
.counts span { display: inline-block; margin: 0 0.8rem 0.3rem 0; }
.badge { display: inline-block; padding: 0 0.45em; border-radius: 3px; font-weight: 600;
  font-size: 12px; }
.st-ok { color: var(--ok); } .st-skipped { color: var(--muted); }
.st-invalid, .st-failed, .st-timeout, .st-interrupted { background: var(--bad); color: #fff; }
.noisy { background: var(--warn-bg); color: var(--warn); }
ul.problems { margin: 0.3rem 0 0; padding-left: 1.2rem; }
ul.problems li { margin: 0.15rem 0; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 0.25rem 0.5rem; text-align: left;
  vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
.table-wrap { overflow-x: auto; }
table.sortable th { cursor: pointer; user-select: none; background: #f1f3f4;
  vertical-align: bottom; }
table.sortable th:hover { background: #e8eaed; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
tr.row-invalid, tr.row-failed, tr.row-timeout, tr.row-interrupted { background: var(--bad-bg); }
tr.row-skipped { color: var(--muted); }
td.bad { color: var(--bad); font-weight: 600; }
.reason { color: var(--muted); font-size: 12px; display: block; max-width: 24rem;
  overflow-wrap: anywhere; }
td.id { min-width: 22rem; max-width: 34rem; overflow-wrap: anywhere; }
td.nowrap { white-space: nowrap; }
tr.v-slower, tr.v-failed, tr.v-invalid { background: var(--bad-bg); }
tr.v-faster { background: #e6f4ea; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 0.5rem;
  max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12px; max-width: 800px; margin-top: 0.3rem; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 0.1rem 1rem; margin: 0; }
dl.kv dt { color: var(--muted); } dl.kv dd { margin: 0; overflow-wrap: anywhere; }
details { margin: 0.5rem 0; } summary { cursor: pointer; font-weight: 600; }
.muted { color: var(--muted); }
"""


# --------------------------------------------------------------------------- formatting


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else fmt_ms(seconds)


def _mib(nbytes: int | None) -> str:
    return "—" if nbytes is None else f"{nbytes / 2**20:.3g}"


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
        "noisy": r.noisy,
        "median": _ms(r.median_s),
        "median_sort": _num(r.median_s),
        "interval": interval,
        "interval_sort": _num(rel),
        "memory": _mib(r.peak_bytes),
        "memory_sort": _num(r.peak_bytes),
        "memory_kind": r.memory_kind or "",
        "blocking": blocking,
        "validation": validation,
        "validation_sort": _num(r.max_rel_err),
        "validation_bad": val_bad,
        "validation_title": val_title,
        "interval_title": "" if rel is None else f"{_ms(r.low_s)}–{_ms(r.high_s)} ms",
    }


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


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("eigenbench.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


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
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            title=f"eigenbench report · {model.run_id}",
            model=model,
            rows=[_row_view(r) for r in model.rows],
            problems=problems,
            skipped=[_row_view(r) for r in model.skipped],
            verdicts=verdicts,
            regressions=regressions,
            charts=chart_views,
            omitted=sorted(model.omitted.items()),
            css=Markup(CSS),
            script=Markup(SORT_JS),
            csp=(
                "default-src 'none'; img-src data:; "
                f"style-src '{_csp_hash(CSS)}'; script-src '{_csp_hash(SORT_JS)}'"
            ),
        )
    )


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        Path(tmp).chmod(FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        if old.name not in names and old.name[3:].startswith(CHART_PREFIXES):
            old.unlink()
    for c in charts:
        _write_bytes_atomic(chart_dir / c.name, c.png)
    page = write_atomic(out / "index.html", render_html(model, charts))
    page.chmod(FILE_MODE)  # a report is meant to be read by others (mkstemp makes 0600)
    return page


def latest_run(folder: str | os.PathLike[str]) -> Path:
    """The newest run file in `folder` (by modification time, then name)."""
    runs = list_runs(folder)
    if not runs:
        raise InputFileError(folder, "/", "a folder holding run files (*.json); found none")
    return runs[-1]
