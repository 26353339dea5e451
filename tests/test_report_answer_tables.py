"""The answers section: one "who wins where" table per workload, first on the page."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import make_record, make_run
from test_report_html import parse

from eigenbench.report import render_report
from eigenbench.report.answer_tables import build_answers
from eigenbench.report.build import build_model
from eigenbench.report.html import breakable
from eigenbench.units import fmt_ms


def _records() -> list[dict]:
    recs = []
    for n in (64, 8, 16):  # out of order: rows come sorted by size
        recs.append(make_record("eig", "numpy", {"batch": 4, "n": n}, median_s=3e-5 * n))
        recs.append(make_record("eig", "torch", {"batch": 4, "n": n}, median_s=1e-5 * n))
    # at n=8 an invalid impl is faster than the winner
    recs.append(make_record("eig", "fastwrong", {"batch": 4, "n": 8}, status="invalid"))
    recs[-1]["summary"]["median_s"] = 1e-6
    # two phases, a tie in one and no correct impl in the other
    recs.append(make_record("bwd", "a", {"n": 32}, phase="fwd", median_s=1e-3))
    recs.append(make_record("bwd", "b", {"n": 32}, phase="fwd", median_s=1e-3))
    recs.append(make_record("bwd", "a", {"n": 32}, phase="bwd", status="invalid"))
    recs.append(make_record("bwd", "b", {"n": 32}, phase="bwd", status="invalid"))
    recs.append(make_record("bwd", "c", {"n": 32}, phase="bwd", status="failed"))
    return recs


def test_one_table_per_workload_with_only_the_varying_columns() -> None:
    eig, bwd = build_answers(_records())
    assert eig.workload == "eig" and eig.columns == ("n",)
    assert dict(eig.fixed) == {"batch": "4", "device": "cpu", "dtype": "float32", "phase": "call"}
    assert [r.values for r in eig.rows] == [("8",), ("16",), ("64",)]
    assert [r.winner for r in eig.rows] == ["torch"] * 3
    first = eig.rows[0]
    assert first.runner_up == "numpy" and first.ratio == pytest.approx(3.0, rel=0.05)
    assert first.low is not None and first.high is not None
    assert first.low <= first.ratio <= first.high and not first.tie
    assert first.faster_invalid == ("fastwrong",)
    assert eig.rows[1].faster_invalid == ()
    assert bwd.columns == ("phase",) and dict(bwd.fixed)["n"] == "32"
    fwd, back = bwd.rows
    assert fwd.tie and fwd.winner in ("a", "b")
    assert back.winner is None and back.median_s is None and set(back.faster_invalid) == {"a", "b"}
    assert (bwd.n_ties, bwd.n_unanswered) == (1, 1)


def test_the_model_carries_the_answers() -> None:
    model = build_model(make_run(_records()))
    assert [t.workload for t in model.answers] == ["eig", "bwd"]
    assert build_model(make_run([])).answers == ()


def test_the_page_opens_with_the_answers(tmp_path: Path) -> None:
    index = render_report(make_run(_records()), tmp_path)
    html = index.read_text(encoding="utf-8")
    start = html.index("<body>")
    assert html.index('id="answers"', start) < html.index('id="summary"')
    assert html.index('id="answers"', start) < html.index('id="records"')
    page = parse(index)
    eig = [[c["text"] for c in row] for row in page.rows["answers-1"]]
    median = build_answers(_records())[0].rows[0].median_s
    assert median is not None
    assert eig[0][:3] == ["8", "torch †", fmt_ms(median)]
    assert eig[0][3].startswith("×3.") and eig[0][3].endswith("over numpy")
    bwd = [[c["text"] for c in row] for row in page.rows["answers-2"]]
    assert bwd[0][0] == "fwd" and bwd[0][3] in ("tie with a", "tie with b")
    assert bwd[1][1] == "no correct impl †"
    text = " ".join("".join(page.text).split())
    assert "Faster but invalid (never counted): fastwrong at n=8" in text
    assert "eig · batch=4 · cpu · float32" in text
    assert 'class="ans-tie"' in html and 'class="ans-none"' in html


def test_long_ids_may_break_after_slashes_and_commas() -> None:
    assert str(breakable("w/<i>/n=1,b=2")) == "w/<wbr>&lt;i&gt;/<wbr>n=1,<wbr>b=2"


def _with_throughput(record: dict, fraction: float, *, below_floor: bool = False) -> dict:
    record["throughput"] = {
        "flop_per_s": 1e9,
        "bytes_per_s": 1e8,
        "fraction_of_peak": fraction,
        "bound": "memory",
        "floor_s": record["summary"]["median_s"] * fraction,
        "below_floor": below_floor,
    }
    return record


def _peak_records() -> list[dict]:
    recs = []
    for n, fraction in ((8, 0.25), (16, 0.031)):
        recs.append(
            _with_throughput(make_record("eig", "torch", {"n": n}, median_s=1e-4), fraction)
        )
        recs.append(_with_throughput(make_record("eig", "numpy", {"n": n}, median_s=3e-4), 0.01))
    skip = make_record("eig", "skipper", {"n": 16}, median_s=1e-9)
    recs.append(_with_throughput(skip, 1e4, below_floor=True))
    return recs


def test_rows_carry_the_winners_percent_of_peak_and_the_below_floor_impls() -> None:
    [eig] = build_answers(_peak_records())
    n8, n16 = eig.rows
    assert (n8.winner, n8.fraction_of_peak, n8.below_floor) == ("torch", 0.25, ())
    assert (n16.winner, n16.fraction_of_peak, n16.below_floor) == ("torch", 0.031, ("skipper",))


def test_the_page_shows_percent_of_peak_and_below_floor_as_a_measurement_error(
    tmp_path: Path,
) -> None:
    index = render_report(make_run(_peak_records()), tmp_path)
    page = parse(index)
    eig = [[c["text"] for c in row] for row in page.rows["answers-1"]]
    assert [row[0] for row in eig] == ["8", "16"]
    assert [row[1] for row in eig] == ["torch", "torch ‡"]
    assert [row[3] for row in eig] == ["25 %", "3.1 %"]
    text = " ".join("".join(page.text).split())
    assert "% of peak" in text
    assert "Timed below the physical floor: a measurement error" in text
    assert "skipper at n=16" in text


def test_no_percent_of_peak_column_without_throughput(tmp_path: Path) -> None:
    html = render_report(make_run(_records()), tmp_path).read_text(encoding="utf-8")
    assert "% of peak" not in html and "physical floor" not in html
