"""Speed of light: declared costs, measured peaks (faked here), achieved rate and floor."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from factories import RUN_ENV
from fakes import FakeClock

from eigenbench.errors import SuiteError
from eigenbench.measure import peaks as peaksmod
from eigenbench.measure.loop import MeasureOptions
from eigenbench.results import load_run
from eigenbench.run.options import RunOptions
from eigenbench.run.runner import Runner
from eigenbench.run.throughput import throughput
from eigenbench.spec import (
    Cost,
    Impl,
    Suite,
    Validation,
    Workload,
    check_suite,
    expand,
    expand_grid,
    version_hash,
)
from eigenbench.suites import load_suite

ENV = RUN_ENV
PEAK = {"flop_per_s": 1e11, "bytes_per_s": 1e10}


def _workload(suite: str, name: str) -> Workload:
    return next(w for w in load_suite(suite).workloads if w.name == name)


def test_cost_formulas_at_a_known_size() -> None:
    eigvalsh = _workload("eigvalsh_batched", "eigvalsh_batched").cost
    eigh = _workload("eigh_cupy", "eigh").cost
    spearman = _workload("spearman", "spearman").cost
    assert eigvalsh is not None and eigh is not None and spearman is not None
    c = eigvalsh({"batch": 10, "n": 30}, "float32")
    assert c.flops == pytest.approx(10 * 4 / 3 * 27_000)
    assert c.bytes == 10 * (900 + 30) * 4
    c = eigh({"batch": 2, "n": 10}, "float64")
    assert c.flops == pytest.approx(2 * 9 * 1000)
    assert c.bytes == 2 * (200 + 10) * 8
    c = spearman({"n": 1000, "family": "ties"}, "float32")
    assert c.flops == 10_000 and c.bytes == 4 * 2 * 1000 * 4


def test_compute_bound_throughput() -> None:
    # intensity 100 flop/byte: the compute roof (1e11) is below 100 × 1e10
    summary = {"median_s": 0.02, "ci95_high_s": 0.021}
    tp = throughput(Cost(flops=1e9, bytes=1e7), summary, PEAK)
    assert tp["bound"] == "compute"
    assert tp["floor_s"] == pytest.approx(1e-2)  # max(1e9/1e11, 1e7/1e10)
    assert tp["flop_per_s"] == pytest.approx(5e10)
    assert tp["bytes_per_s"] == pytest.approx(5e8)
    assert tp["fraction_of_peak"] == pytest.approx(0.5)  # 5e10 / min(1e11, 100 × 1e10)
    assert tp["below_floor"] is False


def test_memory_bound_throughput() -> None:
    # intensity 1 flop/byte: the binding roof is 1 × 1e10 flop/s
    summary = {"median_s": 0.4, "ci95_high_s": 0.41}
    tp = throughput(Cost(flops=1e9, bytes=1e9), summary, PEAK)
    assert tp["bound"] == "memory"
    assert tp["floor_s"] == pytest.approx(0.1)
    assert tp["fraction_of_peak"] == pytest.approx(2.5e9 / 1e10)
    assert tp["below_floor"] is False


def test_below_floor_needs_the_whole_interval_below() -> None:
    cost = Cost(flops=1e9, bytes=0.0)  # floor 0.01 s
    assert throughput(cost, {"median_s": 0.009, "ci95_high_s": 0.011}, PEAK)["below_floor"] is False
    assert throughput(cost, {"median_s": 0.009, "ci95_high_s": 0.0095}, PEAK)["below_floor"]


def instant(a: torch.Tensor) -> torch.Tensor:
    return a


def same(out: torch.Tensor, expected: Any, params: Any, dtype: str) -> Validation:
    return Validation(bool(np.allclose(out.numpy(), expected)), 0.0, 0.0, "same")


def make_inputs(params: Any, device: str, dtype: str, seed: int) -> torch.Tensor:
    return torch.ones(int(params["n"]), dtype=getattr(torch, dtype))


def _suite(cost: Any) -> Suite:
    return Suite(
        "light",
        (
            Workload(
                name="light",
                impls=(Impl("instant", instant),),
                make_inputs=make_inputs,
                reference=lambda x, p, ph: x.double().numpy(),
                validate=same,
                grid=[{"n": 4}],
                quick_grid=[{"n": 4}],
                cost=cost,
            ),
        ),
    )


def _run(suite: Suite, tmp_path: Path, env: dict[str, Any]) -> dict[str, Any]:
    runner = Runner(
        env=env,
        options=RunOptions(
            devices=("cpu",), measure=MeasureOptions(warmup_s=0.0, max_time_s=0.05), rounds=2
        ),
        out_path=tmp_path / "run.json",
        command="test",
        clock_factory=lambda c: FakeClock(1e-6),
    )
    return runner.run(expand(suite, devices=("cpu",), quick=True))


def test_an_impl_faster_than_physics_is_below_floor(tmp_path: Path) -> None:
    env = {**ENV, "peaks": {"cpu": {"float32": PEAK}}}
    doc = _run(_suite(lambda p, d: Cost(flops=1e15, bytes=0.0)), tmp_path, env)
    (record,) = doc["records"]
    assert record["status"] == "ok"
    tp = record["throughput"]
    assert tp["below_floor"] is True and tp["floor_s"] == pytest.approx(1e4)
    assert tp["fraction_of_peak"] > 1e6
    assert load_run(tmp_path / "run.json")["records"][0]["throughput"] == tp  # schema-valid


def test_a_plausible_cost_is_not_below_floor_and_no_peaks_no_throughput(tmp_path: Path) -> None:
    env = {**ENV, "peaks": {"cpu": {"float32": PEAK}}}
    doc = _run(_suite(lambda p, d: Cost(flops=1e3, bytes=1e3)), tmp_path, env)
    tp = doc["records"][0]["throughput"]
    assert tp["below_floor"] is False and 0 < tp["fraction_of_peak"] < 1
    assert "throughput" not in _run(_suite(None), tmp_path, env)["records"][0]
    doc = _run(_suite(lambda p, d: Cost(flops=1e3, bytes=1e3)), tmp_path, ENV)
    assert "throughput" not in doc["records"][0]


def test_a_failing_cost_model_is_a_warning(tmp_path: Path) -> None:
    env = {**ENV, "peaks": {"cpu": {"float32": PEAK}}}
    doc = _run(_suite(lambda p, d: 1 / 0), tmp_path, env)
    (record,) = doc["records"]
    assert record["status"] == "ok" and "throughput" not in record
    assert any("no throughput" in w for w in record["warnings"])


def test_peaks_file_round_trip(tmp_path: Path) -> None:
    calls: list[str] = []

    def fake(device: str, dtypes: Any) -> dict[str, dict[str, float]]:
        calls.append(device)
        return {d: {"flop_per_s": 1e9 * (len(calls)), "bytes_per_s": 2e9} for d in dtypes}

    first = peaksmod.peaks_for("m", ["cpu"], root=tmp_path, measure_fn=fake)
    assert first == {
        "cpu": {d: {"flop_per_s": 1e9, "bytes_per_s": 2e9} for d in ("float32", "float64")}
    }
    assert (tmp_path / "m.json").exists()
    assert peaksmod.peaks_for("m", ["cpu"], root=tmp_path, measure_fn=fake) == first
    assert calls == ["cpu"]  # kept, not measured again
    again = peaksmod.peaks_for("m", ["cpu"], root=tmp_path, measure_fn=fake, remeasure=True)
    assert again["cpu"]["float32"]["flop_per_s"] == 2e9 and calls == ["cpu", "cpu"]
    assert peaksmod.load_peaks(tmp_path / "m.json") == again


def test_peak_arithmetic() -> None:
    assert peaksmod.matmul_flops(1024) == 2 * 1024**3
    assert peaksmod.copy_bytes(100) == 200
    assert peaksmod.rate(10.0, 2.0) == 5.0 and peaksmod.rate(1.0, 0.0) == 0.0


def test_cost_is_not_part_of_the_version_hash() -> None:
    w = _workload("eigvalsh_batched", "eigvalsh_batched")
    bare = dataclasses.replace(w, cost=None)
    other = dataclasses.replace(w, cost=lambda p, d: Cost(flops=math.pi, bytes=1.0))
    for impl in w.impls:
        assert version_hash(w, impl) == version_hash(bare, impl) == version_hash(other, impl)


def test_check_suite_rejects_a_cost_that_is_not_callable() -> None:
    with pytest.raises(SuiteError, match="cost must be callable"):
        check_suite(_suite(Cost(flops=1.0, bytes=1.0)), "here")


def test_every_shipped_workload_declares_a_positive_cost_with_its_formula() -> None:
    """Each workload in suites/ gives a Cost at every point of its grids, in every dtype, and
    documents the formula (and its source) in the cost function's docstring."""
    from eigenbench.suites import available

    names = available()
    assert names
    for name in names:
        for w in load_suite(name).workloads:
            assert w.cost is not None, f"{name}/{w.name} declares no cost"
            doc = w.cost.__doc__ or ""
            assert "flop" in doc.lower() and "bytes" in doc.lower(), w.name
            for grid in (w.grid, w.quick_grid, w.gpu_grid or []):
                for params in expand_grid(grid):
                    for dtype in w.dtypes:
                        c = w.cost(params, dtype)
                        assert isinstance(c, Cost), (w.name, params)
                        assert c.flops > 0 and c.bytes > 0, (w.name, params, dtype)
                        assert math.isfinite(c.flops) and math.isfinite(c.bytes)
