"""compare against a baseline that remembers several runs: per-case drift from history."""

from __future__ import annotations

import math

import numpy as np
import pytest
from factories import make_record, make_run

from eigenbench.gate.baseline import with_history
from eigenbench.gate.compare import compare_runs
from eigenbench.gate.noise import (
    MIN_HISTORY,
    group_shifts,
    history_spreads,
    level_variance_factor,
    shrunk_sd,
    t_two_sided_p,
)

CASES = 24
NOISY = set(range(0, CASES, 4))
"""Cases whose medians drift 3 % between sessions; the others drift 0.5 %."""


def _session(rng: np.random.Generator, k: int, slow: dict[int, float] | None = None) -> dict:
    """One simulated session: a shared shift, each case's own drift, CV 1 % samples."""
    shift = rng.normal(0.0, 0.007)
    recs = []
    for i in range(CASES):
        sd = 0.03 if i in NOISY else 0.005
        factor = math.exp(shift + rng.normal(0.0, sd)) * (slow or {}).get(i, 1.0)
        samples = 1e-3 * (i + 1) * factor * np.exp(rng.normal(0.0, 0.01, 30))
        recs.append(make_record("w", "torch", {"n": i}, samples_s=[float(x) for x in samples]))
    return make_run(recs, run_id=f"session-{k}")


def _baseline(sessions: list[dict], keep: int = 8) -> dict:
    base = None
    for s in sessions:
        base = with_history(base, s, keep)
    assert base is not None
    return base


def test_history_spreads_recovers_case_drift_and_run_shift():
    rng = np.random.default_rng(1)
    runs, sds = 40, np.array([0.01, 0.01, 0.04, 0.02, 0.01, 0.03])
    shifts = rng.normal(0.0, 0.02, runs)
    logs = np.log(1e-3) + shifts[None, :] + rng.normal(0.0, 1.0, (sds.size, runs)) * sds[:, None]
    found, shift_sd = history_spreads(np.exp(logs).tolist())
    assert [h.runs for h in found] == [runs] * sds.size
    assert [h.spread for h in found] == pytest.approx(sds, rel=0.3)
    assert shift_sd == pytest.approx(0.02, rel=0.35)
    assert found[0].level == pytest.approx(np.median(logs[0]), abs=1e-12)


def test_history_spreads_skips_short_histories_and_gaps():
    rows = [[1.0, 1.1, None, 1.05], [None, None, 2.0, 2.1], [3.0, 3.3, 3.1, 2.9], [1, 1, 1, 1]]
    found, shift_sd = history_spreads(rows)
    assert found[1] is None  # timed in 2 runs < MIN_HISTORY
    assert found[0] is not None and found[0].runs == MIN_HISTORY
    assert shift_sd is not None
    assert history_spreads([[1.0, 1.0, 1.0]])[1] is None  # one case: no shift estimate
    with pytest.raises(ValueError, match="positive"):
        history_spreads([[1.0, -1.0, 1.0]])


def test_shrinking_and_level_factor():
    assert shrunk_sd(0.04, 0, 0.01) == 0.01
    assert shrunk_sd(0.04, 4, 0.01, prior_df=4) == pytest.approx(math.sqrt((0.04**2 + 1e-4) / 2))
    assert 0.01 < shrunk_sd(0.04, 2, 0.01) < shrunk_sd(0.04, 20, 0.01) < 0.04
    assert level_variance_factor(1) == 1 and level_variance_factor(2) == 0.5
    assert level_variance_factor(5) == pytest.approx(math.pi / 10)
    with pytest.raises(ValueError):
        level_variance_factor(0)


def test_baseline_level_is_the_median_of_its_runs():
    rng = np.random.default_rng(2)
    sessions = [_session(rng, k) for k in range(5)]
    base = _baseline(sessions)
    cur = _session(rng, 99)
    result = compare_runs(base, cur)
    v = result.verdicts[3]
    medians = [np.median(s["records"][3]["samples_s"]) for s in sessions]
    assert v.baseline_median_s == pytest.approx(np.median(medians), rel=1e-9)
    assert "median of 5 runs" in v.reason and v.baseline_runs == 5
    noise = result.to_dict()["noise"]
    assert noise["history_runs"] == 5
    assert noise["median_mde"] == pytest.approx(np.median([x.mde for x in result.verdicts]))


