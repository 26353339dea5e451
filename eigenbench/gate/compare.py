"""Compare a run against a baseline: match cases, test each change, label it, pick an exit code.

Pure: loaded run dicts in, a `CompareResult` out. Printing and exiting belong to the CLI.

Each case measured (status `ok`) on both sides gets r = median(current) / median(baseline).
Its noise is modelled in `eigenbench.gate.noise`: within-run sampling noise (from its
samples), its own run-to-run drift and a shift shared by the cases of its suite. With
t = `threshold`:

- the case's change is r divided by its suite's shift in this run (the median r of the
  suite; small suites pooled, none below five cases); it is tested against its samples'
  noise and its own drift with a t test (degrees of freedom of the drift estimate), and
  the p-values go through Benjamini-Hochberg at q = `alpha` across all tested cases;
- `slower`: the change is at least 1 + t and significant; or the whole suite moved by at
  least `SUITE_MOVE_MARGIN` thresholds, beyond the shifts between runs (`run_drift`, or the
  baseline's own shifts), and r is at least 1 + t;
- `faster`: the mirror image;
- `unchanged`: the 1 - `alpha` interval of r, all drift included, lies inside
  [1 / (1 + t), 1 + t]: no change as large as t fits;
- `inconclusive`: anything else (a change within the noise, too few samples, or no
  `--relative-to` reference). Never a failure.

In `relative_to` mode the normalised ratio is judged as it stands (the reference cancels the
shift). The rank-sum p-value of the samples is reported (`p_value`) but no longer decides.

Why drift, not just the samples: samples from one session cannot see the next session's
clocks, neighbours or memory layout. On the 2-core CI VM, 20 unchanged quick runs differed by
1.3-5 % per case beyond their samples' noise and their suite's shift; judged by the samples
alone, a 5 % margin raised a false alarm in most comparisons on a noisy day. Each verdict
carries its minimum detectable slowdown under the model as `mde`.

Drift comes from the spread of the changes across cases (a trimmed sd), or, for a baseline
saved over several runs (`run_medians_s`, at least 3 runs for a case), from the spread of
the case's run medians, shrunk toward the cross-case figure; the baseline median is then the
median of its run medians.

Other labels: `new` / `missing` (no usable record on one side), `failed` (current status
failed or timeout), `invalid` (current result wrong against its reference).

Beside each timing verdict, its dispatch verdict: whether the case's fingerprint (ops,
kernels, syncs of one profiled call) changed (`eigenbench.gate.dispatch`).
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from eigenbench.errors import CompareError, UsageError
from eigenbench.gate.matching import (
    TIMED_STATUSES,
    check_settings,
    check_versions,
    in_order_with_dispatch,
    index_records,
    machine_of,
    match_cases,
    run_fields,
    safe_ratio,
)
from eigenbench.gate.noise import (
    MIN_CASES_FOR_DRIFT,
    PRIOR_RUNS,
    RUN_DRIFT,
    History,
    Samples,
    benjamini_hochberg,
    bootstrap_log_ratios,
    estimate_case_drift,
    group_shifts,
    history_spreads,
    level_variance_factor,
    median_log_se,
    median_se,
    min_detectable_slowdown,
    rank_sum_pvalue,
    ratio_interval,
    satterthwaite_df,
    shrunk_sd,
    t_two_sided_p,
)
from eigenbench.gate.verdicts import MIN_SAMPLES, CompareResult, Verdict, decide
from eigenbench.measure.hostload import under_load
from eigenbench.measure.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from eigenbench.results.merge import align_machines, is_multi_machine
from eigenbench.units import fmt_sig

__all__ = ["compare_runs"]

SUITE_MOVE_MARGIN = 2.0
"""A whole suite is called slower (or faster) only when it moved by at least this many
thresholds: on the shared CI VM, unchanged runs moved whole suites by up to 9 % (95th
percentile 8.4 %) in a noisy hour, beyond what five baseline runs showed."""
SHIFT_WARNING_SDS = 3.0
"""Warn when every case moved together by more than this many `run_drift`s."""


def compare_runs(
    baseline: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    threshold: float = 0.05,
    alpha: float = 0.05,
    relative_to: str | None = None,
    run_drift: float = RUN_DRIFT,
    seed: int = BOOTSTRAP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> CompareResult:
    """Match the two runs' cases by id and give each a Verdict (see the module docstring).

    When a side spans several machines (`eigenbench merge`), cases match on (machine key,
    case id): their ids become `id @ machine_key` (`results.merge.align_machines`)."""
    check_settings(threshold, alpha, resamples, run_drift)
    baseline, current = align_machines(baseline, current)
    base = index_records(baseline, "baseline")
    cur = index_records(current, "current")
    check_versions(base, cur)
    refs = None
    if relative_to is not None:
        refs = (
            _reference_samples(base, relative_to, "baseline"),
            _reference_samples(cur, relative_to, "current"),
        )
        run_drift = 0.0  # a shift shared by the run cancels in the normalised ratio

    histories = _histories(base) if relative_to is None else {}
    ids, verdicts, to_test = match_cases(base, cur, relative_to)
    tested: dict[str, _Tested] = {}
    for case_id, b, c in to_test:
        history = histories.get(case_id)
        verdicts[case_id], t = _test_case(case_id, b, c, refs, history, seed, resamples)
        if t is not None:
            tested[case_id] = t

    log_ratios = [t.log_ratio for t in tested.values()]
    by_shift = relative_to is None
    shifts = group_shifts(log_ratios, [t.group for t in tested.values()]) if by_shift else {}
    centred = [t.log_ratio - shifts.get(t.group, (0.0, 0))[0] for t in tested.values()]
    case_drift = estimate_case_drift(centred, [t.within_sd for t in tested.values()])
    shift = math.exp(float(np.median(log_ratios))) if len(tested) >= MIN_CASES_FOR_DRIFT else None
    _decide_all(
        verdicts,
        tested,
        (case_drift, run_drift),
        threshold,
        alpha,
        seed,
        shifts,
    )
    warnings = _warnings(baseline, current, base, cur)
    if shift is not None and relative_to is None:
        warnings += _shift_warning(shift, len(tested), run_drift, threshold)
    return CompareResult(
        verdicts=in_order_with_dispatch(ids, verdicts, base, cur),
        warnings=tuple(warnings),
        threshold=threshold,
        alpha=alpha,
        relative_to=relative_to,
        seed=seed,
        run_drift=run_drift,
        case_drift=case_drift if tested else None,
        shift=shift,
        **run_fields(baseline, current),
    )


@dataclass
class _Tested:
    """A timed case waiting for the across-cases steps (drift estimate, BH)."""

    verdict: Verdict
    ratio: float
    within_sd: float
    """sd of the log ratio from the samples alone (smooth estimate)."""
    boot: np.ndarray
    """Bootstrap replicates of the log ratio (within-run noise)."""
    p_rank: float
    extra: list[str] = field(default_factory=list)
    history: tuple[History, float | None] | None = None
    """The case's baseline history and its suite's shift sd, when the baseline has one."""

    group: str = ""
    """The case's suite: cases of one suite share a run shift."""
    loaded: str | None = None
    """Which side was measured under load (other processes busy), if any."""

    def drift_df(self, cases: int, case_drift: float) -> float:
        """Degrees of freedom of the own-drift estimate, from `cases` tested cases: n - 1
        for the cross-case figure (infinite when it is the floor, a setting), and for a
        history shrunk toward it the Welch-Satterthwaite combination of the two."""
        cross = cases - 1.0 if cases >= MIN_CASES_FOR_DRIFT else math.inf
        if self.history is None:
            return cross
        h = self.history[0]
        return satterthwaite_df(
            [(PRIOR_RUNS * case_drift**2, cross), ((h.runs - 1) * h.spread**2, h.runs - 1.0)]
        )

    def drift_sds(self, case_drift: float, run_drift: float) -> tuple[float, float]:
        """sd of the log ratio beyond the current run's samples: (the case's own drift, the
        shift it shares with its run), both sides included."""
        if self.history is None:
            return case_drift, run_drift
        h, shift_sd = self.history
        both_sides = math.sqrt(1.0 + level_variance_factor(h.runs))
        own = shrunk_sd(h.spread, h.runs - 1, case_drift)
        shared = run_drift if shift_sd is None else shrunk_sd(shift_sd, h.runs - 1, run_drift)
        return own * both_sides, shared * both_sides

    @property
    def log_ratio(self) -> float:
        return math.log(self.ratio)


