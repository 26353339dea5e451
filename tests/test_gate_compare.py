"""compare: verdicts, exit codes, relative mode, and the statistics under them."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from factories import make_record, make_run, make_samples
from rich.console import Console

from eigenbench.console import render_table
from eigenbench.errors import CompareError, EigenbenchError, UsageError, VersionMismatchError
from eigenbench.gate.compare import compare_runs
from eigenbench.gate.noise import (
    CASE_DRIFT_FLOOR,
    RUN_DRIFT,
    benjamini_hochberg,
    bootstrap_ratio_ci,
    estimate_case_drift,
    min_detectable_slowdown,
    rank_sum_pvalue,
)
from eigenbench.gate.verdicts import LABELS, CompareResult, Verdict, exit_code


def _rec(samples: list[float], **kw) -> dict:
    """A record holding `samples` (its summary is left stale: compare reads only samples)."""
    rec = make_record(samples_s=samples[:1], **kw)
    rec["samples_s"] = samples
    return rec


def _suite(factors=None, *, n_cases=6, cv=0.01, n=30, seed=0, impl="torch", **kw):
    """Records of one impl at `n_cases` sizes; factors multiply each case's median."""
    factors = factors or {}
    return [
        _rec(
            make_samples(1e-3 * (i + 1) * factors.get(i, 1.0), n=n, cv=cv, seed=seed + 97 * i),
            impl=impl,
            params={"n": 16 * (i + 1)},
            **kw,
        )
        for i in range(n_cases)
    ]


def _by_id(result: CompareResult) -> dict[str, Verdict]:
    return {v.id: v for v in result.verdicts}


# --------------------------------------------------------------------------- acceptance


def test_identical_runs_are_unchanged_and_exit_0():
    run = make_run(_suite(n_cases=8))
    result = compare_runs(run, run)
    assert [v.label for v in result.verdicts] == ["unchanged"] * 8
    assert result.exit_code == 0
    assert all(
        v.ratio == pytest.approx(1.0) and v.p_value == pytest.approx(1.0) for v in result.verdicts
    )


def test_independent_aa_runs_give_no_regression():
    # Same distribution, different draws, CV 2 %, 100 cases: nothing may be flagged.
    base = make_run(_suite(n_cases=100, cv=0.02, seed=1))
    cur = make_run(_suite(n_cases=100, cv=0.02, seed=50_000))
    result = compare_runs(base, cur)
    assert result.counts()["slower"] == 0
    assert result.counts()["faster"] == 0
    assert result.exit_code == 0


def test_one_case_20_percent_slower_is_flagged():
    base = make_run(_suite(seed=1))
    cur = make_run(_suite({2: 1.2}, seed=2))
    result = compare_runs(base, cur)
    labels = [v.label for v in result.verdicts]
    assert labels[2] == "slower"
    assert labels.count("slower") == 1
    assert result.exit_code == 1
    v = result.verdicts[2]
    assert v.ratio == pytest.approx(1.2, rel=0.02)
    assert 1.0 < v.ci_low <= v.ratio <= v.ci_high
    assert v.p_value < 1e-6 and v.q_value < 0.05
    assert v.is_regression and [r.id for r in result.regressions] == [v.id]


def test_faster_is_reported_but_never_fails():
    result = compare_runs(make_run(_suite(seed=1)), make_run(_suite({0: 0.7}, seed=2)))
    assert result.verdicts[0].label == "faster"
    assert result.verdicts[0].ci_high < 1
    assert result.exit_code == 0


def test_planted_10_percent_slowdown_found_among_100_cases():
    base = make_run(_suite(n_cases=100, cv=0.02, n=20, seed=3))
    cur = make_run(_suite({41: 1.10}, n_cases=100, cv=0.02, n=20, seed=90_000))
    result = compare_runs(base, cur)
    slower = [i for i, v in enumerate(result.verdicts) if v.label == "slower"]
    assert slower == [41]


