"""Compare a run against a baseline: match cases, test each change, label it, pick an exit code.

Pure: loaded run dicts in, a `CompareResult` out. Printing and exiting belong to the CLI.

Decision rule for a case measured (status `ok`) on both sides, with r = median(current) /
median(baseline), its bootstrap interval [lo, hi] at 1 - `alpha`, and t = `threshold`:

- `slower`: lo >= 1 + t (the whole interval clears the margin) and the two-sided rank-sum
  (Mann-Whitney U) p-value survives Benjamini-Hochberg at q = `alpha` across all tested cases;
- `faster`: the mirror image, hi <= 1 / (1 + t), BH-significant;
- `unchanged`: the interval lies inside [1 / (1 + t), 1 + t]: no change as large as t fits;
- `inconclusive`: anything else (the interval straddles the margin, too few samples, or no
  `--relative-to` reference). Never a failure.

Why the interval, not just the point ratio, must clear the margin: the samples of one run
cannot see drift between sessions (clocks, thermal state, neighbours). In an A/A simulation
(log-normal samples, CV 2 %, n = 30, 2 % outliers, 1 % per-case session drift, 100 cases) the
rule "r >= 1 + t and lo > 1" raised a false alarm in 11 % of comparisons; requiring
lo >= 1 + t gives 0.3 %, while a planted 10 % slowdown is still caught 99 % of the time. The
price is sensitivity: the slowdown caught 80 % of the time is about 7 % at CV 2 %, n = 30
(5.5 % at CV 0.5 %, 10 % at CV 5 %); each verdict carries its own estimate as `mde`. No 5 %
margin survives 2 % per-case drift (81 % false alarms): raise `threshold` there, or use
`relative_to` when the drift is shared by the whole run.

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

from eigenbench.errors import EigenbenchError, UsageError
from eigenbench.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED

LABELS = ("slower", "faster", "unchanged", "inconclusive", "new", "missing", "failed", "invalid")
MIN_SAMPLES = 5
"""Fewer samples than this on either side make a timed case `inconclusive`."""
COMPARE_SCHEMA_ID = "eigenbench.compare/1"
Samples = Sequence[float] | np.ndarray
_Z_POWER = 0.8416212335729143  # standard normal quantile at 0.80, for the MDE estimate


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
    baseline_median_s: float | None = None
    current_median_s: float | None = None
    reason: str | None = None
    q_value: float | None = None
    """Benjamini-Hochberg adjusted p-value across the tested cases."""
    mde: float | None = None
    """Approximate smallest relative slowdown this case would flag with 80 % power."""
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


# --------------------------------------------------------------------------- statistics (pure)


def rank_sum_pvalue(a: Samples, b: Samples) -> float:
    """Two-sided Mann-Whitney U (rank-sum) p-value: normal approximation with tie and
    continuity corrections, as `scipy.stats.mannwhitneyu(a, b, method="asymptotic")`.

    Written in NumPy because it runs once per case (50 µs instead of SciPy's 2 ms) and keeps
    SciPy's import out of `eigenbench compare`. 1.0 when every value is tied.
    """
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        raise ValueError("rank_sum_pvalue needs at least one sample on each side")
    both = np.concatenate([x, y])
    if not np.all(np.isfinite(both)):
        raise ValueError("rank_sum_pvalue needs finite samples")
    n = n1 + n2
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    mid_ranks = np.cumsum(counts) - (counts - 1) / 2.0  # average rank of each tied group
    u1 = float(mid_ranks[inverse[:n1]].sum()) - n1 * (n1 + 1) / 2.0
    mu = n1 * n2 / 2.0
    tie_term = float((counts.astype(np.float64) ** 3 - counts).sum())
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return 1.0
    z = (max(u1, n1 * n2 - u1) - mu - 0.5) / math.sqrt(var)
    return min(1.0, math.erfc(z / math.sqrt(2.0)))


def benjamini_hochberg(pvalues: Samples, q: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg step-up: (rejected mask, adjusted p-values), in the input order."""
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("benjamini_hochberg: pvalues must be a 1-D sequence")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("benjamini_hochberg: every p-value must be a number in [0, 1]")
    if not 0 < q < 1:
        raise ValueError(f"benjamini_hochberg: q must be in (0, 1), got {q}")
    m = p.size
    if m == 0:
        return np.zeros(0, dtype=bool), np.zeros(0)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted <= q, adjusted


def bootstrap_ratio_ci(
    baseline: Samples,
    current: Samples,
    *,
    baseline_ref: Samples | None = None,
    current_ref: Samples | None = None,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    rng: np.random.Generator | None = None,
) -> tuple[float, float, float]:
    """Percentile bootstrap of median(current) / median(baseline): (low, high, sd of log ratio).

    With `*_ref` samples the ratio is of normalised medians, (med(cur) / med(cur_ref)) /
    (med(base) / med(base_ref)), and the references are resampled too, so their noise counts.
    """
    if rng is None:
        rng = np.random.default_rng(BOOTSTRAP_SEED)
    log_ratio = _boot_log_median(current, resamples, rng) - _boot_log_median(
        baseline, resamples, rng
    )
    if baseline_ref is not None and current_ref is not None:
        log_ratio -= _boot_log_median(current_ref, resamples, rng)
        log_ratio += _boot_log_median(baseline_ref, resamples, rng)
    tail = (1.0 - confidence) / 2
    lo, hi = np.quantile(log_ratio, [tail, 1.0 - tail])
    return float(math.exp(lo)), float(math.exp(hi)), float(np.std(log_ratio))


def _boot_log_median(samples: Samples, resamples: int, rng: np.random.Generator) -> Any:
    """Log medians of `resamples` bootstrap resamples.

    The samples are sorted once; the median of a resample is then read off the middle order
    statistics of the resampled *indices*, which partition faster than floats.
    """
    x = np.sort(np.asarray(samples, dtype=np.float64))
    if x.size == 0 or x[0] <= 0 or not np.all(np.isfinite(x)):
        raise ValueError("bootstrap_ratio_ci needs non-empty, positive, finite samples")
    n = x.size
    if n == 1:
        return np.full(resamples, math.log(x[0]))
    idx = rng.integers(0, n, size=(resamples, n), dtype=np.int32)
    lo, hi = (n - 1) // 2, n // 2
    part = np.partition(idx, (lo, hi), axis=1)
    return np.log(0.5 * (x[part[:, lo]] + x[part[:, hi]]))


def min_detectable_slowdown(log_sd: float, threshold: float, confidence: float = 0.95) -> float:
    """Approximate relative slowdown flagged with 80 % power, from the sd of the log ratio.

    A case is flagged when the lower end of its interval, about ratio * exp(-z * sd), clears
    1 + threshold; that happens 80 % of the time at ratio (1 + threshold) * exp((z + 0.84) sd).
    BH across many cases makes the real MDE slightly larger.
    """
    z = _normal_quantile(0.5 + confidence / 2)
    return (1 + threshold) * math.exp((z + _Z_POWER) * log_sd) - 1.0


def median_log_se(samples: Samples) -> float:
    """Standard error of log(median), from a robust spread: 1.2533 * (IQR of log x / 1.349) / √n.

    Smoother than the bootstrap's estimate (which hinges on the few values near the median),
    so the per-case MDE does not jump between runs of the same noise.
    """
    x = np.log(np.asarray(samples, dtype=np.float64))
    if x.size < 2:
        return 0.0
    q1, q3 = np.quantile(x, [0.25, 0.75])
    return float(1.2533 * (q3 - q1) / 1.349 / math.sqrt(x.size))


def _normal_quantile(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


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
    seed: int = BOOTSTRAP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> CompareResult:
    """Match the two runs' cases by id and give each a Verdict (see the module docstring)."""
    _check_settings(threshold, alpha, resamples)
    base = _index(baseline, "baseline")
    cur = _index(current, "current")
    _check_versions(base, cur)
    refs = None
    if relative_to is not None:
        refs = (
            _reference_samples(base, relative_to, "baseline"),
            _reference_samples(cur, relative_to, "current"),
        )

    ids = list(base) + [i for i in cur if i not in base]
    verdicts: dict[str, Verdict] = {}
    tested: dict[str, _Tested] = {}
    for case_id in ids:
        b, c = base.get(case_id), cur.get(case_id)
        early = _label_without_test(case_id, b, c, relative_to)
        if early is not None:
            verdicts[case_id] = early
            continue
        if b is None or c is None:  # pragma: no cover - _label_without_test handles these
            continue
        verdicts[case_id], t = _test_case(case_id, b, c, refs, threshold, alpha, seed, resamples)
        if t is not None:
            tested[case_id] = t

    _apply_bh(verdicts, tested, threshold, alpha)
    return CompareResult(
        verdicts=tuple(verdicts[i] for i in ids),
        warnings=tuple(_warnings(baseline, current, base, cur)),
        threshold=threshold,
        alpha=alpha,
        relative_to=relative_to,
        seed=seed,
        baseline_run_id=baseline.get("run_id"),
        current_run_id=current.get("run_id"),
        baseline_machine=_machine(baseline),
        current_machine=_machine(current),
    )


@dataclass
class _Tested:
    """A timed case waiting for the across-cases BH step."""

    verdict: Verdict
    p_value: float
    low: float
    high: float
    ratio: float
    extra: list[str] = field(default_factory=list)


def _check_settings(threshold: float, alpha: float, resamples: int) -> None:
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"compare: threshold must be a finite fraction >= 0, got {threshold!r}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"compare: alpha must be in (0, 1), got {alpha!r}")
    if not (isinstance(resamples, int) and resamples >= 100):
        raise ValueError(f"compare: resamples must be an int >= 100, got {resamples!r}")


def _index(run: Mapping[str, Any], side: str) -> dict[str, Mapping[str, Any]]:
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


def _check_versions(base: Mapping[str, Mapping[str, Any]], cur: Mapping[str, Any]) -> None:
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


def _label_without_test(
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
    threshold: float,
    alpha: float,
    seed: int,
    resamples: int,
) -> tuple[Verdict, _Tested | None]:
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
    low, high, _ = bootstrap_ratio_ci(
        a,
        x,
        baseline_ref=a_ref,
        current_ref=x_ref,
        confidence=1 - alpha,
        resamples=resamples,
        rng=rng,
    )
    p = rank_sum_pvalue(a_n, x_n)
    parts: list[Samples] = [a, x]
    if a_ref is not None and x_ref is not None:
        parts += [a_ref, x_ref]
    smooth_sd = math.sqrt(sum(median_log_se(s) ** 2 for s in parts))
    mde = min_detectable_slowdown(smooth_sd, threshold, 1 - alpha)
    verdict = Verdict(
        label="inconclusive", ratio=ratio, ci_low=low, ci_high=high, p_value=p, mde=mde, **common
    )
    extra = []
    if b.get("timer") != c.get("timer"):
        extra.append(f"timed by {b.get('timer')} in the baseline, {c.get('timer')} now")
    return verdict, _Tested(verdict, p, low, high, ratio, extra)


def _apply_bh(
    verdicts: dict[str, Verdict], tested: Mapping[str, _Tested], threshold: float, alpha: float
) -> None:
    if not tested:
        return
    ids = list(tested)
    rejected, adjusted = benjamini_hochberg([tested[i].p_value for i in ids], alpha)
    up, down = 1.0 + threshold, 1.0 / (1.0 + threshold)
    for case_id, sig, q in zip(ids, rejected, adjusted, strict=True):
        t = tested[case_id]
        label, reason = _decide(t, bool(sig), float(q), up, down)
        if t.extra:
            reason = "; ".join([reason, *t.extra])
        verdicts[case_id] = replace(t.verdict, label=label, reason=reason, q_value=float(q))


def _decide(t: _Tested, significant: bool, q: float, up: float, down: float) -> tuple[str, str]:
    pct = f"{(up - 1) * 100:.3g} %"
    interval = f"[{t.low:.3g}, {t.high:.3g}]"
    if significant and t.low >= up and t.ratio >= up:
        return "slower", f"interval {interval} at or above +{pct}, BH q = {q:.2g}"
    if significant and t.high <= down and t.ratio <= down:
        return "faster", f"interval {interval} at or below −{pct}, BH q = {q:.2g}"
    if down <= t.low and t.high <= up:
        return "unchanged", f"interval {interval} within ±{pct}"
    if not significant and (t.ratio >= up or t.ratio <= down):
        return "inconclusive", f"ratio beyond ±{pct} but not significant after BH (q = {q:.2g})"
    return "inconclusive", f"interval {interval} straddles ±{pct}: may or may not exceed it"


def _machine(run: Mapping[str, Any]) -> str | None:
    env = run.get("env")
    return env.get("machine_key") if isinstance(env, Mapping) else None


def _warnings(
    baseline: Mapping[str, Any],
    current: Mapping[str, Any],
    base: Mapping[str, Mapping[str, Any]],
    cur: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    out = []
    mb, mc = _machine(baseline), _machine(current)
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


def render_table(result: CompareResult, *, show_unchanged: bool = True) -> Any:
    """A rich Table of the verdicts (regressions first); the CLI prints it."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    rel = f", relative to {result.relative_to}" if result.relative_to else ""
    counts = ", ".join(f"{n} {k}" for k, n in result.counts().items() if n)
    table = Table(
        title=f"compare: threshold {result.threshold * 100:.3g} %, BH q = {result.alpha:g}{rel}",
        caption=counts or "no cases",
    )
    for name, justify in (
        ("case", "left"),
        ("baseline", "right"),
        ("current", "right"),
        ("ratio", "right"),
        ("95 % interval", "right"),
        ("p", "right"),
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
            "—" if v.p_value is None else f"{v.p_value:.2g}",
            Text(v.label, style=_STYLES[v.label]),
            escape(v.reason or ""),
        )
    return table