def _ref_key(rec: Mapping[str, Any]) -> str:
    params = json.dumps(rec.get("params", {}), sort_keys=True, default=str)
    keys = ("machine_key", "workload", "device", "dtype", "phase")
    return "|".join([str(rec.get(k)) for k in keys] + [params])


def _reference_samples(
    records: Mapping[str, Mapping[str, Any]], impl: str, side: str
) -> dict[str, list[float]]:
    """Samples of the `impl` cases, keyed by everything but the impl."""
    found = [r for r in records.values() if r.get("impl") == impl]
    if not found:
        raise UsageError(f"--relative-to {impl}: the {side} run has no implementation {impl!r}")
    return {
        _ref_key(r): list(r["samples_s"])
        for r in found
        if r.get("status") in TIMED_STATUSES and r.get("samples_s") and min(r["samples_s"]) > 0
    }


def _test_case(
    case_id: str,
    b: Mapping[str, Any],
    c: Mapping[str, Any],
    refs: tuple[dict[str, list[float]], dict[str, list[float]]] | None,
    history: tuple[History, float | None] | None,
    seed: int,
    resamples: int,
) -> tuple[Verdict, _Tested | None]:
    """The within-run part of a case's test; the rest waits for all cases (`_decide_all`)."""
    a = np.asarray(b["samples_s"], dtype=np.float64)
    x = np.asarray(c["samples_s"], dtype=np.float64)
    common: dict[str, Any] = {
        "id": case_id,
        "baseline_status": "ok",
        "current_status": "ok",
        "baseline_median_s": float(np.median(a)),
        "current_median_s": float(np.median(x)),
    }
    a_ref = x_ref = None
    if refs is not None:
        a_ref, x_ref = refs[0].get(_ref_key(b)), refs[1].get(_ref_key(c))
        if a_ref is None or x_ref is None:
            side = "baseline" if a_ref is None else "current"
            return Verdict(
                label="inconclusive",
                reason=f"no --relative-to reference at this point in the {side} run",
                **common,
            ), None
    if min(a.size, x.size) < MIN_SAMPLES or np.any(a <= 0) or np.any(x <= 0):
        why = (
            f"too few samples (baseline {a.size}, current {x.size}; need {MIN_SAMPLES})"
            if min(a.size, x.size) < MIN_SAMPLES
            else "zero-duration samples"
        )
        ratio = safe_ratio(common["baseline_median_s"], common["current_median_s"])
        return Verdict(label="inconclusive", ratio=ratio, reason=why, **common), None
    if a_ref is not None and x_ref is not None:
        a_n, x_n = a / float(np.median(a_ref)), x / float(np.median(x_ref))
        ratio = float(np.median(x_n) / np.median(a_n))
    else:
        a_n, x_n = a, x
        ratio = common["current_median_s"] / common["baseline_median_s"]
    rng = np.random.default_rng([seed, zlib.crc32(case_id.encode("utf-8"))])
    extra = []
    if history is not None:  # the baseline is the level of its runs, not one run's samples
        level = math.exp(history[0].level)
        common["baseline_median_s"] = level
        common["baseline_runs"] = history[0].runs
        ratio = common["current_median_s"] / level
        boot = bootstrap_log_ratios([level], x, resamples=resamples, rng=rng)
        within_sd = median_log_se(x)
        extra.append(f"baseline: median of {history[0].runs} runs")
    else:
        boot = bootstrap_log_ratios(
            a, x, baseline_ref=a_ref, current_ref=x_ref, resamples=resamples, rng=rng
        )
        parts: list[Samples] = [a, x]
        if a_ref is not None and x_ref is not None:
            parts += [a_ref, x_ref]
        within_sd = math.sqrt(sum(median_log_se(s) ** 2 for s in parts))
    verdict = Verdict(label="inconclusive", ratio=ratio, **common)
    if b.get("timer") != c.get("timer"):
        extra.append(f"timed by {b.get('timer')} in the baseline, {c.get('timer')} now")
    p_rank = rank_sum_pvalue(a_n, x_n)
    group = str(c.get("suite"))
    # a baseline with history is the level of its runs, not its last record's samples
    sides = (("current", c),) if history is not None else (("baseline", b), ("current", c))
    loaded = " and ".join(side for side, r in sides if under_load(r))
    tested = _Tested(verdict, ratio, within_sd, boot, p_rank, extra, history, group, loaded or None)
    return verdict, tested