def test_300_regressions_exit_1():
    base = make_run(_suite(n_cases=300, n=12, seed=4))
    cur = make_run(_suite({i: 1.3 for i in range(300)}, n_cases=300, n=12, seed=5))
    result = compare_runs(base, cur)
    assert result.counts()["slower"] == 300
    assert result.exit_code == 1
    assert any("whole run is 30 % slower" in w for w in result.warnings)


@pytest.mark.parametrize("count", [0, 1, 255, 256, 257, 512])
def test_exit_code_is_never_a_count(count):
    verdicts = [Verdict(id=f"c{i}", label="slower") for i in range(count)]
    verdicts += [Verdict(id="u", label="unchanged"), Verdict(id="f", label="faster")]
    assert exit_code(verdicts) == (1 if count else 0)


def test_missing_and_new_cases_are_reported():
    recs = _suite(n_cases=4)
    base = make_run(recs[:3])
    cur = make_run(recs[1:])
    v = _by_id(compare_runs(base, cur))
    assert v[recs[0]["id"]].label == "missing"
    assert v[recs[3]["id"]].label == "new"
    assert v[recs[1]["id"]].label == "unchanged"
    assert compare_runs(base, cur).exit_code == 0


@pytest.mark.parametrize(
    ("base_status", "cur_status", "label", "code"),
    [
        ("ok", "failed", "failed", 1),
        ("ok", "timeout", "failed", 1),
        ("ok", "invalid", "invalid", 1),
        ("invalid", "invalid", "invalid", 0),  # still wrong, but not a new regression
        ("ok", "skipped", "missing", 0),
        ("failed", "ok", "new", 0),
    ],
)
def test_status_verdicts(base_status, cur_status, label, code):
    base = make_run([make_record(status=base_status, samples_s=make_samples(1e-3, seed=1))])
    cur = make_run([make_record(status=cur_status, samples_s=make_samples(1e-3, seed=2))])
    result = compare_runs(base, cur)
    assert [v.label for v in result.verdicts] == [label]
    assert result.exit_code == code
    assert result.verdicts[0].reason


def test_invalid_new_case_is_shown_but_not_a_regression():
    result = compare_runs(make_run([]), make_run([make_record(status="invalid")]))
    assert result.verdicts[0].label == "invalid"
    assert result.exit_code == 0


def test_skipped_now_gives_a_warning():
    base = make_run([make_record()])
    cur = make_run([make_record(status="skipped")])
    result = compare_runs(base, cur)
    assert any("skipped" in w for w in result.warnings)


def _two_impls(scale=1.0, slow=None, seed=0):
    slow = slow or {}
    recs = []
    for i in range(5):
        for j, impl in enumerate(("numpy", "torch")):
            med = 1e-3 * (i + 1) * (1 + j) * scale * slow.get((i, impl), 1.0)
            recs.append(
                _rec(
                    make_samples(med, cv=0.01, seed=seed + 10 * i + j),
                    impl=impl,
                    params={"n": 8 * (i + 1)},
                )
            )
    return make_run(recs)


def test_relative_mode_cancels_a_uniform_machine_speed_difference():
    base, cur = _two_impls(seed=0), _two_impls(scale=2.0, seed=500)
    plain = compare_runs(base, cur)
    assert plain.counts()["slower"] == 10  # a 2x slower machine looks like regressions
    rel = compare_runs(base, cur, relative_to="numpy")
    assert rel.run_drift == 0  # the shared shift cancels in relative mode
    assert rel.counts()["slower"] == 0
    assert rel.exit_code == 0
    assert rel.counts()["unchanged"] == 10
    torch_v = [v for v in rel.verdicts if "/torch/" in v.id]
    assert all(v.ratio == pytest.approx(1.0, abs=0.02) for v in torch_v)
    # medians stay in seconds, only the ratio is relative
    assert torch_v[0].current_median_s == pytest.approx(2 * torch_v[0].baseline_median_s, rel=0.03)


