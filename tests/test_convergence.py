"""Time-to-accuracy: trajectories, thinning and the runner's convergence records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from eigenbench.measure.loop import MeasureOptions
from eigenbench.results import load_run
from eigenbench.run.convergence import follow, thin, to_record
from eigenbench.run.options import RunOptions
from eigenbench.run.runner import Runner
from eigenbench.spec import Convergence, Impl, Suite, Workload, expand
from eigenbench.validate import within_tolerance


class Halving:
    """Loss halves every step: it reaches 2**-k after k steps, exactly."""

    def __init__(self, rate: float = 0.5) -> None:
        self.loss = 1.0
        self.rate = rate

    def step(self) -> torch.Tensor:
        self.loss *= self.rate
        return torch.tensor(self.loss)

    def result(self) -> np.ndarray:
        return np.array([self.loss])


def test_follow_stops_at_the_target_with_exact_step_count() -> None:
    ticks = iter(range(1000))
    traj = follow(Halving(), Convergence(target=2**-10, budget_s=1e9), lambda: float(next(ticks)))
    assert traj.reached_at == 9
    assert traj.points[-1][0] == 10
    assert traj.points[-1][2] == 2**-10
    assert traj.points[-1][1] == 10.0


def test_follow_respects_step_and_time_budgets() -> None:
    ticks = iter(range(1000))
    by_steps = follow(
        Halving(0.99),
        Convergence(target=1e-9, budget_steps=30, budget_s=1e9),
        lambda: float(next(ticks)),
    )
    assert by_steps.reached_at is None and len(by_steps.points) == 30
    ticks = iter(range(1000))
    by_time = follow(
        Halving(0.99), Convergence(target=1e-9, budget_s=5.0), lambda: float(next(ticks))
    )
    assert len(by_time.points) == 5


def test_thin_keeps_first_last_and_target_and_is_bounded() -> None:
    idx = thin(100_000, 50, must=(777,))
    assert idx[0] == 0 and idx[-1] == 99_999 and 777 in idx
    assert len(idx) <= 120
    assert idx == sorted(set(idx))
    assert thin(10, 50) == list(range(10))


def test_to_record_reports_time_to_target() -> None:
    ticks = iter(range(1000))
    traj = follow(Halving(), Convergence(target=2**-5), lambda: float(next(ticks)) * 0.1)
    rec = to_record(traj, Convergence(target=2**-5))
    assert rec["reached"] is True
    assert rec["steps_to_target"] == 5
    assert abs(rec["seconds_to_target"] - 0.5) < 1e-12
    assert rec["trajectory"][-1] == [5, rec["seconds_to_target"], 2**-5]


def test_runner_records_convergence_and_time_per_step(tmp_path: Path) -> None:
    def make_inputs(p: Any, d: str, t: str, s: int) -> float:
        return float(p["rate"])

    w = Workload(
        name="halving",
        kind="convergence",
        convergence=Convergence(target=1e-6),
        impls=(Impl("halve", lambda rate: Halving(rate)),),
        make_inputs=make_inputs,
        reference=lambda x, p, ph: np.array([0.0]),
        validate=within_tolerance("zero", rtol={"float32": 1e-5}),
        grid=[{"rate": 0.5}, {"rate": 0.999999}],
        quick_grid=[{"rate": 0.5}],
    )
    runner = Runner(
        env={"machine_key": "t", "cpu": {}, "gpu": None, "packages": {}, "git_commit": None},
        options=RunOptions(measure=MeasureOptions(warmup_s=0, max_time_s=0.01)),
        out_path=tmp_path / "r.json",
        command="t",
    )
    runner.run(expand(Suite("s", (w,)), devices=["cpu"], quick=False))
    fast, stalled = load_run(tmp_path / "r.json")["records"]
    assert fast["convergence"]["reached"] is True
    assert fast["convergence"]["steps_to_target"] == 20  # 2**-20 < 1e-6 < 2**-19
    assert fast["summary"]["median_s"] > 0
    assert stalled["convergence"]["reached"] is False
    assert stalled["validation"]["ok"] is False


def test_an_optimisation_slower_than_its_timed_steps_is_said_so() -> None:
    from eigenbench.run.runner import slower_while_following

    record: Any = {
        "summary": {"median_s": 0.4e-3},
        "convergence": {"trajectory": [[1, 0.002, 1.0], [156, 1.06, 1e-6]]},
    }
    warning = slower_while_following(record)
    assert warning is not None and "6.79 ms a step" in warning and "17×" in warning
    record["convergence"]["trajectory"][-1][1] = 0.07  # 0.45 ms a step: as timed
    assert slower_while_following(record) is None
