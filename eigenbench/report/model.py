"""The report model: frozen view types of everything the page and the charts show.

Times are in seconds and memory in bytes; formatting is the renderers'. The builders that fill
these types from a run dict live in `eigenbench.report.build` (and `groups` for the charts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eigenbench.gate.verdicts import LABEL_ORDER

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
    declared_reference: str | None = None
    """The reference impl the workload declares (the records' `reference_impl`), if any."""

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
    """Speedups of every impl in a group against one correct reference impl (above 1 = faster).

    `basis` says why that impl is the reference: "chosen" (--reference), "declared" (by the
    workload) or "fastest correct" (the fastest impl whose every point passed validation)."""

    title: str
    reference: str
    x_param: str | None
    lines: tuple[SpeedupLine, ...]
    basis: str = "fastest correct"

    @property
    def caption(self) -> str:
        why = {"chosen": "chosen with --reference", "declared": "the workload's reference"}
        return (
            f"Speedup = time of {self.reference} ({why.get(self.basis, self.basis)}) / time of"
            " each impl; above 1× is faster."
        )


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
class RooflinePoint:
    """One timed record with a throughput: arithmetic intensity (flop per byte) and the
    FLOP/s it reached; `valid` is False for a wrong result, `below_floor` for a time under
    the physical floor (a measurement error)."""

    label: str
    workload: str
    impl: str
    dtype: str
    intensity: float
    flop_per_s: float
    fraction_of_peak: float | None
    valid: bool
    below_floor: bool


@dataclass(frozen=True, slots=True)
class Roof:
    """The measured peaks of one dtype on the device: attainable FLOP/s at intensity I is
    min(flop_per_s, I · bytes_per_s), bending at `knee` = flop_per_s / bytes_per_s."""

    dtype: str
    flop_per_s: float
    bytes_per_s: float

    @property
    def knee(self) -> float:
        return self.flop_per_s / self.bytes_per_s

    def attainable(self, intensity: float) -> float:
        return min(self.flop_per_s, intensity * self.bytes_per_s)


@dataclass(frozen=True, slots=True)
class RooflineGroup:
    """A roofline of one device: the roofs of the dtypes its points use, and the points."""

    title: str
    device: str
    roofs: tuple[Roof, ...]
    points: tuple[RooflinePoint, ...]

    @property
    def caption(self) -> str:
        return (
            "Achieved FLOP/s against arithmetic intensity (flop per byte, log-log), one point"
            " per timed case; lines: the roofs from this machine's measured peaks, per dtype."
            " × marks a wrong result; a red ring a time below the physical floor"
            " (a measurement error, never a win)."
        )


@dataclass(frozen=True, slots=True)
class AnswerRow:
    """One case of a workload's answer table: the values that vary, then who wins.

    `winner` is the fastest correct impl (None: no impl was correct); `ratio`, `low` and `high`
    are the runner-up's time over the winner's with a conservative interval; `tie` when that
    interval includes 1; `faster_invalid` names invalid impls that were faster;
    `fraction_of_peak` is the winner's share of the binding roof (None without a declared
    cost or measured peaks) and `below_floor` the correct impls timed below the physical
    floor (a measurement error, never the winner)."""

    values: tuple[str, ...]
    winner: str | None
    median_s: float | None
    runner_up: str | None
    ratio: float | None
    low: float | None
    high: float | None
    tie: bool
    faster_invalid: tuple[str, ...]
    fraction_of_peak: float | None = None
    below_floor: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AnswerTable:
    """Who wins where for one workload: a row per case, the varying values as `columns`,
    what every row shares as `fixed` (name, value) pairs."""

    workload: str
    columns: tuple[str, ...]
    fixed: tuple[tuple[str, str], ...]
    rows: tuple[AnswerRow, ...]
    machine: str | None = None
    """The machine the cases were timed on, in a run of several (`eigenbench merge`)."""

    @property
    def n_ties(self) -> int:
        return sum(r.tie for r in self.rows)

    @property
    def n_unanswered(self) -> int:
        return sum(r.winner is None for r in self.rows)


@dataclass(frozen=True, slots=True)
class MachineDot:
    """One impl's time on one machine at the case of an `AcrossGroup`."""

    impl: str
    machine: str
    median_s: float
    low_s: float
    high_s: float
    valid: bool


@dataclass(frozen=True, slots=True)
class AcrossGroup:
    """One case of a workload (device, dtype, phase, params) timed on several machines."""

    title: str
    workload: str
    machines: tuple[str, ...]
    dots: tuple[MachineDot, ...]

    @property
    def caption(self) -> str:
        return (
            "The same case on each machine: median time per impl (log scale, bar: 95 %"
            " interval), one colour per machine; × marks a wrong result."
        )


@dataclass(frozen=True, slots=True)
class WinsTable:
    """Who wins on which machine for one workload: a row per case (the varying values),
    per machine the fastest correct impl and its median ("" where the machine did not time
    the case, None where no impl was correct)."""

    workload: str
    columns: tuple[str, ...]
    machines: tuple[str, ...]
    rows: tuple[tuple[tuple[str, ...], tuple[tuple[str | None, float | None], ...]], ...]

    @property
    def caption(self) -> str:
        return (
            "The fastest correct impl per case (rows) and machine (columns), one colour per"
            " impl; blank: not timed there."
        )


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
    expected_invalid: str | None = None
    """Why this impl is wrong on purpose (declared by its suite), when it is invalid."""
    under_load: bool = False
    """Measured while other processes kept the machine busy: its timing is uncertain."""
    dispatch: str | None = None
    """What one profiled call ran, in short (`aten::linalg_eigh ×1 · syevjBatched ×1 · 0 syncs`)."""
    dispatch_detail: str | None = None
    """Its most frequent ops and syncs, or why nothing was recorded."""


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
    """Records that failed, timed out, or are invalid without being declared so."""
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
    answers: tuple[AnswerTable, ...] = ()
    """Who wins where, one table per workload, in the order the workloads come."""
    rooflines: tuple[RooflineGroup, ...] = ()
    """One roofline per device, when the run has measured peaks and records with throughput."""
    machines: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    """Per machine of a run of several (`eigenbench merge`): its key and its env."""
    across: tuple[AcrossGroup, ...] = ()
    """The same case across machines, one group per workload (a run of several machines)."""
    wins: tuple[WinsTable, ...] = ()
    """Who wins on which machine, one table per workload (a run of several machines)."""

    @property
    def verdict_counts(self) -> tuple[tuple[str, int], ...]:
        if not self.verdicts:
            return ()
        counts = {label: 0 for label in LABEL_ORDER}
        for v in self.verdicts:
            counts[v.label] = counts.get(v.label, 0) + 1
        return tuple((k, n) for k, n in counts.items() if n)