def test_relative_mode_still_finds_a_real_regression():
    base = _two_impls(seed=0)
    cur = _two_impls(scale=2.0, slow={(3, "torch"): 1.25}, seed=500)
    rel = compare_runs(base, cur, relative_to="numpy")
    slower = [v.id for v in rel.verdicts if v.label == "slower"]
    assert len(slower) == 1 and "/torch/" in slower[0] and "n=32" in slower[0]
    assert rel.verdicts[[v.id for v in rel.verdicts].index(slower[0])].ratio == pytest.approx(
        1.25, rel=0.03
    )


def test_relative_mode_without_a_reference_point_is_inconclusive():
    base = _two_impls(seed=0)
    cur = _two_impls(seed=1)
    cur["records"] = [
        r for r in cur["records"] if not (r["impl"] == "numpy" and r["params"]["n"] == 8)
    ]
    v = _by_id(compare_runs(base, cur, relative_to="numpy"))
    torch8 = next(i for i in v if "/torch/" in i and "n=8" in i)
    assert v[torch8].label == "inconclusive"
    assert "reference" in v[torch8].reason


def test_relative_to_an_unknown_impl_is_a_usage_error():
    run = _two_impls()
    with pytest.raises(UsageError, match="cupy"):
        compare_runs(run, run, relative_to="cupy")


def test_different_workload_versions_are_refused_clearly():
    base = make_run(_suite(n_cases=3, version="v1"))
    cur = make_run(_suite(n_cases=3, version="v2"))
    with pytest.raises(VersionMismatchError) as info:
        compare_runs(base, cur)
    msg = str(info.value)
    assert base["records"][0]["id"] in msg
    assert "'v1'" in msg and "'v2'" in msg and "2 more" in msg
    assert isinstance(info.value, EigenbenchError) and info.value.exit_code == 3


def test_duplicate_case_ids_are_refused():
    rec = make_record()
    with pytest.raises(CompareError, match="more than once"):
        compare_runs(make_run([rec, dict(rec)]), make_run([rec]))


def test_machine_key_difference_is_a_warning():
    base = make_run([make_record()])
    cur = make_run([make_record()], env={**base["env"], "machine_key": "other"})
    result = compare_runs(base, cur)
    assert any("machine keys differ" in w for w in result.warnings)


def test_noisy_change_is_inconclusive_not_slower():
    base = make_run([make_record(samples_s=make_samples(1e-3, n=8, cv=0.3, seed=1))])
    cur = make_run([make_record(samples_s=make_samples(1.1e-3, n=8, cv=0.3, seed=2))])
    v = compare_runs(base, cur).verdicts[0]
    assert v.label == "inconclusive"
    assert v.mde is not None and v.mde > 0.1


def test_too_few_samples_is_inconclusive():
    base = make_run([make_record(samples_s=[1e-3, 1e-3, 1e-3])])
    cur = make_run([make_record(samples_s=[2e-3, 2e-3, 2e-3])])
    v = compare_runs(base, cur).verdicts[0]
    assert v.label == "inconclusive" and "too few" in v.reason
    assert v.ratio == pytest.approx(2.0)


def test_small_real_change_inside_the_margin_is_unchanged():
    base = make_run([make_record(samples_s=make_samples(1e-3, n=60, cv=0.003, seed=1))])
    cur = make_run([make_record(samples_s=make_samples(1.02e-3, n=60, cv=0.003, seed=2))])
    v = compare_runs(base, cur).verdicts[0]
    assert v.p_value < 1e-6  # clearly different ...
    assert v.label == "unchanged"  # ... but by less than the 5 % threshold


