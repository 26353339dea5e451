"""What a run will cost before it runs: case seconds from per-call seconds.

`eigenbench plan` lists these estimates, `run` prints their total when it starts and its
progress bar turns them into a remaining time. Pure: the CLI reads this machine's baseline
and passes its records in; nothing here touches a device, a clock or a file.

Per-call seconds come, in order of preference, from this machine's baseline record of the
case (source "baseline": its median, first call and, for a convergence case, how long its
optimisation ran), from the impl's or else the workload's `call_estimate_s` prior
("declared"), or from `DEFAULT_CALL_S` ("default"). A case then costs what `runner.Runner`
spends on it:

- overhead: inputs, validation, clocks, the run file (`CASE_OVERHEAD_S`, more on CUDA);
  `--isolate` adds a child process (`ISOLATE_OVERHEAD_S`);
- reference: the float64 CPU reference, once per workload × params × dtype × phase, priced
  by the workload's prior on the CPU in float64 (nothing without a prior);
- follow (convergence workloads): the optimisation to its target, at most its budget;
- the first call, then the warm-up: max(warmup_s, one call);
- sampling: at least `min_samples` samples of max(call, the clock's shortest sample) each
  (calls are batched per sample); a short case stops once its interval is tight, on average
  at `STOP_FRACTION` × max_time_s after it started, and by max_time_s at the latest;
- probes: one call for peak memory, on CUDA one more behind a guard kernel, and one
  profiled call for the dispatch fingerprint (its profiler's start is not priced);
- timeout: a case whose first call, warm-up and `min_samples` samples reach timeout_s stops
  there (about timeout + one sample) and gets no probes;
- rounds: `--rounds R` gives every round 1/R of the sampling budget (`per_round`); rounds
  2…R each add fresh inputs and a warm-up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eigenbench.errors import SuiteError
from eigenbench.measure.clocks import MIN_SAMPLE_S
from eigenbench.measure.hostsync import guard_seconds
from eigenbench.measure.loop import MeasureOptions, calls_per_sample, per_round
from eigenbench.run.options import RunOptions, case_measure_options, sampled_in_rounds
from eigenbench.spec import Case, Convergence

SOURCES = ("baseline", "declared", "default", "skipped")
"""Where a case's estimate came from; "skipped": the case cannot run here (a module is
missing, no GPU), so it costs only its record."""

SKIPPED_S = 0.013
"""A skipped case: its record written to the run file (measured on the 2-core VM)."""

DEFAULT_CALL_S = {"cpu": 2e-3, "cuda": 2e-3}
"""Per-call seconds of a case with neither a baseline record nor a declared prior."""

CASE_OVERHEAD_S = {"cpu": 0.04, "cuda": 0.4}
"""Seconds per case besides its calls. CPU: measured on the 2-core VM, 0.02-0.05 s per case
in a quick run (wall time per case minus its first call, warm-up, samples and memory probe).
CUDA: inputs made on the host and copied, synchronisations, the clock watch (a guess)."""

ISOLATE_OVERHEAD_S = 1.5
"""`--isolate`: a child Python process that imports torch and the suite, per case."""

"""The clocks' shortest samples (`measure.clocks`: perf_counter 1 ms, CUDA events 100 µs)."""

STOP_FRACTION = 0.35
"""Where a short case's sampling stops, as a fraction of max_time_s after the case began.
Measured on quick CPU runs (default options, cases whose min_samples fit well within
max_time): mean 0.61 over 50 records of the committed `cpu-amd-epyc-2c` baseline, 0.30
over 51 of `cpu-intel-xeon-processor-2c`, 0.20 over 51 of a fresh run on the AMD VM (2026-12-06). It
follows the session's noise more than the case (the same 51 cases sampled for 62 s in the
AMD baseline, 21 s in the fresh run), so a baseline record gives a case's call time but
not its stop; 0.35 is about the geometric mean of the three."""


@dataclass(frozen=True, slots=True)
class CallCost:
    """What one timed call of a case costs, as far as is known before it runs."""

    call_s: float
    source: str
    """One of `SOURCES` but "skipped"."""
    first_call_s: float | None = None
    """The cold first call; None: as long as a warm one."""
    follow_s: float | None = None
    """Convergence: seconds to follow the optimisation; None: its budget."""


@dataclass(frozen=True, slots=True)
class CaseCost:
    """Estimated seconds of one case, and whether it is expected to reach its timeout."""

    seconds: float
    timeout: bool = False


