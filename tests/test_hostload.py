"""Load is measured, not ignored: others' CPU time during a case, from a fake /proc."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import make_run
from test_gate_compare import _suite

from eigenbench.gate.compare import compare_runs
from eigenbench.measure.hostload import (
    LoadSnapshot,
    load_between,
    parse_busy_s,
    parse_loadavg,
    snapshot,
)

STAT = "cpu  {user} 0 {system} 5000 20 0 0 0 0 0\ncpu0 1 0 1 1 0 0 0 0 0 0\n"


def _proc(folder: Path, load: float, user: int, system: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "loadavg").write_text(f"{load} 0.50 0.40 2/300 12345\n")
    (folder / "stat").write_text(STAT.format(user=user, system=system))
    return folder


def test_proc_files_are_read_as_the_kernel_writes_them() -> None:
    assert parse_loadavg("1.25 0.50 0.40 2/300 12345") == 1.25
    # user + nice + system (+ irq, softirq), not idle, iowait or steal; 100 ticks a second
    assert parse_busy_s("cpu  300 10 90 9000 50 1 2 3 0 0", 100.0) == pytest.approx(4.03)


def test_others_cores_are_everyone_minus_this_process() -> None:
    start = LoadSnapshot(wall_s=0.0, loadavg_1m=0.2, busy_s=100.0, own_s=10.0)
    quiet = load_between(start, LoadSnapshot(1.0, 0.3, 101.1, 11.0))
    assert quiet is not None and quiet["others_cores"] == pytest.approx(0.1)
    assert quiet["under_load"] is False
    busy = load_between(start, LoadSnapshot(2.0, 1.9, 104.0, 12.0))
    assert busy is not None and busy["others_cores"] == pytest.approx(1.0) and busy["under_load"]
    short = load_between(start, LoadSnapshot(0.1, 1.9, 101.0, 10.0))
    assert short is not None and short["under_load"] is False  # too short a window to judge
    assert load_between(None, start) is None


def test_a_case_measured_under_load_is_inconclusive_not_slower(tmp_path: Path) -> None:
    """A neighbour busy on a core while the current run's case 2 was timed: its 3× is not
    called a regression; the same 3× measured quietly is."""
    before = snapshot(_proc(tmp_path / "a", 0.3, user=1000, system=200), clock=lambda: 0.0)
    # 2 s later: the busy time grew by 400 ticks (4 CPU-seconds at the usual 100 a second)
    after = snapshot(_proc(tmp_path / "b", 1.8, user=1400, system=200), clock=lambda: 2.0)
    assert before is not None and after is not None
    base = make_run(_suite(seed=1))
    loaded = _suite({2: 3.0}, seed=2)
    loaded[2]["host_load"] = load_between(before, after)
    assert loaded[2]["host_load"]["under_load"]
    verdict = compare_runs(base, make_run(loaded)).verdicts[2]
    assert verdict.label == "inconclusive" and verdict.reason.startswith("under load (current")
    quiet = compare_runs(base, make_run(_suite({2: 3.0}, seed=2))).verdicts[2]
    assert quiet.label == "slower"


def test_a_loaded_round_makes_the_pooled_record_loaded() -> None:
    from eigenbench.measure.hostload import merge_loads

    quiet = load_between(LoadSnapshot(0.0, 0.2, 0.0, 0.0), LoadSnapshot(1.0, 0.2, 0.1, 0.0))
    busy = load_between(LoadSnapshot(5.0, 0.2, 0.0, 0.0), LoadSnapshot(6.0, 1.5, 1.2, 0.0))
    both = merge_loads(quiet, busy)
    assert both is not None and both["under_load"] and both["wall_s"] == pytest.approx(2.0)
    assert both["others_cores"] == pytest.approx(0.65)
    assert merge_loads(None, quiet) == quiet
