"""Compare a run against a baseline: match cases, test each change, label it, pick an exit code.

Pure: loaded run dicts in, a `CompareResult` out. Printing and exiting belong to the CLI.

Each case measured (status `ok`) on both sides gets r = median(current) / median(baseline).
Its noise is modelled in `eigenbench.compare_stats`: within-run sampling noise (from its
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
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from eigenbench.compare_stats import (
    MIN_CASES_FOR_DRIFT,
    PRIOR_RUNS,
    RUN_DRIFT,
    History,
    Samples,
    benjamini_hochberg,
    bootstrap_log_ratios,
    bootstrap_ratio_ci,
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
from eigenbench.errors import EigenbenchError, UsageError
from eigenbench.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED

__all__ = [
    "LABELS",
    "CompareError",
    "CompareResult",
    "Verdict",
    "VersionMismatchError",
    "benjamini_hochberg",
    "bootstrap_ratio_ci",
    "compare_runs",
    "exit_code",
    "min_detectable_slowdown",
    "rank_sum_pvalue",
    "render_table",
]

LABELS = ("slower", "faster", "unchanged", "inconclusive", "new", "missing", "failed", "invalid")
MIN_SAMPLES = 5
"""Fewer samples than this on either side make a timed case `inconclusive`."""
COMPARE_SCHEMA_ID = "eigenbench.compare/1"
SUITE_MOVE_MARGIN = 2.0
"""A whole suite is called slower (or faster) only when it moved by at least this many
thresholds: on the shared CI VM, unchanged runs moved whole suites by up to 9 % (95th
percentile 8.4 %) in a noisy hour, beyond what five baseline runs showed."""
SHIFT_WARNING_SDS = 3.0
"""Warn when every case moved together by more than this many `run_drift`s."""


class CompareError(EigenbenchError):
    """Two runs that cannot be compared (duplicate case ids, different workload versions)."""

    exit_code = 3


class VersionMismatchError(CompareError):
    """A case whose workload version differs between baseline and current run."""

    def __init__(self, mismatches: Sequence[tuple[str, str, str]]) -> None:
        self.mismatches = list(mismatches)
        case, old, new = self.mismatches[0]
        more = len(self.mismatches) - 1
        tail = f" (and {more} more case{'s' if more > 1 else ''})" if more else ""
        super().__init__(
            f"case {case!r}: baseline has workload version {old!r}, current run has {new!r}"
            f"{tail}; timings of different versions are not comparable — save a new baseline"
        )


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

    @property
    def is_regression(self) -> bool:
        """Slower, failed, or invalid where the baseline was ok: what makes `compare` exit 1."""
        if self.label in ("slower", "failed"):
            return True
        return self.label == "invalid" and self.baseline_status == "ok"

    def to_dict(self) -> dict[str, Any]:
        d = {k: _finite_or_none(v) for k, v in asdict(self).items()}
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
    """Rounds per case of an A/B pair measured interleaved (`eigenbench.paired`); None for a
    run judged against a baseline."""

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
        return exit_code(self.verdicts)

    @property
    def regressions(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.is_regression]

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
            },
            "noise": {
                "case_drift": self.case_drift,
                "shift": self.shift,
                "median_mde": self.median_mde,
                "history_runs": self.history_runs,
            },
            "exit_code": self.exit_code,
            "counts": self.counts(),
            "warnings": list(self.warnings),
            "verdicts": [v.to_dict() for v in self.verdicts],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"


def exit_code(verdicts: Iterable[Verdict]) -> int:
    """1 if any verdict is a regression (see `Verdict.is_regression`), else 0 — never a count."""
    return 1 if any(v.is_regression for v in verdicts) else 0


# --------------------------------------------------------------------------- matching and labels


_TIMED = ("ok", "invalid")
_FAILED = ("failed", "timeout")


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
    """Match the two runs' cases by id and give each a Verdict (see the module docstring)."""
    check_settings(threshold, alpha, resamples, run_drift)
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
        verdicts=tuple(verdicts[i] for i in ids),
        warnings=tuple(warnings),
        threshold=threshold,
        alpha=alpha,
        relative_to=relative_to,
        seed=seed,
        baseline_run_id=baseline.get("run_id"),
        current_run_id=current.get("run_id"),
        baseline_machine=machine_of(baseline),
        current_machine=machine_of(current),
        run_drift=run_drift,
        case_drift=case_drift if tested else None,
        shift=shift,
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


