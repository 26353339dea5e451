"""Dispatch fingerprints: kernel-name grouping, counts from fake profiler events (CUDA paths
included), the real CPU profiler's determinism, and the runner's `dispatch` per record."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from factories import RUN_ENV
from fakes import FakeClock

from eigenbench.measure.dispatch import probe_dispatch, profile_rows, trace_events
from eigenbench.measure.kernel_names import (
    MARKER,
    TraceEvent,
    fingerprint,
    group_kernel_name,
    short_form,
    sync_counts,
)
from eigenbench.measure.loop import MeasureOptions
from eigenbench.results import load_run
from eigenbench.run.options import RunOptions
from eigenbench.run.runner import Runner
from eigenbench.spec import Impl, Suite, Workload, expand
from eigenbench.suites import cases_of, load_suite
from eigenbench.validate import within_tolerance

FAST = MeasureOptions(warmup_s=0.0, min_samples=5, max_time_s=0.02)


@pytest.mark.parametrize(
    ("raw", "grouped"),
    [
        (
            "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, "
            "std::array<char*, 1ul> >(int, at::native::FillFunctor<float>, std::array<char*, 1ul>)",
            "at::native::vectorized_elementwise_kernel",
        ),
        (
            "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float>(float*, int)",
            "at::native::anon::cunn_SoftMaxForward",
        ),
        (
            "std::enable_if<!(false), void>::type internal::gemvx::kernel<int, float, "
            "cublasGemvParamsEx<int, float> >(cublasGemvParamsEx<int, float>)",
            "internal::gemvx::kernel",
        ),
        ("syevj_batch_kernel<float>(int, float*, 0x7f3a2b10)", "syevj_batch_kernel"),
        ("triton_poi_fused_add_0 [clone .kd]", "triton_poi_fused_add_0"),
        ("cupy_copy__float32_float32", "cupy_copy__float32_float32"),
    ],
)
def test_kernel_names_lose_templates_params_and_addresses(raw: str, grouped: str) -> None:
    assert group_kernel_name(raw) == grouped


def test_copies_keep_their_direction() -> None:
    name = "Memcpy DtoH (Device -> Pageable)"
    assert group_kernel_name(name, "memcpy") == name


# --------------------------------------------------------------------------- fake profiles


def _fe(
    name: str,
    activity: str,
    start: float,
    end: float,
    parent: Any = None,
    device: str = "DeviceType.CPU",
    self_cpu: float = 0.0,
) -> SimpleNamespace:
    """A stand-in for torch's FunctionEvent (the attributes the converter reads)."""
    return SimpleNamespace(
        name=name,
        activity_type=activity,
        device_type=device,
        cpu_parent=parent,
        time_range=SimpleNamespace(start=start, end=end),
        self_cpu_time_total=self_cpu,
        self_device_time_total=0.0,
    )


def _cuda_eigvalsh_profile(per_matrix: int) -> list[SimpleNamespace]:
    """torch's CUDA eigvalsh as the profiler would see it: a per-matrix solver loop, its
    error check's `.item()` (a stream sync under `_local_scalar_dense`), then the harness's
    own device synchronisation after the marker."""
    mark = _fe(MARKER, "user_annotation", 0, 100)
    top = _fe("aten::linalg_eigvalsh", "cpu_op", 1, 90, mark)
    eigh = _fe("aten::_linalg_eigh", "cpu_op", 2, 80, top)
    events = [mark, top, eigh]
    for i in range(per_matrix):
        launch = _fe("cudaLaunchKernel", "cuda_runtime", 3 + i, 3.5 + i, eigh)
        events.append(launch)
        events.append(
            _fe(
                f"void syevd_kernel<float, {i}>(float*, 0x{i:04x})",
                "kernel",
                10 + i,
                11 + i,
                device="DeviceType.CUDA",
            )
        )
    item = _fe("aten::_local_scalar_dense", "cpu_op", 81, 89, top)
    events += [
        item,
        _fe("cudaMemcpyAsync", "cuda_runtime", 82, 83, item),
        _fe("cudaStreamSynchronize", "cuda_runtime", 83, 88, item),
        _fe("cudaStreamSynchronize_ptsz", "cuda_runtime", 89.5, 89.9, top),
        _fe("Memcpy DtoH (Device -> Pageable)", "gpu_memcpy", 84, 85, device="DeviceType.CUDA"),
        _fe("cudaDeviceSynchronize", "cuda_runtime", 101, 120),  # the harness's, after
    ]
    return events


