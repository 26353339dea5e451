"""Charts: one per kind of data, byte-identical between renders, immune to user rcParams."""

from __future__ import annotations

import struct
from typing import Any

import matplotlib as mpl
import pytest
from factories import make_record, make_run

from eigenbench.report.build import build_model
from eigenbench.report.charts import render_charts, sweep_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", data[16:24])  # IHDR follows the signature
    return width, height


def kinds_run() -> dict[str, Any]:
    """A small run with a sweep, phases, memory, a convergence case and odd names."""
    recs = []
    for n in (16, 32, 64, 128):
        recs.append(make_record("eig", "a$b_<i>", {"n": n}, median_s=1e-7 * n**3))
        recs.append(make_record("eig", "_lead", {"n": n}, median_s=1e-4 * n))
    for impl, k in (("v1", 9.0), ("final", 1.2)):
        recs.append(make_record("bwd", impl, {"n": 32}, phase="fwd", median_s=1e-3))
        recs.append(make_record("bwd", impl, {"n": 32}, phase="bwd", median_s=k * 1e-3))
    conv = make_record("svd_gd", "gd", {"n": 8}, median_s=1e-3)
    conv["convergence"] = {
        "target": 1e-3,
        "reached": True,
        "steps_to_target": 3,
        "seconds_to_target": 0.03,
        "budget_steps": 5,
        "budget_s": None,
        "trajectory": [[i, 0.01 * i, 10.0**-i] for i in range(5)],
    }
    recs.append(conv)
    return make_run(recs)


VERDICTS = [
    {
        "id": "eig/a/cpu/float32/n=16",
        "label": "slower",
        "ratio": 1.5,
        "ci_low": 1.4,
        "ci_high": 1.6,
        "p_value": 1e-3,
        "baseline_median_s": 1e-3,
        "current_median_s": 1.5e-3,
    },
    {
        "id": "eig/b/cpu/float32/n=16",
        "label": "faster",
        "ratio": 0.5,
        "ci_low": 0.45,
        "ci_high": 0.55,
        "p_value": 1e-3,
        "baseline_median_s": 2e-3,
        "current_median_s": 1e-3,
    },
]


@pytest.fixture(scope="module")
def charts() -> list[Any]:
    return render_charts(build_model(kinds_run(), verdicts=VERDICTS))


def test_a_chart_for_each_kind_of_data(charts: list[Any]) -> None:
    kinds = [c.kind for c in charts]
    for kind in ("baseline", "sweep", "speedup", "phases", "memory", "loss"):
        assert kind in kinds, f"no {kind} chart among {kinds}"
    names = [c.name for c in charts]
    assert len(set(names)) == len(names)
    assert all(n.endswith(".png") and "/" not in n and "<" not in n for n in names)


def test_pngs_have_the_fixed_size_of_their_figure(charts: list[Any]) -> None:
    sweep = next(c for c in charts if c.kind == "sweep")
    assert _png_size(sweep.png) == (800, 440)  # 8 × 4.4 in at 100 dpi
    for c in charts:
        w, h = _png_size(c.png)
        assert 300 <= w <= 1200 and 100 <= h <= 1200


def test_same_run_gives_identical_png_bytes(charts: list[Any]) -> None:
    again = render_charts(build_model(kinds_run(), verdicts=VERDICTS))
    assert [c.name for c in again] == [c.name for c in charts]
    for a, b in zip(charts, again, strict=True):
        assert a.png == b.png, a.name
    assert all(b"Matplotlib" not in c.png for c in charts)  # no Software metadata


def test_user_rcparams_do_not_leak_into_charts(charts: list[Any]) -> None:
    with mpl.rc_context({"lines.linewidth": 9.0, "font.size": 20, "axes.facecolor": "black"}):
        styled = render_charts(build_model(kinds_run(), verdicts=VERDICTS))
    assert [c.png for c in styled] == [c.png for c in charts]


def test_sweep_legend_carries_the_fitted_exponent() -> None:
    model = build_model(kinds_run())
    fig = sweep_figure(model.sweeps[0], {})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    cubic = next(t for t in labels if t.startswith("a$b_<i>"))
    assert "n^3.0" in cubic  # printed with two decimals: 2.99 would fail this
    assert any(t.startswith(" _lead") for t in labels)  # a leading '_' would hide it
