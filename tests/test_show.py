"""Answers first: who is fastest and still correct (`eigenbench.report.answers`), and
`eigenbench show` / the end of `run` printing them within the terminal's width."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from factories import make_record, make_run

from eigenbench.cli import main
from eigenbench.report.answers import answers_of
from eigenbench.results import save_run


def timed(
    impl: str,
    median_s: float,
    low_s: float | None = None,
    high_s: float | None = None,
    *,
    status: str = "ok",
    peak_bytes: int = 1 << 20,
    **kw: Any,
) -> dict[str, Any]:
    """A timed record whose median and 95 % interval are exactly these (±1 % by default)."""
    r = make_record(impl=impl, status=status, median_s=median_s, **kw)
    r["summary"].update(
        median_s=median_s,
        ci95_low_s=median_s * 0.99 if low_s is None else low_s,
        ci95_high_s=median_s * 1.01 if high_s is None else high_s,
    )
    r["memory"]["peak_bytes"] = peak_bytes
    return r


def with_throughput(
    record: dict[str, Any], fraction: float, *, below_floor: bool = False
) -> dict[str, Any]:
    """`record` with a `throughput` reaching `fraction` of its roof (below the floor or not)."""
    median = float(record["summary"]["median_s"])
    record["throughput"] = {
        "flop_per_s": 1e9,
        "bytes_per_s": 1e8,
        "fraction_of_peak": fraction,
        "bound": "compute",
        "floor_s": median * fraction,
        "below_floor": below_floor,
    }
    return record


def test_a_below_floor_fastest_impl_is_a_measurement_error_not_the_answer() -> None:
    records = [
        with_throughput(timed("numpy", 3e-3), 0.1),
        with_throughput(timed("skipper", 1e-6), 300.0, below_floor=True),
        with_throughput(timed("torch", 1e-3), 0.3),
    ]
    [a] = answers_of(records)
    assert a.fastest is not None and a.fastest.impl == "torch"
    assert a.fastest.fraction_of_peak == 0.3 and not a.fastest.below_floor
    assert a.runner_up is not None and a.runner_up.impl == "numpy"
    assert a.below_floor == ("skipper",) and a.faster_invalid == ()
    d = a.to_dict()
    assert d["below_floor"] == ["skipper"]
    assert d["below_floor_note"] == "timed below the physical floor: a measurement error"
    assert d["fastest"]["fraction_of_peak"] == 0.3 and d["fastest"]["below_floor"] is False
    [only] = answers_of([with_throughput(timed("skipper", 1e-6), 300.0, below_floor=True)])
    assert only.fastest is None and only.below_floor == ("skipper",)
    [plain] = answers_of([timed("torch", 1e-3)])
    assert plain.fastest is not None and plain.fastest.fraction_of_peak is None
    assert plain.below_floor == () and plain.to_dict()["below_floor_note"] is None


@pytest.mark.parametrize("columns", [80, 160])
def test_show_gives_the_percent_of_peak_and_the_below_floor_note(
    columns: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = []
    for n, fraction in ((16, 0.2), (1024, 0.0123)):
        p = {"batch": 10, "n": n}
        records += [
            with_throughput(timed("torch", 1e-3 * n, params=p), fraction),
            with_throughput(timed("numpy", 3e-3 * n, params=p), fraction / 3),
        ]
    records.append(
        with_throughput(
            timed("skipper_impl", 1e-7, params={"batch": 10, "n": 1024}), 500, below_floor=True
        )
    )
    path = save_run(make_run(records), tmp_path / "run.json")
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["show", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= columns
    text = " ".join(" ".join(lines).split())
    assert "% peak" in text and "20%" in text and "1.2%" in text
    assert "skipper_impl" in text and "measurement" in text and "floor" in text
    assert main(["show", str(path), "--json"]) == 0
    answers = json.loads(capsys.readouterr().out)["answers"]
    assert [a["fastest"]["impl"] for a in answers] == ["torch", "torch"]
    assert answers[1]["below_floor"] == ["skipper_impl"]


def test_show_has_no_percent_of_peak_column_without_throughput(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    path = save_run(make_run([timed("torch", 1e-3), timed("numpy", 2e-3)]), tmp_path / "r.json")
    assert main(["show", str(path)]) == 0
    assert "% peak" not in capsys.readouterr().out


def test_the_fastest_correct_impl_answers_when_a_faster_one_is_invalid() -> None:
    records = [
        timed("numpy", 3e-3, 2.9e-3, 3.1e-3, peak_bytes=300),
        timed("torch_naive", 0.5e-3, status="invalid"),
        timed("torch", 1e-3, 0.95e-3, 1.05e-3, peak_bytes=100),
        timed("scipy", 5e-3),
        timed("slow_wrong", 9e-3, status="invalid"),
    ]
    [a] = answers_of(records)
    assert a.fastest is not None and a.fastest.impl == "torch"
    assert (a.fastest.median_s, a.fastest.peak_bytes) == (1e-3, 100)
    assert a.runner_up is not None and a.runner_up.impl == "numpy"
    assert a.runner_up.peak_bytes == 300
    assert a.speedup is not None
    assert a.speedup.ratio == pytest.approx(3.0)
    assert a.speedup.low == pytest.approx(2.9e-3 / 1.05e-3)
    assert a.speedup.high == pytest.approx(3.1e-3 / 0.95e-3)
    assert not a.tie
    assert a.faster_invalid == ("torch_naive",)  # slow_wrong is slower: not listed
    d = a.to_dict()
    assert d["fastest"]["impl"] == "torch" and d["runner_up"]["impl"] == "numpy"
    assert d["faster_invalid"] == ["torch_naive"] and d["tie"] is False
    assert d["params"] == {"batch": 4, "n": 16} and d["suite"] == "eigvalsh_batched"
    assert json.loads(json.dumps(d)) == d


def test_overlapping_intervals_are_a_tie() -> None:
    [a] = answers_of([timed("a", 1.00e-3, 0.97e-3, 1.03e-3), timed("b", 1.01e-3, 0.98e-3, 1.04e-3)])
    assert a.fastest is not None and a.fastest.impl == "a"
    assert a.speedup is not None and a.speedup.low < 1 < a.speedup.high
    assert a.tie


def test_no_correct_impl_has_no_fastest() -> None:
    [a] = answers_of([timed("x", 2e-3, status="invalid"), timed("y", 1e-3, status="invalid")])
    assert a.fastest is None and a.runner_up is None and a.speedup is None and not a.tie
    assert a.faster_invalid == ("y", "x")
    assert a.to_dict()["fastest"] is None and a.to_dict()["speedup"] is None


def test_one_answer_per_case_in_record_order_timed_records_only() -> None:
    records = [
        timed("torch", 1e-3, params={"n": 32}),
        timed("torch", 1e-3, params={"n": 16}),
        timed("torch", 1e-3, params={"n": 16}, dtype="float64"),
        timed("numpy", 2e-3, params={"n": 32}),
        make_record(impl="scipy", params={"n": 8}, status="failed"),
        make_record(impl="cupy", params={"n": 8}, status="skipped"),
    ]
    answers = answers_of(records)
    assert [(a.params, a.dtype) for a in answers] == [
        ({"n": 32}, "float32"),
        ({"n": 16}, "float32"),
        ({"n": 16}, "float64"),
    ]
    assert answers[0].runner_up is not None and answers[0].runner_up.impl == "numpy"
    assert answers[1].runner_up is None and answers[1].speedup is None


def _varied_run() -> dict[str, Any]:
    """Two workloads, several params varying, a faster invalid impl, long reasons."""
    records = []
    for batch in (1, 1000):
        for n in (16, 1024):
            p = {"batch": batch, "n": n, "uplo": "L"}
            scale = batch * n * 1e-7
            records += [
                timed("torch", scale, params=p),
                timed("numpy", scale * 3, params=p),
                timed("scipy_driver_evr", scale * 2.9, scale * 2.5, scale * 3.3, params=p),
                timed("torch_naive_float16", scale / 2, status="invalid", params=p),
                make_record(
                    impl="cupy_solver_syevj_batched",
                    params=p,
                    status="failed",
                    reason="out of memory: tried to allocate 14.50 GiB (GPU 0; 79.11 GiB "
                    "total capacity; 70.02 GiB already allocated) while building the workspace",
                ),
            ]
    for family in ("continuous", "ties"):
        p = {"n": 10_000_000, "family": family}
        records += [
            timed("eigenbench", 1e-2, workload="spearman", params=p, phase="forward"),
            timed("eigenbench", 3e-2, workload="spearman", params=p, phase="backward"),
            timed("scipy", 2e-2, workload="spearman", params=p, phase="forward"),
            timed("torch_naive", 1e-3, workload="spearman", params=p, phase="forward",
                  status="invalid"),
            make_record(
                impl="torchmetrics", workload="spearman", params=p, status="skipped",
                reason="torchmetrics is not installed",
            ),
        ]  # fmt: skip
    return make_run(records)


@pytest.mark.parametrize("columns", [80, 100, 160])
def test_show_fits_the_terminal_width(
    columns: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = save_run(_varied_run(), tmp_path / "run.json")
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= columns
    text = "\n".join(lines)
    for word in (  # id-like cells whole, never split across lines
        "torch_naive_float16",
        "scipy_driver_evr",
        "spearman/torch_naive",
        "eigvalsh_batched/cupy_solver_syevj_batched",
        "continuous",
        "backward",
    ):
        assert word in text, word
    assert "faster but" in text and "wrong:" in text  # the note, wrapped at its spaces
    assert "records: " in text and "failed" in text and "skipped" in text
    assert text.index("fastest") < text.index("records: ")  # answers first


def test_show_json_on_a_saved_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = save_run(_varied_run(), tmp_path / "run.json")
    assert main(["show", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["run_id"] == "20261122T000000Z-test"
    answers = doc["answers"]
    assert len(answers) == 4 + 2 * 2  # eigvalsh: 4 params; spearman: 2 families × 2 phases
    first = answers[0]
    assert set(first) >= {
        "workload", "params", "device", "dtype", "phase", "fastest", "runner_up",
        "speedup", "tie", "faster_invalid", "suite",
    }  # fmt: skip
    assert first["fastest"]["impl"] == "torch"
    assert first["faster_invalid"] == ["torch_naive_float16"]
    assert first["params"] == {"batch": 1, "n": 16, "uplo": "L"}
    assert set(first["speedup"]) == {"ratio", "low", "high"}


def test_show_of_a_bad_file_exits_3_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "eigenbench.run/1", "records": 3}')
    assert main(["show", str(bad)]) == 3
    assert main(["show", str(tmp_path / "missing.json")]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("eigenbench: error:") for e in errors)


def test_run_quick_ends_with_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = tmp_path / "X.json"
    args = ["--device", "cpu", "--max-time", "0.05", "--warmup", "0", "--out", str(out)]
    assert main(["run", "eigvalsh_batched", "--quick", *args]) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert max(len(line) for line in text.splitlines()) <= 80
    assert text.index("cases of run") < text.index("vs runner-up") < text.index("records: ")
    assert f"wrote {out}" in " ".join(captured.err.split())
    assert main(["show", str(out), "--json"]) == 0
    answers = json.loads(capsys.readouterr().out)["answers"]
    assert answers and all(a["fastest"] is not None for a in answers)


def test_the_cases_table_shortens_ids_that_do_not_fit() -> None:
    import io

    from rich.console import Console

    from eigenbench.console import results_table

    records = _varied_run()["records"]
    for width, whole in ((80, False), (160, True)):
        console = Console(width=width, file=io.StringIO())
        console.print(results_table(records, width=width))
        lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
        assert max(len(line) for line in lines) <= width
        text = "\n".join(lines)
        assert "eigvalsh_batched/cupy_solver_syevj_batched" in text
        assert ("eigvalsh_batched/torch/cpu/float32/batch=1,n=16,uplo=L" in text) is whole


def test_expected_invalid_and_loaded_cases_are_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    naive = make_record("spearman", "naive", {"n": 8}, status="invalid", median_s=1e-4)
    naive["expected_invalid"] = "the seed's naive version"
    fast = make_record("spearman", "fast", {"n": 8}, median_s=2e-4)
    fast["host_load"] = {"others_cores": 1.5, "under_load": True}  # the schema's minimum
    path = save_run(make_run([naive, fast]), tmp_path / "run.json")
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 invalid (all expected)" in out
    assert "expected: the seed's naive version" in out
    assert "loaded" in out and "1.5 cores busy" in out


def test_an_answer_measured_under_load_says_its_margin_is_uncertain() -> None:
    fast = make_record("w", "fast", {"n": 8}, median_s=1e-4)
    slow = make_record("w", "slow", {"n": 8}, median_s=3e-4)
    (quiet,) = answers_of([fast, slow])
    assert quiet.under_load is False
    slow["host_load"] = {"others_cores": 1.0, "under_load": True}
    (loaded,) = answers_of([fast, slow])
    assert loaded.under_load and loaded.to_dict()["under_load"] is True


def test_show_reads_a_baseline_folder(capsys: pytest.CaptureFixture[str]) -> None:
    folder = Path(__file__).resolve().parents[1] / "results" / "baselines" / "cpu-amd-epyc-2c"
    assert main(["show", str(folder), "--json"]) == 0
    answers = json.loads(capsys.readouterr().out)["answers"]
    assert {a["workload"] for a in answers} >= {"eigvalsh_batched", "spearman"}
