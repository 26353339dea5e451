"""Judge an A/B pair of runs: every case timed on both sides in interleaved rounds.

`eigenbench ab` measures base and head alternately, case by case and round by round, so
what the machine does meanwhile (a neighbour's burst, a clock change, a noisy hour) falls
on both sides alike and cancels in each round's ratio. Pure: two loaded runs in, a
`CompareResult` out.

Each case timed on both sides gives paired log ratios d_r = log(head_r / base_r), one per
round (the rounds' medians). Its change is exp(trimmed mean of d), tested by Yuen's paired
t test (20 % trimmed mean, winsorized variance: one round hit by a burst cannot decide);
the p-values go through Benjamini-Hochberg at q = `alpha` across cases, and the labels
follow the gate's rule, `verdicts.decide` (`slower`: at least 1 + threshold and significant;
`unchanged`: the interval inside ±threshold; else `inconclusive`). No drift model is needed:
both sides share the machine's state, and the whole run's shift is a real change here.
Untimed cases get `matching`'s labels (`new`, `missing`, `failed`, `invalid`); every
case its dispatch verdict (`eigenbench.gate.dispatch`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from eigenbench.gate.matching import (
    check_settings,
    check_versions,
    in_order_with_dispatch,
    index_records,
    match_cases,
    run_fields,
)
from eigenbench.gate.noise import benjamini_hochberg, min_detectable_slowdown, t_two_sided_p
from eigenbench.gate.verdicts import CompareResult, Verdict, decide

MIN_PAIRS = 3
"""Fewer paired rounds than this leave a timed case `inconclusive`."""
TRIM = 0.2
"""Fraction of rounds trimmed from each end of the paired log ratios (Yuen)."""


@dataclass(frozen=True)
class PairedTest:
    """Yuen's paired test of the log ratios of one case."""

    n: int
    log_change: float
    """Trimmed mean of the paired log ratios."""
    se: float
    df: float

    def p_value(self) -> float:
        if self.se > 0:
            return t_two_sided_p(self.log_change / self.se, self.df)
        return 1.0 if self.log_change == 0 else 0.0

    def interval(self, confidence: float) -> tuple[float, float]:
        """The `confidence` interval of the change (a ratio)."""
        from scipy.special import stdtrit  # lazy: keeps SciPy out of `import eigenbench`

        half = float(stdtrit(self.df, 0.5 + confidence / 2)) * self.se
        return math.exp(self.log_change - half), math.exp(self.log_change + half)


def yuen_paired(d: Sequence[float], trim: float = TRIM) -> PairedTest:
    """Yuen's test of paired differences `d`: trimmed mean, its se and degrees of freedom."""
    x = np.sort(np.asarray(d, dtype=np.float64))
    n = x.size
    g = math.floor(trim * n)
    h = n - 2 * g
    if h < 2:
        raise ValueError(f"yuen_paired: {n} differences leave {h} after trimming; need 2")
    winsorized = np.clip(x, x[g], x[n - g - 1])
    se = math.sqrt((n - 1) * float(np.var(winsorized, ddof=1)) / (h * (h - 1)))
    return PairedTest(n=n, log_change=float(x[g : n - g].mean()), se=se, df=float(h - 1))


