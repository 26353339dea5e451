"""The report model: groups, series, scaling fits and crossovers, built from a run dict (pure).

Everything here takes the loaded run (the JSON contract of `eigenbench.results`) and returns
frozen data; no matplotlib, no files. Which chart a group gets is decided here from the data:
the x axis of a sweep is the numeric parameter that varies most within a workload.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

TIMED_STATUSES = ("ok", "invalid")
PROBLEM_STATUSES = ("invalid", "failed", "timeout", "interrupted")
REGRESSION_LABELS = ("slower", "failed")
VERDICT_ORDER = ("slower", "failed", "invalid", "missing", "new", "faster", "unchanged")
FORWARD_PHASES = ("fwd", "forward")
REFERENCE_IMPL = "final"
CROSSOVER_MIN_GAP = 0.05
"""Relative gap below which two impls count as tied when looking for crossovers."""

DEFAULT_LIMITS: Mapping[str, int] = {
    "sweep": 6,
    "speedup": 3,
    "phases": 2,
    "memory": 2,
    "convergence": 4,
}
"""Most charts drawn per kind (the table always lists every record); keeps big runs fast."""

Params = tuple[tuple[str, Any], ...]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Point:
    """One timed size of a series, in seconds."""

    x: float
    median_s: float
    low_s: float
    high_s: float
    valid: bool


@dataclass(frozen=True, slots=True)
class Series:
    """Time against size for one impl on one device; `exponent` fits time ∝ x^exponent."""

    label: str
    impl: str
    device: str
    points: tuple[Point, ...]
    exponent: float | None


@dataclass(frozen=True, slots=True)
class Crossover:
    """Where two series swap order: `faster_above` wins at sizes above `x`."""

    x: float
    faster_below: str
    faster_above: str


@dataclass(frozen=True, slots=True)
class SweepGroup:
    """One workload × dtype × phase with the other parameters fixed; x is `x_param`."""

    title: str
    workload: str
    dtype: str
    phase: str
    x_param: str | None
    fixed: Params
    series: tuple[Series, ...]
    crossovers: tuple[Crossover, ...]

    @property
    def n_points(self) -> int:
        return sum(len(s.points) for s in self.series)

    @property
    def is_sweep(self) -> bool:
        return self.x_param is not None and any(len(s.points) >= 2 for s in self.series)


@dataclass(frozen=True, slots=True)
class SpeedupLine:
    """Speedup t_reference / t_impl at the sizes both were timed (interval is conservative)."""

    label: str
    xs: tuple[float, ...]
    speedups: tuple[float, ...]
    lows: tuple[float, ...]
    highs: tuple[float, ...]
    valid: tuple[bool, ...]


@dataclass(frozen=True, slots=True)
class SpeedupGroup:
    """Speedups of every impl in a group against one reference impl (above 1 = faster)."""

    title: str
    reference: str
    x_param: str | None
    lines: tuple[SpeedupLine, ...]


@dataclass(frozen=True, slots=True)
class PhaseBar:
    """One impl × phase at the group's size, with its multiplier over the reference bar."""

    impl: str
    phase: str
    median_s: float
    low_s: float
    high_s: float
    multiplier: float
    valid: bool
    is_reference: bool


@dataclass(frozen=True, slots=True)
class PhaseGroup:
    """Phase bars (fwd / bwd / …) of one workload on one device and dtype at one size."""

    title: str
    reference: str
    bars: tuple[PhaseBar, ...]


@dataclass(frozen=True, slots=True)
class MemoryBar:
    """Peak memory of one impl (and phase) at the group's size."""

    label: str
    impl: str
    device: str
    peak_bytes: int
    kind: str


@dataclass(frozen=True, slots=True)
class MemoryGroup:
    """Peak memory per impl of one workload and dtype at one size."""

    title: str
    bars: tuple[MemoryBar, ...]


@dataclass(frozen=True, slots=True)
class Curve:
    """A loss trajectory against elapsed seconds; only positive losses (log axis) are kept."""

    label: str
    times_s: tuple[float, ...]
    losses: tuple[float, ...]
    target: float
    reached: bool
    seconds_to_target: float | None
    steps_to_target: int | None


@dataclass(frozen=True, slots=True)
class ConvergenceGroup:
    """Loss curves of the impls of one convergence case."""

    title: str
    curves: tuple[Curve, ...]


