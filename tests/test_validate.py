"""Tolerances from the dtype's precision and the problem's size, and impls wrong on purpose."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from factories import RUN_ENV, make_record, make_run

from eigenbench.errors import SuiteError
from eigenbench.measure.loop import MeasureOptions
from eigenbench.ops.rank import spearman, spearman_naive
from eigenbench.results import validate_run
from eigenbench.run.options import RunOptions
from eigenbench.run.records import invalid_summary, is_unexpected_invalid
from eigenbench.run.runner import Runner
from eigenbench.spec import Impl, Suite, Workload, check_suite, expand, version_hash
from eigenbench.suites import load_suite
from eigenbench.validate import (
    UNIT_ROUNDOFF,
    compare_scalar,
    correlation_tolerance,
    digits_for,
    within_tolerance,
)

ENV = RUN_ENV
FAST = MeasureOptions(warmup_s=0.0, min_samples=3, max_time_s=0.02)


def spearman_workload() -> Workload:
    return load_suite("spearman").workloads[0]


def spearman_case(family: str, n: int = 10_000) -> tuple[tuple[torch.Tensor, ...], float]:
    w = spearman_workload()
    params = {"n": n, "family": family}
    inputs = w.make_inputs(params, "cpu", "float32", 0)
    return inputs, w.reference(inputs, params, "call")


# --- tolerances -------------------------------------------------------------------------


def test_float32_rounding_of_a_correct_rho_passes() -> None:
    w = spearman_workload()
    inputs, expected = spearman_case("continuous")
    rho32 = spearman(*inputs).to(torch.float32)  # correct ρ, then rounded to float32
    one_ulp_off = torch.nextafter(rho32, torch.tensor(2.0, dtype=torch.float32))
    for value in (rho32, one_ulp_off):
        v = w.validate(value, expected, {"n": 10_000, "family": "continuous"}, "float32")
        assert v.ok, v.detail
    # the seed's float32 correlation of ordinal ranks is also right to rounding without ties
    naive = w.validate(spearman_naive(*inputs), expected, {"n": 10_000}, "float32")
    assert naive.ok, naive.detail


def test_the_naive_version_on_tied_data_fails_with_both_values_and_the_tolerance() -> None:
    w = spearman_workload()
    inputs, expected = spearman_case("ties")
    v = w.validate(spearman_naive(*inputs), expected, {"n": 10_000, "family": "ties"}, "float32")
    assert not v.ok
    assert v.detail is not None
    assert "ρ = 0.6638606, SciPy gives 0.6781811" in v.detail
    assert "|Δ| 1.4e-02 > tol 3.8e-06" in v.detail


def test_constant_input_needs_nan_like_scipy() -> None:
    w = spearman_workload()
    inputs, expected = spearman_case("constant")
    assert np.isnan(expected)
    assert w.validate(spearman(*inputs), expected, {"n": 10_000}, "float32").ok
    bad = w.validate(spearman_naive(*inputs), expected, {"n": 10_000}, "float32")
    assert not bad.ok and bad.detail is not None and "SciPy gives nan" in bad.detail


def test_message_shows_enough_digits_to_see_the_difference() -> None:
    v = compare_scalar(0.6931729, 0.6931731, 6.0e-8, "ref", symbol="ρ", source="SciPy")
    assert not v.ok
    assert v.detail == "ρ = 0.693172900, SciPy gives 0.693173100 (|Δ| 2.0e-07 > tol 6.0e-08)"
    assert v.max_abs_err == pytest.approx(2e-7)
    assert compare_scalar(0.5, 0.5 + 1e-9, 1e-8, "ref").detail is None
    assert digits_for(3.8e-6) == 7 and digits_for(1e-14) == 15 and digits_for(0.1) == 6


def test_correlation_tolerance_grows_slowly_with_n_and_stays_tight_in_float64() -> None:
    f32 = [correlation_tolerance("float32", n) for n in (10**3, 10**4, 10**6, 10**7)]
    assert f32 == sorted(f32)
    assert f32[1] == pytest.approx(4 * 16 * UNIT_ROUNDOFF["float32"])
    # one float32 ulp of ρ ≈ 0.69 (6e-8) passes at any size ...
    assert f32[0] > 10 * 2**-24
    # ... but the naive float32 correlation's drift at 10⁶ (1.3e-5) and 10⁷ (3.7e-4) does not
    assert f32[2] < 1.2e-5 and f32[3] < 3.6e-4
    assert correlation_tolerance("float64", 10**7) < 2e-14


def test_svd_descent_tolerance_is_what_the_loss_target_certifies() -> None:
    descent = load_suite("svd_gd").workloads[0]
    sv_tolerance = descent.validate.__globals__["sv_tolerance"]  # type: ignore[attr-defined]
    a = descent.make_inputs({"matrix": "m1_5x4"}, "cpu", "float32", 0).double()
    tol = sv_tolerance(a, 4)
    # Adam at loss 1e-6 has a² off by 1.4e-2 of σ_max with U, V orthonormal to ~1e-2
    assert 0.02 < tol < 0.04


def test_other_default_tolerances_unchanged() -> None:
    ref = np.array([1.0, 2.0, 4.0])
    assert within_tolerance("r")(ref * (1 + 5e-5), ref, {}, "float32").ok
    assert not within_tolerance("r")(ref * (1 + 5e-4), ref, {}, "float32").ok


# --- wrong on purpose ---------------------------------------------------------------------


def make_sym(params: Any, device: str, dtype: str, seed: int) -> torch.Tensor:
    g = torch.randn(2, 6, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (g + g.mT).to(getattr(torch, dtype))


def wrong_eigvalsh(a: torch.Tensor) -> torch.Tensor:
    return torch.linalg.eigvalsh(a) * 1.01


def eig_workload(*impls: Impl) -> Workload:
    return Workload(
        name="eig",
        impls=impls,
        make_inputs=make_sym,
        reference=lambda x, p, ph: np.linalg.eigvalsh(x.double().numpy()),
        validate=within_tolerance("numpy float64"),
        grid=[{"n": 6}],
        quick_grid=[{"n": 6}],
    )


def run_suite(suite: Suite, tmp_path: Path) -> dict[str, dict[str, Any]]:
    runner = Runner(
        env=ENV,
        options=RunOptions(quick=True, devices=("cpu",), measure=FAST),
        out_path=tmp_path / "run.json",
        command="test",
        has_cuda=lambda: False,
    )
    doc = runner.run(expand(suite, devices=("cpu",), quick=True))
    validate_run(doc)  # the new field is in the schema
    return {r["impl"]: r for r in doc["records"]}


def test_expected_invalid_is_recorded_on_invalid_records_only(tmp_path: Path) -> None:
    suite = Suite(
        "s",
        (
            eig_workload(
                Impl("wrong", wrong_eigvalsh, expected_invalid="scaled by 1.01 on purpose"),
                Impl("right", torch.linalg.eigvalsh, expected_invalid="declared, yet right"),
                Impl("plain", torch.linalg.eigvalsh),
            ),
        ),
    )
    recs = run_suite(suite, tmp_path)
    assert recs["wrong"]["status"] == "invalid"
    assert recs["wrong"]["expected_invalid"] == "scaled by 1.01 on purpose"
    assert not is_unexpected_invalid(recs["wrong"])
    # declared wrong but in fact ok: recorded ok, nothing recorded about it
    assert recs["right"]["status"] == "ok" and "expected_invalid" not in recs["right"]
    assert recs["plain"]["status"] == "ok" and "expected_invalid" not in recs["plain"]


def test_an_undeclared_invalid_record_is_unexpected(tmp_path: Path) -> None:
    recs = run_suite(Suite("s", (eig_workload(Impl("wrong", wrong_eigvalsh)),)), tmp_path)
    assert recs["wrong"]["status"] == "invalid" and "expected_invalid" not in recs["wrong"]
    assert is_unexpected_invalid(recs["wrong"])


def test_expected_invalid_leaves_version_hashes_unchanged() -> None:
    impl = Impl("wrong", wrong_eigvalsh)
    w = eig_workload(impl)
    declared = dataclasses.replace(impl, expected_invalid="wrong on purpose")
    assert version_hash(w, impl) == version_hash(w, declared)
    v1 = {c.id: c for c in expand(load_suite("eigh_backward"), devices=["cpu"], quick=True)}
    case = v1["eigh_backward/v1/cpu/float32/batch=5,n=32,spectrum=random/bwd"]
    assert case.impl.expected_invalid  # declared, and its pinned hash (test_plan) holds
    assert case.version == "c6149724e3a7"


def test_an_empty_reason_is_rejected_at_load_time() -> None:
    suite = Suite("s", (eig_workload(Impl("wrong", wrong_eigvalsh, expected_invalid=" ")),))
    with pytest.raises(SuiteError, match="expected_invalid"):
        check_suite(suite, "suites/s.py")


def test_shipped_naive_impls_declare_why_they_are_wrong() -> None:
    naive = {i.name: i for i in spearman_workload().impls}
    assert "ties" in (naive["torch_naive"].expected_invalid or "")
    assert naive["eigenbench"].expected_invalid is None


# --- summary line -------------------------------------------------------------------------


def invalid(id_: str, why: str | None) -> dict[str, Any]:
    rec = make_record(impl=id_, status="invalid")
    if why:
        rec["expected_invalid"] = why
    return rec


def test_invalid_summary_all_expected() -> None:
    records = [invalid(f"naive{i}", "seed's naive version") for i in range(5)]
    records.append(make_record(impl="ok"))
    assert invalid_summary(records) == "5 invalid (all expected)"


def test_invalid_summary_counts_the_unexpected() -> None:
    records = [invalid("a", "why"), invalid("b", "why"), invalid("c", None)]
    assert invalid_summary(records) == "3 invalid (1 unexpected)"  # listed one by one below
    assert invalid_summary([make_record(), make_record(status="failed")]) is None
    validate_run(make_run(records))
