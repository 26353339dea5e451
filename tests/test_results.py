"""The run file: schema round trip, atomic saves and clear errors on bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import make_record, make_run

from eigenbench.errors import ResultsFileError
from eigenbench.results import list_runs, load_run, save_run, validate_run


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    run = make_run(
        [
            make_record(),
            make_record(impl="numpy", status="invalid"),
            make_record(impl="cupy", device="cuda", status="skipped"),
        ]
    )
    path = save_run(run, tmp_path / "run.json")
    assert load_run(path) == json.loads(json.dumps(run))


def test_non_finite_numbers_are_stored_as_null(tmp_path: Path) -> None:
    rec = make_record()
    rec["validation"]["max_rel_err"] = float("inf")
    path = save_run(make_run([rec]), tmp_path / "run.json")
    assert load_run(path)["records"][0]["validation"]["max_rel_err"] is None


@pytest.mark.parametrize(
    ("mutate", "pointer"),
    [
        (lambda d: d.pop("records"), "/"),
        (lambda d: d["records"][0].update(status="great"), "/records/0/status"),
        (lambda d: d["records"][0]["summary"].update(median_s="fast"), "/records/0/summary"),
        (lambda d: d["env"].pop("machine_key"), "/env"),
        (lambda d: d["records"][0].update(device="tpu"), "/records/0/device"),
    ],
)
def test_schema_errors_name_file_and_field(tmp_path: Path, mutate, pointer: str) -> None:
    doc = make_run([make_record()])
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsFileError) as info:
        load_run(path)
    message = str(info.value)
    where = "expected" if pointer == "/" else pointer  # the whole document: no bare "/"
    assert message.startswith(f"{path}: {where}")
    assert "\n" not in message


def test_wrong_schema_version_is_named(tmp_path: Path) -> None:
    path = tmp_path / "v9.json"
    path.write_text(json.dumps(make_run([], schema="eigenbench.run/9")))
    with pytest.raises(ResultsFileError, match=r"/schema: expected schema 'eigenbench.run/1'"):
        load_run(path)


@pytest.mark.parametrize("text", ['{"schema": ', "", "[1, 2]", '{"a": NaN}', "\xff\xfe"])
def test_corrupt_files_are_rejected(tmp_path: Path, text: str) -> None:
    path = tmp_path / "corrupt.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ResultsFileError) as info:
        load_run(path)
    assert str(info.value).startswith(str(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ResultsFileError, match="no such file"):
        load_run(tmp_path / "nope.json")


def test_save_is_atomic_and_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    save_run(make_run([make_record()]), target)
    save_run(make_run([make_record(), make_record(impl="numpy")]), target)
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
    assert len(load_run(target)["records"]) == 2


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    save_run(make_run([make_record()]), target)
    with pytest.raises(TypeError):
        save_run(make_run([make_record(params={"x": object()})]), target)
    assert len(load_run(target)["records"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_list_runs_ignores_temporaries(tmp_path: Path) -> None:
    save_run(make_run([]), tmp_path / "a.json")
    (tmp_path / ".a.json.x1.tmp").write_text("{")
    assert [p.name for p in list_runs(tmp_path)] == ["a.json"]


def test_validate_accepts_factory_runs() -> None:
    validate_run(
        make_run(
            [
                make_record(status=s, params={"n": i})
                for i, s in enumerate(
                    ("ok", "invalid", "skipped", "failed", "timeout", "interrupted")
                )
            ]
        )
    )


def test_a_run_that_lost_cuda_says_after_which_case() -> None:
    from eigenbench.errors import ResultsFileError
    from eigenbench.results import validate_run

    run = make_run([])
    run["cuda_lost"] = {"after": "w/i/cuda/float32/n=4", "error": "RuntimeError: illegal"}
    validate_run(run)
    run["cuda_lost"] = {"after": "w/i/cuda/float32/n=4"}
    with pytest.raises(ResultsFileError, match="cuda_lost"):
        validate_run(run)
