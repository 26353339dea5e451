"""`eigenbench plan`: the cost model, its sources, the command, the ETA and the GPU grids.

No test here asserts a measured time: the model is checked on its own arithmetic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eigenbench.cli import main
from eigenbench.console import Progress
from eigenbench.errors import SuiteError
from eigenbench.measure.loop import MeasureOptions
from eigenbench.run.options import RunOptions
from eigenbench.run.plan import (
    CASE_OVERHEAD_S,
    SKIPPED_S,
    CallCost,
    case_cost,
    cost_from_record,
    estimate_plan,
    remaining_s,
)
from eigenbench.solver_costs import loglog, torch_affordable
from eigenbench.spec import (
    Convergence,
    Impl,
    Suite,
    Validation,
    Workload,
    check_suite,
    expand,
    expand_grid,
)
from eigenbench.suites import available, load_suite
from eigenbench.units import fmt_duration

CALLS = [10.0**e for e in range(-7, 2)] + [3e-4, 2e-3, 0.3, 4.0]


def _ok(*args: Any) -> Validation:
    return Validation(True, 0.0, 0.0, "test")


def _workload(**kw: Any) -> Workload:
    base: dict[str, Any] = {
        "name": "w",
        "impls": (
            Impl("a", lambda x: x),
            Impl("b", lambda x: x, call_estimate_s=lambda p, d, t: 0.5),
        ),
        "make_inputs": lambda p, d, t, s: None,
        "reference": lambda i, p, ph: None,
        "validate": _ok,
        "grid": [{"n": 8}, {"n": 16}],
        "quick_grid": [{"n": 8}],
    }
    base.update(kw)
    return Workload(**base)


def _cases(w: Workload) -> list[Any]:
    return expand(Suite("s", (w,)), devices=["cpu"], quick=False)


# -- the pure model ---------------------------------------------------------------------


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("opts", [MeasureOptions(), MeasureOptions(min_samples=5, max_time_s=1)])
def test_case_seconds_grow_with_the_call_cost(device: str, opts: MeasureOptions) -> None:
    seconds = [
        case_cost(CallCost(c, "declared"), opts, device=device).seconds for c in sorted(CALLS)
    ]
    assert all(s > 0 for s in seconds)
    assert seconds == sorted(seconds)
    assert seconds[-1] > 10 * seconds[0]


def test_a_timeout_caps_a_case_and_drops_its_probes() -> None:
    opts = MeasureOptions(min_samples=5, max_time_s=1.0, timeout_s=15.0)
    slow = case_cost(CallCost(4.0, "declared"), opts, device="cuda")
    free = case_cost(
        CallCost(4.0, "declared"), MeasureOptions(min_samples=5, max_time_s=1.0), device="cuda"
    )
    assert slow.timeout and not free.timeout
    assert slow.seconds <= CASE_OVERHEAD_S["cuda"] + 15.0 + 4.0 + 1e-9  # timeout + one call
    assert slow.seconds < free.seconds
    quick = CallCost(1e-3, "declared")  # a fast case never meets its timeout
    assert case_cost(quick, opts, device="cpu") == case_cost(
        quick, MeasureOptions(min_samples=5, max_time_s=1.0), device="cpu"
    )
    first_alone = case_cost(CallCost(1.0, "baseline", first_call_s=20.0), opts, device="cpu")
    assert first_alone.timeout and first_alone.seconds == pytest.approx(CASE_OVERHEAD_S["cpu"] + 20)


@pytest.mark.parametrize("call_s", [1e-4, 5e-3, 0.5])
def test_rounds_spread_the_budget_instead_of_multiplying_it(call_s: float) -> None:
    cost, opts = CallCost(call_s, "declared"), MeasureOptions()
    one = case_cost(cost, opts, device="cpu").seconds
    four = case_cost(cost, opts, device="cpu", rounds=4).seconds
    assert four < 1.5 * one


def test_convergence_adds_its_budget_or_the_baselines_follow_time() -> None:
    conv = Convergence(target=1e-6, budget_steps=1000, budget_s=5.0)
    opts = MeasureOptions()
    for call_s, budget in ((1e-3, 1.0), (0.02, 5.0)):
        cost = CallCost(call_s, "declared")
        timed = case_cost(cost, opts, device="cpu").seconds
        followed = case_cost(cost, opts, device="cpu", convergence=conv).seconds
        assert followed - timed == pytest.approx(budget)
    known = CallCost(1e-3, "baseline", follow_s=0.25)
    assert case_cost(known, opts, device="cpu", convergence=conv).seconds - case_cost(
        known, opts, device="cpu"
    ).seconds == pytest.approx(0.25)


def test_a_baseline_record_beats_a_declared_prior_beats_the_default() -> None:
    w = _workload(call_estimate_s=lambda p, d, t: 0.02)
    only_default = _workload()
    cases = _cases(w)
    a8, a16, b8, b16 = (c.id for c in cases)
    record = {"status": "ok", "summary": {"median_s": 0.004}, "first_call_s": 0.01}
    baseline = {a8: record, b16: {**record, "status": "invalid"}}
    plan = estimate_plan(cases, RunOptions(), baseline)
    assert {c.id: c.source for c in plan.cases} == {
        a8: "baseline",
        a16: "declared",  # the workload's prior
        b8: "declared",  # the impl's own prior
        b16: "baseline",
    }
    defaults = estimate_plan(_cases(only_default), RunOptions())
    assert [c.source for c in defaults.cases] == ["default", "default", "declared", "declared"]
    failed = {a8: {**record, "status": "failed"}}
    assert estimate_plan(cases, RunOptions(), failed).cases[0].source == "declared"


def test_the_impls_prior_overrides_the_workloads() -> None:
    w = _workload(call_estimate_s=lambda p, d, t: 1e-4)
    by_impl = {c.id.split("/")[1]: c.seconds for c in estimate_plan(_cases(w), RunOptions()).cases}
    assert by_impl["b"] > by_impl["a"]  # 0.5 s per call against 0.1 ms


def test_cost_from_record_reads_median_first_call_and_follow_time() -> None:
    record = {
        "status": "ok",
        "summary": {"median_s": 2e-3},
        "first_call_s": 0.1,
        "convergence": {"trajectory": [[1, 0.01, 1.0], [800, 1.6, 1e-7]]},
    }
    assert cost_from_record(record) == CallCost(2e-3, "baseline", 0.1, 1.6)
    assert cost_from_record({**record, "status": "timeout"}) is None
    assert cost_from_record({"status": "ok", "summary": None}) is None


def test_each_reference_is_charged_once_and_skipped_cases_cost_only_their_record() -> None:
    prior = lambda p, d, t: 0.3 if d == "cpu" and t == "float64" else 1e-3  # noqa: E731
    w = _workload(call_estimate_s=prior, impls=(Impl("a", len), Impl("b", len)))
    plan = estimate_plan(_cases(w), RunOptions())
    a8, a16, b8, b16 = (c.seconds for c in plan.cases)
    assert a8 - b8 == pytest.approx(0.3) and a16 - b16 == pytest.approx(0.3)
    skipped = estimate_plan(
        _cases(w), RunOptions(), unavailable=lambda c: "no" if c.impl.name == "b" else None
    )
    assert [c.source for c in skipped.cases] == ["declared", "declared", "skipped", "skipped"]
    assert skipped.cases[2].seconds == SKIPPED_S


def test_a_broken_prior_is_a_suite_error_naming_the_workload() -> None:
    w = _workload(call_estimate_s=lambda p, d, t: -1.0)
    with pytest.raises(SuiteError, match=r"workload 'w': call_estimate_s gave -1.0 for w/a/cpu"):
        estimate_plan(_cases(w), RunOptions())


@pytest.mark.parametrize("where", ["workload", "impl"])
def test_check_suite_wants_a_callable_prior(where: str) -> None:
    bad: Any = 0.5
    w = (
        _workload(call_estimate_s=bad)
        if where == "workload"
        else _workload(impls=(Impl("a", len, call_estimate_s=bad),))
    )
    with pytest.raises(SuiteError, match="call_estimate_s must be callable"):
        check_suite(Suite("s", (w,)), "suites/s.py")


# -- the ETA ----------------------------------------------------------------------------


def test_remaining_time_scales_the_estimates_by_the_finished_cases() -> None:
    assert remaining_s(30.0, 0.0, 0.0) == 30.0  # nothing finished: the plain estimates
    assert remaining_s(30.0, 10.0, 20.0) == pytest.approx(60.0)  # twice as slow so far
    assert remaining_s(30.0, 10.0, 5.0) == pytest.approx(15.0)
    assert remaining_s(0.0, 10.0, 5.0) == 0.0


def test_progress_counts_the_remaining_time_down_between_cases() -> None:
    now = [100.0]
    progress = Progress(3, estimates={"a": 1.0, "b": 2.0, "c": 3.0}, clock=lambda: now[0])
    assert progress.remaining() == pytest.approx(6.0)
    now[0] += 2.0  # case a took 2 s for an estimated 1 s
    progress.advance({"id": "a"}, 0, 3)
    assert progress.remaining() == pytest.approx(10.0)
    now[0] += 1.0
    assert progress.remaining() == pytest.approx(9.0)
    assert Progress(3).remaining() is None


def test_durations_read_as_a_person_would_say_them() -> None:
    assert [fmt_duration(s) for s in (0.42, 45.4, 130, 3725)] == [
        "0.4 s",
        "45 s",
        "2 min 10 s",
        "1 h 02 min",
    ]


# -- the command ------------------------------------------------------------------------


def test_plan_cuda_json_lists_the_cuda_cases_on_a_machine_without_gpu(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a GPU machine
    assert main(["plan", "all", "--device", "cuda", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["devices"] == ["cuda"]
    assert {c["device"] for c in doc["cases"]} == {"cuda"}
    assert any("/cupy/cuda/" in c["id"] for c in doc["cases"])
    assert all(c["estimate_s"] > 0 and c["source"] == "declared" for c in doc["cases"])
    assert doc["total_s"] == pytest.approx(sum(c["estimate_s"] for c in doc["cases"]))
    assert sum(s["cases"] for s in doc["by_suite"].values()) == len(doc["cases"])


def test_plan_cpu_quick_lists_exactly_the_quick_cases(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "all", "--device", "cpu", "--quick", "--json"]) == 0
    ids = [c["id"] for c in json.loads(capsys.readouterr().out)["cases"]]
    expected = [
        c.id for name in available() for c in expand(load_suite(name), devices=["cpu"], quick=True)
    ]
    assert ids == expected


def test_plan_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "no_such_suite"]) == 3
    assert main(["plan", "spearman", "--min-samples", "1"]) == 2
    assert main(["plan", "spearman", "--rounds", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "unknown suite 'no_such_suite'" in err[0]
    assert err[1].startswith("eigenbench: error: eigenbench plan: argument --min-samples")


def test_plan_text_view_fits_80_columns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["plan", "all", "--device", "all", "--timeout", "15"]) == 0
    out = capsys.readouterr().out
    assert "total" in out and "cuda" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_run_announces_its_estimate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.json"
    argv = ["run", "svd_gd", "--quick", "--filter", "svd_direct", "--out", str(out)]
    assert main([*argv, "--max-time", "0.02", "--warmup", "0", "--min-samples", "3"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("eigenbench: 1 cases of svd_gd on cpu →") and ", estimated " in first
    assert "(torch threads " in first  # the thread count the timings were taken with


# -- the GPU grids ----------------------------------------------------------------------


def _params(suite: str, workload: str, impl: str, device: str) -> list[dict[str, Any]]:
    return [
        c.param_dict
        for c in expand(load_suite(suite), devices=[device], quick=False)
        if c.workload.name == workload and c.impl.name == impl
    ]


def test_torch_affordable_keeps_torchs_cuda_loop_to_affordable_shapes() -> None:
    assert torch_affordable({"batch": 5000, "n": 32}, "cuda")
    assert torch_affordable({"batch": 500, "n": 100}, "cuda")
    assert not torch_affordable({"batch": 500, "n": 256}, "cuda")
    assert not torch_affordable({"batch": 1000, "n": 100}, "cuda")
    assert torch_affordable({"batch": 5000, "n": 512}, "cpu")
    torch_cuda = _params("eigvalsh_batched", "eigvalsh_batched", "torch", "cuda")
    cupy = _params("eigvalsh_batched", "eigvalsh_batched", "cupy", "cuda")
    assert {"batch": 500, "n": 100} in torch_cuda
    for big in ({"batch": 500, "n": 256}, {"batch": 5000, "n": 100}):
        assert big not in torch_cuda and big in cupy
    assert len(cupy) == 12  # the GPU grid, whole
    cpu_grid = expand_grid(load_suite("eigvalsh_batched").workloads[0].grid)
    assert _params("eigvalsh_batched", "eigvalsh_batched", "torch", "cpu") == cpu_grid
    eigh_torch = _params("eigh_cupy", "eigh", "torch", "cuda")
    assert {"batch": 500, "n": 100} in eigh_torch and {"batch": 2000, "n": 100} not in eigh_torch
    assert {"batch": 2000, "n": 100} in _params("eigh_cupy", "eigh", "cupy", "cuda")
    for impl in ("torch_eigvalsh", "kth_torch", "kth_cupy"):
        assert _params("eigh_cupy", "kth_eigenvalue", impl, "cuda") == [
            {"batch": 500, "n": 100},
            {"batch": 500, "n": 100},
            {"batch": 500, "n": 30},
            {"batch": 500, "n": 30},
        ]  # one per phase


def test_svd_gd_gpu_grid_names_matrices_the_suite_can_make() -> None:
    suite = load_suite("svd_gd")
    for w in suite.workloads:
        for params in w.grid_for(quick=False, device="cuda"):
            assert w.make_inputs(params, "cpu", "float32", 0).ndim == 2


def test_every_shipped_workload_declares_a_prior() -> None:
    for name in available():
        for w in load_suite(name).workloads:
            assert w.call_estimate_s is not None, (name, w.name)


def test_loglog_interpolates_and_extends_a_table() -> None:
    table = {100: 1.0, 1000: 10.0}
    assert loglog(table, 100) == pytest.approx(1.0)
    assert loglog(table, 316.2277) == pytest.approx(10**0.5)
    assert loglog(table, 10_000) == pytest.approx(100.0)
    assert loglog({5: 2.0}, 50) == 2.0


# Version hashes computed before `call_estimate_s` and the GPU grids were added: timing
# priors and grids must not change what a case means (a changed hash orphans its baselines).
# The spearman and svd_descent pins were renewed when their validation tolerances became
# derived from dtype, n and the loss target (their `validate` source is hashed); declaring
# `Impl.expected_invalid` changed no hash (eigh_backward/v1 below).
PINNED_VERSIONS = {
    "eigvalsh_batched/numpy/cpu/float32/batch=10,n=16": "4e78e5d0068b",
    "eigh/cupy/cuda/float32/batch=500,n=100": "2a36b235d8ca",
    "kth_eigenvalue/kth_cupy/cuda/float32/batch=500,n=100/fwd": "e84fab3d95df",
    "eigh_backward/v1/cpu/float32/batch=5,n=32,spectrum=random/bwd": "c6149724e3a7",
    "spearman/eigenbench/cpu/float32/n=10000,family=continuous": "a40a8fee897b",
    "spectral_epoch/cupy/cuda/float32/rows=20640,dim=30": "c12fc66ca5b1",
    "spd_fit/cholesky/cpu/float32/n=8,cond=10.0": "01671956e54d",
    "svd_descent/adam/cpu/float32/matrix=m1_5x4": "ba259ab1db09",
    "svd_direct/torch_svd/cpu/float32/matrix=m1_5x4": "b3d71ed97fd7",
}


def test_priors_and_grids_leave_version_hashes_unchanged() -> None:
    versions = {
        c.id: c.version
        for name in available()
        for quick in (True, False)
        for c in expand(load_suite(name), devices=["cpu", "cuda"], quick=quick)
    }
    assert {k: versions.get(k) for k in PINNED_VERSIONS} == PINNED_VERSIONS


def test_probes_price_memory_host_blocking_and_the_dispatch_call() -> None:
    from eigenbench.run.plan import guard_seconds, probes_s

    call = 0.01
    assert probes_s(call, "cpu") == pytest.approx(2 * call)  # memory + dispatch
    assert probes_s(call, "cpu", dispatch=False) == pytest.approx(call)
    cuda = probes_s(call, "cuda")
    assert cuda == pytest.approx(3 * call + guard_seconds(call))
    assert probes_s(call, "cuda", memory=False, host_blocking=False, dispatch=False) == 0
