"""Pure statistics on timing samples: summaries and intervals of the median.

Everything here takes numbers and returns numbers; no clocks, files or devices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20261122


@dataclass(frozen=True, slots=True)
class Summary:
    """Summary of one case's samples, all in seconds."""

    n: int
    median_s: float
    mean_s: float
    min_s: float
    max_s: float
    iqr_s: float
    ci95_low_s: float
    ci95_high_s: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @property
    def rel_ci_halfwidth(self) -> float:
        """Half the 95 % interval of the median, relative to the median."""
        if self.median_s <= 0:
            return math.inf
        return (self.ci95_high_s - self.ci95_low_s) / (2 * self.median_s)


def _as_array(samples: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError("samples must be a non-empty 1-D sequence of seconds")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples must be finite")
    return x


def bootstrap_median_ci(
    samples: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the median (seeded, so repeatable)."""
    x = _as_array(samples)
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(resamples, x.size))
    medians = np.median(x[idx], axis=1)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(medians, [alpha, 1.0 - alpha])
    return float(low), float(high)


def order_statistic_median_ci(
    samples: Sequence[float], *, confidence: float = 0.95
) -> tuple[float, float]:
    """Distribution-free interval of the median from order statistics (binomial ranks).

    Cheap enough to evaluate after every sample, which is what adaptive stopping needs.
    With fewer than 6 samples no 95 % interval exists and the full range is returned.
    """
    x = np.sort(_as_array(samples))
    n = x.size
    z = _normal_quantile(0.5 + confidence / 2)
    half = z * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half) - 1)
    hi = min(n - 1, math.ceil(n / 2 + half))
    return float(x[lo]), float(x[hi])


def _normal_quantile(p: float) -> float:
    """Quantile of the standard normal (inverse of the CDF), via the error function."""
    # Bisection on erf: exact enough for interval widths, and keeps SciPy out of this module.
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def summarize(samples: Sequence[float]) -> Summary:
    """Median, mean, extremes, IQR and a bootstrap 95 % interval of the median."""
    x = _as_array(samples)
    q1, median, q3 = np.quantile(x, [0.25, 0.5, 0.75])
    low, high = bootstrap_median_ci(x)
    return Summary(
        n=int(x.size),
        median_s=float(median),
        mean_s=float(x.mean()),
        min_s=float(x.min()),
        max_s=float(x.max()),
        iqr_s=float(q3 - q1),
        ci95_low_s=low,
        ci95_high_s=high,
    )
