"""Dispatch verdicts: the fingerprint diff, and compare / check / ab reporting and gating on it."""

from __future__ import annotations

import copy
import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from factories import make_ab_pair, make_dispatch, make_record, make_run, make_samples
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from eigenbench.cli import main
from eigenbench.console import render_table
from eigenbench.gate.baseline import load_runs_from, save_baselines
from eigenbench.gate.compare import compare_runs
from eigenbench.gate.dispatch import (
    CountChange,
    diff_fingerprints,
    fingerprint,
    judge_dispatch,
)
from eigenbench.gate.paired import paired_compare
from eigenbench.results import save_run

ROOT = Path(__file__).resolve().parents[1]
LOOP = make_dispatch(
    {"aten::linalg_eigh": 1, "aten::copy_": 2},
    {"syevd": 500, "copy_kernel": 2},
    {"cudaStreamSynchronize": 500},
)
BATCHED = make_dispatch(
    {"aten::linalg_eigh": 1, "aten::copy_": 2}, {"syevjBatched": 1, "copy_kernel": 2}, {}
)


# --------------------------------------------------------------------------- the diff


def test_equal_fingerprints_are_no_change_whatever_the_tool_short_form_or_times() -> None:
    other = {**copy.deepcopy(LOOP), "tool": "cupti", "short": "x", "self_time_s": 0.3}
    assert diff_fingerprints(LOOP, other) is None
    assert judge_dispatch({"dispatch": LOOP}, {"dispatch": other}).changed is False


def test_a_changed_path_is_described_in_one_line() -> None:
    change = diff_fingerprints(LOOP, BATCHED)
    assert change is not None
    assert change.description == "kernels: syevd ×500 → syevjBatched ×1; syncs 500 → 0"
    assert change.ops == ()
    assert change.of_kind("kernels", "removed") == (CountChange("syevd", 500, 0),)
    assert change.of_kind("kernels", "added") == (CountChange("syevjBatched", 0, 1),)
    assert change.of_kind("syncs", "removed") == (CountChange("cudaStreamSynchronize", 500, 0),)
    doc = judge_dispatch({"dispatch": LOOP}, {"dispatch": BATCHED}).to_dict()  # type: ignore[union-attr]
    assert doc["changed"] is True and doc["description"] == change.description
    assert doc["kernels"][0] == {"name": "syevd", "base": 500, "head": 0, "kind": "removed"}


def test_recounted_added_and_removed_ops() -> None:
    base = make_dispatch({"aten::sort": 2, "aten::sub": 1, "aten::gone": 1})
    head = make_dispatch({"aten::sort": 1, "aten::sub": 1, "aten::new": 3, "aten::zero": 0})
    change = diff_fingerprints(base, head)
    assert change is not None
    assert change.of_kind("ops", "recounted") == (CountChange("aten::sort", 2, 1),)
    assert change.description == "ops: aten::gone ×1 → aten::new ×3, aten::sort ×2 → ×1"
    only_added = diff_fingerprints(base, make_dispatch({**base["ops"], "aten::mul": 1}))
    assert only_added is not None and only_added.description == "ops: +aten::mul ×1"
    assert diff_fingerprints(base, make_dispatch({**base["ops"], "aten::zero": 0})) is None


def test_sync_kinds_swapped_at_the_same_total_are_named() -> None:
    a = make_dispatch(syncs={"cudaStreamSynchronize": 1})
    b = make_dispatch(syncs={"cudaDeviceSynchronize": 1})
    change = diff_fingerprints(a, b)
    assert change is not None
    assert change.description == "syncs: cudaStreamSynchronize ×1 → cudaDeviceSynchronize ×1"