def test_a_cuda_fingerprint_groups_kernels_and_counts_syncs_by_kind() -> None:
    d = fingerprint(trace_events(_cuda_eigvalsh_profile(3)), "cuda")
    assert d is not None
    assert d["kernels"] == {"Memcpy DtoH (Device -> Pageable)": 1, "syevd_kernel": 3}
    assert d["ops"] == {
        "aten::_linalg_eigh": 1,
        "aten::_local_scalar_dense": 1,
        "aten::linalg_eigvalsh": 1,
    }
    # the item's sync counts once, as `item`; the harness's device sync is not the call's
    assert d["syncs"] == {"item": 1, "stream_sync": 1}
    assert d["short"] == (
        "aten::linalg_eigvalsh ×1 · syevd_kernel ×3 · Memcpy DtoH (Device -> Pageable) ×1 · 2 syncs"
    )
    assert d["tool"] == "torch.profiler" and d["calls"] == 1


def test_the_same_path_gives_the_same_fingerprint_and_another_path_differs() -> None:
    a = fingerprint(trace_events(_cuda_eigvalsh_profile(3)), "cuda")
    b = fingerprint(trace_events(_cuda_eigvalsh_profile(3)), "cuda")
    c = fingerprint(trace_events(_cuda_eigvalsh_profile(5)), "cuda")
    assert a == b
    assert a is not None and c is not None and a["kernels"] != c["kernels"]


def test_item_counts_as_a_sync_on_cuda_without_runtime_events_and_never_on_the_cpu() -> None:
    events = [
        TraceEvent(MARKER, "annotation", 0, 10),
        TraceEvent("aten::item", "op", 1, 5),
        TraceEvent("aten::_local_scalar_dense", "op", 2, 4, parents=("aten::item",)),
    ]
    assert sync_counts(events, "cuda") == {"item": 1}
    assert sync_counts(events, "cpu") == {}
    d = fingerprint(events, "cpu")
    assert d is not None and d["short"] == "aten::item ×1 · 0 syncs"


def test_nothing_recorded_gives_none() -> None:
    events = [TraceEvent(MARKER, "annotation", 0, 10), TraceEvent("detach", "op", 1, 2)]
    assert fingerprint(events, "cpu") is None


def test_short_form_shows_the_most_frequent_and_how_many_more() -> None:
    text = short_form({"aten::a": 1}, {"k1": 500, "k2": 2, "k3": 1}, {"stream_sync": 500})
    assert text == "aten::a ×1 · k1 ×500 · k2 ×2 (+1 more) · 500 syncs"


def test_a_failing_profiler_is_a_reason_not_an_exception() -> None:
    def broken(fn: Any, device: str, calls: int) -> Any:
        raise RuntimeError("CUPTI_ERROR_INSUFFICIENT_PRIVILEGES\nmore")

    dispatch, reason = probe_dispatch(lambda: None, "cuda", profile=broken)
    assert dispatch is None
    assert reason is not None and reason.startswith("profiler failed: RuntimeError: CUPTI")
    assert "\n" not in reason


def test_profile_rows_sum_counts_and_times_per_op_and_kernel_group() -> None:
    events = trace_events(_cuda_eigvalsh_profile(4))
    rows = profile_rows(events, top=2)
    assert [(r.kind, r.name, r.count) for r in rows] == [
        ("kernel", "syevd_kernel", 4),
        ("kernel", "Memcpy DtoH (Device -> Pageable)", 1),
    ]
    assert rows[0].device_us == pytest.approx(4.0)


# --------------------------------------------------------------------------- real profiler


def test_two_profiles_of_the_same_cpu_call_are_equal() -> None:
    g = torch.randn(6, 12, 12, generator=torch.Generator().manual_seed(0))
    a = g + g.mT
    first, why = probe_dispatch(lambda: torch.linalg.eigvalsh(a), "cpu")
    second, _ = probe_dispatch(lambda: torch.linalg.eigvalsh(a), "cpu")
    assert why is None and first is not None and second is not None
    assert "aten::linalg_eigvalsh" in first["ops"]
    for key in ("ops", "kernels", "syncs"):
        assert first[key] == second[key]  # type: ignore[literal-required]


def test_numpy_code_records_no_dispatch_with_a_reason() -> None:
    a = np.eye(4)
    dispatch, reason = probe_dispatch(lambda: np.linalg.eigvalsh(a), "cpu")
    assert dispatch is None and reason is not None and "NumPy" in reason


