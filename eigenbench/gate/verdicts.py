"""The verdict vocabulary every judge shares: labels, `Verdict`, `CompareResult`, the label
rule (`decide`), what counts as a regression and the exit code.

Pure. `compare` (a run against a stored baseline) and `paired` (an A/B pair, round by round)
label their cases with `decide`; `recheck` confirms their slowdowns. The CLI prints a
`CompareResult` (`eigenbench.console.render_table`, or its JSON) and exits with its code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from eigenbench.gate.dispatch import DispatchVerdict
from eigenbench.gate.noise import RUN_DRIFT
from eigenbench.measure.stats import BOOTSTRAP_SEED
from eigenbench.units import fmt_sig

LABELS = ("slower", "faster", "unchanged", "inconclusive", "new", "missing", "failed", "invalid")
"""Every verdict label, in the order of `CompareResult.counts` and of the compare table."""
LABEL_ORDER = (
    "slower",
    "failed",
    "invalid",
    "missing",
    "new",
    "faster",
    "unchanged",
    "inconclusive",
)
"""The labels worst first: the order in which the report lists and counts verdicts."""
REGRESSION_LABELS = ("slower", "failed")
"""Labels that always fail the gate; `invalid` fails it where the baseline was `ok`
(`is_regression`)."""
MIN_SAMPLES = 5
"""Fewer samples than this on either side make a timed case `inconclusive`."""
COMPARE_SCHEMA_ID = "eigenbench.compare/1"
DISPATCH_COUNTS = ("changed", "same", "no_fingerprint")
"""The keys of `CompareResult.dispatch_counts`."""


def is_regression(label: str, baseline_status: str | None) -> bool:
    """Slower, failed, or invalid where the baseline was ok: what makes `compare` exit 1."""
    if label in REGRESSION_LABELS:
        return True
    return label == "invalid" and baseline_status == "ok"


@dataclass(frozen=True)
class Verdict:
    """The outcome for one case. Ratios are current / baseline (> 1 means slower)."""

    id: str
    label: str
    ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    """Two-sided rank-sum p-value of the samples (within-run noise only)."""
    baseline_median_s: float | None = None
    current_median_s: float | None = None
    reason: str | None = None
    q_value: float | None = None
    """Benjamini-Hochberg adjusted `p_session` across the tested cases."""
    p_session: float | None = None
    """t-test p-value of no `change`, against the case's noise and run-to-run drift."""
    noise_sd: float | None = None
    """sd of the log ratio under the noise model (within-run and drift together)."""
    mde: float | None = None
    """Approximate smallest relative slowdown this case would flag with 80 % power."""
    baseline_runs: int | None = None
    """Baseline runs whose median is the baseline (None: the baseline's newest run only)."""
    change: float | None = None
    """The ratio beyond its suite's shift in this run (what is tested; = ratio when the
    suite has too few cases for a shift)."""
    baseline_status: str | None = None
    current_status: str | None = None
    dispatch: DispatchVerdict | None = None
    """Whether what the case ran changed (`eigenbench.gate.dispatch`); None for a case
    without a record on one side."""

    @property
    def is_regression(self) -> bool:
        """Whether this verdict fails the gate (see `is_regression`)."""
        return is_regression(self.label, self.baseline_status)

    @property
    def dispatch_changed(self) -> bool:
        return self.dispatch is not None and self.dispatch.changed is True

    def to_dict(self) -> dict[str, Any]:
        d = {k: _finite_or_none(v) for k, v in asdict(self).items() if k != "dispatch"}
        d["dispatch"] = None if self.dispatch is None else self.dispatch.to_dict()
        d["regression"] = self.is_regression
        return d


