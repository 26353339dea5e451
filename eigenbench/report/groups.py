"""Chart groups from a run's records: sweeps, speedups, phases, memory, convergence (pure).

Which chart a group gets is decided here from the data: the x axis of a sweep is the numeric
parameter that varies most within a workload, and each sweep series gets a fitted scaling
exponent and the sizes where it crosses the others.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eigenbench.report.model import (
    ConvergenceGroup,
    Crossover,
    Curve,
    MemoryBar,
    MemoryGroup,
    Params,
    PhaseBar,
    PhaseGroup,
    Point,
    Series,
    SpeedupGroup,
    SpeedupLine,
    SweepGroup,
)
from eigenbench.report.records import (
    block_of,
    is_num,
    is_timed,
    is_valid,
    record_interval,
    record_median,
    record_params,
)
from eigenbench.results import Record

FORWARD_PHASES = ("fwd", "forward")
CROSSOVER_MIN_GAP = 0.05
"""Relative gap below which two impls count as tied when looking for crossovers."""


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
        if not all(v > 0 and math.isfinite(v) for v in (x, a, b)):  # each: 1e308 is fine
            raise ValueError("find_crossovers: sizes and times must be finite and positive")
        lx.append(math.log(x))
        d.append(math.log(a) - math.log(b))
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
        if is_num(v) and v > 0:
            out *= float(v)
    return out


def choose_x_param(records: Iterable[Record]) -> str | None:
    """The numeric parameter with the most distinct values (at least two); first wins ties.

    Only parameters whose values are all positive numbers qualify: the axis is logarithmic.
    """
    values: dict[str, set[float] | None] = {}
    for rec in records:
        for k, v in record_params(rec):
            bucket = values.setdefault(k, set())
            if bucket is None:
                continue
            if is_num(v) and v > 0:
                bucket.add(float(v))
            else:
                values[k] = None
    best, best_n = None, 1
    for k, vals in values.items():
        if vals is not None and len(vals) > best_n:
            best, best_n = k, len(vals)
    return best


# --------------------------------------------------------------------------- groups


def build_sweeps(records: Sequence[Record]) -> list[SweepGroup]:
    """Time-vs-size groups: per workload × dtype × phase × the other params; series per impl."""
    timed = [r for r in records if is_timed(r)]
    x_of: dict[str, str | None] = {}
    for wl in dict.fromkeys(r["workload"] for r in timed):
        x_of[wl] = choose_x_param(r for r in timed if r["workload"] == wl)

    groups: dict[tuple[Any, ...], dict[tuple[str, str], dict[float, Record]]] = {}
    declared: dict[tuple[Any, ...], str] = {}
    for rec in timed:
        x_param = x_of[rec["workload"]]
        params = record_params(rec)
        x_val = dict(params).get(x_param) if x_param else None
        if x_param is not None and not (is_num(x_val) and x_val > 0):
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
        if rec.get("reference_impl") and key not in declared:
            declared[key] = str(rec["reference_impl"])

    out = []
    for (workload, dtype, phase, x_param, fixed), by_series in groups.items():
        devices = {dev for _, dev in by_series}
        series = []
        for (impl, device), pts in by_series.items():
            points = []
            for x in sorted(pts):
                rec = pts[x]
                lo, hi = record_interval(rec)
                points.append(Point(x, record_median(rec) or 0.0, lo, hi, is_valid(rec)))
            exponent = None
            if x_param is not None and len(points) >= 2:
                exponent = fit_scaling_exponent([p.x for p in points], [p.median_s for p in points])
            label = impl if len(devices) == 1 else f"{impl} · {device}"
            series.append(Series(label, impl, device, tuple(points), exponent))
        dev_part = next(iter(devices)) if len(devices) == 1 else ""
        title = _title(workload, _phase_part(phase), dev_part, dtype, fmt_params(fixed))
        crossovers = _crossovers(series) if x_param is not None else ()
        key = (workload, dtype, phase, x_param, fixed)
        out.append(
            SweepGroup(
                title,
                workload,
                dtype,
                phase,
                x_param,
                fixed,
                tuple(series),
                tuple(crossovers),
                declared.get(key),
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


def _is_correct(s: Series) -> bool:
    return bool(s.points) and all(p.valid for p in s.points)


def _reference_series(
    series: Sequence[Series], reference_impl: str | None, declared: str | None = None
) -> tuple[Series, str] | None:
    """The reference of a speedup chart and why it is: the chosen impl, else the declared one,
    else the fastest correct one at the size most series share. Never an impl with an invalid
    point; None when no series is correct."""
    correct = [s for s in series if _is_correct(s)]
    for name, basis in ((reference_impl, "chosen"), (declared, "declared")):
        for s in correct:
            if name is not None and name in (s.impl, s.label):
                return s, basis
    if not correct:
        return None
    counts: dict[float, int] = {}
    for s in correct:
        for p in s.points:
            counts[p.x] = counts.get(p.x, 0) + 1
    x_best = max(counts, key=lambda x: (counts[x], x))

    def time_at(s: Series) -> float:
        return next((p.median_s for p in s.points if p.x == x_best), math.inf)

    return min(correct, key=time_at), "fastest correct"


def build_speedups(
    sweeps: Sequence[SweepGroup], reference_impl: str | None = None
) -> list[SpeedupGroup]:
    """Speedup of each impl over a correct reference per group: `reference_impl` if given,
    else the workload's declared reference, else the fastest correct impl (never an invalid
    one; a group with no correct impl gets no speedup chart)."""
    out = []
    for g in sweeps:
        if len(g.series) < 2:
            continue
        found = _reference_series(g.series, reference_impl, g.declared_reference)
        if found is None:
            continue
        ref, basis = found
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
            out.append(SpeedupGroup(g.title, ref.label, x_param, tuple(lines), basis))
    return out


def _pick_params(recs: Sequence[Record]) -> Params:
    """The parameter combination with the most records; ties go to the largest size."""
    counts: dict[Params, int] = {}
    for r in recs:
        p = record_params(r)
        counts[p] = counts.get(p, 0) + 1
    order = {p: i for i, p in enumerate(counts)}
    return max(counts, key=lambda p: (counts[p], _size(p), order[p]))


def _by_key(records: Iterable[Record], *fields: str) -> dict[tuple[Any, ...], list[Record]]:
    out: dict[tuple[Any, ...], list[Record]] = {}
    for r in records:
        row: Mapping[str, Any] = r
        out.setdefault(tuple(row[f] for f in fields), []).append(r)
    return out


def build_phases(records: Sequence[Record], reference_impl: str | None = None) -> list[PhaseGroup]:
    """Phase bars for workloads with several phases, at one size per workload × device × dtype,
    as multiples of `reference_impl` (else the impl the workload declares, else the first)."""
    timed = [r for r in records if is_timed(r)]
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
        chosen: dict[tuple[str, str], Record] = {}
        for r in recs:
            if record_params(r) == params:
                chosen.setdefault((r["phase"], r["impl"]), r)
        if len({ph for ph, _ in chosen}) < 2:
            continue
        phases = list(dict.fromkeys(ph for ph, _ in chosen))
        impls = list(dict.fromkeys(im for _, im in chosen))
        keys = [(ph, im) for ph in phases for im in impls if (ph, im) in chosen]
        declared = next((r["reference_impl"] for r in recs if r.get("reference_impl")), None)
        ref_key = _phase_reference(keys, impls, reference_impl or declared)
        ref_median = record_median(chosen[ref_key]) or 1.0
        bars = []
        for ph, im in keys:
            rec = chosen[(ph, im)]
            med = record_median(rec) or 0.0
            lo, hi = record_interval(rec)
            bars.append(
                PhaseBar(im, ph, med, lo, hi, med / ref_median, is_valid(rec), (ph, im) == ref_key)
            )
        title = _title(wl, device, dtype, fmt_params(params))
        out.append(PhaseGroup(title, f"{ref_key[0]} of {ref_key[1]}", tuple(bars)))
    return out


def _phase_reference(
    keys: Sequence[tuple[str, str]], impls: Sequence[str], reference_impl: str | None
) -> tuple[str, str]:
    fwd = [k for k in keys if k[0] in FORWARD_PHASES]
    for k in fwd:
        if reference_impl is not None and k[1] == reference_impl:
            return k
    for im in impls:
        for k in fwd:
            if k[1] == im:
                return k
    return keys[0]


def build_memory(records: Sequence[Record]) -> list[MemoryGroup]:
    """Peak memory per impl (and phase), at one size per workload × dtype."""
    with_mem = [r for r in records if is_num(block_of(r, "memory").get("peak_bytes"))]
    out = []
    for (wl, dtype), recs in _by_key(with_mem, "workload", "dtype").items():
        params = _pick_params(recs)
        chosen = [r for r in recs if record_params(r) == params]
        devices = {r["device"] for r in chosen}
        phases = {r["phase"] for r in chosen}
        kinds_by_device: dict[str, set[str]] = {}
        for r in chosen:
            kinds_by_device.setdefault(r["device"], set()).add(
                str(block_of(r, "memory").get("kind"))
            )
        mixed_kinds = any(len(k) > 1 for k in kinds_by_device.values())
        bars = []
        seen = set()
        for r in chosen:
            memory = block_of(r, "memory")
            kind = str(memory.get("kind"))
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
            bars.append(MemoryBar(label, r["impl"], r["device"], int(memory["peak_bytes"]), kind))
        dev_part = next(iter(devices)) if len(devices) == 1 else ""
        title = _title(wl, dev_part, dtype, fmt_params(params))
        out.append(MemoryGroup(title, tuple(bars)))
    return out


def build_convergence(records: Sequence[Record]) -> list[ConvergenceGroup]:
    """Loss-vs-time curves for records with a `convergence` block, one group per case."""
    conv = [r for r in records if block_of(r, "convergence")]
    groups: dict[tuple[Any, ...], list[Record]] = {}
    for r in conv:
        key = (r["workload"], r["device"], r["dtype"], r["phase"], record_params(r))
        groups.setdefault(key, []).append(r)
    out = []
    for (wl, device, dtype, phase, params), recs in groups.items():
        curves = []
        for r in recs:
            c = block_of(r, "convergence")
            pts = [
                (float(t), float(loss))
                for row in c.get("trajectory") or []
                if len(row) >= 3
                for t, loss in [(row[1], row[2])]
                if is_num(t) and is_num(loss) and loss > 0 and t >= 0
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
                    float(sec) if is_num(sec) else None,
                    int(steps) if is_num(steps) else None,
                )
            )
        if curves:
            title = _title(wl, _phase_part(phase), device, dtype, fmt_params(params))
            out.append(ConvergenceGroup(title, tuple(curves)))
    return out