# --------------------------------------------------------------------------- the runner


def _sym(params: Any, device: str, dtype: str, seed: int) -> torch.Tensor:
    g = torch.randn(2, int(params["n"]), int(params["n"]), dtype=torch.float64)
    return (g + g.mT).to(getattr(torch, dtype))


def _suite() -> Suite:
    return Suite(
        "s",
        (
            Workload(
                name="eig",
                impls=(
                    Impl("torch", torch.linalg.eigvalsh),
                    Impl("numpy", np.linalg.eigvalsh, prepare=lambda x: x.numpy()),
                ),
                make_inputs=_sym,
                reference=lambda x, p, ph: np.linalg.eigvalsh(x.double().numpy()),
                validate=within_tolerance("numpy float64"),
                grid=[{"n": 4}],
                quick_grid=[{"n": 4}],
            ),
        ),
    )


def _run(tmp_path: Path, **options: Any) -> dict[str, Any]:
    runner = Runner(
        env=RUN_ENV,
        options=RunOptions(devices=("cpu",), measure=FAST, **options),
        out_path=tmp_path / "run.json",
        command="test",
        clock_factory=lambda c: FakeClock(1e-3),
    )
    return runner.run(expand(_suite(), devices=("cpu",), quick=False))


def test_each_record_gets_its_dispatch_or_a_reason(tmp_path: Path) -> None:
    doc = _run(tmp_path)
    torch_rec, numpy_rec = doc["records"]
    assert torch_rec["dispatch"]["ops"]["aten::linalg_eigvalsh"] == 1
    assert "dispatch_reason" not in torch_rec
    assert numpy_rec["dispatch"] is None and "NumPy" in numpy_rec["dispatch_reason"]
    assert load_run(tmp_path / "run.json")["records"][0]["dispatch"] == torch_rec["dispatch"]