def check_settings(
    threshold: float,
    alpha: float,
    resamples: int = BOOTSTRAP_RESAMPLES,
    run_drift: float = 0.0,
) -> None:
    """ValueError naming the first setting out of range."""
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"compare: threshold must be a finite fraction >= 0, got {threshold!r}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"compare: alpha must be in (0, 1), got {alpha!r}")
    if not (isinstance(resamples, int) and resamples >= 100):
        raise ValueError(f"compare: resamples must be an int >= 100, got {resamples!r}")
    if not (isinstance(run_drift, (int, float)) and 0 <= run_drift < 1):
        raise ValueError(f"compare: run_drift must be a fraction in [0, 1), got {run_drift!r}")


def index_records(run: Mapping[str, Any], side: str) -> dict[str, Mapping[str, Any]]:
    records = run.get("records")
    if not isinstance(records, list):
        raise CompareError(f"{side} run: 'records' must be a list of records")
    out: dict[str, Mapping[str, Any]] = {}
    for rec in records:
        case_id = rec.get("id")
        if not isinstance(case_id, str) or not case_id:
            raise CompareError(f"{side} run: a record without a string 'id'")
        if case_id in out:
            raise CompareError(f"{side} run: case {case_id!r} appears more than once")
        out[case_id] = rec
    return out


def match_cases(
    base: Mapping[str, Mapping[str, Any]],
    cur: Mapping[str, Mapping[str, Any]],
    relative_to: str | None,
) -> tuple[list[str], dict[str, Verdict], list[tuple[str, Mapping[str, Any], Mapping[str, Any]]]]:
    """Every case id (the baseline's order, then new ones), the verdicts that need no test
    (`label_without_test`), and the (id, baseline, current) records left to test."""
    ids = list(base) + [i for i in cur if i not in base]
    verdicts: dict[str, Verdict] = {}
    to_test = []
    for case_id in ids:
        b, c = base.get(case_id), cur.get(case_id)
        early = label_without_test(case_id, b, c, relative_to)
        if early is not None:
            verdicts[case_id] = early
        elif b is not None and c is not None:  # always, once label_without_test passed
            to_test.append((case_id, b, c))
    return ids, verdicts, to_test


def check_versions(base: Mapping[str, Mapping[str, Any]], cur: Mapping[str, Any]) -> None:
    mismatches = [
        (i, str(b.get("version")), str(cur[i].get("version")))
        for i, b in base.items()
        if i in cur and b.get("version") != cur[i].get("version")
    ]
    if mismatches:
        raise VersionMismatchError(mismatches)


def _ref_key(rec: Mapping[str, Any]) -> str:
    params = json.dumps(rec.get("params", {}), sort_keys=True, default=str)
    return "|".join([str(rec.get(k)) for k in ("workload", "device", "dtype", "phase")] + [params])


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
        if r.get("status") in _TIMED and r.get("samples_s") and min(r["samples_s"]) > 0
    }


def _median(rec: Mapping[str, Any] | None) -> float | None:
    if rec is None or not rec.get("samples_s"):
        return None
    return float(np.median(np.asarray(rec["samples_s"], dtype=np.float64)))


