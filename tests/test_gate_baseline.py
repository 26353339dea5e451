"""baseline: per-machine, per-suite files written atomically; folders merged for compare."""

from __future__ import annotations

import json

import pytest
from factories import make_record, make_run

from eigenbench.errors import BaselineError, ResultsFileError
from eigenbench.gate.baseline import (
    baseline_path,
    load_runs_from,
    machine_key,
    save_baseline,
    with_history,
)
from eigenbench.gate.compare import compare_runs
from eigenbench.results import load_run, save_run


def _run(**overrides):
    recs = [
        make_record("eigvalsh_batched", "torch", {"n": 8}, suite="eigen"),
        make_record("eigvalsh_batched", "numpy", {"n": 8}, suite="eigen"),
        make_record("spearman", "torch", {"points": 100}, suite="rank"),
    ]
    return make_run(recs, **overrides)


def test_save_writes_one_valid_file_per_suite(tmp_path):
    run = _run()
    paths = save_baseline(run, root=tmp_path)
    assert sorted(paths) == sorted(
        [tmp_path / "test-machine" / "eigen.json", tmp_path / "test-machine" / "rank.json"]
    )
    eigen = load_run(tmp_path / "test-machine" / "eigen.json")  # schema-valid run files
    rank = load_run(tmp_path / "test-machine" / "rank.json")
    assert [r["id"] for r in eigen["records"]] == [r["id"] for r in run["records"][:2]]
    assert [r["id"] for r in rank["records"]] == [run["records"][2]["id"]]
    assert eigen["run_id"] == run["run_id"] and eigen["env"] == run["env"]
    assert eigen["records"][0]["samples_s"] == run["records"][0]["samples_s"]
    assert not [p for p in (tmp_path / "test-machine").iterdir() if p.name.startswith(".")]


def test_save_replaces_only_the_suites_it_holds(tmp_path):
    save_baseline(_run(), root=tmp_path)
    rank_before = (tmp_path / "test-machine" / "rank.json").read_text()
    newer = make_run(
        [make_record("eigvalsh_batched", "cupy", {"n": 8}, suite="eigen")], run_id="run-2"
    )
    assert save_baseline(newer, root=tmp_path) == [tmp_path / "test-machine" / "eigen.json"]
    eigen = load_run(tmp_path / "test-machine" / "eigen.json")
    # the new case joins; the cases it did not measure stay (a baseline never loses data)
    assert eigen["run_id"] == "run-2"
    assert [r["impl"] for r in eigen["records"]] == ["cupy", "torch", "numpy"]
    assert (tmp_path / "test-machine" / "rank.json").read_text() == rank_before


def test_machine_key_comes_from_env():
    run = _run()
    assert machine_key(run) == "test-machine"
    assert (
        baseline_path("gpu-nvidia-h100", "eigen", "r").as_posix() == "r/gpu-nvidia-h100/eigen.json"
    )


@pytest.mark.parametrize("key", ["../escape", "a/b", "", ".hidden"])
def test_unsafe_machine_key_is_refused(tmp_path, key):
    run = _run()
    run["env"]["machine_key"] = key
    with pytest.raises((BaselineError, ResultsFileError)):
        save_baseline(run, root=tmp_path)
    assert not any(tmp_path.rglob("*.json"))


def test_unsafe_suite_name_writes_nothing(tmp_path):
    run = _run()
    run["records"][2]["suite"] = "../../etc"
    with pytest.raises(BaselineError, match="suite"):
        save_baseline(run, root=tmp_path)
    assert not any(tmp_path.rglob("*.json"))


def test_empty_or_running_run_is_refused(tmp_path):
    with pytest.raises(BaselineError, match="no records"):
        save_baseline(make_run([]), root=tmp_path)
    with pytest.raises(BaselineError, match="running"):
        save_baseline(_run(status="running", finished=None), root=tmp_path)


