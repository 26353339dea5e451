"""`eigenbench merge`: runs of several machines as one run, and every reader of it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from factories import make_record, make_run

from eigenbench.cli import main
from eigenbench.errors import InputFileError, ResultsFileError
from eigenbench.gate.compare import compare_runs
from eigenbench.report import build_model
from eigenbench.results import load_run, save_run, validate_run
from eigenbench.results.export import to_github_action, to_pyperf
from eigenbench.results.merge import (
    MergeInput,
    align_machines,
    is_multi_machine,
    merge_runs,
    records_by_machine,
)

SHAPES = ({"batch": 4, "n": 16}, {"batch": 4, "n": 64})


def _env(key: str, **extra: Any) -> dict[str, Any]:
    return {**make_run([])["env"], "machine_key": key, **extra}


def _machine_run(
    key: str,
    fast: str,
    *,
    run_id: str,
    finished: str = "2026-11-22T00:01:00+00:00",
    median: float = 1e-3,
) -> dict[str, Any]:
    """Two impls at two shapes; `fast` is the faster impl on this machine."""
    records = []
    for i, params in enumerate(SHAPES):
        for impl in ("torch", "numpy"):
            scale = 1.0 if impl == fast else 3.0
            records.append(make_record(impl=impl, params=params, median_s=median * scale * (i + 1)))
    return make_run(records, run_id=run_id, env=_env(key), finished=finished)


def _two_machines(tmp_path: Path) -> tuple[Path, Path]:
    a = save_run(_machine_run("gpu-l4", "torch", run_id="r-l4"), tmp_path / "l4.json")
    b = save_run(_machine_run("gpu-h100", "numpy", run_id="r-h100"), tmp_path / "h100.json")
    return a, b


# --------------------------------------------------------------------------- the union


def test_two_machines_merge_into_one_valid_run_whose_records_keep_their_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _two_machines(tmp_path)
    out = tmp_path / "merged.json"
    assert main(["merge", str(a), str(b), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    run = load_run(out)  # validates against the schema
    assert list(run["machines"]) == ["gpu-l4", "gpu-h100"]
    assert run["machines"]["gpu-h100"]["machine_key"] == "gpu-h100"
    assert run["env"]["machine_key"] == "merged: gpu-l4 + gpu-h100"
    assert [s["run_id"] for s in run["merged_from"]] == ["r-l4", "r-h100"]
    assert [s["file"] for s in run["merged_from"]] == [str(a), str(b)]
    assert len(run["records"]) == 8
    by = records_by_machine(run)
    assert {k: len(v) for k, v in by.items()} == {"gpu-l4": 4, "gpu-h100": 4}
    assert is_multi_machine(run)


def test_part_files_of_one_machine_merge_into_that_machines_run(tmp_path: Path) -> None:
    whole = _machine_run("box", "torch", run_id="r")
    first = make_run(whole["records"][:2], run_id="part-1", env=_env("box"))
    second = make_run(whole["records"][2:], run_id="part-2", env=_env("box"))
    result = merge_runs([MergeInput("p1.json", first), MergeInput("p2.json", second)])
    run = result.run
    assert run["env"] == _env("box")  # the machine's env: a plain run of that machine
    assert not is_multi_machine(run)
    assert [r["id"] for r in run["records"]] == [r["id"] for r in whole["records"]]
    assert build_model(run).machines == ()  # reported as a run of one machine


def test_merging_a_merged_run_again_keeps_every_source(tmp_path: Path) -> None:
    a, b = _two_machines(tmp_path)
    first = merge_runs([MergeInput(str(a), load_run(a)), MergeInput(str(b), load_run(b))]).run
    third = _machine_run("gpu-h200", "torch", run_id="r-h200")
    again = merge_runs([MergeInput("m.json", first), MergeInput("h200.json", third)]).run
    validate_run(again)
    assert list(again["machines"]) == ["gpu-l4", "gpu-h100", "gpu-h200"]
    assert [s["run_id"] for s in again["merged_from"]] == ["r-l4", "r-h100", "r-h200"]
    assert again["env"]["machine_key"] == "merged: gpu-l4 + gpu-h100 + gpu-h200"
    assert len(again["records"]) == 12
    assert again["run_id"] != first["run_id"]


def test_a_case_twice_on_one_machine_is_refused_naming_both_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = save_run(_machine_run("box", "torch", run_id="old"), tmp_path / "old.json")
    new = save_run(_machine_run("box", "numpy", run_id="new"), tmp_path / "new.json")
    out = tmp_path / "merged.json"
    assert main(["merge", str(old), str(new), "--out", str(out)]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(old) in err and str(new) in err and "box" in err
    assert not out.exists()


def test_prefer_newest_keeps_the_newer_runs_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = _machine_run("box", "numpy", run_id="new", finished="2026-11-23T00:00:00+00:00")
    old = _machine_run("box", "torch", run_id="old", finished="2026-11-22T00:00:00+00:00")
    paths = [save_run(new, tmp_path / "new.json"), save_run(old, tmp_path / "old.json")]
    out = tmp_path / "merged.json"
    assert main(["merge", *map(str, paths), "--out", str(out), "--prefer", "newest"]) == 0
    assert "kept the newer of 4 duplicate(s)" in capsys.readouterr().err
    run = load_run(out)
    assert len(run["records"]) == 4
    newer = {r["id"]: r["summary"]["median_s"] for r in new["records"]}
    assert {r["id"]: r["summary"]["median_s"] for r in run["records"]} == newer


def test_out_never_overwrites_an_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _two_machines(tmp_path)
    before = a.read_bytes()
    assert main(["merge", str(a), str(b), "--out", str(a)]) == 2
    assert "is an input of this command" in capsys.readouterr().err
    assert a.read_bytes() == before


def test_a_baseline_folder_is_an_input(tmp_path: Path) -> None:
    folder = tmp_path / "baselines" / "gpu-l4"
    full = _machine_run("gpu-l4", "torch", run_id="b")
    save_run(make_run(full["records"][:2], run_id="b1", env=_env("gpu-l4")), folder / "x.json")
    save_run(make_run(full["records"][2:], run_id="b2", env=_env("gpu-l4")), folder / "y.json")
    other = save_run(_machine_run("gpu-h100", "numpy", run_id="r"), tmp_path / "h100.json")
    out = tmp_path / "merged.json"
    assert main(["merge", str(folder), str(other), "--out", str(out)]) == 0
    assert list(load_run(out)["machines"]) == ["gpu-l4", "gpu-h100"]


def test_schema_checks_the_merge_fields() -> None:
    run = make_run([make_record(machine_key="")])
    with pytest.raises(ResultsFileError, match="/records/0/machine_key"):
        validate_run(run)
    with pytest.raises(ResultsFileError, match="/machines/x"):
        validate_run(make_run([], machines={"x": {"machine_key": "x"}}))


def test_merge_refuses_the_same_case_inside_one_input() -> None:
    rec = make_record()
    with pytest.raises(InputFileError, match=r"also in twice\.json"):
        merge_runs([MergeInput("twice.json", make_run([rec, dict(rec)]))])


# --------------------------------------------------------------------------- the readers


@pytest.fixture
def merged(tmp_path: Path) -> Path:
    a, b = _two_machines(tmp_path)
    out = tmp_path / "merged.json"
    assert main(["merge", str(a), str(b), "--out", str(out)]) == 0
    return out


def test_show_answers_per_machine(merged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["show", str(merged)]) == 0
    text = capsys.readouterr().out
    l4, h100 = text.index("on gpu-l4"), text.index("on gpu-h100")
    assert l4 < h100
    assert "torch" in text[l4:h100].split("fastest")[1].split("\n")[2]
    assert main(["show", str(merged), "--json"]) == 0
    answers = json.loads(capsys.readouterr().out)["answers"]
    winners = {(a["machine_key"], a["params"]["n"]): a["fastest"]["impl"] for a in answers}
    assert winners == {
        ("gpu-l4", 16): "torch",
        ("gpu-l4", 64): "torch",
        ("gpu-h100", 16): "numpy",
        ("gpu-h100", 64): "numpy",
    }


def test_report_names_both_machines_and_draws_the_cross_machine_charts(
    merged: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert main(["report", str(merged), "--out", str(out)]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    charts = sorted(p.name for p in (out / "charts").glob("*.png"))
    across = [c for c in charts if c[3:].startswith("machines-")]
    wins = [c for c in charts if c[3:].startswith("wins-")]
    assert across and wins
    assert all((out / "charts" / c).read_bytes().startswith(b"\x89PNG") for c in across + wins)
    assert 'id="chart-' + across[0] in page and 'id="chart-' + wins[0] in page
    assert "<summary>Machine gpu-l4</summary>" in page
    assert "<summary>Machine gpu-h100</summary>" in page
    assert 'id="machines"' in page  # who wins on which machine, as a table
    table = page[page.index('id="wins-1"') : page.index("</table>", page.index('id="wins-1"'))]
    assert re.findall(r"<th>([^<]+)</th>", table) == ["n", "gpu-l4", "gpu-h100"]
    assert table.count("<strong>torch</strong>") == 2 and table.count("<strong>numpy</strong>") == 2


def test_report_model_of_a_merged_run_keeps_machines_apart(merged: Path) -> None:
    model = build_model(load_run(merged))
    assert [k for k, _ in model.machines] == ["gpu-l4", "gpu-h100"]
    assert [t.machine for t in model.answers] == ["gpu-l4", "gpu-h100"]
    assert [t.rows[0].winner for t in model.answers] == ["torch", "numpy"]
    assert all(g.title.startswith(("gpu-l4 · ", "gpu-h100 · ")) for g in model.sweeps)
    assert len({r.id for r in model.rows}) == 8  # the same case id once per machine
    [g] = model.across
    assert g.machines == ("gpu-l4", "gpu-h100") and len(g.dots) == 4
    [w] = model.wins
    assert w.columns == ("n",)
    assert [[c[0] for c in cells] for _, cells in w.rows] == [["torch", "numpy"]] * 2


def test_compare_matches_on_machine_and_case_id(
    merged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = load_run(merged)
    result = compare_runs(run, run)
    assert len(result.verdicts) == 8
    assert {v.id.rsplit(" @ ", 1)[1] for v in result.verdicts} == {"gpu-l4", "gpu-h100"}
    assert all(v.label != "new" and v.label != "missing" for v in result.verdicts)
    capsys.readouterr()
    assert main(["compare", str(merged), str(merged), "--json"]) == 0
    assert "gpu-h100" in capsys.readouterr().out


def test_compare_of_a_merged_run_with_one_machines_run(merged: Path) -> None:
    run = load_run(merged)
    single = _machine_run("gpu-l4", "torch", run_id="r-l4")
    result = compare_runs(single, run)
    labels = {v.id: v.label for v in result.verdicts}
    assert {i for i, lab in labels.items() if lab == "new"} == {
        f"{r['id']} @ gpu-h100" for r in single["records"]
    }
    assert not any("machine keys differ" in w for w in result.warnings)  # matched per machine
    base, cur = align_machines(single, single)
    assert base is single and cur is single  # one machine each: compared as today


def test_export_keeps_the_machine_in_each_benchmark(merged: Path) -> None:
    run = load_run(merged)
    names = [b["runs"][0]["metadata"]["name"] for b in to_pyperf(run)["benchmarks"]]
    assert len(set(names)) == 8
    assert all(n.endswith((" @ gpu-l4", " @ gpu-h100")) for n in names)
    machines = {
        b["runs"][0]["metadata"]["eigenbench_machine_key"] for b in to_pyperf(run)["benchmarks"]
    }
    assert machines == {"gpu-l4", "gpu-h100"}
    entries = to_github_action(run)
    assert "machine: gpu-h100" in entries[-1]["extra"] and entries[-1]["name"].endswith("gpu-h100")
    single = _machine_run("gpu-l4", "torch", run_id="x")
    assert [e["name"] for e in to_github_action(single)] == [r["id"] for r in single["records"]]


def test_a_real_quick_run_and_its_copy_from_another_machine_merge_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    here = tmp_path / "here.json"
    quick = ["--quick", "--max-time", "0.05", "--warmup", "0", "--filter", "numpy"]
    assert main(["run", "eigvalsh_batched", *quick, "--out", str(here)]) == 0
    run = load_run(here)
    there = {**run, "run_id": "elsewhere", "env": {**run["env"], "machine_key": "elsewhere"}}
    other = save_run(there, tmp_path / "there.json")
    merged = tmp_path / "merged.json"
    assert main(["merge", str(here), str(other), "--out", str(merged)]) == 0
    assert list(load_run(merged)["machines"]) == [run["env"]["machine_key"], "elsewhere"]
    report = tmp_path / "report"
    assert main(["report", str(merged), "--out", str(report)]) == 0
    page = (report / "index.html").read_text(encoding="utf-8")
    assert "<summary>Machine elsewhere</summary>" in page
    assert any(p.name[3:].startswith("machines-") for p in (report / "charts").glob("*.png"))


def test_prefer_newest_dates_a_merged_inputs_records_by_their_own_machines_source() -> None:
    late = "2026-11-25T00:00:00+00:00"
    box_old = _machine_run("box", "torch", run_id="box-old", finished="2026-11-21T00:00:00+00:00")
    other_new = _machine_run("other", "torch", run_id="other-new", finished=late)
    merged = merge_runs([MergeInput("a", box_old), MergeInput("b", other_new)]).run
    assert merged["finished"] == late  # the merged run ends late, but box's records are old
    box_mid = _machine_run("box", "numpy", run_id="box-mid", finished="2026-11-23T00:00:00+00:00")
    result = merge_runs([MergeInput("m", merged), MergeInput("c", box_mid)], prefer="newest")
    assert result.replaced == 4
    box = records_by_machine(result.run)["box"]
    mid = {r["id"]: r["summary"]["median_s"] for r in box_mid["records"]}
    assert {r["id"]: r["summary"]["median_s"] for r in box} == mid


def test_a_merged_run_of_several_machines_is_not_a_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _two_machines(tmp_path)
    out = tmp_path / "merged.json"
    assert main(["merge", str(a), str(b), "--out", str(out)]) == 0
    capsys.readouterr()
    root = tmp_path / "baselines"
    assert main(["baseline", "save", str(out), "--root", str(root)]) == 3
    err = capsys.readouterr().err
    assert "a merged run of 2 machines (gpu-l4, gpu-h100)" in err
    assert "save each machine's own run files" in err and not root.exists()