def test_threshold_moves_the_margin():
    base = make_run([make_record(samples_s=make_samples(1e-3, n=60, cv=0.003, seed=1))])
    cur = make_run([make_record(samples_s=make_samples(1.03e-3, n=60, cv=0.003, seed=2))])
    # 3 % is below a 5 % margin: never slower, and unchanged once no shared drift is assumed
    assert compare_runs(base, cur, threshold=0.05).verdicts[0].label == "inconclusive"
    assert compare_runs(base, cur, threshold=0.05, run_drift=0).verdicts[0].label == "unchanged"
    assert compare_runs(base, cur, threshold=0.01).verdicts[0].label == "slower"


@pytest.mark.parametrize(
    ("kw", "msg"), [({"threshold": -0.1}, "threshold"), ({"alpha": 1.5}, "alpha")]
)
def test_bad_settings_are_value_errors(kw, msg):
    run = make_run([make_record()])
    with pytest.raises(ValueError, match=msg):
        compare_runs(run, run, **kw)


def test_results_are_deterministic_and_order_independent():
    base = make_run(_suite(seed=1))
    cur = make_run(_suite({1: 1.07}, seed=2))
    first = compare_runs(base, cur)
    assert first.to_json() == compare_runs(base, cur).to_json()
    rev = make_run(list(reversed(cur["records"])))
    assert _by_id(compare_runs(base, rev)) == _by_id(first)


def test_json_and_table_outputs():
    base = make_run(_suite(seed=1))
    cur = make_run(_suite({2: 1.2}, seed=2))
    cur["records"][0]["status"] = "failed"
    result = compare_runs(base, cur)
    doc = json.loads(result.to_json())
    assert doc["exit_code"] == 1
    assert doc["counts"]["slower"] == 1 and doc["counts"]["failed"] == 1
    assert set(doc["counts"]) == set(LABELS)
    assert [v["id"] for v in doc["verdicts"]] == [r["id"] for r in base["records"]]
    assert doc["verdicts"][2]["regression"] is True

    console = Console(record=True, width=240, color_system=None)
    console.print(render_table(result, show_unchanged=False))
    text = console.export_text()
    assert cur["records"][2]["id"] in text and "slower" in text and "failed" in text
    assert cur["records"][3]["id"] not in text  # unchanged rows hidden
    # regressions come first: the slower row, then the failed one
    assert text.index(cur["records"][2]["id"]) < text.index(cur["records"][0]["id"])


def test_table_shows_ids_with_brackets_verbatim():
    rec = _rec(make_samples(1e-3), params={"shape": "[2,3]"})
    console = Console(record=True, width=240, color_system=None)
    console.print(render_table(compare_runs(make_run([rec]), make_run([rec]))))
    assert "shape=[2,3]" in console.export_text()


# --------------------------------------------------------------------------- statistics


def test_benjamini_hochberg_matches_scipy():
    from scipy.stats import false_discovery_control

    rng = np.random.default_rng(0)
    for _ in range(50):
        m = int(rng.integers(1, 60))
        p = np.concatenate([rng.random(m), rng.random(int(rng.integers(0, 10))) * 1e-4])
        rejected, adjusted = benjamini_hochberg(p, 0.05)
        np.testing.assert_allclose(adjusted, false_discovery_control(p, method="bh"), rtol=1e-12)
        np.testing.assert_array_equal(rejected, adjusted <= 0.05)


def test_benjamini_hochberg_step_up_by_hand():
    # m = 4, q = 0.05: thresholds 0.0125, 0.025, 0.0375, 0.05 for the sorted p-values.
    rejected, _ = benjamini_hochberg([0.01, 0.04, 0.03, 0.5], 0.05)
    assert rejected.tolist() == [True, False, False, False]
    # step-up: 0.04 <= 0.0375? no; but 0.045 at rank 4 of [.001,.002,.003,.045] passes, so all do
    rejected, _ = benjamini_hochberg([0.045, 0.001, 0.002, 0.003], 0.05)
    assert rejected.tolist() == [True, True, True, True]
    with pytest.raises(ValueError, match="p-value"):
        benjamini_hochberg([0.1, 1.2])