@dataclass(frozen=True, slots=True)
class CaseEstimate:
    """One case of a plan."""

    id: str
    suite: str
    device: str
    seconds: float
    source: str
    timeout: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "suite": self.suite,
            "device": self.device,
            "estimate_s": self.seconds,
            "source": self.source,
            "timeout": self.timeout,
        }


@dataclass(frozen=True, slots=True)
class GroupTotal:
    """The cases of one suite on one device."""

    suite: str
    device: str
    cases: int
    seconds: float
    sources: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Plan:
    """The estimated cases of a run, in run order."""

    cases: tuple[CaseEstimate, ...]

    @property
    def total_s(self) -> float:
        return sum(c.seconds for c in self.cases)

    @property
    def timeouts(self) -> int:
        return sum(c.timeout for c in self.cases)

    def groups(self) -> list[GroupTotal]:
        """Per suite × device, in order of first appearance."""
        found: dict[tuple[str, str], list[CaseEstimate]] = {}
        for c in self.cases:
            found.setdefault((c.suite, c.device), []).append(c)
        return [
            GroupTotal(suite, device, len(cs), sum(c.seconds for c in cs), source_counts(cs))
            for (suite, device), cs in found.items()
        ]

    def to_dict(self, devices: Iterable[str]) -> dict[str, Any]:
        """The `eigenbench plan --json` document."""
        by_suite: dict[str, dict[str, Any]] = {}
        for g in self.groups():
            entry = by_suite.setdefault(g.suite, {"cases": 0, "estimate_s": 0.0, "devices": {}})
            entry["cases"] += g.cases
            entry["estimate_s"] += g.seconds
            entry["devices"][g.device] = {"cases": g.cases, "estimate_s": g.seconds}
        return {
            "devices": list(devices),
            "cases": [c.to_dict() for c in self.cases],
            "total_s": self.total_s,
            "by_suite": by_suite,
            "sources": source_counts(self.cases),
        }


def source_counts(cases: Iterable[CaseEstimate]) -> dict[str, int]:
    """How many cases each source priced, in `SOURCES` order."""
    counts = {s: 0 for s in SOURCES}
    for c in cases:
        counts[c.source] += 1
    return {s: n for s, n in counts.items() if n}


def sampling_s(call_s: float, first_s: float, opts: MeasureOptions, device: str) -> CaseCost:
    """Wall time of one `measure.loop.measure` (after a first call of `first_s`, 0 in later
    rounds): warm-up and samples until the sampler stops."""
    sample = calls_per_sample(call_s, opts.min_sample_s or MIN_SAMPLE_S[device]) * call_s
    warm = first_s + max(opts.warmup_s, call_s)
    floor = warm + opts.min_samples * sample
    if opts.timeout_s is not None and floor >= opts.timeout_s:
        return CaseCost(first_s if first_s >= opts.timeout_s else opts.timeout_s + sample, True)
    most = warm + opts.max_samples * sample
    typical = max(floor, min(STOP_FRACTION * opts.max_time_s, most))
    if opts.timeout_s is not None:
        typical = min(typical, opts.timeout_s)
    return CaseCost(typical)


def probes_s(
    call_s: float,
    device: str,
    *,
    memory: bool = True,
    host_blocking: bool = True,
    dispatch: bool = True,
) -> float:
    """The untimed calls after sampling: peak memory, on CUDA host-blocking, the dispatch
    fingerprint."""
    seconds = call_s if memory else 0.0
    if device == "cuda" and host_blocking:
        seconds += guard_seconds(call_s) + call_s
    if dispatch:
        seconds += call_s
    return seconds


def case_cost(
    cost: CallCost,
    opts: MeasureOptions,
    *,
    device: str,
    rounds: int = 1,
    convergence: Convergence | None = None,
    memory: bool = True,
    host_blocking: bool = True,
    dispatch: bool = True,
) -> CaseCost:
    """Seconds of one case from its per-call cost and effective options (the run's with the
    workload's overrides); the reference and `--isolate` are priced by `estimate_plan`."""
    call = max(cost.call_s, 1e-9)
    first = call if cost.first_call_s is None else cost.first_call_s
    opts_round = per_round(opts, rounds)
    seconds = CASE_OVERHEAD_S[device]
    if convergence is not None:
        budget = min(convergence.budget_s, convergence.budget_steps * call)
        seconds += budget if cost.follow_s is None else cost.follow_s
    first_round = sampling_s(call, first, opts_round, device)
    seconds += first_round.seconds
    if first_round.timeout:
        return CaseCost(seconds, True)
    for _ in range(rounds - 1):
        seconds += CASE_OVERHEAD_S[device] + sampling_s(call, 0.0, opts_round, device).seconds
    seconds += probes_s(call, device, memory=memory, host_blocking=host_blocking, dispatch=dispatch)
    return CaseCost(seconds)