def test_history_tells_a_drifting_case_from_a_steady_one():
    # Both cases 8 % slower: the steady one is a regression; the one whose history moves
    # by 3 % per session is not proven slower.
    rng = np.random.default_rng(3)
    base = _baseline([_session(rng, k) for k in range(8)])
    steady, noisy = 1, 0
    hits = {steady: 0, noisy: 0}
    for t in range(20):
        cur = _session(rng, 100 + t, slow={steady: 1.08, noisy: 1.08})
        v = compare_runs(base, cur, resamples=400).verdicts
        for i in hits:
            hits[i] += v[i].label == "slower"
    assert hits[steady] >= 18
    assert hits[noisy] <= 6


def test_history_keeps_false_alarms_rare_where_one_run_does_not():
    # Heteroscedastic drift (a sixth of the cases move 3 % per session): one-run baselines
    # judge every case by the cross-case drift and flag the noisy ones; an 8-run history
    # knows which cases move.
    rng = np.random.default_rng(4)
    sessions = [_session(rng, k) for k in range(30)]
    with_hist = one_run = 0
    trials = 20
    for t in range(trials):
        base_runs, cur = sessions[t : t + 8], sessions[(t + 10) % 30]
        hist = compare_runs(_baseline(base_runs), cur, resamples=400)
        single = compare_runs(base_runs[-1], cur, resamples=400)
        with_hist += any(v.label == "slower" for v in hist.verdicts)
        one_run += any(v.label == "slower" for v in single.verdicts)
    assert with_hist <= 0.05 * trials
    assert one_run > with_hist


def test_planted_10_percent_caught_against_a_history():
    rng = np.random.default_rng(5)
    base = _baseline([_session(rng, k) for k in range(8)])
    planted = [i for i in range(CASES) if i not in NOISY][:6]
    caught = total = 0
    for t in range(10):
        cur = _session(rng, 200 + t, slow=dict.fromkeys(planted, 1.10))
        v = compare_runs(base, cur, resamples=400).verdicts
        caught += sum(v[i].label == "slower" for i in planted)
        total += len(planted)
    assert caught >= 0.95 * total


def test_relative_mode_ignores_history():
    rng = np.random.default_rng(6)

    def paired(k: int) -> dict:
        recs = [
            make_record(
                "w", impl, {"n": n}, samples_s=list(1e-3 * n * np.exp(rng.normal(0, 0.02, 20)))
            )
            for n in range(1, 6)
            for impl in ("torch", "ref")
        ]
        return make_run(recs, run_id=f"paired-{k}")

    base, cur = _baseline([paired(k) for k in range(5)]), paired(9)
    plain = with_history(None, base, 1)  # the newest run alone
    hist = compare_runs(base, cur, relative_to="ref")
    flat = compare_runs(plain, cur, relative_to="ref")
    assert [v.ratio for v in hist.verdicts] == [v.ratio for v in flat.verdicts]
    assert not any("runs" in (v.reason or "") for v in hist.verdicts)


# --------------------------------------------------------------------------- run shifts


def test_a_case_standing_out_is_caught_when_the_whole_run_moved():
    # The machine is 6 % faster now, so the slowed case's raw ratio is only 1.03; beyond the
    # run's shift it is 10 % slower, and that is what is judged.
    rng = np.random.default_rng(7)
    base = _baseline([_session(rng, k) for k in range(8)])
    cur = _session(rng, 50, slow={1: 1.10})
    for rec in cur["records"]:
        rec["samples_s"] = [x * 0.94 for x in rec["samples_s"]]
    v = compare_runs(base, cur).verdicts[1]
    assert v.ratio == pytest.approx(1.034, abs=0.02)
    assert v.change == pytest.approx(1.10, abs=0.02)
    assert v.label == "slower" and "beyond its suite's shift" in v.reason