@dataclass(frozen=True, slots=True)
class Row:
    """One record as the table shows it (seconds and bytes; formatting is the renderer's)."""

    id: str
    suite: str
    workload: str
    impl: str
    device: str
    dtype: str
    phase: str
    status: str
    reason: str | None
    median_s: float | None
    low_s: float | None
    high_s: float | None
    peak_bytes: int | None
    memory_kind: str | None
    host_blocking: bool | None
    validation_ok: bool | None
    max_abs_err: float | None
    max_rel_err: float | None
    reference: str | None
    noisy: bool
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VerdictRow:
    """One verdict from `compare`; ratio is current / baseline (above 1 = slower)."""

    id: str
    label: str
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    baseline_median_s: float | None
    current_median_s: float | None
    reason: str | None
    regression: bool

    @property
    def speedup(self) -> float | None:
        """baseline / current: above 1 means the current run is faster."""
        if self.ratio is not None and self.ratio > 0:
            return 1.0 / self.ratio
        b, c = self.baseline_median_s, self.current_median_s
        return b / c if b is not None and c is not None and b > 0 and c > 0 else None


@dataclass(frozen=True, slots=True)
class ReportModel:
    """Everything the HTML page and the charts show, in seconds and bytes."""

    run_id: str
    run_status: str
    meta: tuple[tuple[str, str], ...]
    env: tuple[tuple[str, str], ...]
    status_counts: tuple[tuple[str, int], ...]
    rows: tuple[Row, ...]
    problems: tuple[Row, ...]
    skipped: tuple[Row, ...]
    sweeps: tuple[SweepGroup, ...]
    speedups: tuple[SpeedupGroup, ...]
    phases: tuple[PhaseGroup, ...]
    memory: tuple[MemoryGroup, ...]
    convergence: tuple[ConvergenceGroup, ...]
    verdicts: tuple[VerdictRow, ...] | None
    baseline_source: str | None
    omitted: Mapping[str, int] = field(default_factory=dict)
    """Groups not charted because of the per-kind limits, by kind."""

    @property
    def verdict_counts(self) -> tuple[tuple[str, int], ...]:
        if not self.verdicts:
            return ()
        counts = {label: 0 for label in VERDICT_ORDER}
        for v in self.verdicts:
            counts[v.label] = counts.get(v.label, 0) + 1
        return tuple((k, n) for k, n in counts.items() if n)


# --------------------------------------------------------------------------- pure maths


