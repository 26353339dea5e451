"""The kinds of chart and how their files in a report's charts folder are named."""

from __future__ import annotations

import re
from collections.abc import Mapping

CHART_KINDS: Mapping[str, str] = {
    "baseline": "against the baseline",
    "machines": "same case across machines",
    "wins": "who wins on which machine",
    "sweep": "time vs size",
    "speedup": "speedup",
    "phases": "phases",
    "memory": "memory",
    "loss": "convergence",
    "roofline": "roofline",
}
"""Each kind of chart, in page order, with the title its charts start with."""


def chart_file_name(index: int, kind: str, key: str) -> str:
    """`02-sweep-eig-cpu-float32.png`: place on the page, kind, and a slug of the key (or kind)."""
    return f"{index:02d}-{kind}-{_slug(key or kind)}.png"


def is_chart_file(name: str) -> bool:
    """Whether a file name is one `chart_file_name` could have made (a render may replace it)."""
    return name.endswith(".png") and name[3:].startswith(tuple(CHART_KINDS))


def _slug(text: str, limit: int = 60) -> str:
    s = re.sub(r"[^A-Za-z0-9._=-]+", "-", text).strip("-.")
    return s[:limit].rstrip("-.") or "chart"