def _histories(
    base: Mapping[str, Mapping[str, Any]],
) -> dict[str, tuple[History, float | None]]:
    """Each baseline case's history (with its suite's shift sd), where it has enough runs."""
    by_suite: dict[str, list[str]] = {}
    for case_id, rec in base.items():
        medians = rec.get("run_medians_s")
        if isinstance(medians, list) and len(medians) > 1:
            by_suite.setdefault(str(rec.get("suite")), []).append(case_id)
    out: dict[str, tuple[History, float | None]] = {}
    for suite, ids in by_suite.items():
        width = max(len(base[i]["run_medians_s"]) for i in ids)
        rows = [
            [None] * (width - len(m)) + list(m) for m in (base[i]["run_medians_s"] for i in ids)
        ]
        try:
            found, shift_sd = history_spreads(rows)
        except ValueError as exc:
            raise CompareError(f"baseline suite {suite!r}: run_medians_s: {exc}") from None
        out.update({i: (h, shift_sd) for i, h in zip(ids, found, strict=True) if h is not None})
    return out


def _decide_all(
    verdicts: dict[str, Verdict],
    tested: Mapping[str, _Tested],
    drifts: tuple[float, float],
    threshold: float,
    alpha: float,
    seed: int,
    shifts: Mapping[str, tuple[float, int]],
) -> None:
    """Test every case against the noise model, BH across cases, then label.

    `drifts` is (case drift, run drift): the cross-case estimate and the setting. A case
    whose suite has a shift in `shifts` (its median log ratio, and over how many cases) is
    tested against it (how far it moved beyond the rest of its suite), and each suite's
    shift against the run-to-run shifts: a case is `slower` if it stands out, or if its
    whole suite moved beyond what runs do. Other cases are judged as they stand.
    """
    if not tested:
        return
    ids = list(tested)
    sds = {i: tested[i].drift_sds(*drifts) for i in ids}
    full = {i: math.hypot(tested[i].within_sd, *sds[i]) for i in ids}
    own = {i: math.hypot(tested[i].within_sd, sds[i][0]) for i in ids}
    members: dict[str, list[str]] = {g: [] for g in shifts}
    for i in ids:  # one pass, not one per suite
        if tested[i].group in members:
            members[tested[i].group].append(i)
    ses = {
        g: median_se(float(np.median([own[i] for i in members[g]])), n)
        for g, (_, n) in shifts.items()
    }
    moved = _moved_groups(tested, members, sds, shifts, ses, threshold, alpha)
    effect, noise, p_test = {}, {}, {}
    for i in ids:
        t = tested[i]
        if t.group not in shifts:  # judged as it stands, the shared shift counted as noise
            effect[i], noise[i] = t.log_ratio, full[i]
        else:  # judged against the rest of its suite in this run
            effect[i] = t.log_ratio - shifts[t.group][0]
            noise[i] = math.hypot(own[i], ses[t.group])
        p_test[i] = _session_p(effect[i], noise[i], t.drift_df(len(ids), drifts[0]))
    rejected, adjusted = benjamini_hochberg([p_test[i] for i in ids], alpha)
    for case_id, sig, q in zip(ids, rejected, adjusted, strict=True):
        t = tested[case_id]
        rng = np.random.default_rng([seed, zlib.crc32(case_id.encode("utf-8")), 1])
        sd = math.hypot(*sds[case_id])
        with_drift = t.boot + rng.normal(0.0, sd, t.boot.size) if sd else t.boot
        low, high = ratio_interval(with_drift, 1 - alpha)
        change = math.exp(effect[case_id])
        label, reason = decide(
            t.ratio,
            change=change,
            low=low,
            high=high,
            significant=bool(sig),
            q=float(q),
            threshold=threshold,
            moved=moved.get(t.group),
        )
        if not sig and label in ("slower", "faster"):  # called by its whole suite's move:
            q = moved[t.group][1]  # the suite's p, not the case's own (insignificant) q
        if t.loaded and label in ("slower", "faster"):  # a neighbour's work, not the code's
            label, reason = "inconclusive", f"under load ({t.loaded} run): {label}? {reason}"
        if t.extra:
            reason = "; ".join([reason, *t.extra])
        verdicts[case_id] = replace(
            t.verdict,
            label=label,
            reason=reason,
            ci_low=low,
            ci_high=high,
            p_value=t.p_rank,
            p_session=p_test[case_id],
            q_value=float(q),
            noise_sd=noise[case_id],
            mde=min_detectable_slowdown(noise[case_id], threshold, 1 - alpha),
            change=change,
        )


