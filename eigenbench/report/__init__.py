"""The HTML report of a run: charts chosen from the data, one self-contained page.

`render_report(run, out_dir)` writes `out_dir/index.html` and `out_dir/charts/*.png`;
`build_model(run)` is the pure part behind it.
"""

from __future__ import annotations

from eigenbench.report.build import build_model
from eigenbench.report.groups import find_crossovers, fit_scaling_exponent
from eigenbench.report.html import render_html, render_report

__all__ = [
    "build_model",
    "find_crossovers",
    "fit_scaling_exponent",
    "render_html",
    "render_report",
]
