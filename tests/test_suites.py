"""The shipped suites load, and their quick grids give the records the issues promise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eigenbench.measure.loop import MeasureOptions
from eigenbench.run.options import RunOptions
from eigenbench.run.runner import Runner
from eigenbench.spec import expand
from eigenbench.suites import available, load_suite

ENV = {"machine_key": "t", "cpu": {}, "gpu": None, "packages": {}, "git_commit": None}
FAST = MeasureOptions(warmup_s=0.0, min_samples=3, max_time_s=0.02)
SUITES = [
    "eigvalsh_batched",
    "eigh_backward",
    "eigh_cupy",
    "spectral_training",
    "spearman",
    "spd_parametrization",
    "svd_gd",
]


def run_quick(name: str, tmp_path: Path, keep: Any = None) -> list[dict[str, Any]]:
    cases = expand(load_suite(name), devices=["cpu", "cuda"], quick=True)
    if keep is not None:
        cases = [c for c in cases if keep(c)]
    runner = Runner(
        env=ENV,
        options=RunOptions(quick=True, measure=FAST),
        out_path=tmp_path / "run.json",
        command="test",
        has_cuda=lambda: False,  # the same answers on a GPU machine: CUDA cases are skipped
    )
    return runner.run(cases)["records"]


def test_every_suite_is_shipped_and_loads() -> None:
    assert set(SUITES) <= set(available())
    for name in SUITES:
        assert load_suite(name).name == name


def test_eigh_backward_gives_fwd_and_bwd_of_all_variants_and_flags_v1_float32(
    tmp_path: Path,
) -> None:
    records = [r for r in run_quick("eigh_backward", tmp_path) if r["device"] == "cpu"]
    seen = {(r["impl"], r["phase"], r["dtype"]) for r in records}
    assert seen == {
        (v, p, d)
        for v in ("v1", "v2", "v3", "final", "eigh")
        for p in ("fwd", "bwd")
        for d in ("float32", "float64")
    }
    for r in records:
        assert r["memory"] is not None and r["memory"]["peak_bytes"] >= 0
        expected = (
            "invalid" if (r["impl"], r["phase"], r["dtype"]) == ("v1", "bwd", "float32") else "ok"
        )
        assert r["status"] == expected, (r["id"], r["reason"])


def test_eigh_cupy_runs_torch_and_skips_cupy_without_a_gpu(tmp_path: Path) -> None:
    records = run_quick("eigh_cupy", tmp_path)
    for r in records:
        if r["device"] == "cuda":
            assert r["status"] == "skipped"
        else:
            assert r["status"] == "ok", (r["id"], r["reason"])
    assert {r["phase"] for r in records if r["workload"] == "kth_eigenvalue"} == {"fwd", "fwd_bwd"}


def test_spd_step_validates_spd_results(tmp_path: Path) -> None:
    records = run_quick(
        "spd_parametrization",
        tmp_path,
        keep=lambda c: c.workload.name == "spd_step" and c.device == "cpu",
    )
    assert {r["impl"] for r in records} == {"symmetric_exp", "cholesky"}
    assert all(r["status"] == "ok" for r in records)


@pytest.mark.parametrize("name", ["spectral_training"])
def test_training_epoch_matches_the_float64_epoch(name: str, tmp_path: Path) -> None:
    records = [r for r in run_quick(name, tmp_path) if r["device"] == "cpu"]
    assert [r["status"] for r in records] == ["ok"]
    assert records[0]["measure_overrides"]["min_samples"] == 3
