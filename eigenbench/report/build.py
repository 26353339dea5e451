"""The whole report model of a loaded run, optionally against a baseline or verdicts (pure).

Takes the loaded run (the JSON contract of `eigenbench.results`) and, optionally, a baseline run
or `compare`'s verdict dicts, and returns a frozen `ReportModel`: the table rows, the verdict
rows, the run's facts, and the chart groups of `groups`, cut to the per-kind limits.
No matplotlib, no files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from eigenbench.gate.verdicts import LABEL_ORDER, is_regression
from eigenbench.measure.hostload import under_load
from eigenbench.report.answer_tables import build_answers
from eigenbench.report.groups import (
    build_convergence,
    build_memory,
    build_phases,
    build_speedups,
    build_sweeps,
)
from eigenbench.report.machines import build_across, build_wins, machine_answers, per_machine
from eigenbench.report.model import (
    ReportModel,
    Roof,
    RooflineGroup,
    RooflinePoint,
    Row,
    VerdictRow,
)
from eigenbench.report.records import (
    block_of,
    dispatch_texts,
    is_num,
    record_interval,
    record_median,
)
from eigenbench.results import Record
from eigenbench.results.merge import (
    MACHINE_SEP,
    is_multi_machine,
    machine_of_record,
    machines_of,
    records_by_machine,
)

PROBLEM_STATUSES = ("invalid", "failed", "timeout", "interrupted")
DEFAULT_LIMITS: Mapping[str, int] = {
    "sweep": 6,
    "speedup": 3,
    "phases": 2,
    "memory": 2,
    "convergence": 4,
}
"""Most charts drawn per kind (the table always lists every record); keeps big runs fast."""


# --------------------------------------------------------------------------- chart limits


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


# --------------------------------------------------------------------------- rows, env, verdicts


def _row(rec: Record) -> Row:
    med = record_median(rec)
    lo, hi = record_interval(rec) if med is not None else (None, None)
    mem, val = block_of(rec, "memory"), block_of(rec, "validation")
    notes = []
    if rec.get("stop_reason"):
        notes.append(f"stop: {rec['stop_reason']}")
    warnings = rec.get("warnings")
    if isinstance(warnings, str):
        notes.append(warnings)
    elif isinstance(warnings, Sequence):
        notes.extend(str(w) for w in warnings)
    peak = mem.get("peak_bytes")
    dispatch, dispatch_detail = dispatch_texts(rec)
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
        peak_bytes=int(peak) if is_num(peak) else None,
        memory_kind=mem.get("kind"),
        host_blocking=rec.get("host_blocking"),
        validation_ok=val.get("ok"),
        max_abs_err=val.get("max_abs_err") if is_num(val.get("max_abs_err")) else None,
        max_rel_err=val.get("max_rel_err") if is_num(val.get("max_rel_err")) else None,
        reference=val.get("reference"),
        noisy=bool(rec.get("noisy")),
        notes=tuple(notes),
        expected_invalid=rec.get("expected_invalid") if rec["status"] == "invalid" else None,
        under_load=under_load(rec),
        dispatch=dispatch,
        dispatch_detail=dispatch_detail,
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
        return float(v) if is_num(v) else None

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
                bool(v["regression"])
                if "regression" in v
                else is_regression(v["label"], v.get("baseline_status")),
            )
        )
    rank = {label: i for i, label in enumerate(LABEL_ORDER)}
    return tuple(sorted(rows, key=lambda r: (rank.get(r.label, len(rank)), r.id)))


def _baseline_rows(run: Mapping[str, Any], baseline: Mapping[str, Any]) -> tuple[VerdictRow, ...]:
    """Plain median ratios per matching case id when no verdicts were given (no test)."""
    base = {r["id"]: r for r in baseline.get("records", [])}
    rows = []
    for rec in run["records"]:
        b = base.get(rec["id"])
        if b is None:
            continue
        mb, mc = record_median(b), record_median(rec)
        ratio = mc / mb if mb and mc else None
        rows.append(VerdictRow(rec["id"], "compared", ratio, None, None, None, mb, mc, None, False))
    return tuple(rows)


# --------------------------------------------------------------------------- rooflines


def si(value: float, unit: str) -> str:
    """`value` with an SI prefix and three significant digits: 1.37e11, "FLOP/s" → 137 GFLOP/s."""
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _pos(v: Any) -> float | None:
    return float(v) if is_num(v) and float(v) > 0 and float(v) != float("inf") else None


def build_rooflines(
    records: Sequence[Record], peaks: Mapping[str, Any] | None
) -> tuple[RooflineGroup, ...]:
    """A roofline per device with measured peaks and timed records carrying a throughput
    (positive FLOP/s and bytes/s: a log-log chart), in the order the devices come; () for a
    run without `env.peaks` (older runs)."""
    if not isinstance(peaks, Mapping):
        return ()
    points: dict[str, list[RooflinePoint]] = {}
    for rec in records:
        tp, device = rec.get("throughput"), str(rec.get("device"))
        if not isinstance(tp, Mapping) or rec.get("status") not in ("ok", "invalid"):
            continue
        flops, bw = _pos(tp.get("flop_per_s")), _pos(tp.get("bytes_per_s"))
        if flops is None or bw is None or not isinstance(peaks.get(device), Mapping):
            continue
        workload, impl, phase = str(rec["workload"]), str(rec["impl"]), rec.get("phase", "call")
        label = f"{workload} · {impl}" + ("" if phase in (None, "call") else f" · {phase}")
        fraction = tp.get("fraction_of_peak")
        points.setdefault(device, []).append(
            RooflinePoint(
                label=label,
                workload=workload,
                impl=impl,
                dtype=str(rec["dtype"]),
                intensity=flops / bw,
                flop_per_s=flops,
                fraction_of_peak=float(fraction) if is_num(fraction) else None,
                valid=rec["status"] == "ok",
                below_floor=bool(tp.get("below_floor")),
            )
        )
    groups = []
    for device, pts in points.items():
        roofs = []
        for dtype in dict.fromkeys(p.dtype for p in pts):
            peak = peaks[device].get(dtype)
            f = _pos(peak.get("flop_per_s")) if isinstance(peak, Mapping) else None
            b = _pos(peak.get("bytes_per_s")) if isinstance(peak, Mapping) else None
            if f is not None and b is not None:
                roofs.append(Roof(dtype, f, b))
        if not roofs:
            continue
        named = " · ".join(
            f"{r.dtype} {si(r.flop_per_s, 'FLOP/s')}, {si(r.bytes_per_s, 'B/s')}" for r in roofs
        )
        groups.append(RooflineGroup(f"{device} · {named}", device, tuple(roofs), tuple(pts)))
    return tuple(groups)


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
    by_machine = records_by_machine(run) if is_multi_machine(run) else {}
    rows = tuple(_row(r) for r in records)
    if by_machine:  # a merged run: each row, chart and answer names its machine
        rows = tuple(
            replace(r, id=f"{r.id}{MACHINE_SEP}{machine_of_record(rec, run)}")
            for r, rec in zip(rows, records, strict=True)
        )
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1

    all_groups = _each(by_machine, records, build_sweeps)
    speedups, cut_speedup = _limit(
        build_speedups(all_groups, reference_impl),
        lim["speedup"],
        lambda g: sum(len(line.xs) for line in g.lines),
    )
    sweeps, cut_sweep = _limit(
        [g for g in all_groups if g.is_sweep], lim["sweep"], lambda g: g.n_points
    )
    phases, cut_phases = _limit(
        _each(by_machine, records, lambda rs: build_phases(rs, reference_impl)),
        lim["phases"],
        lambda g: len(g.bars),
    )
    memory, cut_memory = _limit(
        _each(by_machine, records, build_memory), lim["memory"], lambda g: len(g.bars)
    )
    conv, cut_conv = _limit(
        _each(by_machine, records, build_convergence), lim["convergence"], lambda g: len(g.curves)
    )

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
    if by_machine:
        meta.append(("machines", ", ".join(by_machine)))
        sources = run.get("merged_from") or []
        meta += [("merged from", f"{s['run_id']} ({s['machine_key']})") for s in sources]
    if baseline is not None:
        meta.append(("baseline run id", str(baseline.get("run_id", "—"))))
    return ReportModel(
        run_id=str(run.get("run_id", "run")),
        run_status=str(run.get("status", "complete")),
        meta=tuple(meta),
        env=tuple(flatten(run.get("env") or {})),
        status_counts=tuple(sorted(counts.items(), key=lambda kv: _status_rank(kv[0]))),
        rows=rows,
        problems=tuple(r for r in rows if r.status in PROBLEM_STATUSES and not r.expected_invalid),
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
        answers=machine_answers(by_machine) if by_machine else build_answers(records),
        rooflines=_rooflines(run, by_machine),
        machines=tuple((k, tuple(flatten(env))) for k, env in machines_of(run).items())
        if by_machine
        else (),
        across=build_across(by_machine),
        wins=build_wins(by_machine),
    )


def _each(
    by_machine: Mapping[str, Sequence[Record]],
    records: Sequence[Record],
    build: Callable[[Sequence[Record]], Iterable[Any]],
) -> list[Any]:
    """`build(records)`; in a run of several machines, per machine with titles naming it."""
    return per_machine(by_machine, build) if by_machine else list(build(records))


def _rooflines(
    run: Mapping[str, Any], by_machine: Mapping[str, Sequence[Record]]
) -> tuple[RooflineGroup, ...]:
    """A roofline per device (per machine and device, each with its own peaks)."""
    if not by_machine:
        return build_rooflines(run["records"], (run.get("env") or {}).get("peaks"))
    envs = machines_of(run)
    return tuple(
        replace(g, title=f"{key} · {g.title}")
        for key, recs in by_machine.items()
        for g in build_rooflines(recs, envs.get(key, {}).get("peaks"))
    )


def _status_rank(status: str) -> int:
    order = ("ok", "invalid", "failed", "timeout", "interrupted", "skipped")
    return order.index(status) if status in order else len(order)
