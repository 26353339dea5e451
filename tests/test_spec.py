"""Grid expansion, stable case ids, version hashes and rejection of bad declarations."""

from __future__ import annotations

from typing import Any

import pytest

from eigenbench.errors import SuiteError
from eigenbench.spec import (
    Impl,
    Suite,
    Validation,
    Workload,
    case_id,
    check_suite,
    expand,
    expand_grid,
)


def _ok(*args: Any) -> Validation:
    return Validation(True, 0.0, 0.0, "test")


def make_workload(**kw: Any) -> Workload:
    base: dict[str, Any] = {
        "name": "w",
        "impls": (
            Impl("a", lambda x: x),
            Impl("b", lambda x: x, devices=frozenset({"cpu", "cuda"})),
        ),
        "make_inputs": lambda p, d, t, s: None,
        "reference": lambda i, p, ph: None,
        "validate": _ok,
        "grid": {"batch": [1, 10], "n": [8, 16, 32]},
        "quick_grid": [{"batch": 1, "n": 8}],
    }
    base.update(kw)
    return Workload(**base)


def test_grid_mapping_is_a_product_in_declared_order() -> None:
    points = expand_grid({"batch": [1, 10], "n": [8, 16]})
    assert points == [
        {"batch": 1, "n": 8},
        {"batch": 1, "n": 16},
        {"batch": 10, "n": 8},
        {"batch": 10, "n": 16},
    ]


def test_grid_list_of_points_is_kept() -> None:
    assert expand_grid([{"n": 3}, {"n": 1}]) == [{"n": 3}, {"n": 1}]


def test_expand_counts_devices_dtypes_phases_and_quick() -> None:
    w = make_workload(dtypes=("float32", "float64"), phases=("fwd", "bwd"))
    suite = Suite("s", (w,))
    full_cpu = expand(suite, devices=["cpu"], quick=False)
    assert len(full_cpu) == 2 * 6 * 2 * 2  # impls × points × dtypes × phases
    both = expand(suite, devices=["cpu", "cuda"], quick=False)
    assert len(both) - len(full_cpu) == 6 * 2 * 2  # only impl b runs on cuda
    assert len(expand(suite, devices=["cpu"], quick=True)) == 2 * 1 * 2 * 2


def test_gpu_grid_replaces_full_grid_on_cuda_only() -> None:
    w = make_workload(gpu_grid=[{"batch": 1000, "n": 32}])
    cuda = expand(Suite("s", (w,)), devices=["cuda"], quick=False)
    assert [c.param_dict for c in cuda] == [{"batch": 1000, "n": 32}]


def test_impl_when_filters_cases() -> None:
    small = Impl("small", lambda x: x, when=lambda p, d: int(p["n"]) <= 8)
    w = make_workload(impls=(small,))
    cases = expand(Suite("s", (w,)), devices=["cpu"], quick=False)
    assert {c.param_dict["n"] for c in cases} == {8}


def test_case_id_is_stable_and_readable() -> None:
    assert case_id("eigvalsh_batched", "cupy", "cuda", "float32", {"batch": 500, "n": 100}) == (
        "eigvalsh_batched/cupy/cuda/float32/batch=500,n=100"
    )
    assert case_id("w", "v1", "cpu", "float64", {"n": 32}, "bwd") == "w/v1/cpu/float64/n=32/bwd"
    w = make_workload()
    c = expand(Suite("s", (w,)), devices=["cpu"], quick=True)[0]
    assert c.id == "w/a/cpu/float32/batch=1,n=8"


def test_version_changes_with_the_impl_code_only() -> None:
    def f(x: Any) -> Any:
        return x

    def g(x: Any) -> Any:
        return -x

    w1 = make_workload(impls=(Impl("a", f),))
    w2 = make_workload(impls=(Impl("a", g),))
    v1 = expand(Suite("s", (w1,)), devices=["cpu"], quick=True)[0].version
    v1_again = expand(
        Suite("s", (make_workload(impls=(Impl("a", f),)),)), devices=["cpu"], quick=True
    )[0].version
    v2 = expand(Suite("s", (w2,)), devices=["cpu"], quick=True)[0].version
    assert v1 == v1_again
    assert v1 != v2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"grid": {"n": []}}, "grid: is empty"),
        ({"impls": (Impl("a", "not callable"),)}, "fn is not callable"),  # type: ignore[arg-type]
        ({"impls": (Impl("a", len, devices=frozenset({"tpu"})),)}, "devices must be"),
        ({"impls": (Impl("a", len), Impl("a", len))}, "used twice"),
        ({"grid": {"n": [[1, 2]]}}, "must be int, float, str or bool"),
        ({"quick_grid": [{"n": 1}, {"n": 1}]}, "duplicate case id"),
        ({"dtypes": ("float8",)}, "dtype must be"),
        ({"impls": ()}, "declares no impls"),
    ],
)
def test_bad_declarations_are_rejected_with_a_clear_message(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(SuiteError, match=message) as info:
        check_suite(Suite("s", (make_workload(**change),)), "suites/s.py")
    assert "suites/s.py: workload 'w'" in str(info.value)
    assert "\n" not in str(info.value)


def test_suite_without_workloads_is_rejected() -> None:
    with pytest.raises(SuiteError, match="no workloads"):
        check_suite(Suite("s", ()), "suites/s.py")
    with pytest.raises(SuiteError, match=r"must be an eigenbench\.spec\.Suite"):
        check_suite(object(), "suites/s.py")


def test_a_declared_reference_impl_must_be_one_of_the_impls() -> None:
    import dataclasses

    from eigenbench.errors import SuiteError
    from eigenbench.spec import Suite, check_suite
    from eigenbench.suites import load_suite

    w = load_suite("eigh_backward").workloads[0]
    assert w.reference_impl == "final"
    bad = dataclasses.replace(w, reference_impl="v9")
    with pytest.raises(SuiteError, match="reference_impl 'v9' is not one of its impls"):
        check_suite(Suite("s", (bad,)), "suites/s.py")
