"""The report's builders: scaling fits, crossovers, the chart groups and the whole model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from factories import make_record, make_run

from eigenbench.report.build import build_model
from eigenbench.report.groups import (
    build_convergence,
    build_memory,
    build_phases,
    build_speedups,
    build_sweeps,
    choose_x_param,
    find_crossovers,
    fit_scaling_exponent,
)

SIZES = [16, 32, 64, 128, 256]


# --------------------------------------------------------------------------- scaling exponent


def test_scaling_exponent_of_cubic_data_is_three() -> None:
    n = np.array(SIZES, dtype=float)
    assert fit_scaling_exponent(n, 2e-9 * n**3) == pytest.approx(3.0, abs=1e-12)


def test_scaling_exponent_with_noise_matches_numpy_polyfit() -> None:
    rng = np.random.default_rng(3)
    n = np.array([10, 20, 50, 100, 200, 500, 1000], dtype=float)
    t = 1e-8 * n**3 * np.exp(rng.normal(0, 0.05, n.size))
    expected = np.polyfit(np.log(n), np.log(t), 1)[0]
    k = fit_scaling_exponent(n.tolist(), t.tolist())
    assert k == pytest.approx(expected, rel=1e-10)
    assert k == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize(
    ("xs", "ys"),
    [([10, 10, 10], [1, 2, 3]), ([10], [1]), ([1, 2], [0.0, 1.0]), ([1, -2], [1, 1])],
)
def test_scaling_exponent_rejects_unusable_data(xs: list[float], ys: list[float]) -> None:
    with pytest.raises(ValueError, match="fit_scaling_exponent"):
        fit_scaling_exponent(xs, ys)


# --------------------------------------------------------------------------- crossovers


def test_crossover_of_linear_and_quadratic_lines_is_found_between_samples() -> None:
    # 1e-3 n and 1e-5 n² meet at n = 100, which is not one of the sampled sizes.
    xs = [10.0, 30.0, 70.0, 150.0, 400.0]
    ya = [1e-3 * x for x in xs]
    yb = [1e-5 * x * x for x in xs]
    (x_c,) = find_crossovers(xs, ya, yb)
    assert x_c == pytest.approx(100.0, rel=1e-9)


def test_crossover_order_of_inputs_does_not_matter_and_parallel_lines_never_cross() -> None:
    xs = [400.0, 10.0, 150.0, 30.0]
    assert find_crossovers(xs, [1e-3 * x for x in xs], [1e-5 * x * x for x in xs]) == (
        pytest.approx([100.0])
    )
    assert find_crossovers(xs, [2 * x for x in xs], [x for x in xs]) == []


def test_two_crossovers_of_a_curve_dipping_below_a_line() -> None:
    xs = [1.0, 2.0, 4.0, 8.0, 16.0]
    ya = [1.0] * 5
    yb = [2.0, 0.5, 0.5, 0.5, 2.0]
    found = find_crossovers(xs, ya, yb)
    # log-linear interpolation: halfway in log x between the sign changes
    assert found == pytest.approx([math.sqrt(2.0), math.sqrt(8.0 * 16.0)])


def test_ties_within_min_gap_do_not_make_spurious_crossovers() -> None:
    xs = [1.0, 2.0, 4.0, 8.0]
    ya = [1.0, 1.0, 1.0, 1.0]
    yb = [1.01, 0.99, 1.01, 0.99]  # noise around a tie
    assert len(find_crossovers(xs, ya, yb)) == 3
    assert find_crossovers(xs, ya, yb, min_gap=0.05) == []
    # a real swap across a run of ties lands at the geometric middle of the ties
    yb = [2.0, 1.01, 0.99, 0.5]
    assert find_crossovers(xs, ya, yb, min_gap=0.05) == pytest.approx([math.sqrt(2 * 4)])


def test_crossover_rejects_mismatched_or_non_positive_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        find_crossovers([1, 2], [1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="positive"):
        find_crossovers([1, 2], [1, 0], [1, 2])


def test_huge_but_finite_times_still_cross() -> None:
    """1e308 s is a finite time (from a hostile file): the product of size and times
    overflowed and raised, a traceback in `report` (found by tools/robust_probe.py)."""
    (x,) = find_crossovers([100, 1000], [1e308, 1e-6], [1e-3, 1e-3])
    assert 100 < x < 1000


# --------------------------------------------------------------------------- grouping


def _sweep_records() -> list[dict]:
    recs = []
    for batch in (10, 100):
        for n in SIZES:
            recs.append(make_record("eig", "slow", {"batch": batch, "n": n}, median_s=1e-7 * n**3))
            recs.append(
                make_record(
                    "eig", "fast", {"batch": batch, "n": n}, device="cuda", median_s=1e-3 * n
                )
            )
    return recs


def test_x_param_is_the_numeric_param_that_varies_most() -> None:
    recs = _sweep_records()
    assert choose_x_param(recs) == "n"
    same = [make_record("w", "a", {"mode": m, "n": 8}) for m in ("x", "y", "z")]
    assert choose_x_param(same) is None  # strings never make an axis
    seeds = [make_record("w", "a", {"seed": s, "n": n}) for s in (0, 1, 2) for n in (8, 16)]
    assert choose_x_param(seeds) == "n"  # a zero cannot sit on a log axis


def test_sweep_groups_fix_the_other_params_and_fit_each_impl() -> None:
    groups = build_sweeps(_sweep_records())
    assert [dict(g.fixed) for g in groups] == [{"batch": 10}, {"batch": 100}]
    g = groups[0]
    assert g.x_param == "n" and g.is_sweep
    by_label = {s.label: s for s in g.series}
    assert set(by_label) == {"slow · cpu", "fast · cuda"}  # devices differ: named in labels
    assert [p.x for p in by_label["slow · cpu"].points] == SIZES
    # factory samples are noisy around the median (cv 1 %), so allow a small error
    assert by_label["slow · cpu"].exponent == pytest.approx(3.0, abs=0.02)
    assert by_label["fast · cuda"].exponent == pytest.approx(1.0, abs=0.02)


def test_sweep_crossover_names_the_winner_above_it() -> None:
    (g, *_) = build_sweeps(_sweep_records())
    # 1e-7 n³ = 1e-3 n at n = 100: "fast" wins above it
    (c,) = g.crossovers
    assert c.x == pytest.approx(100.0, rel=0.05)
    assert c.faster_above == "fast · cuda"
    assert c.faster_below == "slow · cpu"


def test_invalid_points_are_kept_and_flagged_and_failed_ones_left_out() -> None:
    recs = [make_record("w", "a", {"n": n}, median_s=1e-3 * n) for n in (1, 2, 4)]
    recs.append(make_record("w", "a", {"n": 8}, status="invalid", median_s=8e-3))
    recs.append(make_record("w", "a", {"n": 16}, status="failed"))
    (g,) = build_sweeps(recs)
    (s,) = g.series
    assert [p.x for p in s.points] == [1, 2, 4, 8]
    assert [p.valid for p in s.points] == [True, True, True, False]


def test_speedup_reference_defaults_to_the_fastest_correct_and_can_be_chosen() -> None:
    groups = build_sweeps(_sweep_records())
    sg = build_speedups(groups)[0]
    # at the largest size fast takes 1e-3·256 ≈ 0.26 s vs slow 1.7 s: fast is the reference
    assert (sg.reference, sg.basis) == ("fast · cuda", "fastest correct")
    (line,) = sg.lines
    expected = [(1e-3 * n) / (1e-7 * n**3) for n in SIZES]
    assert list(line.speedups) == pytest.approx(expected, rel=0.03)
    assert all(
        lo <= s <= hi for lo, s, hi in zip(line.lows, line.speedups, line.highs, strict=True)
    )
    chosen = build_speedups(groups, reference_impl="slow")[0]
    assert (chosen.reference, chosen.basis) == ("slow · cpu", "chosen")
    assert list(chosen.lines[0].speedups) == pytest.approx([1 / e for e in expected], rel=0.03)
    assert "slow · cpu" in chosen.caption and "--reference" in chosen.caption


def test_speedup_reference_is_the_declared_one_unless_one_is_chosen() -> None:
    records = [{**r, "reference_impl": "slow"} for r in _sweep_records()]
    groups = build_sweeps(records)
    assert {g.declared_reference for g in groups} == {"slow"}
    sg = build_speedups(groups)[0]
    assert (sg.reference, sg.basis) == ("slow · cpu", "declared")
    assert "the workload's reference" in sg.caption
    assert build_speedups(groups, reference_impl="fast")[0].reference == "fast · cuda"


def test_speedup_reference_is_never_an_invalid_impl() -> None:
    # "wrong" is the fastest everywhere but fails validation at one size
    recs = _sweep_records() + [
        make_record(
            "eig",
            "wrong",
            {"batch": batch, "n": n},
            median_s=1e-5 * n,
            status="invalid" if n == SIZES[-1] else "ok",
        )
        for batch in (10, 100)
        for n in SIZES
    ]
    groups = build_sweeps(recs)
    sg = build_speedups(groups)[0]
    assert sg.reference == "fast · cuda"
    assert "wrong · cpu" in {line.label for line in sg.lines}
    # chosen or declared, an invalid impl is passed over for the fastest correct one
    assert build_speedups(groups, reference_impl="wrong")[0].reference == "fast · cuda"
    declared = build_sweeps([{**r, "reference_impl": "wrong"} for r in recs])
    assert build_speedups(declared)[0].reference == "fast · cuda"


def test_no_speedup_chart_without_a_correct_impl() -> None:
    recs = [
        make_record("eig", impl, {"n": n}, status="invalid", median_s=t * n)
        for n in SIZES
        for impl, t in (("a", 1e-3), ("b", 2e-3))
    ]
    assert build_speedups(build_sweeps(recs)) == []


def _phase_records(impls: tuple[str, ...]) -> list[dict]:
    recs = []
    for i, impl in enumerate(impls):
        recs.append(make_record("eigh_bwd", impl, {"n": 32}, phase="fwd", median_s=1e-3))
        recs.append(make_record("eigh_bwd", impl, {"n": 32}, phase="bwd", median_s=1e-3 * (i + 2)))
        recs.append(make_record("eigh_bwd", impl, {"n": 8}, phase="fwd", median_s=1e-4))
    return recs


def test_phase_bars_multipliers_are_relative_to_final_fwd() -> None:
    """The workload declares its reference (eigh_backward: the seed's final version)."""
    records = [{**r, "reference_impl": "final"} for r in _phase_records(("v1", "v2", "final"))]
    (g,) = build_phases(records)
    assert g.reference == "fwd of final"
    # the size with the most records is chosen (n=32 has fwd and bwd)
    assert "n=32" in g.title
    bars = {(b.phase, b.impl): b for b in g.bars}
    assert [(b.phase, b.impl) for b in g.bars][:3] == [
        ("fwd", "v1"),
        ("fwd", "v2"),
        ("fwd", "final"),
    ]
    ref = bars[("fwd", "final")]
    assert ref.is_reference and sum(b.is_reference for b in g.bars) == 1
    for b in g.bars:
        assert b.multiplier == pytest.approx(b.median_s / ref.median_s)
    assert bars[("bwd", "v2")].multiplier == pytest.approx(3.0, rel=0.05)


def test_phase_reference_falls_back_to_first_impl_fwd_or_a_chosen_impl() -> None:
    (g,) = build_phases(_phase_records(("v1", "v2")))
    assert g.reference == "fwd of v1"
    (g,) = build_phases(_phase_records(("v1", "v2")), reference_impl="v2")
    assert g.reference == "fwd of v2"


def test_single_phase_workloads_get_no_phase_chart() -> None:
    assert build_phases(_sweep_records()) == []


def test_memory_bars_per_impl_at_the_largest_common_size() -> None:
    recs = []
    for n in (8, 64):
        for impl, factor in (("a", 1), ("b", 3)):
            r = make_record("w", impl, {"n": n})
            r["memory"] = {"peak_bytes": factor * n * 1024, "kind": "cpu_rss"}
            recs.append(r)
    (g,) = build_memory(recs)
    assert "n=64" in g.title
    assert [(b.label, b.peak_bytes) for b in g.bars] == [("a", 64 * 1024), ("b", 3 * 64 * 1024)]


def _convergence(impl: str, losses: list[float | None], reached: bool) -> dict:
    traj = [[i, 0.01 * i, loss] for i, loss in enumerate(losses)]
    r = make_record("svd_gd", impl, {"n": 8}, median_s=1e-3)
    r["convergence"] = {
        "target": 1e-3,
        "reached": reached,
        "steps_to_target": 3 if reached else None,
        "seconds_to_target": 0.03 if reached else None,
        "budget_steps": 10,
        "budget_s": None,
        "trajectory": traj,
    }
    return r


def test_convergence_curves_drop_losses_a_log_axis_cannot_show() -> None:
    recs = [
        _convergence("a", [1.0, 0.1, None, 1e-3, 0.0], True),
        _convergence("b", [1.0, 0.5, 0.4], False),
    ]
    (g,) = build_convergence(recs)
    a, b = g.curves
    assert a.losses == (1.0, 0.1, 1e-3) and a.times_s == pytest.approx((0.0, 0.01, 0.03))
    assert a.reached and a.seconds_to_target == pytest.approx(0.03)
    assert not b.reached and b.seconds_to_target is None


# --------------------------------------------------------------------------- the whole model


def test_model_lists_every_record_and_the_problem_cases() -> None:
    recs = _sweep_records()
    recs.append(make_record("eig", "bad", {"batch": 10, "n": 16}, status="invalid"))
    recs.append(make_record("eig", "boom", {"batch": 10, "n": 16}, status="failed"))
    recs.append(make_record("eig", "gone", {"batch": 10, "n": 16}, status="skipped"))
    model = build_model(make_run(recs))
    assert len(model.rows) == len(recs)
    assert [r.impl for r in model.problems] == ["bad", "boom"]
    assert [r.impl for r in model.skipped] == ["gone"]
    assert dict(model.status_counts) == {
        "ok": len(recs) - 3,
        "invalid": 1,
        "failed": 1,
        "skipped": 1,
    }
    assert model.verdicts is None


def test_chart_limits_keep_the_biggest_groups_and_count_the_rest() -> None:
    recs = [
        make_record("w", "a", {"k": k, "n": n}, median_s=1e-3 * n)
        for k in "abcde"
        for n in ((1, 2, 4) if k != "d" else (1, 2, 4, 8, 16))
    ]
    model = build_model(make_run(recs), limits={"sweep": 2})
    assert len(model.sweeps) == 2
    assert dict(model.sweeps[0].fixed) == {"k": "a"}  # first in run order among equals
    assert dict(model.sweeps[1].fixed) == {"k": "d"}  # the group with most points is kept
    assert model.omitted["time vs size"] == 3


def test_verdicts_are_sorted_worst_first_and_baseline_alone_gives_plain_ratios() -> None:
    run = make_run([make_record("w", "a", median_s=2e-3), make_record("w", "b", median_s=1e-3)])
    verdicts = [
        {
            "id": "x",
            "label": "unchanged",
            "ratio": 1.0,
            "ci_low": 0.99,
            "ci_high": 1.01,
            "p_value": 0.8,
            "baseline_median_s": 1e-3,
            "current_median_s": 1e-3,
        },
        {
            "id": "y",
            "label": "slower",
            "ratio": 2.0,
            "ci_low": 1.9,
            "ci_high": 2.1,
            "p_value": 1e-4,
            "baseline_median_s": 1e-3,
            "current_median_s": 2e-3,
        },
    ]
    model = build_model(run, verdicts=verdicts)
    assert [v.label for v in model.verdicts or ()] == ["slower", "unchanged"]
    assert (model.verdicts or ())[0].speedup == pytest.approx(0.5)

    base = make_run([make_record("w", "a", median_s=1e-3)])
    model = build_model(run, baseline=base)
    (row,) = model.verdicts or ()
    assert row.ratio == pytest.approx(2.0, rel=0.05)
    assert model.baseline_source == "baseline"


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(TypeError, match="records"):
        build_model({"run_id": "x"})
    with pytest.raises(ValueError, match="unknown chart limit 'sweeps'"):
        build_model(make_run([]), limits={"sweeps": 1})
    with pytest.raises(ValueError, match=r"verdicts\[0\]"):
        build_model(make_run([]), verdicts=[{"ratio": 1.0}])
