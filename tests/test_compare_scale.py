"""`compare` stays linear and small (issue 22): counted, never timed.

Each test counts what a quadratic (or per-sample) regression would multiply: Python calls
per case, checker calls per sample, group comparisons per case, bytes per bootstrap sample.
"""

from __future__ import annotations

import sys
import tracemalloc
from collections import Counter
from typing import Any

import numpy as np
from factories import make_record, make_run

from eigenbench.gate import noise
from eigenbench.gate.compare import compare_runs
from eigenbench.results import RUN_SCHEMA, jsoncheck, validate_run


def _pair(cases: int, suites: int = 3) -> tuple[dict[str, Any], dict[str, Any]]:
    def run(seed: int, slow: float) -> dict[str, Any]:
        return make_run(
            [
                make_record(
                    params={"n": i},
                    suite=f"s{i % suites}",
                    median_s=1e-3 * (slow if i % 10 == 0 else 1.0),
                    samples_s=None,
                )
                for i in range(cases)
            ]
        )

    return run(0, 1.0), run(1, 1.3)


def _calls(fn: Any, *args: Any, **kw: Any) -> int:
    """Python-level function calls made while running fn (a deterministic operation count)."""
    count = 0

    def prof(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(prof)
    try:
        fn(*args, **kw)
    finally:
        sys.setprofile(None)
    return count


def test_compare_work_grows_linearly_with_the_cases() -> None:
    small, large = _pair(40), _pair(160)
    kw = {"resamples": 200}
    few = _calls(compare_runs, *small, **kw)
    many = _calls(compare_runs, *large, **kw)
    assert many < 4.6 * few, (few, many)  # 4x the cases; quadratic work would be ~16x


def test_the_checker_makes_no_call_per_sample() -> None:
    def checks(samples: int) -> int:
        run = make_run([make_record(samples_s=[1e-3] * samples) for _ in range(1)])
        counter: Counter[str] = Counter()
        real = jsoncheck.first_error

        def counting(*args: Any, **kw: Any) -> Any:
            counter["calls"] += 1
            return real(*args, **kw)

        jsoncheck.first_error = counting  # type: ignore[assignment]
        try:
            validate_run(run)
        finally:
            jsoncheck.first_error = real  # type: ignore[assignment]
        return counter["calls"]

    assert checks(5000) == checks(10)


def test_a_bad_sample_is_still_found_by_the_fast_path() -> None:
    run = make_run([make_record(samples_s=[1e-3] * 100)])
    for bad, expected in ((-1.0, "≥ 0"), (True, "number"), ("x", "number"), (None, "number")):
        run["records"][0]["samples_s"][57] = bad
        pointer, message = jsoncheck.first_error(run, RUN_SCHEMA)
        assert pointer == "/records/0/samples_s/57" and expected in message


class _CountingName(str):
    """A suite name that counts its comparisons with other names."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _CountingName.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_suite_shifts_compare_each_case_a_bounded_number_of_times() -> None:
    cases = 2000
    names = [_CountingName(f"suite{i}") for i in range(cases)]  # every case its own suite
    _CountingName.compared = 0
    shifts = noise.group_shifts([0.01] * cases, names)
    assert len(shifts) == cases  # all pooled: each too small alone
    assert _CountingName.compared < 10 * cases  # one per case per group would be 4 million


def test_bootstrap_memory_does_not_grow_with_resamples_times_samples() -> None:
    x = np.exp(np.random.default_rng(0).normal(0.0, 0.01, 20_000)) * 1e-3
    tracemalloc.start()
    try:
        noise.bootstrap_log_ratios(x, x * 1.01, resamples=2000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # an index matrix would be 2000 x 20000 x 4 B = 160 MB


def test_bootstrap_medians_match_resampling_all_values() -> None:
    """The order-statistic shortcut draws the same distribution as resampling n values."""
    rng = np.random.default_rng(3)
    for n in (2, 5, 30, 31):
        x = np.sort(np.exp(rng.normal(0.0, 0.1, n)))
        direct = np.median(x[rng.integers(0, n, size=(20_000, n))], axis=1)
        fast = np.exp(noise._boot_log_median(x, 20_000, rng))
        sd = float(np.std(direct))  # 20k draws: the means agree to ~1 % of sd by chance
        assert abs(float(np.mean(direct)) - float(np.mean(fast))) < 0.05 * sd, n
        assert abs(float(np.std(fast)) / sd - 1) < 0.05, n
