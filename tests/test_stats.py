"""Summaries and intervals of the median, checked against NumPy and SciPy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from eigenbench.measure.stats import bootstrap_median_ci, order_statistic_median_ci, summarize


def test_summary_matches_numpy() -> None:
    x = np.random.default_rng(0).lognormal(0, 0.1, 101)
    s = summarize(x)
    assert s.n == 101
    assert s.median_s == pytest.approx(np.median(x))
    assert s.mean_s == pytest.approx(x.mean())
    assert (s.min_s, s.max_s) == (x.min(), x.max())
    assert s.iqr_s == pytest.approx(sps.iqr(x))
    assert s.ci95_low_s <= s.median_s <= s.ci95_high_s


def test_bootstrap_is_seeded_and_covers_the_true_median() -> None:
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(200):
        x = rng.normal(1.0, 0.1, 40)
        lo, hi = bootstrap_median_ci(x)
        covered += lo <= 1.0 <= hi
        assert bootstrap_median_ci(x) == (lo, hi)
    assert 0.88 <= covered / 200 <= 0.99


def test_order_statistic_interval_has_nominal_coverage() -> None:
    rng = np.random.default_rng(2)
    hits = sum(
        lo <= 0.0 <= hi
        for lo, hi in (order_statistic_median_ci(rng.standard_cauchy(30)) for _ in range(2000))
    )
    assert 0.93 <= hits / 2000 <= 0.99


def test_rejects_empty_and_non_finite() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        summarize([])
    with pytest.raises(ValueError, match="finite"):
        summarize([1.0, float("nan")])


def test_single_sample() -> None:
    s = summarize([0.5])
    assert (s.median_s, s.ci95_low_s, s.ci95_high_s, s.iqr_s) == (0.5, 0.5, 0.5, 0.0)
