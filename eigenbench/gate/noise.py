"""Pure statistics for `compare`: tests, intervals and the run-to-run noise model.

Numbers in, numbers out; no run files. The noise model: between a baseline and a current
run, the log ratio of a case's medians is

    d_i = change_i + shift + drift_i + noise_i

where `noise_i` is within-run sampling noise (seen by the samples, sd s_i), `drift_i` the
case's own session-to-session drift (sd `case_drift`, the same for every case, estimated
from the spread of d_i across cases), and `shift` the drift shared by every case (machine
state: clocks, neighbours; sd `run_drift`, which one comparison cannot estimate, so it is a
setting). A case's change is judged against all three, never against its samples alone:
samples taken in one session cannot see the next session's drift.

A baseline that remembers several runs (`run_medians_s`) shows both drifts directly: each
case's level is the median of its run medians, its own drift the spread of those medians
once each run's shared shift is taken out, and `run_drift` the spread of the shifts. With a
few runs those estimates are shrunk toward the cross-case ones (`shrunk_sd`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from eigenbench.measure.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED

Samples = Sequence[float] | np.ndarray

RUN_DRIFT = 0.01
"""Default sd of the log shift shared by all cases between two sessions of one machine.

Measured on the 2-core CI VM: the shared shift of 20 quick runs had sd 0.5 % per run
(0.7 % between two runs); 1 % leaves room for noisier days. See README, "How far to trust
the gate"."""
CASE_DRIFT_FLOOR = 0.005
"""Smallest per-case drift assumed, whatever the spread across cases suggests: a spread
estimated from a dozen cases can come out near zero by chance."""
MIN_CASES_FOR_DRIFT = 8
"""Fewer tested cases than this and `case_drift` is not estimated: the floor is used."""
MIN_HISTORY = 3
"""Fewer baseline runs of a case than this and its history is not used."""
PRIOR_RUNS = 4
"""Weight, in runs, of the cross-case drift when a case's own history is shrunk toward it."""
_MAD_TO_SD = 1.482602218505602  # sd of a normal distribution / its median absolute deviation
_Z_POWER = NormalDist().inv_cdf(0.80)


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


