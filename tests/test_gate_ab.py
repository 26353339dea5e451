"""`eigenbench ab`: the visit schedule, the worker protocol and the command, end to end."""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from pathlib import Path

import pytest

from eigenbench.ab_worker import serve
from eigenbench.cli import main
from eigenbench.gate.ab import SIDES, Setup, child_env, parse_env, visit_order
from eigenbench.gate.paired import is_ab_pair
from eigenbench.results import load_run, validate_run
from eigenbench.run.options import RunOptions

ROOT = Path(__file__).resolve().parents[1]
PLANTED_A = {"planted/a/cpu/float32/n=16", "planted/a/cpu/float32/n=32"}
TIMING = ["--max-time", "0.2", "--warmup", "0.02", "--rounds", "4"]


def test_each_round_visits_every_case_once_and_sides_take_turns() -> None:
    cases = [f"c{i}" for i in range(7)]
    rounds = [visit_order(cases, r, seed=5) for r in range(6)]
    first = Counter()
    for visits in rounds:
        assert sorted(c for c, _ in visits) == cases
        assert all(sorted(sides) == sorted(SIDES) for _, sides in visits)
        first.update(c for c, sides in visits if sides[0] == "base")
    assert all(first[c] == 3 for c in cases)  # base first in half of six rounds
    assert [c for c, _ in rounds[1]] != [c for c, _ in rounds[2]]  # reshuffled per round
    assert visit_order(cases, 3, seed=5) == rounds[3]  # seeded


def test_a_setups_folder_goes_first_on_pythonpath() -> None:
    env = child_env(Setup("base", folder="/src/old", env={"X": "1"}), {"PYTHONPATH": "/p"})
    assert env["PYTHONPATH"] == f"/src/old{os.pathsep}/p" and env["X"] == "1"
    assert "PYTHONPATH" not in child_env(Setup("head"), {})


def test_parse_env_names_the_flag_and_the_bad_item() -> None:
    assert parse_env(["A=1", "B=x=y"], "--head-env") == {"A": "1", "B": "x=y"}
    with pytest.raises(ValueError, match=r"--base-env: expected KEY=VALUE, got 'A'"):
        parse_env(["A"], "--base-env")


def _serve(requests: list[dict]) -> list[dict]:
    out = io.StringIO()
    serve(io.StringIO("".join(json.dumps(r) + "\n" for r in requests)), out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_worker_plans_times_rounds_and_returns_a_valid_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EIGENBENCH_SUITES", str(ROOT / "tools" / "suites"))
    monkeypatch.delenv("EIGENBENCH_PLANTED", raising=False)
    options = RunOptions(quick=True, rounds=3).to_dict()
    options["measure"].update(max_time_s=0.06, warmup_s=0.0)
    case = "planted/b/cpu/float32/n=16"
    replies = _serve(
        [
            {"op": "first", "id": case},
            {
                "op": "plan",
                "suites": ["planted"],
                "devices": ["cpu"],
                "quick": True,
                "filter": "/b/",
                "options": options,
                "command": "test",
            },
            {"op": "again", "id": "planted/nope"},
            {"op": "first", "id": case},
            {"op": "again", "id": case},
            {"op": "run"},
        ]
    )
    assert "before a plan" in replies[0]["error"]
    assert replies[1]["cases"] == [case, "planted/b/cpu/float32/n=32"]
    assert "unknown case" in replies[2]["error"]
    assert replies[3]["status"] == "ok" and replies[3]["median_s"] > 0
    assert replies[4]["median_s"] > 0
    run = validate_run(replies[5]["run"])
    assert run["status"] == "running"  # one of its two cases never ran
    (record,) = run["records"]
    assert record["rounds"] == 2 and record["round_medians_s"][1] == replies[4]["median_s"]


def test_ab_catches_a_planted_slowdown_and_compare_judges_the_pair_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EIGENBENCH_SUITES", str(ROOT / "tools" / "suites"))
    monkeypatch.delenv("EIGENBENCH_PLANTED", raising=False)
    args = ["ab", "planted", "--quick", "--head-env", "EIGENBENCH_PLANTED=a:10", *TIMING]
    code = main([*args, "--out-dir", str(tmp_path), "--json"])
    result = json.loads(capsys.readouterr().out)
    slower = {v["id"] for v in result["verdicts"] if v["label"] == "slower"}
    assert code == 1 and PLANTED_A <= slower, result["verdicts"][:2]
    assert result["settings"]["paired_rounds"] == 4
    base, head = (load_run(p) for p in sorted(tmp_path.glob("ab-*.json")))  # -base, -head
    assert is_ab_pair(base, head) and head["ab"]["setup"]["env"] == {"EIGENBENCH_PLANTED": "a:10"}
    assert all(r["rounds"] == 4 for r in base["records"] + head["records"])
    assert base["status"] == head["status"] == "complete"
    # `compare` sees the tag and judges the pair round by round, as `ab` did
    code = main(["compare", *(str(p) for p in sorted(tmp_path.glob("ab-*.json"))), "--json"])
    assert code == 1 and json.loads(capsys.readouterr().out) == result


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--base-dir", "/nonexistent/dir"], 2, "--base-dir /nonexistent/dir: not a folder"),
        (["--head-env", "NOEQUALS"], 2, "--head-env: expected KEY=VALUE"),
        (["--rounds", "2"], 2, "--rounds must be at least 3"),
        (["--isolate"], 2, "--isolate is not supported"),
        (["--base-python", "/nonexistent/python"], 4, "base side: cannot start"),
        (["--head-dir", "/tmp"], 4, "head side: /tmp has no eigenbench/ab_worker.py"),
    ],
)
def test_ab_bad_arguments_fail_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], code: int, message: str
) -> None:
    assert main(["ab", "planted", "--quick", "--out-dir", str(tmp_path), *extra]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
    assert not list(tmp_path.iterdir())


def test_a_side_whose_suites_are_missing_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["ab", "planted", "--quick", "--base-env", f"EIGENBENCH_SUITES={tmp_path}", *TIMING]
    )
    assert code == 3  # an unknown suite, as `eigenbench run` would say
    assert "base side: unknown suite 'planted'" in capsys.readouterr().err


def test_ab_sends_only_changed_options_which_read_back_whole() -> None:
    """An older base revision reads the options as long as it knows those set (a new option
    left at its default, such as `graph`, is not sent)."""
    from eigenbench.measure.loop import MeasureOptions
    from eigenbench.run.options import RunOptions

    opts = RunOptions(quick=True, measure=MeasureOptions(max_time_s=0.5), rounds=3)
    sent = opts.changed_fields()
    assert set(sent) == {"quick", "measure", "rounds"} and "graph" not in sent
    assert RunOptions.from_dict(sent) == opts
