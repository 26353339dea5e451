"""The roofline chart: a group per device from the run's measured peaks and the records'
throughput, drawn as deterministic PNG bytes and embedded in the page."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from factories import make_record, make_run
from test_report_html import parse

from eigenbench.report import render_report
from eigenbench.report.build import build_model, build_rooflines
from eigenbench.report.charts import pinned_style, png_bytes, render_charts
from eigenbench.report.roofline import roofline_figure

PEAKS = {
    "cpu": {
        "float32": {"flop_per_s": 1e11, "bytes_per_s": 2e10},
        "float64": {"flop_per_s": 5e10, "bytes_per_s": 2e10},
    }
}


def _throughput(flops: float, nbytes: float, median_s: float, **extra: Any) -> dict[str, Any]:
    return {
        "flop_per_s": flops / median_s,
        "bytes_per_s": nbytes / median_s,
        "fraction_of_peak": 0.1,
        "bound": "compute",
        "floor_s": median_s / 10,
        "below_floor": False,
        **extra,
    }


def _run(peaks: Any = PEAKS) -> dict[str, Any]:
    recs = [
        make_record("eig", "torch", throughput=_throughput(1e6, 1e5, 1e-3)),
        make_record("eig", "numpy", dtype="float64", throughput=_throughput(1e6, 2e5, 2e-3)),
        make_record("eig", "wrong", status="invalid", throughput=_throughput(1e6, 1e5, 1e-4)),
        make_record("eig", "skips", throughput=_throughput(1e9, 1e5, 1e-6, below_floor=True)),
        make_record("eig", "nocost"),  # no throughput: not a point
        make_record("eig", "broke", status="failed", throughput=_throughput(1e6, 1e5, 1e-3)),
    ]
    run = make_run(recs)
    if peaks is not None:
        run["env"]["peaks"] = peaks
    return run


def test_a_roofline_per_device_with_a_roof_per_dtype_at_the_knee() -> None:
    (g,) = build_model(_run()).rooflines
    assert g.device == "cpu"
    assert [r.dtype for r in g.roofs] == ["float32", "float64"]
    f32, f64 = g.roofs
    assert f32.knee == pytest.approx(1e11 / 2e10)
    assert f64.knee == pytest.approx(5e10 / 2e10)
    assert f32.attainable(f32.knee) == pytest.approx(1e11)
    assert f32.attainable(1.0) == pytest.approx(2e10)  # memory-bound left of the knee
    assert f32.attainable(100.0) == pytest.approx(1e11)  # compute-bound right of it
    by_impl = {p.impl: p for p in g.points}
    assert set(by_impl) == {"torch", "numpy", "wrong", "skips"}
    assert by_impl["torch"].intensity == pytest.approx(10.0)
    assert by_impl["torch"].flop_per_s == pytest.approx(1e9)
    assert by_impl["numpy"].intensity == pytest.approx(5.0)
    assert not by_impl["wrong"].valid and by_impl["torch"].valid
    assert by_impl["skips"].below_floor and not by_impl["torch"].below_floor
    assert "100 GFLOP/s" in g.title and "20 GB/s" in g.title


def test_no_roofline_without_peaks_or_throughput() -> None:
    assert build_model(_run(peaks=None)).rooflines == ()
    plain = make_run([make_record("eig", "torch")])
    plain["env"]["peaks"] = PEAKS
    assert build_model(plain).rooflines == ()
    assert not [c for c in render_charts(build_model(_run(peaks=None))) if c.kind == "roofline"]
    # a device without peaks gets no roofline
    assert build_rooflines(_run()["records"], {"cuda": PEAKS["cpu"]}) == ()


def test_the_roofline_renders_the_same_png_bytes_twice() -> None:
    (g,) = build_model(_run()).rooflines
    with pinned_style():
        first, second = png_bytes(roofline_figure(g)), png_bytes(roofline_figure(g))
    assert first.startswith(b"\x89PNG\r\n\x1a\n")
    assert first == second
    charts = [c for c in render_charts(build_model(_run())) if c.kind == "roofline"]
    assert len(charts) == 1 and charts[0].png == first
    assert charts[0].name.endswith(".png") and "roofline" in charts[0].name


def test_the_page_embeds_the_roofline(tmp_path: Path) -> None:
    index = render_report(_run(), tmp_path)
    files = sorted((tmp_path / "charts").glob("*roofline*.png"))
    assert len(files) == 1
    page = parse(index)
    embedded = [
        base64.b64decode((a["src"] or "").split(",", 1)[1]) for t, a in page.tags if t == "img"
    ]
    assert files[0].read_bytes() in embedded
    assert "roofline · cpu" in index.read_text(encoding="utf-8")