def label_without_test(
    case_id: str,
    b: Mapping[str, Any] | None,
    c: Mapping[str, Any] | None,
    relative_to: str | None,
) -> Verdict | None:
    """Verdicts that need no statistics; None when the case must be tested."""
    b_status = None if b is None else b.get("status")
    c_status = None if c is None else c.get("status")
    common: dict[str, Any] = {
        "id": case_id,
        "baseline_status": b_status,
        "current_status": c_status,
        "baseline_median_s": _median(b),
        "current_median_s": _median(c),
    }
    if c is None:
        return Verdict(label="missing", reason="not in the current run", **common)
    if c_status in _FAILED:
        return Verdict(label="failed", reason=f"{c_status}: {c.get('reason')}", **common)
    if c_status == "invalid":
        ratio = _ratio(common["baseline_median_s"], common["current_median_s"])
        was = "ok" if b_status == "ok" else (b_status or "absent")
        return Verdict(
            label="invalid",
            ratio=ratio,
            reason=f"result does not match its reference (baseline: {was}): {c.get('reason')}",
            **common,
        )
    if c_status != "ok":
        return Verdict(
            label="missing", reason=f"{c_status} in the current run: {c.get('reason')}", **common
        )
    if b is None:
        return Verdict(label="new", reason="not in the baseline", **common)
    if b_status != "ok":
        return Verdict(
            label="new",
            reason=f"no valid baseline timing (baseline status {b_status}: {b.get('reason')})",
            **common,
        )
    if not b.get("samples_s") or not c.get("samples_s"):
        return Verdict(label="inconclusive", reason="a side has no samples", **common)
    if relative_to is not None and c.get("impl") == relative_to:
        raw = _ratio(common["baseline_median_s"], common["current_median_s"])
        raw_text = "—" if raw is None else f"{raw:.3g}"
        return Verdict(
            label="unchanged",
            ratio=1.0,
            ci_low=1.0,
            ci_high=1.0,
            reason=f"reference of --relative-to (ratio 1 by definition; raw ratio {raw_text})",
            **common,
        )
    return None


def _ratio(b: float | None, c: float | None) -> float | None:
    if b is None or c is None or b <= 0:
        return None
    return c / b


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
        ratio = _ratio(common["baseline_median_s"], common["current_median_s"])
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
    return verdict, _Tested(verdict, ratio, within_sd, boot, p_rank, extra, history, group)


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
    members = {g: [i for i in ids if tested[i].group == g] for g in shifts}
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
    up, down = 1.0 + threshold, 1.0 / (1.0 + threshold)
    for case_id, sig, q in zip(ids, rejected, adjusted, strict=True):
        t = tested[case_id]
        rng = np.random.default_rng([seed, zlib.crc32(case_id.encode("utf-8")), 1])
        sd = math.hypot(*sds[case_id])
        with_drift = t.boot + rng.normal(0.0, sd, t.boot.size) if sd else t.boot
        low, high = ratio_interval(with_drift, 1 - alpha)
        change = math.exp(effect[case_id])
        label, reason = decide(
            t.ratio, change, low, high, bool(sig), float(q), up, down, moved.get(t.group)
        )
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
    runs = [tested[i].history[0].runs for i in members if tested[i].history is not None]
    return min(runs) - 1.0 if runs else math.inf


def _session_p(log_ratio: float, noise_sd: float, df: float = math.inf) -> float:
    if noise_sd > 0:
        return t_two_sided_p(log_ratio / noise_sd, df)
    return 1.0 if log_ratio == 0 else 0.0


def decide(
    ratio: float,
    change: float,
    low: float,
    high: float,
    significant: bool,
    q: float,
    up: float,
    down: float,
    moved: tuple[float, float] | None,
    noise: str = "noise and drift",
) -> tuple[str, str]:
    """A label and its reason. `change` is the ratio beyond the suite's shift (= `ratio`
    when not judged by shift); `moved` the (shift, p) of a suite that moved as a whole;
    `noise` what the interval and test allow for, in words."""
    pct = f"{(up - 1) * 100:.3g} %"
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