@dataclass(frozen=True)
class CompareResult:
    """All verdicts of one comparison, the settings used and what the user should know."""

    verdicts: tuple[Verdict, ...]
    warnings: tuple[str, ...] = ()
    threshold: float = 0.05
    alpha: float = 0.05
    relative_to: str | None = None
    seed: int = BOOTSTRAP_SEED
    baseline_run_id: str | None = None
    current_run_id: str | None = None
    baseline_machine: str | None = None
    current_machine: str | None = None
    run_drift: float = RUN_DRIFT
    """sd of the shared log shift assumed (0 with `relative_to`)."""
    case_drift: float | None = None
    """Per-case drift (sd of log ratio) used, estimated across cases; None if nothing tested."""
    shift: float | None = None
    """Median ratio across the tested cases: how far the whole run moved (None: too few)."""
    paired_rounds: int | None = None
    """Rounds per case of an A/B pair measured interleaved (`eigenbench.gate.paired`); None
    for a run judged against a baseline."""
    fail_on_dispatch_change: bool = False
    """Whether a dispatch change fails the gate too (`--fail-on-dispatch-change`)."""

    @property
    def median_mde(self) -> float | None:
        """Median over the tested cases of the smallest slowdown caught with 80 % power: how
        small a regression this machine and baseline can see."""
        mdes = [v.mde for v in self.verdicts if v.mde is not None]
        return float(np.median(mdes)) if mdes else None

    @property
    def history_runs(self) -> int | None:
        """Most baseline runs a tested case's level rests on (None: no history used)."""
        runs = [v.baseline_runs for v in self.verdicts if v.baseline_runs is not None]
        return max(runs) if runs else None

    @property
    def exit_code(self) -> int:
        """1 on a regression, or on a dispatch change when `fail_on_dispatch_change`."""
        if self.fail_on_dispatch_change and self.dispatch_changes:
            return 1
        return exit_code(self.verdicts)

    @property
    def regressions(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.is_regression]

    @property
    def dispatch_changes(self) -> list[Verdict]:
        """The verdicts whose case ran something else than in the baseline."""
        return [v for v in self.verdicts if v.dispatch_changed]

    def dispatch_counts(self) -> dict[str, int]:
        """Cases whose dispatch `changed`, stayed the `same`, or could not be compared
        (`no_fingerprint`); cases without a record on one side are not counted."""
        out = dict.fromkeys(DISPATCH_COUNTS, 0)
        for v in self.verdicts:
            if v.dispatch is not None:
                key = {True: "changed", False: "same", None: "no_fingerprint"}[v.dispatch.changed]
                out[key] += 1
        return out

    def counts(self) -> dict[str, int]:
        """Number of verdicts per label (every label present, zeros included)."""
        out = dict.fromkeys(LABELS, 0)
        for v in self.verdicts:
            out[v.label] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": COMPARE_SCHEMA_ID,
            "baseline": {"run_id": self.baseline_run_id, "machine_key": self.baseline_machine},
            "current": {"run_id": self.current_run_id, "machine_key": self.current_machine},
            "settings": {
                "threshold": self.threshold,
                "alpha": self.alpha,
                "relative_to": self.relative_to,
                "seed": self.seed,
                "min_samples": MIN_SAMPLES,
                "run_drift": self.run_drift,
                "paired_rounds": self.paired_rounds,
                "fail_on_dispatch_change": self.fail_on_dispatch_change,
            },
            "noise": {
                "case_drift": self.case_drift,
                "shift": self.shift,
                "median_mde": self.median_mde,
                "history_runs": self.history_runs,
            },
            "exit_code": self.exit_code,
            "counts": self.counts(),
            "dispatch_counts": self.dispatch_counts(),
            "warnings": list(self.warnings),
            "verdicts": [v.to_dict() for v in self.verdicts],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"


def exit_code(verdicts: Iterable[Verdict]) -> int:
    """1 if any verdict is a regression (see `is_regression`), else 0 — never a count."""
    return 1 if any(v.is_regression for v in verdicts) else 0


def decide(
    ratio: float,
    *,
    change: float,
    low: float,
    high: float,
    significant: bool,
    q: float,
    threshold: float,
    moved: tuple[float, float] | None = None,
    noise: str = "noise and drift",
) -> tuple[str, str]:
    """A label and its reason, for a case whose `ratio` was tested.

    `change` is the ratio beyond the suite's shift (= `ratio` when not judged by shift),
    tested `significant` at BH-adjusted `q`; [`low`, `high`] the interval of the ratio;
    `threshold` the smallest change that counts (a fraction); `moved` the (shift, p) of a
    suite that moved as a whole; `noise` what the interval and test allow for, in words.
    """
    up, down = 1.0 + threshold, 1.0 / (1.0 + threshold)
    pct = f"{fmt_sig((up - 1) * 100)} %"
    interval = f"[{low:.3g}, {high:.3g}]"
    beyond = "" if change == ratio else f" ({change:.3g} beyond its suite's shift)"
    for label, side, hit in (
        ("slower", "above +", change >= up),
        ("faster", "below −", change <= down),
    ):
        if significant and hit:
            why = f"ratio {ratio:.3g}{beyond} at or {side}{pct}, beyond {noise}"
            return label, f"{why} (q = {q:.2g})"
    if moved is not None and not significant:
        shift, p = moved
        if (shift >= up and ratio >= up) or (shift <= down and ratio <= down):
            return (
                "slower" if shift > 1 else "faster",
                f"ratio {ratio:.3g}: its whole suite moved ×{shift:.3g}, beyond the shifts "
                f"between runs (p = {p:.2g})",
            )
    if down <= low and high <= up:
        return "unchanged", f"interval {interval} ({noise}) within ±{pct}"
    if ratio >= up or ratio <= down:
        return "inconclusive", f"ratio beyond ±{pct} but within {noise} (q = {q:.2g})"
    return "inconclusive", f"interval {interval} ({noise}) straddles ±{pct}"


def _finite_or_none(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