def test_counts_are_compared_per_profiled_call() -> None:
    twice = make_dispatch({k: 2 * n for k, n in LOOP["ops"].items()}, calls=2)
    twice.update(kernels={k: 2 * n for k, n in LOOP["kernels"].items()})
    twice.update(syncs={k: 2 * n for k, n in LOOP["syncs"].items()})
    assert diff_fingerprints(LOOP, twice) is None
    twice["ops"]["aten::copy_"] += 1
    change = diff_fingerprints(LOOP, twice)
    assert change is not None and "per call (1 → 2 profiled calls)" in change.description


def test_long_lists_are_cut() -> None:
    head = make_dispatch({f"aten::op{i}": 1 for i in range(6)})
    change = diff_fingerprints(make_dispatch({}), head)
    assert change is not None and change.description.endswith("+3 more")


@pytest.mark.parametrize(
    ("record", "why"),
    [
        ({}, "no fingerprint in the baseline run"),  # an older run: no key
        ({"dispatch": None, "dispatch_reason": "pure NumPy"}, "(pure NumPy)"),
        ({"dispatch": {"ops": {}}}, "no fingerprint"),  # malformed: no verdict, no crash
        ({"dispatch": {**LOOP, "calls": 0}}, "no fingerprint"),
    ],
)
def test_a_side_without_a_fingerprint_gives_no_verdict(record: dict, why: str) -> None:
    verdict = judge_dispatch(record, {"dispatch": LOOP})
    assert verdict is not None and verdict.changed is None and why in str(verdict.description)
    assert judge_dispatch({"dispatch": LOOP}, record).changed is None  # type: ignore[union-attr]
    assert judge_dispatch(None, {"dispatch": LOOP}) is None  # a new case: nothing to compare
    assert fingerprint(record) is None


_names = st.sampled_from(["aten::a", "aten::b", "syevd", "syevjBatched", "k<1>", "sync"])
_counts = st.dictionaries(_names, st.integers(0, 600), max_size=5)
_fps = st.builds(
    lambda o, k, s, c: make_dispatch(o, k, s, calls=c), _counts, _counts, _counts, st.just(1)
)


def _shuffled(fp: dict[str, Any], seed: int) -> dict[str, Any]:
    """`fp` with every count dict in another key order."""
    out = copy.deepcopy(fp)
    for section in ("ops", "kernels", "syncs"):
        items = list(out[section].items())
        random.Random(seed).shuffle(items)
        out[section] = dict(items)
    return out


@given(_fps, _fps, st.integers(0, 99))
def test_the_diff_is_deterministic_and_symmetric(a: dict, b: dict, seed: int) -> None:
    assert diff_fingerprints(a, _shuffled(a, seed)) is None  # equal inputs never differ
    first = diff_fingerprints(a, b)
    again = diff_fingerprints(_shuffled(a, seed), _shuffled(b, seed + 1))
    assert first == again  # key order and copies change nothing, the description included
    assert (first is None) == (diff_fingerprints(b, a) is None)
    nonzero = {s: {k: n for k, n in a[s].items() if n} for s in ("ops", "kernels", "syncs")}
    same = all(nonzero[s] == {k: n for k, n in b[s].items() if n} for s in nonzero)
    assert (first is None) == same


# --------------------------------------------------------------------------- compare


def _records(edit: bool = False) -> list[dict[str, Any]]:
    """Four cases with fixed samples (identical in every call) and fingerprints; with
    `edit`, the second case's `aten::linalg_eigh` count is 2 instead of 1."""
    out = []
    for i, n in enumerate((8, 16, 32, 64)):
        fp = copy.deepcopy(LOOP)
        if edit and i == 1:
            fp["ops"]["aten::linalg_eigh"] = 2
        out.append(
            make_record(
                params={"batch": 4, "n": n},
                suite="planted",
                samples_s=make_samples(1e-3 * (i + 1), seed=i),
                dispatch=fp,
            )
        )
    return out