def round_pairs(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[tuple[float, float]]:
    """The (base, head) medians of the rounds both sides measured, in order."""

    def medians(rec: Mapping[str, Any]) -> list[float]:
        rounds = rec.get("round_medians_s")
        if rounds:
            return [float(v) for v in rounds]
        summary = rec.get("summary") or {}
        return [float(summary["median_s"])] if summary.get("median_s") else []

    return [(b, h) for b, h in zip(medians(base), medians(head), strict=False) if b > 0 and h > 0]


def is_ab_pair(base: Mapping[str, Any], head: Mapping[str, Any]) -> bool:
    """Whether the two runs are the base and head of one `eigenbench ab` measurement."""
    a, b = base.get("ab"), head.get("ab")
    return (
        isinstance(a, Mapping)
        and isinstance(b, Mapping)
        and a.get("id") == b.get("id")
        and (a.get("side"), b.get("side")) == ("base", "head")
    )


def paired_compare(
    base: Mapping[str, Any],
    head: Mapping[str, Any],
    *,
    threshold: float = 0.05,
    alpha: float = 0.05,
    trim: float = TRIM,
) -> CompareResult:
    """Verdicts for the cases of an A/B pair of runs (see the module docstring)."""
    check_settings(threshold, alpha)
    b_idx, h_idx = index_records(base, "base"), index_records(head, "head")
    check_versions(b_idx, h_idx)
    ids, verdicts, to_test = match_cases(b_idx, h_idx, None)
    tests: dict[str, PairedTest] = {}
    for case_id, b, h in to_test:
        pairs = round_pairs(b, h)
        common: dict[str, Any] = {
            "id": case_id,
            "baseline_status": b.get("status"),
            "current_status": h.get("status"),
            "baseline_median_s": float(np.median([p[0] for p in pairs])) if pairs else None,
            "current_median_s": float(np.median([p[1] for p in pairs])) if pairs else None,
        }
        if len(pairs) < MIN_PAIRS:
            verdicts[case_id] = Verdict(
                label="inconclusive",
                reason=f"{len(pairs)} paired round(s), fewer than {MIN_PAIRS}",
                **common,
            )
            continue
        tests[case_id] = yuen_paired([math.log(hd / bs) for bs, hd in pairs], trim)
        verdicts[case_id] = Verdict(label="inconclusive", **common)
    _label(verdicts, tests, threshold, alpha)
    changes = [t.log_change for t in tests.values()]
    return CompareResult(
        verdicts=in_order_with_dispatch(ids, verdicts, b_idx, h_idx),
        threshold=threshold,
        alpha=alpha,
        run_drift=0.0,
        case_drift=float(np.median([t.se * math.sqrt(t.n) for t in tests.values()]))
        if tests
        else None,
        shift=math.exp(float(np.median(changes))) if changes else None,
        paired_rounds=max((t.n for t in tests.values()), default=None),
        **run_fields(base, head),
    )


def _label(
    verdicts: dict[str, Verdict],
    tests: Mapping[str, PairedTest],
    threshold: float,
    alpha: float,
) -> None:
    """BH across the tested cases, then the gate's labels (`decide`) from each paired test."""
    if not tests:
        return
    ids = list(tests)
    p = [tests[i].p_value() for i in ids]
    rejected, adjusted = benjamini_hochberg(p, alpha)
    for case_id, p_case, sig, q in zip(ids, p, rejected, adjusted, strict=True):
        t = tests[case_id]
        change = math.exp(t.log_change)
        low, high = t.interval(1 - alpha)
        label, reason = decide(
            change,
            change=change,
            low=low,
            high=high,
            significant=bool(sig),
            q=float(q),
            threshold=threshold,
            noise="the rounds' noise",
        )
        verdicts[case_id] = replace(
            verdicts[case_id],
            label=label,
            reason=f"{reason}; {t.n} paired rounds{_medians_note(verdicts[case_id], change)}",
            ratio=change,
            change=change,
            ci_low=low,
            ci_high=high,
            p_session=p_case,
            q_value=float(q),
            noise_sd=t.se,
            mde=min_detectable_slowdown(t.se, threshold, 1 - alpha),
        )


def _medians_note(v: Verdict, change: float, tolerance: float = 0.05) -> str:
    """Why the paired change can differ from the ratio of the two medians shown beside it."""
    if not v.baseline_median_s or not v.current_median_s:
        return ""
    medians = v.current_median_s / v.baseline_median_s
    if abs(math.log(medians / change)) <= math.log1p(tolerance):
        return ""
    return (
        f"; the two sides' own medians differ by ×{medians:.3g}, the paired change by "
        f"×{change:.3g}: the rounds drifted, and each round compares its two sides"
    )