def cost_from_record(record: Mapping[str, Any]) -> CallCost | None:
    """A baseline record's per-call cost, when it was timed (status ok or invalid)."""
    if record.get("status") not in ("ok", "invalid"):
        return None
    median = _seconds((record.get("summary") or {}).get("median_s"))
    if median is None:
        return None
    trajectory = (record.get("convergence") or {}).get("trajectory") or []
    follow = _seconds(trajectory[-1][1]) if trajectory else None
    return CallCost(median, "baseline", _seconds(record.get("first_call_s")), follow)


def _seconds(value: object) -> float | None:
    """`value` as seconds when it is a finite number > 0, else None."""
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def declared_s(case: Case) -> float | None:
    """The case's prior per call (its impl's, else its workload's), or None."""
    prior = case.impl.call_estimate_s or case.workload.call_estimate_s
    if prior is None:
        return None
    return _checked(prior(case.param_dict, case.device, case.dtype), case)


def _checked(value: object, case: Case) -> float:
    """A prior's answer, which must be seconds > 0."""
    seconds = _seconds(value)
    if seconds is None:
        raise SuiteError(
            f"suite {case.suite!r}: workload {case.workload.name!r}: call_estimate_s gave "
            f"{value!r} for {case.id}, expected seconds > 0"
        )
    return seconds


def call_cost(case: Case, baseline: Mapping[str, Mapping[str, Any]]) -> CallCost:
    """A baseline record of the case beats a declared prior beats the default."""
    record = baseline.get(case.id)
    from_record = cost_from_record(record) if record is not None else None
    if from_record is not None:
        return from_record
    declared = declared_s(case)
    if declared is not None:
        return CallCost(declared, "declared")
    return CallCost(DEFAULT_CALL_S[case.device], "default")


def reference_s(case: Case) -> float:
    """The float64 CPU reference of the case's inputs, by the workload's prior (0 without)."""
    prior = case.workload.call_estimate_s
    if prior is None:
        return 0.0
    return _checked(prior(case.param_dict, "cpu", "float64"), case)


def estimate_case(case: Case, options: RunOptions, cost: CallCost) -> CaseCost:
    """One case under the run's options (reference excluded)."""
    w = case.workload
    result = case_cost(
        cost,
        case_measure_options(case, options),
        device=case.device,
        rounds=options.rounds if sampled_in_rounds(case) else 1,
        convergence=w.convergence if w.kind == "convergence" else None,
        memory=options.memory,
        host_blocking=options.host_blocking,
        dispatch=options.dispatch,
    )
    if options.isolate:
        return CaseCost(result.seconds + ISOLATE_OVERHEAD_S, result.timeout)
    return result


def estimate_plan(
    cases: Iterable[Case],
    options: RunOptions,
    baseline: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    unavailable: Callable[[Case], str | None] | None = None,
) -> Plan:
    """Every case's estimate, in run order. `baseline` maps case ids to this machine's
    baseline records; `unavailable` says why a case will be skipped (None: it runs). Each
    reference is charged to the first case that computes it."""
    baseline = baseline or {}
    references: set[tuple[Any, ...]] = set()
    out = []
    for case in cases:
        if unavailable is not None and unavailable(case) is not None:
            out.append(CaseEstimate(case.id, case.suite, case.device, SKIPPED_S, "skipped"))
            continue
        cost = call_cost(case, baseline)
        result = estimate_case(case, options, cost)
        seconds = result.seconds
        key = (case.workload.name, case.params, case.dtype, case.phase)
        if options.isolate or key not in references:  # each child process computes its own
            references.add(key)
            seconds += reference_s(case)
        out.append(
            CaseEstimate(case.id, case.suite, case.device, seconds, cost.source, result.timeout)
        )
    return Plan(tuple(out))


def remaining_s(left_estimated_s: float, done_estimated_s: float, done_elapsed_s: float) -> float:
    """Seconds left: the estimates of the cases not yet done, scaled by how long the finished
    ones took against their estimates (the plain estimates until one has finished)."""
    if done_estimated_s <= 0 or done_elapsed_s <= 0:
        return left_estimated_s
    return left_estimated_s * done_elapsed_s / done_estimated_s


def shard_totals(plan: Plan, shards: Iterable[Iterable[Case]]) -> list[float]:
    """Estimated seconds of each shard (`run.shards.split_cases`) by the plan's cases."""
    by_id = {c.id: c.seconds for c in plan.cases}
    return [sum(by_id.get(c.id, 0.0) for c in shard) for shard in shards]