def fit_scaling_exponent(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log(y) against log(x): k in y ∝ x^k."""
    if len(xs) != len(ys):
        raise ValueError(f"fit_scaling_exponent: {len(xs)} sizes but {len(ys)} times")
    pts = [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
    if any(not (math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0) for x, y in pts):
        raise ValueError("fit_scaling_exponent: sizes and times must be finite and positive")
    lx = [math.log(x) for x, _ in pts]
    ly = [math.log(y) for _, y in pts]
    if len(set(lx)) < 2:
        raise ValueError("fit_scaling_exponent: needs at least two distinct sizes")
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    sxy = sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True))
    return sxy / sxx


def find_crossovers(
    xs: Sequence[float], ya: Sequence[float], yb: Sequence[float], *, min_gap: float = 0.0
) -> list[float]:
    """Sizes where curves a and b swap order, interpolated linearly in log-log space.

    Points where the two differ by no more than `min_gap` (relative) count as ties; a swap
    across a run of ties is placed at the geometric middle of that run.
    """
    return [x for x, _ in _crossings(xs, ya, yb, min_gap)]


def _crossings(
    xs: Sequence[float], ya: Sequence[float], yb: Sequence[float], min_gap: float
) -> list[tuple[float, bool]]:
    """(size, a_faster_above) for each swap of order between a and b."""
    if not (len(xs) == len(ya) == len(yb)):
        raise ValueError("find_crossovers: xs, ya and yb must have the same length")
    if min_gap < 0:
        raise ValueError(f"find_crossovers: min_gap must be >= 0, got {min_gap}")
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    lx, d = [], []
    for i in order:
        x, a, b = float(xs[i]), float(ya[i]), float(yb[i])
        if not (x > 0 and a > 0 and b > 0 and math.isfinite(x * a * b)):
            raise ValueError("find_crossovers: sizes and times must be finite and positive")
        lx.append(math.log(x))
        d.append(math.log(a / b))
    tie = math.log1p(min_gap)
    signs = [0 if abs(v) <= tie else (1 if v > 0 else -1) for v in d]
    out: list[tuple[float, bool]] = []
    last = None  # index of the last point with a clear order
    for j, s in enumerate(signs):
        if s == 0:
            continue
        if last is not None and signs[last] != s:
            if j == last + 1:
                t = d[last] / (d[last] - d[j])
                x_c = math.exp(lx[last] + t * (lx[j] - lx[last]))
            else:
                x_c = math.exp((lx[last + 1] + lx[j - 1]) / 2)
            out.append((x_c, s < 0))
        last = j
    return out


# --------------------------------------------------------------------------- helpers


def _is_num(v: Any) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _median(rec: Mapping[str, Any]) -> float | None:
    summary = rec.get("summary")
    if not isinstance(summary, Mapping):
        return None
    m = summary.get("median_s")
    return float(m) if _is_num(m) and m > 0 else None


def _is_timed(rec: Mapping[str, Any]) -> bool:
    return rec.get("status") in TIMED_STATUSES and _median(rec) is not None


def _interval(rec: Mapping[str, Any]) -> tuple[float, float]:
    summary = rec["summary"]
    med = float(summary["median_s"])
    lo, hi = summary.get("ci95_low_s"), summary.get("ci95_high_s")
    lo = float(lo) if _is_num(lo) and 0 < lo <= med else med
    hi = float(hi) if _is_num(hi) and hi >= med else med
    return lo, hi


def _params(rec: Mapping[str, Any]) -> Params:
    p = rec.get("params") or {}
    return tuple((str(k), v) for k, v in p.items())


def _fmt_value(v: Any) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v)


def fmt_params(params: Iterable[tuple[str, Any]]) -> str:
    """`batch=500, n=100`, or an empty string."""
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in params)


def _title(*parts: str) -> str:
    return " · ".join(p for p in parts if p)


def _phase_part(phase: str) -> str:
    return "" if phase == "call" else phase


def _size(params: Params) -> float:
    """A proxy of problem size: the product of the positive numeric parameters."""
    out = 1.0
    for _, v in params:
        if _is_num(v) and v > 0:
            out *= float(v)
    return out


def _valid(rec: Mapping[str, Any]) -> bool:
    val = rec.get("validation")
    return rec.get("status") == "ok" and not (isinstance(val, Mapping) and val.get("ok") is False)


def _limit(items: list[Any], n: int, weight: Any) -> tuple[list[Any], int]:
    """`n` items, taking the heaviest of each workload in turn so every workload gets charts;
    kept in their original order, with how many were cut."""
    if len(items) <= n:
        return items, 0
    by_weight = sorted(range(len(items)), key=lambda i: -weight(items[i]))
    seen: dict[Any, int] = {}
    turn = {}
    for i in by_weight:
        w = getattr(items[i], "workload", None) or str(getattr(items[i], "title", "")).split()[0]
        turn[i] = seen.get(w, 0)
        seen[w] = turn[i] + 1
    keep = sorted(by_weight, key=lambda i: turn[i])[:n]
    return [items[i] for i in sorted(keep)], len(items) - n


def choose_x_param(records: Iterable[Mapping[str, Any]]) -> str | None:
    """The numeric parameter with the most distinct values (at least two); first wins ties.

    Only parameters whose values are all positive numbers qualify: the axis is logarithmic.
    """
    values: dict[str, set[float] | None] = {}
    for rec in records:
        for k, v in _params(rec):
            bucket = values.setdefault(k, set())
            if bucket is None:
                continue
            if _is_num(v) and v > 0:
                bucket.add(float(v))
            else:
                values[k] = None
    best, best_n = None, 1
    for k, vals in values.items():
        if vals is not None and len(vals) > best_n:
            best, best_n = k, len(vals)
    return best


# --------------------------------------------------------------------------- groups


def build_sweeps(records: Sequence[Mapping[str, Any]]) -> list[SweepGroup]:
    """Time-vs-size groups: per workload × dtype × phase × the other params; series per impl."""
    timed = [r for r in records if _is_timed(r)]
    x_of: dict[str, str | None] = {}
    for wl in dict.fromkeys(r["workload"] for r in timed):
        x_of[wl] = choose_x_param(r for r in timed if r["workload"] == wl)

    groups: dict[tuple[Any, ...], dict[tuple[str, str], dict[float, Mapping[str, Any]]]] = {}
    for rec in timed:
        x_param = x_of[rec["workload"]]
        params = _params(rec)
        x_val = dict(params).get(x_param) if x_param else None
        if x_param is not None and not (_is_num(x_val) and x_val > 0):
            x_val = None
        fixed = tuple((k, v) for k, v in params if k != x_param or x_val is None)
        key = (
            rec["workload"],
            rec["dtype"],
            rec["phase"],
            x_param if x_val is not None else None,
            fixed,
        )
        by_x = groups.setdefault(key, {}).setdefault((rec["impl"], rec["device"]), {})
        by_x.setdefault(float(x_val) if x_val is not None else 1.0, rec)

    out = []
    for (workload, dtype, phase, x_param, fixed), by_series in groups.items():
        devices = {dev for _, dev in by_series}
        series = []
        for (impl, device), pts in by_series.items():
            points = []
            for x in sorted(pts):
                rec = pts[x]
                lo, hi = _interval(rec)
                points.append(Point(x, _median(rec) or 0.0, lo, hi, _valid(rec)))
            exponent = None
            if x_param is not None and len(points) >= 2:
                exponent = fit_scaling_exponent([p.x for p in points], [p.median_s for p in points])
            label = impl if len(devices) == 1 else f"{impl} · {device}"
            series.append(Series(label, impl, device, tuple(points), exponent))
        dev_part = next(iter(devices)) if len(devices) == 1 else ""
        title = _title(workload, _phase_part(phase), dev_part, dtype, fmt_params(fixed))
        crossovers = _crossovers(series) if x_param is not None else ()
        out.append(
            SweepGroup(
                title, workload, dtype, phase, x_param, fixed, tuple(series), tuple(crossovers)
            )
        )
    return out


def _crossovers(series: Sequence[Series]) -> list[Crossover]:
    out = []
    for i, a in enumerate(series):
        for b in series[i + 1 :]:
            pa = {p.x: p.median_s for p in a.points}
            pb = {p.x: p.median_s for p in b.points}
            xs = sorted(set(pa) & set(pb))
            if len(xs) < 2:
                continue
            ya, yb = [pa[x] for x in xs], [pb[x] for x in xs]
            for xc, a_wins in _crossings(xs, ya, yb, CROSSOVER_MIN_GAP):
                above, below = (a, b) if a_wins else (b, a)
                out.append(Crossover(xc, below.label, above.label))
    return sorted(out, key=lambda c: c.x)


def _reference_series(series: Sequence[Series], reference_impl: str | None) -> Series:
    for s in series:
        if reference_impl is not None and reference_impl in (s.impl, s.label):
            return s
    # default: the slowest at the largest size timed by the most series
    counts: dict[float, int] = {}
    for s in series:
        for p in s.points:
            counts[p.x] = counts.get(p.x, 0) + 1
    x_best = max(counts, key=lambda x: (counts[x], x))

    def time_at(s: Series) -> float:
        return next((p.median_s for p in s.points if p.x == x_best), -1.0)

    return max(series, key=time_at)


def build_speedups(
    sweeps: Sequence[SweepGroup], reference_impl: str | None = None
) -> list[SpeedupGroup]:
    """Speedup of each impl over a reference impl (given, else the slowest) per group."""
    out = []
    for g in sweeps:
        if len(g.series) < 2:
            continue
        ref = _reference_series(g.series, reference_impl)
        ref_pts = {p.x: p for p in ref.points}
        lines = []
        for s in g.series:
            if s is ref:
                continue
            pts = [(p, ref_pts[p.x]) for p in s.points if p.x in ref_pts]
            if not pts:
                continue
            lines.append(
                SpeedupLine(
                    s.label,
                    tuple(p.x for p, _ in pts),
                    tuple(r.median_s / p.median_s for p, r in pts),
                    tuple(r.low_s / p.high_s for p, r in pts),
                    tuple(r.high_s / p.low_s for p, r in pts),
                    tuple(p.valid for p, _ in pts),
                )
            )
        if lines:
            x_param = g.x_param if g.is_sweep else None
            out.append(SpeedupGroup(g.title, ref.label, x_param, tuple(lines)))
    return out


def _pick_params(recs: Sequence[Mapping[str, Any]]) -> Params:
    """The parameter combination with the most records; ties go to the largest size."""
    counts: dict[Params, int] = {}
    for r in recs:
        p = _params(r)
        counts[p] = counts.get(p, 0) + 1
    order = {p: i for i, p in enumerate(counts)}
    return max(counts, key=lambda p: (counts[p], _size(p), order[p]))


def _by_key(
    records: Iterable[Mapping[str, Any]], *fields: str
) -> dict[tuple[Any, ...], list[Mapping[str, Any]]]:
    out: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in records:
        out.setdefault(tuple(r[f] for f in fields), []).append(r)
    return out


def build_phases(
    records: Sequence[Mapping[str, Any]], reference_impl: str | None = None
) -> list[PhaseGroup]:
    """Phase bars for workloads with several phases, at one size per workload × device × dtype."""
    timed = [r for r in records if _is_timed(r)]
    multi = {
        key[0]
        for key, recs in _by_key(timed, "workload").items()
        if len({r["phase"] for r in recs}) > 1
    }
    out = []
    for (wl, device, dtype), recs in _by_key(timed, "workload", "device", "dtype").items():
        if wl not in multi:
            continue
        params = _pick_params(recs)
        chosen: dict[tuple[str, str], Mapping[str, Any]] = {}
        for r in recs:
            if _params(r) == params:
                chosen.setdefault((r["phase"], r["impl"]), r)
        if len({ph for ph, _ in chosen}) < 2:
            continue
        phases = list(dict.fromkeys(ph for ph, _ in chosen))
        impls = list(dict.fromkeys(im for _, im in chosen))
        keys = [(ph, im) for ph in phases for im in impls if (ph, im) in chosen]
        ref_key = _phase_reference(keys, impls, reference_impl)
        ref_median = _median(chosen[ref_key]) or 1.0
        bars = []
        for ph, im in keys:
            rec = chosen[(ph, im)]
            med = _median(rec) or 0.0
            lo, hi = _interval(rec)
            bars.append(
                PhaseBar(im, ph, med, lo, hi, med / ref_median, _valid(rec), (ph, im) == ref_key)
            )
        title = _title(wl, device, dtype, fmt_params(params))
        out.append(PhaseGroup(title, f"{ref_key[0]} of {ref_key[1]}", tuple(bars)))
    return out


def _phase_reference(
    keys: Sequence[tuple[str, str]], impls: Sequence[str], reference_impl: str | None
) -> tuple[str, str]:
    fwd = [k for k in keys if k[0] in FORWARD_PHASES]
    for name in (reference_impl, REFERENCE_IMPL):
        for k in fwd:
            if name is not None and k[1] == name:
                return k
    for im in impls:
        for k in fwd:
            if k[1] == im:
                return k
    return keys[0]


def build_memory(records: Sequence[Mapping[str, Any]]) -> list[MemoryGroup]:
    """Peak memory per impl (and phase), at one size per workload × dtype."""
    with_mem = [
        r
        for r in records
        if isinstance(r.get("memory"), Mapping) and _is_num(r["memory"].get("peak_bytes"))
    ]
    out = []
    for (wl, dtype), recs in _by_key(with_mem, "workload", "dtype").items():
        params = _pick_params(recs)
        chosen = [r for r in recs if _params(r) == params]
        devices = {r["device"] for r in chosen}
        phases = {r["phase"] for r in chosen}
        kinds_by_device: dict[str, set[str]] = {}
        for r in chosen:
            kinds_by_device.setdefault(r["device"], set()).add(str(r["memory"].get("kind")))
        mixed_kinds = any(len(k) > 1 for k in kinds_by_device.values())
        bars = []
        seen = set()
        for r in chosen:
            kind = str(r["memory"].get("kind"))
            parts = [r["impl"]]
            if len(devices) > 1:
                parts.append(r["device"])
            if len(phases) > 1:
                parts.append(r["phase"])
            if mixed_kinds:
                parts.append(kind)
            label = " · ".join(parts)
            if label in seen:
                continue
            seen.add(label)
            bars.append(
                MemoryBar(label, r["impl"], r["device"], int(r["memory"]["peak_bytes"]), kind)
            )
        dev_part = next(iter(devices)) if len(devices) == 1 else ""
        title = _title(wl, dev_part, dtype, fmt_params(params))
        out.append(MemoryGroup(title, tuple(bars)))
    return out


def build_convergence(records: Sequence[Mapping[str, Any]]) -> list[ConvergenceGroup]:
    """Loss-vs-time curves for records with a `convergence` block, one group per case."""
    conv = [r for r in records if isinstance(r.get("convergence"), Mapping)]
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in conv:
        key = (r["workload"], r["device"], r["dtype"], r["phase"], _params(r))
        groups.setdefault(key, []).append(r)
    out = []
    for (wl, device, dtype, phase, params), recs in groups.items():
        curves = []
        for r in recs:
            c = r["convergence"]
            pts = [
                (float(t), float(loss))
                for row in c.get("trajectory") or []
                if len(row) >= 3
                for t, loss in [(row[1], row[2])]
                if _is_num(t) and _is_num(loss) and loss > 0 and t >= 0
            ]
            if not pts:
                continue
            label = r["impl"] if r["status"] == "ok" else f"{r['impl']} ({r['status']})"
            sec = c.get("seconds_to_target")
            steps = c.get("steps_to_target")
            curves.append(
                Curve(
                    label,
                    tuple(t for t, _ in pts),
                    tuple(v for _, v in pts),
                    float(c["target"]),
                    bool(c.get("reached")),
                    float(sec) if _is_num(sec) else None,
                    int(steps) if _is_num(steps) else None,
                )
            )
        if curves:
            title = _title(wl, _phase_part(phase), device, dtype, fmt_params(params))
            out.append(ConvergenceGroup(title, tuple(curves)))
    return out


# --------------------------------------------------------------------------- rows, env, verdicts


def _row(rec: Mapping[str, Any]) -> Row:
    med = _median(rec)
    lo, hi = _interval(rec) if med is not None else (None, None)
    mem: Mapping[str, Any] = rec["memory"] if isinstance(rec.get("memory"), Mapping) else {}
    val: Mapping[str, Any] = rec["validation"] if isinstance(rec.get("validation"), Mapping) else {}
    notes = []
    if rec.get("stop_reason"):
        notes.append(f"stop: {rec['stop_reason']}")
    warnings = rec.get("warnings")
    if isinstance(warnings, str):
        notes.append(warnings)
    elif isinstance(warnings, Sequence):
        notes.extend(str(w) for w in warnings)
    peak = mem.get("peak_bytes")
    return Row(
        id=str(rec["id"]),
        suite=str(rec.get("suite", "")),
        workload=str(rec["workload"]),
        impl=str(rec["impl"]),
        device=str(rec["device"]),
        dtype=str(rec["dtype"]),
        phase=str(rec.get("phase", "call")),
        status=str(rec["status"]),
        reason=rec.get("reason"),
        median_s=med,
        low_s=lo,
        high_s=hi,
        peak_bytes=int(peak) if _is_num(peak) else None,
        memory_kind=mem.get("kind"),
        host_blocking=rec.get("host_blocking"),
        validation_ok=val.get("ok"),
        max_abs_err=val.get("max_abs_err") if _is_num(val.get("max_abs_err")) else None,
        max_rel_err=val.get("max_rel_err") if _is_num(val.get("max_rel_err")) else None,
        reference=val.get("reference"),
        noisy=bool(rec.get("noisy")),
        notes=tuple(notes),
    )


def flatten(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as (dotted key, text) pairs, in their own order; lists joined by commas."""
    if isinstance(obj, Mapping):
        if not obj and prefix:
            return [(prefix, "—")]
        out: list[tuple[str, str]] = []
        for k, v in obj.items():
            out.extend(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(obj, (list, tuple)):
        text = ", ".join(str(v) for v in obj) or "—"
    elif obj is None:
        text = "—"
    else:
        text = str(obj)
    return [(prefix or "value", text)]


def _verdict_rows(verdicts: Iterable[Mapping[str, Any]]) -> tuple[VerdictRow, ...]:
    def num(v: Any) -> float | None:
        return float(v) if _is_num(v) else None

    rows = []
    for i, v in enumerate(verdicts):
        if not isinstance(v, Mapping) or "id" not in v or "label" not in v:
            raise ValueError(f"verdicts[{i}]: expected a dict with at least 'id' and 'label'")
        rows.append(
            VerdictRow(
                str(v["id"]),
                str(v["label"]),
                num(v.get("ratio")),
                num(v.get("ci_low")),
                num(v.get("ci_high")),
                num(v.get("p_value")),
                num(v.get("baseline_median_s")),
                num(v.get("current_median_s")),
                v.get("reason"),
                # compare's dicts say whether a verdict fails the gate; else judge by the label
                bool(v["regression"]) if "regression" in v else v["label"] in REGRESSION_LABELS,
            )
        )
    rank = {label: i for i, label in enumerate(VERDICT_ORDER)}
    return tuple(sorted(rows, key=lambda r: (rank.get(r.label, len(rank)), r.id)))


def _baseline_rows(run: Mapping[str, Any], baseline: Mapping[str, Any]) -> tuple[VerdictRow, ...]:
    """Plain median ratios per matching case id when no verdicts were given (no test)."""
    base = {r["id"]: r for r in baseline.get("records", [])}
    rows = []
    for rec in run["records"]:
        b = base.get(rec["id"])
        if b is None:
            continue
        mb, mc = _median(b), _median(rec)
        ratio = mc / mb if mb and mc else None
        rows.append(VerdictRow(rec["id"], "compared", ratio, None, None, None, mb, mc, None, False))
    return tuple(rows)


def build_model(
    run: Mapping[str, Any],
    *,
    baseline: Mapping[str, Any] | None = None,
    verdicts: Sequence[Mapping[str, Any]] | None = None,
    reference_impl: str | None = None,
    limits: Mapping[str, int] | None = None,
) -> ReportModel:
    """The whole report model of a loaded run, optionally against a baseline or verdicts."""
    if not isinstance(run, Mapping) or not isinstance(run.get("records"), list):
        raise TypeError("build_model: run must be a loaded run dict with a 'records' list")
    unknown = sorted(set(limits or {}) - set(DEFAULT_LIMITS))
    if unknown:
        raise ValueError(
            f"build_model: unknown chart limit {unknown[0]!r}; "
            f"expected one of {', '.join(DEFAULT_LIMITS)}"
        )
    lim = {**DEFAULT_LIMITS, **(limits or {})}
    records = run["records"]
    rows = tuple(_row(r) for r in records)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1

    all_groups = build_sweeps(records)
    speedups, cut_speedup = _limit(
        build_speedups(all_groups, reference_impl),
        lim["speedup"],
        lambda g: sum(len(line.xs) for line in g.lines),
    )
    sweeps, cut_sweep = _limit(
        [g for g in all_groups if g.is_sweep], lim["sweep"], lambda g: g.n_points
    )
    phases, cut_phases = _limit(
        build_phases(records, reference_impl), lim["phases"], lambda g: len(g.bars)
    )
    memory, cut_memory = _limit(build_memory(records), lim["memory"], lambda g: len(g.bars))
    conv, cut_conv = _limit(build_convergence(records), lim["convergence"], lambda g: len(g.curves))

    if verdicts is not None:
        vrows: tuple[VerdictRow, ...] | None = _verdict_rows(verdicts)
        source: str | None = "verdicts"
    elif baseline is not None:
        vrows, source = _baseline_rows(run, baseline), "baseline"
    else:
        vrows, source = None, None

    meta = [
        ("run id", str(run.get("run_id", "—"))),
        ("status", str(run.get("status", "—"))),
        ("started", str(run.get("started") or "—")),
        ("finished", str(run.get("finished") or "—")),
        ("command", str(run.get("command") or "—")),
        *flatten(run.get("options") or {}, "options"),
    ]
    if baseline is not None:
        meta.append(("baseline run id", str(baseline.get("run_id", "—"))))
    return ReportModel(
        run_id=str(run.get("run_id", "run")),
        run_status=str(run.get("status", "complete")),
        meta=tuple(meta),
        env=tuple(flatten(run.get("env") or {})),
        status_counts=tuple(sorted(counts.items(), key=lambda kv: _status_rank(kv[0]))),
        rows=rows,
        problems=tuple(r for r in rows if r.status in PROBLEM_STATUSES),
        skipped=tuple(r for r in rows if r.status == "skipped"),
        sweeps=tuple(sweeps),
        speedups=tuple(speedups),
        phases=tuple(phases),
        memory=tuple(memory),
        convergence=tuple(conv),
        verdicts=vrows,
        baseline_source=source,
        omitted={
            k: n
            for k, n in (
                ("time vs size", cut_sweep),
                ("speedup", cut_speedup),
                ("phases", cut_phases),
                ("memory", cut_memory),
                ("convergence", cut_conv),
            )
            if n
        },
    )


def _status_rank(status: str) -> int:
    order = ("ok", "invalid", "failed", "timeout", "interrupted", "skipped")
    return order.index(status) if status in order else len(order)