def test_cuda_cases_are_profiled_only_after_every_case_is_timed(tmp_path: Path) -> None:
    """Kineto may leave CUPTI attached after a CUDA profile (pytorch#144455): no CUDA
    fingerprint is taken before the run's last timed sample; CPU cases are profiled at once."""
    events: list[str] = []

    class LoggingClock(FakeClock):
        def time(self, fn: Any, number: int) -> float:
            events.append("time")
            return float(super().time(fn, number))

    def probe(fn: Any, device: str) -> tuple[Any, str | None]:
        events.append(f"probe {device}")
        return None, "fake"

    both = frozenset({"cpu", "cuda"})
    suite = Suite(
        "s",
        (
            dataclasses.replace(
                _suite().workloads[0], impls=(Impl("torch", torch.linalg.eigvalsh, devices=both),)
            ),
        ),
    )
    runner = Runner(
        env=RUN_ENV,
        options=RunOptions(
            devices=("cuda", "cpu"), measure=FAST, host_blocking=False, memory=False
        ),
        out_path=tmp_path / "run.json",
        command="test",
        clock_factory=lambda c: LoggingClock(1e-3),
        has_cuda=lambda: True,
        clock_watch=lambda: None,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("eigenbench.run.runner.probe_dispatch", probe)
        doc = runner.run(expand(suite, devices=("cuda", "cpu"), quick=False))
    last_time = max(i for i, e in enumerate(events) if e == "time")
    assert events.index("probe cuda") > last_time
    # the CUDA case ran first, the CPU one after it was profiled at once
    assert [r["device"] for r in doc["records"]] == ["cuda", "cpu"]
    assert events[-2:] == ["probe cpu", "probe cuda"]
    assert all(r["dispatch_reason"] == "fake" for r in doc["records"])
    assert load_run(tmp_path / "run.json")["records"][0]["dispatch_reason"] == "fake"


def test_no_dispatch_option_leaves_records_without_it(tmp_path: Path) -> None:
    doc = _run(tmp_path, dispatch=False)
    assert all("dispatch" not in r for r in doc["records"])
    assert doc["options"]["dispatch"] is False
    assert RunOptions.from_dict(doc["options"]).dispatch is False


def test_ab_sends_dispatch_only_when_it_is_off() -> None:
    """An older checkout (the base side of `ab`) refuses unknown keys."""
    assert "dispatch" not in RunOptions().changed_fields()
    assert RunOptions(dispatch=False).changed_fields() == {"dispatch": False}


def test_a_timed_out_case_is_not_profiled(tmp_path: Path) -> None:
    opts = MeasureOptions(warmup_s=0.0, min_samples=10, max_time_s=5.0, timeout_s=0.5)
    runner = Runner(
        env=RUN_ENV,
        options=RunOptions(devices=("cpu",), measure=opts),
        out_path=None,
        command="test",
        clock_factory=lambda c: FakeClock(0.4),
    )
    rec = runner.run_case(expand(_suite(), devices=("cpu",), quick=False)[0])
    assert rec["status"] == "timeout" and "dispatch" not in rec
    assert any("dispatch not probed" in w for w in rec["warnings"])


def test_quick_eigvalsh_torch_records_name_their_eigen_op(tmp_path: Path) -> None:
    """The issue's acceptance: every ok torch record of quick eigvalsh_batched on the CPU."""
    cases = cases_of([load_suite("eigvalsh_batched")], devices=("cpu",), quick=True)
    runner = Runner(
        env=RUN_ENV,
        options=RunOptions(quick=True, devices=("cpu",), measure=FAST, memory=False),
        out_path=None,
        command="test",
        clock_factory=lambda c: FakeClock(1e-3),
    )
    doc = runner.run(cases)
    torch_ok = [r for r in doc["records"] if r["impl"] == "torch" and r["status"] == "ok"]
    assert torch_ok
    for r in torch_ok:
        assert any("eigh" in op or "eigvalsh" in op for op in r["dispatch"]["ops"]), r["id"]
    for r in doc["records"]:
        if r["impl"] in ("numpy", "scipy"):
            assert r["dispatch"] is None and r["dispatch_reason"]


def test_a_scipy_spearman_case_records_null_with_a_reason(tmp_path: Path) -> None:
    pytest.importorskip("scipy")
    cases = cases_of([load_suite("spearman")], devices=("cpu",), quick=True, text="/scipy/")
    runner = Runner(
        env=RUN_ENV,
        options=RunOptions(quick=True, devices=("cpu",), measure=FAST, memory=False),
        out_path=None,
        command="test",
        clock_factory=lambda c: FakeClock(1e-3),
    )
    rec = runner.run_case(cases[0])
    assert rec["status"] == "ok"
    assert rec["dispatch"] is None and "NumPy/SciPy" in rec["dispatch_reason"]


# --------------------------------------------------------------------------- the report


def test_the_report_shows_each_cases_dispatch_path_or_why_not() -> None:
    from factories import make_record, make_run

    from eigenbench.report import build_model, render_html

    cuda = {
        "tool": "torch.profiler",
        "calls": 1,
        "ops": {"aten::linalg_eigvalsh": 1, "aten::_linalg_eigh": 1},
        "kernels": {"syevd_kernel": 500},
        "syncs": {"stream_sync": 500},
        "short": "aten::linalg_eigvalsh ×1 · syevd_kernel ×500 · 500 syncs",
    }
    run = make_run(
        [
            make_record(impl="torch", device="cuda", dispatch=cuda),
            make_record(impl="numpy", dispatch=None, dispatch_reason="no torch op recorded"),
            make_record(impl="scipy"),  # an older run: no probe
        ]
    )
    model = build_model(run)
    rows = {r.impl: r for r in model.rows}
    assert rows["torch"].dispatch == cuda["short"]
    assert rows["torch"].dispatch_detail == (
        "ops: aten::_linalg_eigh ×1, aten::linalg_eigvalsh ×1; syncs: stream_sync ×500"
    )
    assert rows["numpy"].dispatch is None
    assert rows["numpy"].dispatch_detail == "no torch op recorded"
    assert rows["scipy"].dispatch is None and rows["scipy"].dispatch_detail is None
    page = render_html(model, [])
    assert "syevd_kernel ×500 · 500 syncs" in page
    assert 'title="no torch op recorded"' in page


@pytest.mark.gpu
def test_a_cuda_fingerprint_is_deterministic_and_leaves_out_the_harness_sync() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    g = torch.randn(64, 40, 40, device="cuda")
    a = g + g.mT
    first, why = probe_dispatch(lambda: torch.linalg.eigvalsh(a), "cuda")
    second, _ = probe_dispatch(lambda: torch.linalg.eigvalsh(a), "cuda")
    assert why is None and first is not None and second is not None
    assert first["kernels"] and first["kernels"] == second["kernels"]
    assert first["ops"] == second["ops"] and first["syncs"] == second["syncs"]
    plain, _ = probe_dispatch(lambda: a + 1, "cuda")  # no host sync of its own
    assert plain is not None and plain["syncs"] == {} and plain["kernels"]