def _moved_groups(
    tested: Mapping[str, _Tested],
    members: Mapping[str, list[str]],
    sds: Mapping[str, tuple[float, float]],
    shifts: Mapping[str, tuple[float, int]],
    ses: Mapping[str, float],
    threshold: float,
    alpha: float,
) -> dict[str, tuple[float, float]]:
    """Suites whose shift is beyond `SUITE_MOVE_MARGIN` thresholds and significant against
    run-to-run shifts (t test, Bonferroni across suites): {suite: (shift ratio, p)}."""
    out = {}
    for group, (shift, _) in shifts.items():
        shared = float(np.median([sds[i][1] for i in members[group]]))
        p = _session_p(shift, math.hypot(shared, ses[group]), _shift_df(tested, members[group]))
        if p <= alpha / len(shifts) and abs(shift) >= math.log1p(SUITE_MOVE_MARGIN * threshold):
            out[group] = (math.exp(shift), p)
    return out


def _shift_df(tested: Mapping[str, _Tested], members: list[str]) -> float:
    """Degrees of freedom of the shift sd: the baseline runs' shifts (fewest runs among the
    members) beyond the first, or infinite when the shift sd is the `run_drift` setting."""
    histories = [tested[i].history for i in members]
    runs = [h[0].runs for h in histories if h is not None]
    return min(runs) - 1.0 if runs else math.inf