def _shift_warning(shift: float, n_cases: int, run_drift: float, threshold: float) -> list[str]:
    """A note when the whole run moved together by more than run-to-run drift explains."""
    limit = max(threshold, SHIFT_WARNING_SDS * run_drift)
    if abs(math.log(shift)) <= math.log1p(limit):
        return []
    way = "slower" if shift > 1 else "faster"
    return [
        f"the whole run is {abs(shift - 1) * 100:.3g} % {way} than the baseline (median of "
        f"{n_cases} cases): a different machine state, or a change that touches every case; "
        "--relative-to IMPL compares within each run"
    ]


def machine_of(run: Mapping[str, Any]) -> str | None:
    env = run.get("env")
    return env.get("machine_key") if isinstance(env, Mapping) else None


def _warnings(
    baseline: Mapping[str, Any],
    current: Mapping[str, Any],
    base: Mapping[str, Mapping[str, Any]],
    cur: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    out = []
    mb, mc = machine_of(baseline), machine_of(current)
    if mb != mc:
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


def _finite_or_none(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# --------------------------------------------------------------------------- rendering


_STYLES = {
    "slower": "bold red",
    "failed": "bold red",
    "invalid": "bold magenta",
    "faster": "green",
    "inconclusive": "yellow",
    "new": "cyan",
    "missing": "cyan",
    "unchanged": "dim",
}


def format_seconds(s: float | None) -> str:
    """A duration for the screen (s, ms, µs or ns, 4 significant digits)."""
    if s is None or not math.isfinite(s):
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(s) >= scale:
            return f"{s / scale:.4g} {unit}"
    return f"{s / 1e-9:.4g} ns"


def _noise_caption(result: CompareResult) -> str:
    """What the baseline rests on, how small a slowdown could be seen, how far the run moved."""
    if result.case_drift is None:
        return ""
    runs = result.history_runs
    if result.paired_rounds:
        parts = [f"A/B interleaved: up to {result.paired_rounds} paired rounds per case"]
    else:
        parts = [
            f"baseline: median of up to {runs} runs per case"
            if runs
            else f"drift allowed: {result.case_drift * 100:.2g} % per case"
            + (f", {result.run_drift * 100:.2g} % shared" if result.run_drift else "")
        ]
    if result.median_mde is not None:
        parts.append(f"slowdown caught 80 % of the time: {result.median_mde * 100:.2g} % (median)")
    if result.shift is not None:
        parts.append(f"whole-run shift ×{result.shift:.3f}")
    return "; ".join(parts)


def render_table(result: CompareResult, *, show_unchanged: bool = True) -> Any:
    """A rich Table of the verdicts (regressions first); the CLI prints it."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    rel = f", relative to {result.relative_to}" if result.relative_to else ""
    counts = ", ".join(f"{n} {k}" for k, n in result.counts().items() if n)
    table = Table(
        title=f"compare: threshold {result.threshold * 100:.3g} %, BH q = {result.alpha:g}{rel}",
        caption="\n".join(filter(None, [counts or "no cases", _noise_caption(result)])),
    )
    for name, justify in (
        ("case", "left"),
        ("baseline", "right"),
        ("current", "right"),
        ("ratio", "right"),
        ("95 % interval", "right"),
        ("q", "right"),
        ("verdict", "left"),
        ("why", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    order = {label: i for i, label in enumerate(LABELS)}
    rows = sorted(result.verdicts, key=lambda v: (not v.is_regression, order[v.label]))
    for v in rows:
        if v.label == "unchanged" and not show_unchanged:
            continue
        table.add_row(
            escape(v.id),
            format_seconds(v.baseline_median_s),
            format_seconds(v.current_median_s),
            "—" if v.ratio is None else f"{v.ratio:.3f}",
            "—" if v.ci_low is None or v.ci_high is None else f"{v.ci_low:.3f}–{v.ci_high:.3f}",
            "—" if v.q_value is None else f"{v.q_value:.2g}",
            Text(v.label, style=_STYLES[v.label]),
            escape(v.reason or ""),
        )
    return table