def test_a_whole_suite_slowdown_is_judged_against_the_shifts_between_runs():
    def quiet(rng, k, factor=1.0):  # runs that move together by 0.5 % at most
        s = _session(rng, k)
        for rec in s["records"]:
            rec["samples_s"] = [x * factor for x in rec["samples_s"]]
        return s

    rng = np.random.default_rng(8)
    base = _baseline([quiet(rng, k) for k in range(8)])
    result = compare_runs(base, quiet(rng, 60, factor=1.15))
    steady = [v for i, v in enumerate(result.verdicts) if i not in NOISY]
    assert all(v.label == "slower" and "whole suite moved" in v.reason for v in steady)
    # its q is the suite's p (the one in the reason), not the case's own insignificant q
    for v in steady:
        assert v.q_value is not None and f"(p = {v.q_value:.2g})" in v.reason
    # A uniform 8 % is below the margin for whole suites (2 thresholds): not called slower.
    assert not any(v.label == "slower" for v in compare_runs(base, quiet(rng, 62, 1.08)).verdicts)
    # The same slowdown against a history whose runs moved by 8 % is not proven.
    wild = _baseline([quiet(rng, k, float(np.exp(rng.normal(0, 0.08)))) for k in range(8)])
    assert not any(v.label == "slower" for v in compare_runs(wild, quiet(rng, 61, 1.15)).verdicts)


def test_group_shifts_pool_small_suites():
    d = [0.1] * 6 + [0.3, 0.3, 0.2] + [0.5, 0.5]
    g = ["big"] * 6 + ["s1"] * 3 + ["s2"] * 2
    out = group_shifts(d, g)
    assert out["big"] == (pytest.approx(0.1), 6)
    assert out["s1"] == out["s2"] == (pytest.approx(0.3), 5)  # pooled: median of 5
    assert group_shifts(d[:8], g[:8]) == {"big": (pytest.approx(0.1), 6)}  # s1 alone: 2
    with pytest.raises(ValueError):
        group_shifts(d, g[:3])


def test_t_p_values():
    from scipy import stats

    assert t_two_sided_p(2.0, math.inf) == pytest.approx(2 * stats.norm.sf(2.0))
    assert t_two_sided_p(-3.0, 5) == pytest.approx(2 * stats.t.sf(3.0, 5))
    assert t_two_sided_p(3.0, 5) > t_two_sided_p(3.0, 50) > t_two_sided_p(3.0, math.inf)
    with pytest.raises(ValueError):
        t_two_sided_p(1.0, 0)


def test_drift_estimate_ignores_real_changes_among_few_cases():
    # Ten cases, two 3x slower and one 20 % off (seven left: fewer than MIN_CASES_FOR_DRIFT):
    # the spread is still the bulk's.
    from eigenbench.gate.noise import estimate_case_drift

    rng = np.random.default_rng(9)
    d = rng.normal(0.0, 0.01, 10)
    d[:2] += math.log(3.0)
    d[2] += 0.2
    assert estimate_case_drift(d, np.full(10, 0.001)) < 0.03


def test_satterthwaite_degrees_of_freedom():
    from eigenbench.gate.noise import satterthwaite_df

    assert satterthwaite_df([(1.0, 4.0)]) == pytest.approx(4.0)
    assert satterthwaite_df([(1.0, 4.0), (1.0, 4.0)]) == pytest.approx(8.0)  # pooled
    assert satterthwaite_df([(1.0, 4.0), (1.0, math.inf)]) == pytest.approx(16.0)
    assert satterthwaite_df([(0.0, 3.0)]) == math.inf
    # a history of 5 runs shrunk toward a 15-df cross-case figure: more than the 4 + 4 runs
    assert 8 < satterthwaite_df([(4 * 0.02**2, 15.0), (4 * 0.02**2, 4.0)]) < 15