def test_invalid_run_is_refused_before_writing(tmp_path):
    run = _run()
    del run["records"][0]["samples_s"]
    with pytest.raises(ResultsFileError, match="samples_s"):
        save_baseline(run, root=tmp_path)
    assert not tmp_path.exists() or not any(tmp_path.rglob("*.json"))


def test_load_from_file_equals_load_run(tmp_path):
    path = save_run(_run(), tmp_path / "run.json")
    assert load_runs_from(path) == load_run(path)


def test_folder_round_trip_merges_the_suites(tmp_path):
    run = _run()
    save_baseline(run, root=tmp_path)
    merged = load_runs_from(tmp_path / "test-machine")
    assert sorted(r["id"] for r in merged["records"]) == sorted(r["id"] for r in run["records"])
    assert len(merged["sources"]) == 2
    assert merged["env"]["machine_key"] == "test-machine"
    result = compare_runs(merged, run)
    assert {v.label for v in result.verdicts} == {"unchanged"}
    assert result.exit_code == 0


def test_folder_merge_metadata(tmp_path):
    a = make_run([make_record(suite="a")], run_id="r1", started="2026-01-01T00:00:00+00:00")
    b = make_run(
        [make_record("other", suite="b")],
        run_id="r2",
        started="2026-01-02T00:00:00+00:00",
        status="interrupted",
    )
    save_run(a, tmp_path / "a.json")
    save_run(b, tmp_path / "b.json")
    merged = load_runs_from(tmp_path)
    assert merged["run_id"] == "r1+r2"
    assert merged["started"] == "2026-01-01T00:00:00+00:00"
    assert merged["status"] == "interrupted"


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / ".partial.json.tmp").write_text("{}")
    with pytest.raises(ResultsFileError, match="has none") as info:
        load_runs_from(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_duplicate_case_across_files_names_both(tmp_path):
    rec = make_record()
    save_run(make_run([rec]), tmp_path / "a.json")
    save_run(make_run([rec]), tmp_path / "b.json")
    with pytest.raises(ResultsFileError, match=r"a\.json") as info:
        load_runs_from(tmp_path)
    assert "b.json" in str(info.value) and rec["id"] in str(info.value)


def test_mixed_machines_in_a_folder_are_refused(tmp_path):
    save_run(make_run([make_record(suite="a")]), tmp_path / "a.json")
    other = make_run([make_record("other", suite="b")])
    other["env"]["machine_key"] = "elsewhere"
    save_run(other, tmp_path / "b.json")
    with pytest.raises(ResultsFileError, match="machine_key"):
        load_runs_from(tmp_path)


def test_corrupt_file_in_folder_is_named(tmp_path):
    save_run(make_run([make_record()]), tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps({"schema": "eigenbench.run/1"}))
    with pytest.raises(ResultsFileError, match=r"b\.json"):
        load_runs_from(tmp_path)


def test_missing_path_is_a_results_error(tmp_path):
    with pytest.raises(ResultsFileError, match="no such file"):
        load_runs_from(tmp_path / "nope.json")


# --------------------------------------------------------------------------- history


def _timed(median_s: float, run_id: str, version: str = "v0", impls=("torch", "numpy")):
    recs = [
        make_record(
            "eigvalsh_batched", impl, {"n": 8}, suite="eigen", median_s=median_s, version=version
        )
        for impl in impls
    ]
    return make_run(recs, run_id=run_id)


def test_history_keeps_the_last_runs_medians_newest_last():
    base = None
    for k, m in enumerate([1e-3, 2e-3, 3e-3, 4e-3]):
        base = with_history(base, _timed(m, f"r{k}"), keep=3)
    assert base["history_run_ids"] == ["r1", "r2", "r3"]
    medians = base["records"][0]["run_medians_s"]
    assert medians == pytest.approx([2e-3, 3e-3, 4e-3], rel=0.02)
    assert base["run_id"] == "r3"


def test_history_restarts_for_a_new_version_or_a_new_case():
    base = with_history(None, _timed(1e-3, "r0"), keep=5)
    base = with_history(base, _timed(1e-3, "r1"), keep=5)
    newer = _timed(1e-3, "r2", impls=("torch", "numpy", "scipy"))
    newer["records"][0]["version"] = "v1"
    out = with_history(base, newer, keep=5)
    torch_, numpy_, scipy_ = (r["run_medians_s"] for r in out["records"])
    assert torch_[:2] == [None, None] and torch_[2] is not None  # version changed
    assert None not in numpy_ and len(numpy_) == 3
    assert scipy_[:2] == [None, None]  # new case
    assert len(out["history_run_ids"]) == 3


def test_keep_one_stores_no_history_and_untimed_cases_get_null():
    run = _timed(1e-3, "r0")
    run["records"][1] = make_record(
        "eigvalsh_batched", "numpy", {"n": 8}, suite="eigen", status="failed"
    )
    assert "history_run_ids" not in with_history(None, run, keep=1)
    out = with_history(None, run, keep=4)
    assert out["records"][1]["run_medians_s"] == [None]


def test_save_accumulates_history_and_the_cli_saves_several_runs(tmp_path):
    from eigenbench.cli import main

    paths = []
    for k in range(3):
        path = tmp_path / f"r{k}.json"
        save_run(_timed(1e-3 * (k + 1), f"r{k}"), path)
        paths.append(str(path))
    assert main(["baseline", "save", *paths, "--root", str(tmp_path / "b"), "--keep", "2"]) == 0
    saved = load_run(tmp_path / "b" / "test-machine" / "eigen.json")  # still a valid run file
    assert saved["history_run_ids"] == ["r1", "r2"]
    assert saved["records"][0]["run_medians_s"] == pytest.approx([2e-3, 3e-3], rel=0.02)


def test_corrupt_old_baseline_stops_the_save_and_is_kept(tmp_path):
    target = tmp_path / "test-machine" / "eigen.json"
    target.parent.mkdir()
    target.write_text("{not json")
    with pytest.raises(ResultsFileError):
        save_baseline(_timed(1e-3, "r0"), root=tmp_path)
    assert target.read_text() == "{not json"


def test_bad_keep_is_refused(tmp_path):
    with pytest.raises(BaselineError, match="keep"):
        save_baseline(_timed(1e-3, "r0"), root=tmp_path, keep=0)


def test_a_filtered_run_merges_into_the_baseline_and_keeps_the_other_cases():
    """Saving a run of some cases must not lose the others or their history."""
    base = with_history(None, _timed(1e-3, "r0"), keep=5)
    base = with_history(base, _timed(2e-3, "r1"), keep=5)
    only_torch = _timed(3e-3, "r2", impls=("torch",))
    out = with_history(base, only_torch, keep=5)
    by_impl = {r["impl"]: r for r in out["records"]}
    assert set(by_impl) == {"torch", "numpy"}
    assert out["history_run_ids"] == ["r0", "r1", "r2"]
    assert by_impl["torch"]["run_medians_s"] == pytest.approx([1e-3, 2e-3, 3e-3], rel=0.02)
    numpy_medians = by_impl["numpy"]["run_medians_s"]
    assert numpy_medians[:2] == pytest.approx([1e-3, 2e-3], rel=0.02) and numpy_medians[2] is None
    assert by_impl["numpy"]["samples_s"] == base["records"][1]["samples_s"]  # its last timing
    kept_one = with_history(base, only_torch, keep=1)
    assert {r["impl"] for r in kept_one["records"]} == {"torch", "numpy"}
    assert all("run_medians_s" not in r for r in kept_one["records"])


def test_a_case_no_run_in_the_window_measured_leaves_the_baseline():
    base = with_history(None, _timed(1e-3, "r0"), keep=3)
    for k in range(1, 4):  # three saves without numpy: its window of 3 runs is all null
        base = with_history(base, _timed(1e-3, f"r{k}", impls=("torch",)), keep=3)
        assert ("numpy" in {r["impl"] for r in base["records"]}) is (k < 3)
