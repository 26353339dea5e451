"""The HTML report: parses, a row per record, hostile names stay text, nothing external."""

from __future__ import annotations

import base64
import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from factories import make_record, make_run

from eigenbench.errors import InputFileError
from eigenbench.report import render_report
from eigenbench.results import latest_run, save_run

HOSTILE = "</script><b>x"
VOID = {"meta", "img", "br", "hr", "input", "link", "source", "wbr", "col", "area", "base"}


class Page(HTMLParser):
    """Collects tags, attributes, table rows and text; checks that tags nest properly."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.text: list[str] = []
        self.rows: dict[str, list[list[dict[str, Any]]]] = {}
        self._table: list[str | None] = []
        self._row: list[dict[str, Any]] | None = None
        self._cell: dict[str, Any] | None = None
        self._in_tbody = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "table":
            self._table.append(a.get("id"))
        elif tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = {"attrs": a, "text": ""}

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._cell["text"] = " ".join(self._cell["text"].split())
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.setdefault(str(self._table[-1]), []).append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_tbody = False
        elif tag == "table":
            self._table.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell["text"] += data


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.stack == [], f"unclosed tags: {page.stack}"
    return page


def report_run() -> dict[str, Any]:
    recs = [
        make_record("eig", impl, {"n": n}, median_s=t * n)
        for n in (8, 16, 32)
        for impl, t in (("torch", 1e-5), ("numpy", 3e-5))
    ]
    recs.append(make_record(HOSTILE, HOSTILE, {"n": 4}, median_s=1.234e-3))
    recs.append(make_record("eig", "wrong", {"n": 8}, status="invalid", median_s=2e-4))
    recs.append(
        make_record(
            "eig", "crash", {"n": 8}, status="failed", reason="RuntimeError: <b>boom</b> & more"
        )
    )
    recs.append(
        make_record(
            "eig", "cupy", {"n": 8}, status="skipped", device="cuda", reason="cupy is not installed"
        )
    )
    return make_run(recs)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, Page]:
    run = report_run()
    out = tmp_path_factory.mktemp("report")
    index = render_report(run, out)
    return run, index, parse(index)


def test_page_has_a_row_per_record_in_run_order(rendered: tuple[Any, Path, Page]) -> None:
    run, index, page = rendered
    assert index.name == "index.html"
    rows = page.rows["records-table"]
    assert [r[0]["text"] for r in rows] == [rec["id"] for rec in run["records"]]


def test_hostile_names_stay_text(rendered: tuple[Any, Path, Page]) -> None:
    _, index, page = rendered
    assert not [t for t, _ in page.tags if t in ("b", "i")], "markup from data became elements"
    assert [t for t, _ in page.tags].count("script") == 1  # only the sort script
    text = "".join(page.text)
    assert HOSTILE in text and "<b>boom</b> & more" in text
    assert HOSTILE not in index.read_text(encoding="utf-8")  # escaped in the source


def test_nothing_is_loaded_from_outside_the_file(rendered: tuple[Any, Path, Page]) -> None:
    _, _, page = rendered
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith(("data:image/png;base64,", "#")), (tag, value[:60])
        assert tag not in ("link", "iframe", "object", "embed")
    csp = next(
        a["content"]
        for t, a in page.tags
        if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    )
    assert "default-src 'none'" in (csp or "")


def test_times_on_screen_are_milliseconds_with_seconds_for_sorting(
    rendered: tuple[Any, Path, Page],
) -> None:
    run, _, page = rendered
    rows = {r[0]["text"]: r for r in page.rows["records-table"]}
    rec = next(r for r in run["records"] if r["impl"] == HOSTILE)
    median_cell = rows[rec["id"]][5]  # column 6: "median (ms)"
    seconds = rec["summary"]["median_s"]
    assert float(median_cell["attrs"]["data-sort"]) == pytest.approx(seconds)
    assert float(median_cell["text"]) == pytest.approx(seconds * 1e3, rel=5e-3)
    skipped = rows[next(r["id"] for r in run["records"] if r["status"] == "skipped")]
    assert skipped[5]["text"] == "—" and skipped[5]["attrs"]["data-sort"] == ""


def test_problem_cases_are_listed_at_the_top_and_coloured(
    rendered: tuple[Any, Path, Page],
) -> None:
    run, index, page = rendered
    html = index.read_text(encoding="utf-8")
    start = html.index('<section id="summary"')
    assert "has-problems" in html[start : html.index(">", start)]
    problems = html[html.index('<ul class="problems">', start) :]
    problems = problems[: problems.index("</ul>")]
    for rec in run["records"]:
        listed = rec["id"].replace("<", "&lt;").replace(">", "&gt;") in problems
        assert listed == (rec["status"] in ("invalid", "failed")), rec["id"]
    assert html.index('id="summary"') < html.index('id="records"')
    row_classes = [a.get("class") for t, a in page.tags if t == "tr" and a.get("class")]
    assert "row-invalid" in row_classes and "row-failed" in row_classes


def test_charts_are_embedded_and_written_beside_the_page(
    rendered: tuple[Any, Path, Page],
) -> None:
    _, index, page = rendered
    files = sorted((index.parent / "charts").glob("*.png"))
    imgs = [a for t, a in page.tags if t == "img"]
    assert files and len(imgs) == len(files)
    embedded = sorted(base64.b64decode((a["src"] or "").split(",", 1)[1]) for a in imgs)
    assert embedded == sorted(f.read_bytes() for f in files)
    assert all(a.get("alt") for a in imgs)
    assert oct(index.stat().st_mode & 0o777) == oct(0o644)


def test_rendering_twice_gives_the_same_page_and_drops_stale_charts(tmp_path: Path) -> None:
    run = report_run()
    first = render_report(run, tmp_path).read_bytes()
    stale = tmp_path / "charts" / "99-sweep-old.png"
    stale.write_bytes(b"old")
    keep = tmp_path / "charts" / "my-notes.png"
    keep.write_bytes(b"mine")
    assert render_report(run, tmp_path).read_bytes() == first
    assert not stale.exists() and keep.exists()


def test_regression_section_only_with_verdicts(tmp_path: Path) -> None:
    run = report_run()
    ids = [r["id"] for r in run["records"]]
    verdicts = [
        {
            "id": ids[0],
            "label": "slower",
            "ratio": 1.25,
            "ci_low": 1.2,
            "ci_high": 1.3,
            "p_value": 0.001,
            "baseline_median_s": 1e-3,
            "current_median_s": 1.25e-3,
        },
        {
            "id": ids[1],
            "label": "unchanged",
            "ratio": 1.0,
            "ci_low": 0.98,
            "ci_high": 1.02,
            "p_value": 0.7,
            "baseline_median_s": 1e-3,
            "current_median_s": 1e-3,
        },
    ]
    page = parse(render_report(run, tmp_path / "v", verdicts=verdicts))
    rows = page.rows["verdict-table"]
    assert [r[1]["text"] for r in rows] == ["slower", "unchanged"]
    assert rows[0][3]["text"].startswith("+25.0 %")
    assert "1 regression against the baseline" in " ".join("".join(page.text).split())
    # compare's own flag wins over the label: an invalid case whose baseline was ok regresses
    verdicts.append({"id": ids[2], "label": "invalid", "regression": True})
    page = parse(render_report(run, tmp_path / "flag", verdicts=verdicts))
    page_text = " ".join("".join(page.text).split())
    assert "2 regressions against the baseline" in page_text
    plain = parse(render_report(run, tmp_path / "plain"))
    assert "verdict-table" not in plain.rows
    assert not any(a.get("id") == "regressions" for _, a in plain.tags)


def test_a_500_record_run_renders(tmp_path: Path) -> None:
    samples = [1e-3] * 5
    recs = [
        make_record(f"w{w}", impl, {"batch": b, "n": n}, samples_s=samples)
        for w in range(5)
        for impl in ("a", "b", "c", "d", "e")
        for b in (1, 10)
        for n in (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
    ]
    assert len(recs) == 500
    page = parse(render_report(make_run(recs), tmp_path))
    assert len(page.rows["records-table"]) == 500


def test_latest_run_picks_the_newest_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="found none"):
        latest_run(tmp_path)
    old = save_run(make_run([]), tmp_path / "a.json")
    new = save_run(make_run([]), tmp_path / "b.json")
    os.utime(old, (1_000, 1_000))
    os.utime(new, (2_000, 2_000))
    (tmp_path / ".c.json.tmp").write_text("{}")
    assert latest_run(tmp_path) == new


def test_expected_invalid_and_loaded_cases_are_not_shown_as_failures(tmp_path: Path) -> None:
    naive = make_record("spearman", "naive", {"n": 8}, status="invalid")
    naive["expected_invalid"] = "the seed's naive version"
    loaded = make_record("spearman", "fast", {"n": 8})
    loaded["host_load"] = {"others_cores": 1.5, "under_load": True}
    wrong = make_record("spearman", "broken", {"n": 8}, status="invalid")
    html = render_report(make_run([naive, loaded, wrong]), tmp_path).read_text()
    assert "1 case did not produce a correct result" in html  # only the undeclared one
    assert "1 invalid, all declared wrong on purpose" in html
    assert "why: the seed&#39;s naive version" in html or "why: the seed's naive version" in html
    assert "1 case measured under load" in html
