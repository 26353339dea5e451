"""The A/B judgement (`eigenbench.gate.paired`) on synthetic paired rounds: no timing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from eigenbench.errors import VersionMismatchError
from eigenbench.gate.paired import (
    MIN_PAIRS,
    is_ab_pair,
    paired_compare,
    round_pairs,
    yuen_paired,
)
from tests.factories import make_record, make_run


def _rec(impl: str, rounds: list[float], **kw: Any) -> dict[str, Any]:
    return make_record(
        "planted", impl, {"n": 16}, median_s=float(np.median(rounds)), round_medians_s=rounds, **kw
    )


def _pair(base: dict[str, list[float]], head: dict[str, list[float]], **head_kw: Any):
    runs = []
    for side, medians in (("base", base), ("head", head)):
        recs = [
            _rec(impl, r, **(head_kw.get(impl, {}) if side == "head" else {}))
            for impl, r in medians.items()
        ]
        runs.append(make_run(recs, ab={"id": "x", "side": side, "rounds": 10}))
    return runs


def _rounds(level: float, n: int = 10, sd: float = 0.01, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(v) for v in level * np.exp(rng.normal(0.0, sd, n))]


def _labels(result: Any) -> dict[str, str]:
    return {v.id.split("/")[1]: v.label for v in result.verdicts}


def test_untrimmed_yuen_is_the_paired_t_test() -> None:
    d = np.random.default_rng(1).normal(0.02, 0.03, 12)
    t = yuen_paired(d, trim=0.0)
    assert t.df == 11
    assert t.p_value() == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue, rel=1e-9)
    low, high = t.interval(0.95)
    ci = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert (math.log(low), math.log(high)) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_yuen_trimmed_mean_and_se_agree_with_scipy() -> None:
    d = np.random.default_rng(2).standard_t(3, 20) * 0.02 + 0.01
    t = yuen_paired(d)
    assert t.log_change == pytest.approx(stats.trim_mean(d, 0.2), rel=1e-12)
    # Yuen's se uses (n - 1) / (h (h - 1)); SciPy's standard error of a trimmed mean n / h^2
    scipy_se = float(stats.mstats.trimmed_stde(d, limits=(0.2, 0.2)))
    assert t.se == pytest.approx(scipy_se * math.sqrt(19 * 144 / (12 * 11 * 20)), rel=1e-9)
    assert t.df == 11


def test_trimming_ignores_one_burst_round() -> None:
    d = [0.01, 0.011, 0.009, 0.012, 0.008, 0.01, 0.0105, 0.0095, 0.01, 0.9]
    t = yuen_paired(d)
    assert t.log_change == pytest.approx(0.01, abs=1e-3)
    assert t.df == 5  # 10 rounds, 2 trimmed at each end
    assert yuen_paired(d, trim=0.0).log_change > 0.09


def test_too_few_rounds_to_trim_is_an_error() -> None:
    with pytest.raises(ValueError, match="after trimming"):
        yuen_paired([0.1])


def test_identical_sides_give_no_regression() -> None:
    base = {f"i{k}": _rounds(1e-3, seed=k) for k in range(20)}
    result = paired_compare(*_pair(base, base))
    assert result.exit_code == 0
    assert set(_labels(result).values()) == {"unchanged"}
    assert result.paired_rounds == 10


def test_one_case_20_percent_slower_is_slower_and_exits_1() -> None:
    base = {f"i{k}": _rounds(1e-3, seed=k) for k in range(10)}
    head = {k: _rounds(1e-3, seed=100 + i) for i, k in enumerate(base)}
    head["i3"] = [v * 1.2 for v in _rounds(1e-3, seed=7)]
    result = paired_compare(*_pair(base, head))
    labels = _labels(result)
    assert labels.pop("i3") == "slower"
    assert "slower" not in labels.values()
    assert result.exit_code == 1
    v = next(v for v in result.verdicts if v.id.endswith("i3/cpu/float32/n=16"))
    assert v.ci_low < 1.2 < v.ci_high and v.change == v.ratio


def test_a_whole_run_slower_is_a_regression_not_a_shift() -> None:
    # both sides share the session: a uniform 10 % is a real change (a library upgrade)
    base = {f"i{k}": _rounds(1e-3, seed=k) for k in range(8)}
    head = {k: [v * 1.1 for v in _rounds(1e-3, seed=50 + i)] for i, k in enumerate(base)}
    result = paired_compare(*_pair(base, head))
    assert set(_labels(result).values()) == {"slower"}
    assert result.shift == pytest.approx(1.1, rel=0.02)


def test_noise_shared_by_both_sides_cancels() -> None:
    # rounds drift by ±30 % together; the ratio within each round stays 1.07
    drift = np.exp(np.random.default_rng(3).normal(0.0, 0.3, 10))
    base = {"a": [float(v) * 1e-3 for v in drift]}
    head = {
        "a": [
            float(v) * 1.07e-3
            for v in drift * np.exp(np.random.default_rng(4).normal(0, 0.005, 10))
        ]
    }
    result = paired_compare(*_pair(base, head))
    assert _labels(result) == {"a": "slower"}


def test_a_burst_in_one_round_is_not_a_regression() -> None:
    base = {"a": _rounds(1e-3, seed=1)}
    head_rounds = _rounds(1e-3, seed=2)
    head_rounds[4] *= 3.0
    result = paired_compare(*_pair(base, {"a": head_rounds}))
    assert _labels(result)["a"] != "slower"
    assert result.exit_code == 0


def test_few_rounds_are_inconclusive_and_untimed_cases_keep_their_labels() -> None:
    base = {"a": _rounds(1e-3, n=MIN_PAIRS - 1), "b": _rounds(1e-3), "c": _rounds(1e-3)}
    head = {"a": _rounds(2e-3, n=MIN_PAIRS - 1), "b": _rounds(1e-3), "d": _rounds(1e-3)}
    b_run, h_run = _pair(base, head, b={"status": "failed", "samples_s": [], "summary": None})
    labels = _labels(paired_compare(b_run, h_run))
    assert labels == {"a": "inconclusive", "b": "failed", "c": "missing", "d": "new"}


def test_pairs_stop_where_either_side_stopped() -> None:
    b = {"round_medians_s": [1.0, 2.0, 3.0]}
    h = {"round_medians_s": [1.5, 2.5]}
    assert round_pairs(b, h) == [(1.0, 1.5), (2.0, 2.5)]


def test_different_workload_versions_are_refused() -> None:
    b_run, h_run = _pair({"a": _rounds(1e-3)}, {"a": _rounds(1e-3)}, a={"version": "v9"})
    with pytest.raises(VersionMismatchError, match="workload version"):
        paired_compare(b_run, h_run)


def test_is_ab_pair_needs_one_id_and_both_sides_in_order() -> None:
    b_run, h_run = _pair({"a": _rounds(1e-3)}, {"a": _rounds(1e-3)})
    assert is_ab_pair(b_run, h_run)
    assert not is_ab_pair(h_run, b_run)
    assert not is_ab_pair(b_run, {**h_run, "ab": {"id": "other", "side": "head"}})
    assert not is_ab_pair(make_run([]), h_run)


def test_a_paired_change_unlike_the_medians_ratio_says_why():
    from eigenbench.gate.paired import _medians_note
    from eigenbench.gate.verdicts import Verdict

    v = Verdict(id="c", label="faster", baseline_median_s=543e-6, current_median_s=538.6e-6)
    note = _medians_note(v, 0.690)
    assert "×0.992" in note and "×0.69" in note and "rounds drifted" in note
    assert _medians_note(v, 0.99) == ""