def test_rank_sum_matches_scipy_asymptotic_with_ties():
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(2)
    for _ in range(300):
        n1, n2 = rng.integers(1, 40, size=2)
        digits = int(rng.integers(0, 3))
        a = np.round(rng.normal(0, 1, n1), digits)
        b = np.round(rng.normal(0.4, 1, n2), digits)
        ref = mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue
        assert rank_sum_pvalue(a, b) == pytest.approx(1.0 if np.isnan(ref) else ref, abs=1e-12)
    assert rank_sum_pvalue([1.0, 1.0], [1.0, 1.0]) == 1.0


def test_bootstrap_ratio_interval_covers_the_true_ratio():
    rng = np.random.default_rng(3)
    covered = 0
    trials = 200
    for t in range(trials):
        a = np.exp(rng.normal(0, 0.05, 30))
        b = 1.3 * np.exp(rng.normal(0, 0.05, 30))  # true ratio of medians is 1.3
        lo, hi, _ = bootstrap_ratio_ci(a, b, rng=np.random.default_rng(t))
        covered += lo <= 1.3 <= hi
    assert 0.88 <= covered / trials <= 0.995


def test_bootstrap_ratio_interval_includes_reference_noise():
    rng = np.random.default_rng(4)
    a, b = np.exp(rng.normal(0, 0.02, 30)), np.exp(rng.normal(0, 0.02, 30))
    ref_a, ref_b = np.exp(rng.normal(0, 0.02, 30)), np.exp(rng.normal(0, 0.02, 30))
    lo1, hi1, sd1 = bootstrap_ratio_ci(a, b, rng=np.random.default_rng(0))
    lo2, hi2, sd2 = bootstrap_ratio_ci(
        a, b, baseline_ref=ref_a, current_ref=ref_b, rng=np.random.default_rng(0)
    )
    assert sd2 > 1.2 * sd1  # four noisy medians instead of two: about sqrt(2) wider
    assert hi2 - lo2 > hi1 - lo1


def test_min_detectable_slowdown():
    assert min_detectable_slowdown(0.0, 0.05) == pytest.approx(0.05)
    small, large = min_detectable_slowdown(0.005, 0.05), min_detectable_slowdown(0.05, 0.05)
    assert 0.05 < small < large
    # small noise: reaching the margin is the hard part; large noise: significance is
    assert small == pytest.approx(1.05 * np.exp(0.841621 * 0.005) - 1, rel=1e-5)
    assert large == pytest.approx(np.exp((1.959964 + 0.841621) * 0.05) - 1, rel=1e-5)


def _drifted(
    rng: np.random.Generator, n_cases: int, case_sd: float, shift_sd: float, slow=None
) -> dict:
    """One simulated session: each case's samples moved by its own and a shared drift."""
    shift = rng.normal(0.0, shift_sd)
    recs = []
    for i in range(n_cases):
        factor = np.exp(shift + rng.normal(0.0, case_sd)) * (slow or {}).get(i, 1.0)
        samples = 1e-3 * (i + 1) * factor * np.exp(rng.normal(0.0, 0.01, 30))
        recs.append(_rec(list(samples), params={"n": 16 * (i + 1)}))
    return make_run(recs)


def test_aa_sessions_with_drift_raise_few_false_alarms():
    # Sessions drifting a little more than measured on the CI VM (there: 0.9 % per case and
    # 0.5 % shared per session; here 1.2 % and 0.7 %, CV 1 % samples): at most 5 % of
    # comparisons may hold any `slower`. Drift is 4x the medians' sampling noise here.
    rng = np.random.default_rng(7)
    runs = [_drifted(rng, 30, 0.012, 0.007) for _ in range(10)]
    alarms = [
        any(v.label == "slower" for v in compare_runs(a, b, resamples=400).verdicts)
        for a, b in itertools.combinations(runs, 2)
    ]
    assert sum(alarms) <= 0.05 * len(alarms)


