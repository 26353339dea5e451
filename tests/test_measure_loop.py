"""The sampler's rules, driven exactly by a fake clock (no sleeping)."""

from __future__ import annotations

import math

import pytest
from fakes import FakeClock

from eigenbench.measure.loop import (
    MeasureOptions,
    calls_per_sample,
    first_call,
    measure,
    relative_ci,
    stop_reason,
)


def test_first_call_keeps_output_and_cold_latency() -> None:
    clock = FakeClock(costs=[0.5, 1e-3])
    out, seconds = first_call(lambda: "result", clock)
    assert out == "result"
    assert seconds == pytest.approx(0.5)


def test_stable_workload_stops_at_min_samples_on_ci_target() -> None:
    clock = FakeClock(cost_s=10e-3)
    m = measure(lambda: None, clock, MeasureOptions(warmup_s=0.05, min_samples=10))
    assert m.stop_reason == "ci_target"
    assert len(m.samples_s) == 10
    assert m.number == 1  # 10 ms is already above the 1 ms minimum sample
    assert m.warmup_calls == 5  # 5 × 10 ms reach the 50 ms warm-up budget
    assert all(s == pytest.approx(10e-3) for s in m.samples_s)
    assert not m.noisy


def test_fast_call_is_batched_into_samples_above_the_minimum() -> None:
    clock = FakeClock(cost_s=2e-6, min_sample_s=1e-3)
    m = measure(lambda: None, clock, MeasureOptions(warmup_s=1e-3))
    assert m.number == 500
    assert clock.samples_timed[-1] == 500
    assert m.samples_s[0] == pytest.approx(2e-6)


def test_noisy_workload_stops_at_max_time_and_is_flagged() -> None:
    clock = FakeClock(cost_s=10e-3, noise=0.3, seed=1)
    opts = MeasureOptions(warmup_s=0.0, max_time_s=0.5, rel_ci_target=0.001)
    m = measure(lambda: None, clock, opts)
    assert m.stop_reason == "max_time"
    assert m.noisy
    assert m.elapsed_s >= 0.5
    assert len(m.samples_s) >= 10


def test_slow_workload_still_takes_min_samples() -> None:
    clock = FakeClock(cost_s=1.0, noise=0.2, seed=2)
    opts = MeasureOptions(warmup_s=0.0, max_time_s=2.0, min_samples=10, rel_ci_target=1e-4)
    m = measure(lambda: None, clock, opts)
    assert len(m.samples_s) == 10
    assert m.stop_reason == "max_time"


def test_timeout_budget_covers_the_whole_case() -> None:
    clock = FakeClock(cost_s=1.0)
    m = measure(lambda: None, clock, MeasureOptions(warmup_s=0.0, timeout_s=3.5))
    assert m.stop_reason == "timeout"
    assert clock.now() <= 4.0


def test_timeout_during_warmup() -> None:
    clock = FakeClock(cost_s=5.0)
    m = measure(lambda: None, clock, MeasureOptions(warmup_s=10.0, timeout_s=4.0), start_s=0.0)
    assert m.stop_reason == "timeout"
    assert m.warmup_calls == 1


def test_warmup_budget_is_honoured() -> None:
    clock = FakeClock(cost_s=1e-3)
    m = measure(lambda: None, clock, MeasureOptions(warmup_s=0.02))
    assert m.warmup_calls == 20


def test_max_samples_caps() -> None:
    clock = FakeClock(cost_s=1e-3, noise=0.5, seed=3)
    opts = MeasureOptions(warmup_s=0.0, max_samples=25, max_time_s=100, rel_ci_target=1e-6)
    m = measure(lambda: None, clock, opts)
    assert (m.stop_reason, len(m.samples_s)) == ("max_samples", 25)


@pytest.mark.parametrize(
    ("per_call", "minimum", "expected"),
    [(1e-3, 1e-3, 1), (2e-4, 1e-3, 5), (3e-7, 1e-3, 3334), (0.0, 1e-3, 1 << 20)],
)
def test_calls_per_sample(per_call: float, minimum: float, expected: int) -> None:
    assert calls_per_sample(per_call, minimum) == expected


def test_stop_reason_rules() -> None:
    opts = MeasureOptions(min_samples=10, rel_ci_target=0.01, max_time_s=2.0, timeout_s=5.0)
    assert stop_reason(9, 0.0, 0.1, opts) is None
    assert stop_reason(10, 0.005, 0.1, opts) == "ci_target"
    assert stop_reason(10, 0.05, 0.1, opts) is None
    assert stop_reason(10, 0.05, 2.0, opts) == "max_time"
    assert stop_reason(3, 0.05, 5.0, opts) == "timeout"


def test_relative_ci_shrinks_with_more_agreeing_samples() -> None:
    assert relative_ci([1.0]) == math.inf
    wide = relative_ci([1.0, 1.2, 0.8, 1.1, 0.9, 1.0, 1.3, 0.7, 1.05, 0.95])
    narrow = relative_ci([1.0, 1.01, 0.99] * 20)
    assert narrow < wide


def test_bad_options_rejected() -> None:
    with pytest.raises(ValueError, match="min_samples"):
        MeasureOptions(min_samples=1)
    with pytest.raises(ValueError, match="rel_ci_target"):
        MeasureOptions(rel_ci_target=0)


def test_per_round_options_split_the_budget() -> None:
    from eigenbench.measure.loop import per_round

    opts = MeasureOptions(min_samples=10, max_samples=2000, max_time_s=2.0, rel_ci_target=0.01)
    assert per_round(opts, 1) is opts
    third = per_round(opts, 3)
    assert third.min_samples == 4 and third.max_samples == 667
    assert third.max_time_s == pytest.approx(2.0 / 3)
    assert third.rel_ci_target == pytest.approx(0.01 * 3**0.5)
    assert per_round(MeasureOptions(min_samples=2), 9).min_samples == 2