def test_identical_fingerprints_report_no_dispatch_change() -> None:
    result = compare_runs(make_run(_records()), make_run(_records()))
    assert result.dispatch_counts() == {"changed": 0, "same": 4, "no_fingerprint": 0}
    doc = json.loads(result.to_json())
    assert all(v["dispatch"] == {"changed": False, "description": None} for v in doc["verdicts"])
    assert doc["dispatch_counts"]["same"] == 4 and doc["exit_code"] == 0


def test_an_edited_op_count_is_reported_for_that_case_only() -> None:
    base, cur = make_run(_records()), make_run(_records(edit=True))
    result = compare_runs(base, cur)
    changed = [v.id for v in result.dispatch_changes]
    assert changed == [base["records"][1]["id"]]
    assert result.exit_code == 0  # reported, not failing
    v = result.dispatch_changes[0]
    assert v.dispatch is not None and v.dispatch.description == "ops: aten::linalg_eigh ×1 → ×2"
    assert v.label != "slower"  # the timing verdict stands beside it
    assert replace(result, fail_on_dispatch_change=True).exit_code == 1
    doc = json.loads(replace(result, fail_on_dispatch_change=True).to_json())
    assert doc["exit_code"] == 1 and doc["settings"]["fail_on_dispatch_change"] is True
    assert doc["dispatch_counts"] == {"changed": 1, "same": 3, "no_fingerprint": 0}


def test_older_runs_without_fingerprints_give_no_verdict_and_no_column() -> None:
    plain = [{k: v for k, v in r.items() if k != "dispatch"} for r in _records()]
    result = compare_runs(make_run(plain), make_run(_records()))
    assert result.dispatch_counts() == {"changed": 0, "same": 0, "no_fingerprint": 4}
    console = Console(record=True, width=240, color_system=None)
    console.print(render_table(result))
    assert "disp" not in console.export_text() and "dispatch" not in console.export_text()


def test_the_table_marks_the_change_and_notes_it_even_with_changes_only() -> None:
    base, cur = make_run(_records()), make_run(_records(edit=True))
    result = compare_runs(base, cur)
    changed_id = base["records"][1]["id"]
    console = Console(record=True, width=240, color_system=None)
    console.print(render_table(result, show_unchanged=False))
    text = console.export_text()
    assert "disp" in text and "≠" in text
    assert "dispatch: 1 changed (≠, below), 3 same (=)" in text
    assert f"{changed_id}: ops: aten::linalg_eigh ×1 → ×2" in text
    unchanged = [v.id for v in result.verdicts if v.label == "unchanged" and not v.dispatch_changed]
    assert all(i not in text for i in unchanged)


def test_the_recheck_keeps_dispatch_verdicts() -> None:
    from eigenbench.gate.recheck import judge_again

    base, cur = make_run(_records()), make_run(_records(edit=True))
    first = compare_runs(base, cur)
    result = judge_again(base, cur, make_run(_records(edit=True)[:1]), first)
    assert [v.id for v in result.dispatch_changes] == [base["records"][1]["id"]]


# --------------------------------------------------------------------------- baseline save


def test_baseline_save_keeps_the_newest_runs_dispatch(tmp_path: Path) -> None:
    old = make_run(_records(), run_id="r1")
    new = make_run(_records(edit=True)[:2], run_id="r2")  # a filtered run: two cases
    new["records"][0]["dispatch"] = None
    new["records"][0]["dispatch_reason"] = "profiler unavailable"
    save_baselines([old, new], tmp_path)
    stored = {r["id"]: r for r in load_runs_from(tmp_path / "test-machine")["records"]}
    ids = [r["id"] for r in old["records"]]
    assert stored[ids[0]]["dispatch"] is None
    assert stored[ids[0]]["dispatch_reason"] == "profiler unavailable"
    assert stored[ids[1]]["dispatch"]["ops"]["aten::linalg_eigh"] == 2  # the newest run's
    assert stored[ids[2]]["dispatch"] == LOOP  # not measured by the newest run: kept
    assert len(stored[ids[1]]["run_medians_s"]) == 2  # history merged as before


# --------------------------------------------------------------------------- the CLI


