"""The HTML report of a run: charts chosen from the data, one self-contained page.

`render_report(run, out_dir)` writes `out_dir/index.html` and `out_dir/charts/*.png`;
`build_model(run)` is the pure part behind it. The names load on first use, so that
`eigenbench.report.answers` (used by the terminal) does not pull in matplotlib and Jinja2.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "build_model": "eigenbench.report.build",
    "find_crossovers": "eigenbench.report.groups",
    "fit_scaling_exponent": "eigenbench.report.groups",
    "render_html": "eigenbench.report.html",
    "render_report": "eigenbench.report.html",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