def test_planted_10_percent_slowdown_is_found_despite_drift():
    rng = np.random.default_rng(8)
    found = false_alarms = 0
    trials = 30
    for _ in range(trials):
        base = _drifted(rng, 20, 0.012, 0.007)
        cur = _drifted(rng, 20, 0.012, 0.007, slow={5: 1.10})
        v = compare_runs(base, cur, resamples=400).verdicts
        found += v[5].label == "slower"
        false_alarms += sum(x.label == "slower" for i, x in enumerate(v) if i != 5)
    assert found >= 0.9 * trials
    # BH bounds the share of false discoveries (5 %), not their existence, once one is real
    assert false_alarms <= 0.1 * (found + false_alarms)


def test_case_drift_is_estimated_from_the_spread_across_cases():
    rng = np.random.default_rng(3)
    within = np.full(400, 0.004)
    d = 0.02 + rng.normal(0, 0.015, 400) + rng.normal(0, 0.004, 400)
    assert estimate_case_drift(d, within) == pytest.approx(0.015, rel=0.12)
    d[:80] += 0.3  # a fifth of the cases really changed: the estimate barely moves
    assert estimate_case_drift(d, within) == pytest.approx(0.015, rel=0.15)
    assert estimate_case_drift(np.zeros(400), within) == CASE_DRIFT_FLOOR  # never below it
    assert estimate_case_drift(d[:5], within[:5]) == CASE_DRIFT_FLOOR  # too few cases
    with pytest.raises(ValueError, match="equal"):
        estimate_case_drift(d, within[:3])


def test_drift_estimate_and_shift_are_reported():
    rng = np.random.default_rng(9)
    base, cur = _drifted(rng, 40, 0.03, 0.0), _drifted(rng, 40, 0.03, 0.0)
    result = compare_runs(base, cur)
    assert 0.03 < result.case_drift < 0.06  # two sessions' drift: about 0.03 * sqrt(2)
    assert result.to_dict()["noise"]["case_drift"] == result.case_drift
    assert result.shift == pytest.approx(1.0, abs=0.03)
    assert not any("whole run" in w for w in result.warnings)
    v = result.verdicts[0]
    assert v.noise_sd == pytest.approx(np.hypot(result.case_drift, 0.01), rel=0.2)
    assert v.ci_high / v.ci_low > np.exp(2 * 1.9 * result.case_drift)  # drift widens it


def test_mde_matches_a_simulated_power_of_about_80_percent():
    # The predicted MDE of a CV 2 %, n = 30 case, planted under drift as the model assumes,
    # must be caught about 80 % of the time.
    rng = np.random.default_rng(11)
    base = list(np.exp(rng.normal(0, 0.02, 30)))
    result = compare_runs(make_run([_rec(base)]), make_run([_rec(base)]))
    v = result.verdicts[0]
    drift = np.hypot(CASE_DRIFT_FLOOR, RUN_DRIFT)
    exact_sd = np.hypot(1.2533 * 0.02 / np.sqrt(30) * np.sqrt(2), drift)
    assert v.mde == pytest.approx(min_detectable_slowdown(exact_sd, 0.05), rel=0.15)
    hits = 0
    trials = 80
    for t in range(trials):
        a = np.exp(rng.normal(0, 0.02, 30))
        b = (1 + v.mde) * np.exp(rng.normal(0, drift) + rng.normal(0, 0.02, 30))
        v2 = compare_runs(make_run([_rec(list(a))]), make_run([_rec(list(b))]), seed=t)
        hits += v2.verdicts[0].label == "slower"
    assert 0.6 <= hits / trials <= 0.95


def test_runs_with_no_case_in_common_are_an_input_error():
    from eigenbench.errors import CompareError

    base = make_run(_suite(impl="torch"))
    cur = make_run(_suite(impl="numpy"))
    with pytest.raises(CompareError, match="no case in common"):
        compare_runs(base, cur)
    assert CompareError.exit_code == 3