def _files(tmp_path: Path) -> tuple[str, str, str]:
    """A baseline, a run with the same fingerprints and a run with one edited op count."""
    paths = []
    for name, records in (
        ("base", _records()),
        ("same", _records()),
        ("edited", _records(edit=True)),
    ):
        path = tmp_path / f"{name}.json"
        save_run(make_run(records, run_id=name), path)
        paths.append(str(path))
    return paths[0], paths[1], paths[2]


def test_compare_exits_0_without_the_flag_and_1_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, same, edited = _files(tmp_path)
    assert main(["compare", base, same, "--fail-on-dispatch-change"]) == 0
    assert "dispatch: 0 changed" in capsys.readouterr().out
    assert main(["compare", base, edited]) == 0
    out = capsys.readouterr().out
    assert "dispatch changed in 1 case(s):" in out and "aten::linalg_eigh ×1 → ×2" in out
    assert main(["compare", base, edited, "--fail-on-dispatch-change"]) == 1
    assert "fails the gate" in capsys.readouterr().out
    assert main(["compare", base, edited, "--fail-on-dispatch-change", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    flagged = [v for v in doc["verdicts"] if v["dispatch"]["changed"]]
    assert len(flagged) == 1 and flagged[0]["dispatch"]["ops"][0]["name"] == "aten::linalg_eigh"
    code = main(["compare", base, edited, "--fail-on-dispatch-change", "--report-only"])
    captured = capsys.readouterr()
    assert code == 0 and "1 dispatch change(s), exit 0 instead of 1" in captured.err
    assert "dispatch changed in 1 case(s)" in captured.out


def _fake_measure(run: dict[str, Any]) -> Any:
    def measure(runner: Any, cases: list[Any], out: Path, what: str) -> dict[str, Any]:
        save_run(run, out)
        return run

    return measure


def test_check_reports_a_dispatch_change_in_report_only_mode_as_make_check_runs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EIGENBENCH_SUITES", str(ROOT / "tools" / "suites"))
    base, _, edited = _files(tmp_path)
    monkeypatch.setattr("eigenbench.cli.commands._measure", _fake_measure(load_runs_from(edited)))
    args = ["check", "planted", "--quick", "--baseline", base, "--out", str(tmp_path / "c.json")]
    # the Makefile's `check` target: --changes-only, and CI adds --report-only
    assert main([*args, "--changes-only", "--report-only", "--fail-on-dispatch-change"]) == 0
    captured = capsys.readouterr()
    assert "dispatch changed in 1 case(s)" in captured.out
    assert "exit 0 instead of 1" in captured.err
    assert main([*args, "--changes-only"]) == 0
    assert main([*args, "--changes-only", "--fail-on-dispatch-change"]) == 1


def test_ab_judges_dispatch_beside_the_paired_timing() -> None:
    same_base, same_head = make_ab_pair(_records(), _records())
    assert paired_compare(same_base, same_head).dispatch_counts()["same"] == 4
    base, head = make_ab_pair(_records(), _records(edit=True))
    result = paired_compare(base, head)
    assert [v.id for v in result.dispatch_changes] == [base["records"][1]["id"]]
    assert result.paired_rounds == 5 and result.exit_code == 0


def test_ab_exits_1_on_a_dispatch_change_only_with_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EIGENBENCH_SUITES", str(ROOT / "tools" / "suites"))

    def fake_run_ab(*args: Any, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return make_ab_pair(_records(), _records(edit=True))

    monkeypatch.setattr("eigenbench.gate.ab.run_ab", fake_run_ab)
    args = ["ab", "planted", "--quick", "--out-dir", str(tmp_path)]
    assert main(args) == 0
    assert "dispatch changed in 1 case(s)" in capsys.readouterr().out
    assert main([*args, "--fail-on-dispatch-change", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["dispatch_counts"] == {"changed": 1, "same": 3, "no_fingerprint": 0}