def _session_p(log_ratio: float, noise_sd: float, df: float = math.inf) -> float:
    if noise_sd > 0:
        return t_two_sided_p(log_ratio / noise_sd, df)
    return 1.0 if log_ratio == 0 else 0.0


def _shift_warning(shift: float, n_cases: int, run_drift: float, threshold: float) -> list[str]:
    """A note when the whole run moved together by more than run-to-run drift explains."""
    limit = max(threshold, SHIFT_WARNING_SDS * run_drift)
    if abs(math.log(shift)) <= math.log1p(limit):
        return []
    way = "slower" if shift > 1 else "faster"
    return [
        f"the whole run is {fmt_sig(abs(shift - 1) * 100)} % {way} than the baseline (median of "
        f"{n_cases} cases): a different machine state, or a change that touches every case; "
        "--relative-to IMPL compares within each run"
    ]


def _warnings(
    baseline: Mapping[str, Any],
    current: Mapping[str, Any],
    base: Mapping[str, Mapping[str, Any]],
    cur: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    out = []
    mb, mc = machine_of(baseline), machine_of(current)
    if mb != mc and not (is_multi_machine(baseline) or is_multi_machine(current)):  # else aligned
        out.append(
            f"machine keys differ (baseline {mb!r}, current {mc!r}): timings may not be "
            "comparable; --relative-to IMPL cancels a uniform speed difference"
        )
    for side, run in (("baseline", baseline), ("current", current)):
        if run.get("status") not in (None, "complete"):
            out.append(f"the {side} run is {run.get('status')}; some cases may be absent")
    skipped = [
        i
        for i, c in cur.items()
        if c.get("status") == "skipped" and base.get(i, {}).get("status") == "ok"
    ]
    if skipped:
        out.append(
            f"{len(skipped)} case(s) measured in the baseline were skipped now "
            f"(e.g. {skipped[0]!r})"
        )
    return out