def bootstrap_log_ratios(
    baseline: Samples,
    current: Samples,
    *,
    baseline_ref: Samples | None = None,
    current_ref: Samples | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Bootstrap replicates of log(median(current) / median(baseline)).

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
    return np.asarray(log_ratio)


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

    Within-run noise only; see `bootstrap_log_ratios` for the `*_ref` normalisation.
    """
    log_ratio = bootstrap_log_ratios(
        baseline,
        current,
        baseline_ref=baseline_ref,
        current_ref=current_ref,
        resamples=resamples,
        rng=rng,
    )
    low, high = ratio_interval(log_ratio, confidence)
    return low, high, float(np.std(log_ratio))


def ratio_interval(log_ratios: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the ratio from replicates of its logarithm."""
    tail = (1.0 - confidence) / 2
    lo, hi = _quantiles(np.asarray(log_ratios, dtype=np.float64), (tail, 1.0 - tail))
    return float(math.exp(lo)), float(math.exp(hi))


def _quantiles(x: np.ndarray, qs: Sequence[float]) -> list[float]:
    """`np.quantile(x, qs)` (its default, linear interpolation) by one partition: a third of
    its cost on the small arrays compare calls it with once per case."""
    h = [(x.size - 1) * q for q in qs]
    lows = [math.floor(v) for v in h]
    kth = sorted({k for lo in lows for k in (lo, min(lo + 1, x.size - 1))})
    part = np.partition(x, kth)
    out = []
    for v, lo in zip(h, lows, strict=True):
        a, b = float(part[lo]), float(part[min(lo + 1, x.size - 1)])
        out.append(a + (b - a) * (v - lo))
    return out


def _boot_log_median(samples: Samples, resamples: int, rng: np.random.Generator) -> Any:
    """Log medians of `resamples` bootstrap resamples, in O(n log n + resamples).

    A resample's indices are floor(n U) for uniform U, so its k-th smallest index is
    floor(n U_(k)); and with S_j the sum of j standard exponentials, U_(k) = S_k / S_(n+1).
    So the middle order statistics come from two or three gamma draws per resample, the same
    distribution as resampling all n values without the resamples × n index matrix (16 KB
    per sample at 2000 resamples).
    """
    x = np.sort(np.asarray(samples, dtype=np.float64))
    if x.size == 0 or x[0] <= 0 or not np.all(np.isfinite(x)):
        raise ValueError("bootstrap_ratio_ci needs non-empty, positive, finite samples")
    n = x.size
    if n == 1:
        return np.full(resamples, math.log(x[0]))
    k = (n - 1) // 2 + 1  # 1-based rank of the lower middle value
    below = rng.standard_gamma(k, resamples)  # S_k
    if n % 2:
        total = below + rng.standard_gamma(n + 1 - k, resamples)
        return np.log(x[_index(below / total, n)])
    step = rng.standard_exponential(resamples)  # S_(k+1) - S_k
    total = below + step + rng.standard_gamma(n - k, resamples)
    lo, hi = _index(below / total, n), _index((below + step) / total, n)
    return np.log(0.5 * (x[lo] + x[hi]))


def _index(u: np.ndarray, n: int) -> np.ndarray:
    return np.minimum((u * n).astype(np.int64), n - 1)


def median_log_se(samples: Samples) -> float:
    """Standard error of log(median), from a robust spread: 1.2533 * (IQR of log x / 1.349) / √n.

    Smoother than the bootstrap's estimate (which hinges on the few values near the median),
    so tests and MDEs do not jump between runs of the same noise.
    """
    x = np.log(np.asarray(samples, dtype=np.float64))
    if x.size < 2:
        return 0.0
    q1, q3 = _quantiles(x, (0.25, 0.75))
    return float(1.2533 * (q3 - q1) / 1.349 / math.sqrt(x.size))


def estimate_case_drift(
    log_ratios: Samples,
    within_sd: Samples,
    *,
    floor: float = CASE_DRIFT_FLOOR,
    min_cases: int = MIN_CASES_FOR_DRIFT,
) -> float:
    """Per-case session drift (sd of log ratio) from the spread of log ratios across cases.

    The spread around the shared shift is measured robustly (the sd of the cases within
    3.5 scaled MADs of the median, so a minority of real changes barely moves it), the
    within-run part is taken out, and the result is never below `floor`. With fewer than
    `min_cases` cases: `floor`.
    """
    d = np.asarray(log_ratios, dtype=np.float64)
    s = np.asarray(within_sd, dtype=np.float64)
    if d.shape != s.shape or d.ndim != 1:
        raise ValueError("estimate_case_drift: log_ratios and within_sd must be equal 1-D")
    if d.size < min_cases:
        return floor
    spread = _robust_spread(d)
    excess = spread**2 - float(np.median(s**2))
    return max(floor, math.sqrt(excess) if excess > 0 else 0.0)


def _robust_spread(d: np.ndarray, reject: float = 3.5, rounds: int = 2) -> float:
    """sd of the bulk of `d`: points beyond `reject` scaled MADs from the median (real
    changes) are dropped, repeatedly, and the sd of what is left is returned — nearly as
    efficient as a plain sd (so a drift from n cases is worth about n - 1 degrees of
    freedom), yet a minority of real changes barely moves it."""
    kept = d
    for _ in range(rounds + 1):
        centre = np.median(kept)
        spread = _MAD_TO_SD * float(np.median(np.abs(kept - centre)))
        if spread == 0:
            return 0.0
        inside = d[np.abs(d - centre) <= reject * spread]
        if inside.size == kept.size or inside.size < 3:
            break
        kept = inside
    return float(np.std(kept, ddof=1)) if kept.size > 1 else 0.0


def normal_two_sided_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    return min(1.0, math.erfc(abs(z) / math.sqrt(2.0)))


def min_detectable_slowdown(log_sd: float, threshold: float, confidence: float = 0.95) -> float:
    """Approximate relative slowdown flagged with 80 % power, from the sd of the log ratio.

    A case is flagged when its ratio reaches 1 + threshold and differs from 1 at the
    `confidence` level; each holds 80 % of the time at (1 + threshold) exp(0.84 sd) and
    exp((z + 0.84) sd) respectively. BH across many cases makes the real MDE slightly larger.
    """
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    effect = (1 + threshold) * math.exp(_Z_POWER * log_sd)
    significance = math.exp((z + _Z_POWER) * log_sd)
    return max(effect, significance) - 1.0


@dataclass(frozen=True)
class History:
    """One case's medians over the baseline's runs, summarised (logs of seconds)."""

    level: float
    """log of the median of the case's run medians: the baseline level."""
    runs: int
    """Runs that timed the case."""
    spread: float
    """sd of the log run medians once each run's shared shift is removed (runs - 1 df)."""


def history_spreads(
    medians: Sequence[Sequence[float | None]],
) -> tuple[list[History | None], float | None]:
    """Per case History and the sd of the runs' shared shifts, from one suite's run medians.

    `medians[i][j]` is case i's median (seconds) in run j, None where not timed; the runs
    are aligned across cases. A case timed in fewer than `MIN_HISTORY` runs gets None; the
    shift sd is None with fewer than `MIN_HISTORY` runs or cases. A run's shift is the median
    over cases of its log median minus the case's level.
    """
    m = np.array(
        [[np.nan if v is None else float(v) for v in row] for row in medians], dtype=np.float64
    )
    if m.size == 0 or m.ndim != 2:
        return [None] * len(medians), None
    if np.any(m[np.isfinite(m)] <= 0):
        raise ValueError("history_spreads: run medians must be positive")
    logs = np.log(m)
    counts = np.sum(np.isfinite(logs), axis=1)
    usable = counts >= MIN_HISTORY
    levels = np.array(
        [np.nanmedian(row) if c else np.nan for row, c in zip(logs, counts, strict=True)]
    )
    dev = logs - levels[:, None]
    shifts = np.zeros(logs.shape[1])
    shift_sd = None
    if usable.sum() >= MIN_HISTORY and logs.shape[1] >= MIN_HISTORY:
        cols = dev[usable]
        seen = np.sum(np.isfinite(cols), axis=0) > 0
        shifts[seen] = np.nanmedian(cols[:, seen], axis=0)
        if seen.sum() >= MIN_HISTORY:
            shift_sd = float(np.std(shifts[seen], ddof=1))
    out: list[History | None] = []
    for i in range(len(m)):
        if not usable[i]:
            out.append(None)
            continue
        res = dev[i] - shifts
        res = res[np.isfinite(res)]
        spread = math.sqrt(float(np.sum((res - res.mean()) ** 2)) / (res.size - 1))
        out.append(History(float(levels[i]), int(counts[i]), spread))
    return out, shift_sd


def shrunk_sd(sd: float, df: int, prior_sd: float, prior_df: int = PRIOR_RUNS) -> float:
    """A few runs' sd pulled toward a prior: variances weighted by their degrees of freedom."""
    if df < 1:
        return prior_sd
    return math.sqrt((prior_df * prior_sd**2 + df * sd**2) / (prior_df + df))


def satterthwaite_df(parts: Sequence[tuple[float, float]]) -> float:
    """Degrees of freedom of a sum of independent variance terms, each (term, its df):
    (sum of terms)^2 / sum(term^2 / df) (Welch-Satterthwaite). Terms with infinite df add
    nothing to the denominator; all-zero terms give infinity."""
    total = sum(term for term, _ in parts)
    denominator = sum(term**2 / df for term, df in parts if math.isfinite(df) and df > 0)
    if total <= 0 or denominator <= 0:
        return math.inf
    return total**2 / denominator


def level_variance_factor(runs: int) -> float:
    """Variance of the median of `runs` run medians, as a multiple of one run's variance
    (normal approximation: 1/k for one or two runs, pi/(2k) beyond)."""
    if runs < 1:
        raise ValueError("level_variance_factor: runs must be >= 1")
    return 1.0 / runs if runs <= 2 else math.pi / (2 * runs)


MIN_CASES_FOR_SHIFT = 5
"""Fewer tested cases than this in a group and its shift is not estimated."""


def group_shifts(
    log_ratios: Sequence[float], groups: Sequence[str], min_cases: int = MIN_CASES_FOR_SHIFT
) -> dict[str, tuple[float, int]]:
    """Each group's shared shift (median log ratio) and the number of cases it rests on.

    Groups with fewer than `min_cases` cases share the shift of all such groups pooled; if
    those are still too few, they get no entry.
    """
    d = np.asarray(log_ratios, dtype=np.float64)
    names = np.asarray(groups, dtype=object)
    if d.shape != names.shape or d.ndim != 1:
        raise ValueError("group_shifts: log_ratios and groups must be equal 1-D")
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):  # one pass: linear in cases, whatever the number of groups
        members.setdefault(g, []).append(i)
    small = {g for g, idx in members.items() if len(idx) < min_cases}
    pooled = [i for g in small for i in members[g]]
    pooled_shift = (float(np.median(d[pooled])), len(pooled)) if len(pooled) >= min_cases else None
    out: dict[str, tuple[float, int]] = {}
    for g, idx in members.items():
        if g not in small:
            out[g] = (float(np.median(d[idx])), len(idx))
        elif pooled_shift is not None:
            out[g] = pooled_shift
    return out


def median_se(sd: float, n: int) -> float:
    """Standard error of the median of `n` normal values with standard deviation `sd`."""
    return math.sqrt(math.pi / 2) * sd / math.sqrt(n)


def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value of Student's t with `df` degrees of freedom (normal when infinite).

    A noise sd estimated from few values makes a normal test too eager: the t tail is the
    honest one.
    """
    if not math.isfinite(df):
        return normal_two_sided_p(t)
    if df <= 0:
        raise ValueError(f"t_two_sided_p: df must be > 0, got {df}")
    from scipy.special import stdtr  # lazy: keeps SciPy out of `import eigenbench`

    return min(1.0, float(2.0 * stdtr(df, -abs(t))))
