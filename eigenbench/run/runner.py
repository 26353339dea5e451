"""The case loop: availability → inputs → first call → validation → sampling → memory → Record.

The run file is rewritten atomically after every case, so an interrupted run keeps what
finished. Failures of one case (an exception, out of memory, a timeout) are recorded and the
run goes on; bigger sizes of an impl that ran out of memory or time are skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import gc
import importlib.util
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from eigenbench.env import cuda_available
from eigenbench.measure import hostload
from eigenbench.measure.clocks import Clock, clock_for
from eigenbench.measure.dispatch import probe_dispatch
from eigenbench.measure.gpuclocks import ClockWatch, throttle_warning, watch_current_gpu
from eigenbench.measure.loop import Measurement, MeasureOptions, first_call, measure, per_round
from eigenbench.measure.memory import peak_memory
from eigenbench.results import SCHEMA_ID, Record, new_run_id, save_run
from eigenbench.run import contain
from eigenbench.run.convergence import follow, to_record
from eigenbench.run.graphtime import regraph, time_graph
from eigenbench.run.isolate import run_isolated
from eigenbench.run.options import (
    DEFAULT_ISOLATE_BUDGET_S,
    RunOptions,
    case_measure_options,
    sampled_in_rounds,
)
from eigenbench.run.records import (
    as_validation,
    base_record,
    is_fatal_cuda_error,
    is_out_of_memory,
    measured_record,
    pool_round,
)
from eigenbench.run.throughput import record_throughput
from eigenbench.spec import Case, Validation
from eigenbench.units import one_line

ClockFactory = Callable[[Case], Clock]


def default_clock(case: Case) -> Clock:
    """CUDA events (with an L2 flush before each sample when the workload wants it) or CPU."""
    if case.device == "cuda" and case.workload.flush_l2:
        return clock_for("cuda", before_sample=_l2_flusher())
    return clock_for(case.device)


@functools.cache
def _l2_flusher() -> Any:
    """One flush buffer per process, allocated on first use."""
    from eigenbench.measure.l2 import L2Flusher

    return L2Flusher()


def unavailable_reason(case: Case, *, has_cuda: Callable[[], bool] = cuda_available) -> str | None:
    """Why a case cannot run on this machine (no GPU, a module missing), or None."""
    if case.device == "cuda" and not has_cuda():
        return "no CUDA GPU on this machine"
    for module in case.impl.requires:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    return None


def _sweep_key(case: Case) -> tuple[str, ...]:
    return (case.workload.name, case.impl.name, case.device, case.dtype, case.phase)


def dominates(params: Mapping[str, Any], than: Mapping[str, Any]) -> bool:
    """True when every numeric param is at least as large and the others are equal."""
    for k, v in params.items():
        w = than.get(k)
        if isinstance(v, (int, float)) and isinstance(w, (int, float)) and not isinstance(v, bool):
            if v < w:
                return False
        elif v != w:
            return False
    return True


class Runner:
    """Runs cases one by one and keeps the run file up to date after each."""

    def __init__(
        self,
        *,
        env: Mapping[str, Any],
        options: RunOptions,
        out_path: Path | None,
        command: str,
        clock_factory: ClockFactory = default_clock,
        has_cuda: Callable[[], bool] = cuda_available,
        clock_watch: Callable[[], ClockWatch | None] = watch_current_gpu,
        on_record: Callable[[Record, int, int], None] | None = None,
        now_utc: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ) -> None:
        self.env = dict(env)
        self.options = options
        self._out_path: Path | None = None
        self.out_path = out_path
        self.command = command
        self.clock_factory = clock_factory
        self.has_cuda = has_cuda
        self.clock_watch = clock_watch
        self.cuda_lost: str | None = None
        """Why CUDA cases can no longer run in this process (a sticky CUDA error), or None."""
        self.on_record = on_record
        self.now_utc = now_utc
        self.before_dispatch: Callable[[], None] | None = None
        """Called just before the dispatch probe (the isolate child reads its peak RSS)."""
        self.cuda_dispatch_last = True
        """Profile CUDA cases only once every case is timed: Kineto may leave CUPTI attached
        after a CUDA profile (pytorch#144455), slowing the launches of cases timed later."""
        self._dispatch_later: list[Case] = []
        self._references: dict[tuple[Any, ...], Any] = {}
        self._blocked: list[tuple[tuple[str, ...], dict[str, Any], str]] = []
        started = now_utc()
        self.run_doc: dict[str, Any] = {
            "schema": SCHEMA_ID,
            "run_id": new_run_id(started),
            "started": started.isoformat(timespec="seconds"),
            "finished": None,
            "status": "running",
            "command": command,
            "env": self.env,
            "options": options.to_dict(),
            "records": [],
        }

    @property
    def out_path(self) -> Path | None:
        """The run file, absolute from the start: a case that changes directory cannot
        split the run in two."""
        return self._out_path

    @out_path.setter
    def out_path(self, path: Path | None) -> None:
        self._out_path = None if path is None else Path(path).absolute()

    def resume(self, previous: Mapping[str, Any]) -> None:
        """Continue `previous` (a loaded run): keep its finished records and its run id."""
        kept = [r for r in previous["records"] if r["status"] != "interrupted"]
        self.run_doc.update(run_id=previous["run_id"], started=previous["started"], records=kept)
        self.run_doc["resumed"] = [
            *previous.get("resumed", []),
            self.now_utc().isoformat(timespec="seconds"),
        ]

    def run(self, cases: Iterable[Case]) -> dict[str, Any]:
        """Run the cases not yet recorded; on Ctrl-C mark the current one interrupted.

        The run file is finalised (`status: interrupted`) before KeyboardInterrupt propagates.
        """
        cases = list(cases)
        done = {r["id"] for r in self.run_doc["records"]}
        todo = [c for c in cases if c.id not in done]
        current: Case | None = None
        try:
            with contain.interrupts():  # tells a real Ctrl-C from an impl's own
                for i, current in enumerate(todo):
                    self.add(self.run_case(current), i, len(todo))
                current = None
                # all the cases: a resumed run also finishes the rounds and fingerprints
                # that an interrupt cut short after the last case was timed
                self._more_rounds(cases)
                self._queue_missing_fingerprints(cases)
                self.fingerprint_deferred()
        except KeyboardInterrupt:
            if current is not None and current.id not in {r["id"] for r in self.run_doc["records"]}:
                self.add(
                    base_record(current, "interrupted", "interrupted by the user"),
                    len(todo) - 1,
                    len(todo),
                )
            self.finish("interrupted")
            raise
        self.finish("complete")
        return self.run_doc

    def _more_rounds(self, cases: list[Case]) -> None:
        """Rounds 2..R: sample each timed case again, every other round in reverse order,
        and pool the samples into its record (saved after each round)."""
        by_id = {r["id"]: r for r in self.run_doc["records"]}
        again = [c for c in cases if resamplable(c, by_id.get(c.id))]
        for r in range(2, self.options.rounds + 1):
            for case in again if r % 2 else again[::-1]:
                if (by_id[case.id].get("rounds") or 1) >= r:  # measured before a resume
                    continue
                if not (case.device == "cuda" and self.cuda_lost):
                    self.round_again(case, by_id[case.id])
            self._save()

    def _queue_missing_fingerprints(self, cases: list[Case]) -> None:
        """CUDA cases of a resumed run timed before an interrupt stopped the deferred
        fingerprints: queued again (cases of this session are queued already)."""
        if not (self.options.dispatch and self.cuda_dispatch_last):
            return
        by_id = {r["id"]: r for r in self.run_doc["records"]}
        queued = {c.id for c in self._dispatch_later}
        for case in cases:
            record = by_id.get(case.id)
            if (
                case.device == "cuda"
                and case.id not in queued
                and record is not None
                and record["status"] in ("ok", "invalid")
                and "dispatch" not in record
            ):
                self._dispatch_later.append(case)

    def round_again(self, case: Case, record: Record) -> float | None:
        """Sample `case` for one more round and pool it into `record`; the round's median,
        or None when the round failed (a warning on the record; earlier rounds are kept)."""
        load_start = hostload.snapshot()
        before = contain.GlobalState.take()
        try:
            with contain.impl_code():
                m = self._sample(case)
        except KeyboardInterrupt:  # a real one
            _restore(before, record)
            raise
        except Exception as exc:  # keep the earlier rounds
            _restore(before, record)
            if isinstance(exc, contain.ImplExit):
                why = str(exc)
            else:
                why = one_line(exc)
                if case.device == "cuda" and is_fatal_cuda_error(exc):
                    self._lose_cuda(case, why)
            done = record.get("rounds", 1)
            record.setdefault("warnings", []).append(f"round {done + 1}: {why}")
            return None
        _restore(before, record)
        pool_round(record, m, self.options.measure.rel_ci_target)
        if "graph" in record and record["summary"]:  # beside the pooled median, not round 1's
            record["graph"] = regraph(record["graph"], record["summary"]["median_s"])
        this_round = hostload.load_between(load_start, hostload.snapshot())
        record["host_load"] = hostload.merge_loads(record.get("host_load"), this_round)
        self._add_throughput(case, record)
        return float(record["round_medians_s"][-1])

    def _sample(self, case: Case) -> Measurement:
        """A further round of sampling (warm-up included) on fresh inputs."""
        fn = case.workload.bind(case.impl, self._inputs(case), case.phase)
        return measure(fn, self.clock_factory(case), self._measure_options(case))

    def add(self, record: Record, index: int = 0, total: int = 1) -> None:
        """Append a finished record to the run (saved at once when there is a run file)."""
        self.run_doc["records"].append(record)
        self._save()
        if self.on_record is not None:
            self.on_record(record, index, total)

    def finish(self, status: str) -> None:
        """Close the run: its status and finishing time, saved."""
        self.run_doc["status"] = status
        self.run_doc["finished"] = self.now_utc().isoformat(timespec="seconds")
        self._save()

    def save(self) -> None:
        """Write the run file now (records updated in place by their owner)."""
        self._save()

    def _save(self) -> None:
        if self.out_path is not None:
            save_run(self.run_doc, self.out_path)

    def _blocked_reason(self, case: Case) -> str | None:
        key = _sweep_key(case)
        for k, params, reason in self._blocked:
            if k == key and dominates(case.param_dict, params):
                return reason
        return None

    def reference_for(self, case: Case, inputs: Any) -> Any:
        """The float64 reference, computed once per (workload, params, dtype, phase)."""
        key = (case.workload.name, case.params, case.dtype, case.phase)
        if key not in self._references:
            self._references[key] = case.workload.reference(inputs, case.param_dict, case.phase)
        return self._references[key]

    def run_case(self, case: Case) -> Record:
        """Measure one case and return its record; never raises except on Ctrl-C."""
        reason = (
            unavailable_reason(case, has_cuda=self.has_cuda)
            or self._blocked_reason(case)
            or (self.cuda_lost if case.device == "cuda" else None)
        )
        if reason is not None:
            return base_record(case, "skipped", reason)
        before = contain.GlobalState.take()
        try:
            with contain.impl_code():
                record = self._isolated(case) if self.options.isolate else self._measure_case(case)
        except KeyboardInterrupt:  # a real one
            before.restore()
            raise
        except contain.ImplExit as exc:
            record = base_record(case, "failed", str(exc))
        except Exception as exc:  # one failing case must not end the run
            record = self._failure(case, exc)
        _restore(before, record)
        self._add_throughput(case, record)
        if record["status"] == "failed":
            # Out of the `except`: its traceback no longer pins the case's tensors.
            release_device_memory(case.device)
        if record["status"] == "timeout":
            self._block(case, f"skipped: a smaller size of this impl timed out ({case.id})")
        elif record["status"] == "failed" and "out of memory" in (record["reason"] or ""):
            self._block(case, f"skipped: a smaller size of this impl ran out of memory ({case.id})")
        return record

    def _add_throughput(self, case: Case, record: Record) -> None:
        """The record's achieved rate against `env.peaks`, when its workload declares a cost
        (a cost model that fails is a warning on the record, not a failed case)."""
        try:
            tp = record_throughput(case, record, self.env.get("peaks"))
        except Exception as exc:  # a user's cost formula must not lose the measurement
            record.setdefault("warnings", []).append(f"no throughput: {one_line(exc)}")
            return
        if tp is not None:
            record["throughput"] = tp

    def _isolated(self, case: Case) -> Record:
        """The case in a child process, killed well after its own budget would stop it."""
        budget = self.options.measure.timeout_s
        if budget is None:  # without --timeout: killed at the default budget
            return run_isolated(
                case.suite, case.id, self.options, timeout_s=DEFAULT_ISOLATE_BUDGET_S, case=case
            )
        hard = budget + max(5.0, 0.5 * budget)
        return run_isolated(case.suite, case.id, self.options, timeout_s=hard, case=case)

    def _failure(self, case: Case, exc: BaseException) -> Record:
        if is_out_of_memory(exc):
            return base_record(case, "failed", "out of memory")
        if case.device == "cuda" and is_fatal_cuda_error(exc):
            self._lose_cuda(case, one_line(exc))
        return base_record(case, "failed", one_line(exc))

    def _lose_cuda(self, case: Case, error: str) -> None:
        """Stop the CUDA cases of this process after a sticky error; CPU cases go on."""
        self.cuda_lost = (
            f"CUDA context lost, detected after {case.id} ({error}); run the CUDA cases again "
            "in a new process (--isolate contains such faults)"
        )
        self.run_doc["cuda_lost"] = {"after": case.id, "error": error}

    def _block(self, case: Case, reason: str) -> None:
        self._blocked.append((_sweep_key(case), case.param_dict, reason))

    def _inputs(self, case: Case) -> Any:
        w = case.workload
        return w.make_inputs(case.param_dict, case.device, case.dtype, self.options.seed)

    def _measure_case(self, case: Case) -> Record:
        if case.workload.kind == "convergence":
            return self._measure_convergence(case)
        w = case.workload
        inputs = self._inputs(case)
        fn = w.bind(case.impl, inputs, case.phase)
        clock = self.clock_factory(case)
        expected = self.reference_for(case, inputs)  # CPU float64: not the case's time budget
        load_start = hostload.snapshot()
        start = clock.now()
        output, first_s = first_call(fn, clock)
        validation = as_validation(w.validate(output, expected, case.param_dict, case.dtype))
        del output
        with self._watching(case) as watch:
            m = measure(fn, clock, self._measure_options(case), start_s=start)
        if validation.ok and w.revalidate and m.stop_reason != "timeout":
            validation = self._validate_again(case, fn, expected, calls_made(m))
        record = measured_record(case, clock, first_s, validation, m)
        record["host_load"] = hostload.load_between(load_start, hostload.snapshot())
        if self.options.graph and case.device == "cuda" and record["status"] == "ok":
            median = record["summary"]["median_s"] if record["summary"] else None
            options = self._measure_options(case)
            record["graph"] = time_graph(case, fn, clock, options, expected, median)
        if watch is not None:
            record["gpu_clocks"] = watch.summary()
            warning = throttle_warning(record["gpu_clocks"])
            if warning:
                record.setdefault("warnings", []).append(warning)
        return self._probe(case, fn, record)

    def _validate_again(self, case: Case, fn: Any, expected: Any, calls: int) -> Validation:
        """The output of one more call, checked again: an impl right on its first call may
        turn wrong while timed (pytorch#192483: batched eigh from its third call on)."""
        w = case.workload
        again = as_validation(w.validate(fn(), expected, case.param_dict, case.dtype))
        if again.ok:
            return again
        detail = again.detail or "result differs from the reference"
        return dataclasses.replace(again, detail=f"wrong after {calls + 1} calls: {detail}")

    @contextlib.contextmanager
    def _watching(self, case: Case) -> Iterator[ClockWatch | None]:
        """GPU clocks read while a CUDA case is sampled (None on the CPU or without NVML)."""
        watch = self.clock_watch() if case.device == "cuda" else None
        if watch is None:
            yield None
            return
        with watch:
            yield watch

    def _measure_options(self, case: Case) -> MeasureOptions:
        rounds = self.options.rounds if sampled_in_rounds(case) else 1
        return per_round(case_measure_options(case, self.options), rounds)

    def _measure_convergence(self, case: Case) -> Record:
        """Follow one optimisation to its target, validate its result, then time its steps."""
        w = case.workload
        conv = w.convergence
        assert conv is not None  # checked when the suite was loaded
        inputs = self._inputs(case)
        clock = self.clock_factory(case)
        problem = w.bind(case.impl, inputs, case.phase)()
        load_start = hostload.snapshot()
        traj = follow(problem, conv, clock.now)
        expected = self.reference_for(case, inputs)
        validation = as_validation(
            w.validate(problem.result(), expected, case.param_dict, case.dtype)
        )
        timed = w.bind(case.impl, inputs, case.phase)()
        start = clock.now()
        _, first_s = first_call(timed.step, clock)
        m = measure(timed.step, clock, self._measure_options(case), start_s=start)
        record = measured_record(case, clock, first_s, validation, m)
        record["convergence"] = to_record(traj, conv)
        record["host_load"] = hostload.load_between(load_start, hostload.snapshot())
        if record["status"] == "ok" and traj.reached_at is None:
            record["reason"] = "did not reach the target loss within the budget"
        warning = slower_while_following(record)
        if warning:
            record.setdefault("warnings", []).append(warning)
        return self._probe(case, timed.step, record)

    def _probe(self, case: Case, fn: Any, record: Record) -> Record:
        """Add peak memory, (on CUDA) host-blocking and the dispatch fingerprint, each from
        one extra untimed call.

        A case past its time budget gets none: each probe would be one more call as
        long as the ones that overran.
        """
        if record["status"] == "timeout":
            record.setdefault("warnings", []).append(
                "memory, host-blocking and dispatch not probed: the case ran out of time"
            )
            return record
        if self.options.memory:
            record["memory"] = peak_memory(fn, case.device, uses_cupy="cupy" in case.impl.requires)
        if case.device == "cuda" and self.options.host_blocking:
            from eigenbench.measure.hostsync import detect_host_blocking

            summary = record["summary"]
            probe = detect_host_blocking(fn, call_s=summary["median_s"] if summary else None)
            record["host_blocking"] = probe["host_blocking"]
            record["host_blocking_evidence"] = probe["evidence"]
        if self.options.dispatch:
            if case.device == "cuda" and self.cuda_dispatch_last:
                self._dispatch_later.append(case)
            else:
                self._add_dispatch(case, fn, record)
        return record

    def _add_dispatch(self, case: Case, fn: Any, record: Record) -> None:
        if self.before_dispatch is not None:
            self.before_dispatch()
        dispatch, why = probe_dispatch(fn, case.device)
        record["dispatch"] = None if dispatch is None else dict(dispatch)
        if why is not None:
            record["dispatch_reason"] = why

    def fingerprint_deferred(self) -> None:
        """The CUDA cases' fingerprints, after every timed sample of the run (fresh inputs)."""
        by_id = {r["id"]: r for r in self.run_doc["records"]}
        for case in self._dispatch_later:
            if self.cuda_lost:
                break
            record = by_id[case.id]
            before = contain.GlobalState.take()
            try:
                with contain.impl_code():
                    fn = case.workload.bind(case.impl, self._inputs(case), case.phase)
                    if case.workload.kind == "convergence":
                        fn = fn().step
                    self._add_dispatch(case, fn, record)
            except KeyboardInterrupt:  # a real one
                before.restore()
                raise
            except Exception as exc:  # the measurement stands; only the fingerprint is lost
                why = str(exc) if isinstance(exc, contain.ImplExit) else one_line(exc)
                record["dispatch"] = None
                record["dispatch_reason"] = f"not profiled: {why}"
            _restore(before, record)
        self._dispatch_later.clear()
        self._save()


def _restore(before: contain.GlobalState, record: Record) -> None:
    """Put back the global state a case changed; a warning on its record names it."""
    changed = before.restore()
    if changed:
        record.setdefault("warnings", []).append(contain.changed_warning(changed))


def slower_while_following(record: Record, factor: float = 2.0) -> str | None:
    """A warning when the optimisation's steps took `factor` times longer, on average, than
    the timed steps: its seconds-to-target then include something else (load, a cold start)."""
    conv, summary = record.get("convergence") or {}, record["summary"]
    last = (conv.get("trajectory") or [[None, None]])[-1]  # [step, seconds, loss]
    steps, seconds = last[0], last[1]
    if not steps or not seconds or not summary or summary["median_s"] <= 0:
        return None
    per_step = seconds / steps
    if per_step < factor * summary["median_s"]:
        return None
    times = per_step / summary["median_s"]
    return (
        f"the optimisation took {per_step * 1e3:.3g} ms a step, {times:.3g}× the timed steps' "
        "median: its time to target includes more than the steps (load, a cold start)"
    )


def calls_made(m: Measurement) -> int:
    """Calls of a case so far: the first, the warm-up ones and every call of every sample."""
    return 1 + m.warmup_calls + len(m.samples_s) * m.number


def resamplable(case: Case, record: Mapping[str, Any] | None) -> bool:
    """Whether a later round may sample this case: timed in round 1, rounds apply to it."""
    return record is not None and record["status"] in ("ok", "invalid") and sampled_in_rounds(case)


def release_device_memory(device: str) -> None:
    """After a failed case: collect its garbage, then hand cached GPU blocks back (torch's
    allocator and, when loaded, CuPy's pool, so neither starves the other). Best effort: after
    a sticky CUDA error these calls fail too."""
    gc.collect()
    if device != "cuda":
        return
    with contextlib.suppress(Exception):
        import torch

        torch.cuda.empty_cache()
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        with contextlib.suppress(Exception):
            cupy.get_default_memory_pool().free_all_blocks()
