"""`eigenbench selftest`: the harness times workloads of known duration and reports its own error.

CPU: the overhead of one timed empty call, and busy-waits of 1 ms and 10 ms run through the real
sampler. CUDA: the overhead of an event pair, `torch.cuda._sleep` kernels whose cycle rate is
calibrated against the host wall clock (not against CUDA events, the thing under test), and the
host-blocking detector on one call known to block and one known not to. The cost of a stable
10 ms result is put next to what pytest-benchmark's and pyperf's defaults would spend on it,
computed from their documented defaults (not run).
"""

from __future__ import annotations

import importlib.util
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

from eigenbench.errors import EnvironmentProblem, MissingDependency
from eigenbench.measure.clocks import Clock, CudaEventClock, PerfCounterClock
from eigenbench.measure.loop import Measurement, MeasureOptions, first_call, measure

CPU_OVERHEAD_TARGET_S = 1e-6
CPU_REL_TARGET = 0.01
GPU_REL_TARGET = 0.02
GPU_ABS_TARGET_S = 5e-6
CPU_DURATIONS_S = (1e-3, 10e-3)
GPU_DURATIONS_S = (50e-6, 1e-3, 10e-3)
STABLE_DURATION_S = 10e-3
CALIBRATION_MIN_S = 0.2
BLOCKING_BATCH = (500, 100, 100)

TARGETS = {
    "cpu_overhead": f"median timed empty call ≤ {CPU_OVERHEAD_TARGET_S:g} s per sample",
    "cpu_known_duration": f"every busy-wait median within {CPU_REL_TARGET:.0%} of its duration",
    "cpu_timer_error": (
        f"every busy-wait median within {CPU_REL_TARGET:.0%} of the spins' own measured length"
    ),
    "cuda_known_duration": (
        f"every sleep-kernel median within max({GPU_REL_TARGET:.0%}, {GPU_ABS_TARGET_S:g} s)"
    ),
    "host_blocking": "every labelled call that ran is classified as expected",
}


# ---------------------------------------------------------------------------- pure helpers


def busy_wait(seconds: float) -> float:
    """Spin on `time.perf_counter_ns` until `seconds` have passed; return the seconds it spun.

    No sleep: the CPU stays busy. The return value is the spin's own view of its length, which
    exceeds `seconds` when the OS preempted it across the deadline.
    """
    counter = time.perf_counter_ns
    start = now = counter()
    end = start + int(seconds * 1e9)
    while now < end:
        now = counter()
    return (now - start) * 1e-9


def make_busy_wait(seconds: float, spun: list[float] | None = None) -> Callable[[], None]:
    """A zero-argument callable that busy-waits `seconds` (appending its own length to `spun`)."""
    if not seconds > 0:
        raise ValueError(f"busy-wait duration must be positive, got {seconds!r}")
    record = spun.append if spun is not None else None

    def spin() -> None:
        actual = busy_wait(seconds)
        if record is not None:
            record(actual)

    return spin


def relative_error(measured_s: float, true_s: float) -> float:
    """|measured − true| / true."""
    return abs(measured_s - true_s) / true_s


def gpu_tolerance_s(true_s: float) -> float:
    """Allowed absolute error for a GPU duration: max(2 %, 5 µs)."""
    return max(GPU_REL_TARGET * true_s, GPU_ABS_TARGET_S)


def _ceil(x: float) -> int:
    """Ceiling that ignores float dust (10 × 1e-6 must give 10, not 11)."""
    return math.ceil(x * (1 - 1e-12))


def pytest_benchmark_plan(
    duration_s: float,
    *,
    min_rounds: int = 5,
    max_time_s: float = 1.0,
    min_time_s: float = 5e-6,
) -> dict[str, Any]:
    """Calls and seconds pytest-benchmark's defaults spend on a function of steady `duration_s`.

    Mirrors `BenchmarkFixture._calibrate_timer` and `_raw` (pytest-benchmark 5.x): loops grow ×10
    (or are estimated past min_time/2) until a round lasts `min_time_s`, then
    rounds = max(min_rounds, ceil(max_time / round)). Warm-up is off on CPython and the
    precision stop is off by default.
    """
    loops, calibration_calls = 1, 0
    while True:
        calibration_calls += loops
        round_s = loops * duration_s
        if round_s >= min_time_s:
            break
        if round_s >= min_time_s * 5 / 10:
            loops = _ceil(min_time_s * loops / round_s)
            if loops == 1:
                break
        else:
            loops *= 10
    round_s = loops * duration_s
    rounds = max(_ceil(max_time_s / round_s), min_rounds)
    calls = calibration_calls + rounds * loops
    return {
        "source": (
            "computed from pytest-benchmark's documented defaults (min_rounds=5, "
            "max_time=1.0 s, min_time=5 µs, no warm-up on CPython, no precision stop); not run"
        ),
        "iterations": loops,
        "rounds": rounds,
        "samples": rounds,
        "calls": calls,
        "wall_s": calls * duration_s,
    }


def pyperf_plan(
    duration_s: float,
    *,
    processes: int = 20,
    values: int = 3,
    warmups: int = 1,
    min_time_s: float = 0.1,
) -> dict[str, Any]:
    """Calls and seconds pyperf's defaults spend on a function of steady `duration_s`.

    Mirrors pyperf 2.x: one calibration worker doubles `loops` until a raw value reaches
    `min_time_s` (each doubling costs one more value), then `processes` workers each run
    `warmups` + `values` values of `loops` calls. Interpreter start-ups are not counted.
    """
    loops, nvalue, index, calibration_calls = 1, warmups + values, 1, 0
    while index <= nvalue:
        calibration_calls += loops
        if loops * duration_s < min_time_s:
            loops *= 2
            nvalue += 1
        index += 1
    calls = calibration_calls + processes * (warmups + values) * loops
    return {
        "source": (
            "computed from pyperf's documented defaults (20 processes × (1 warm-up + 3 values), "
            "loops doubled until a value ≥ min_time 0.1 s, one calibration process); not run"
        ),
        "loops": loops,
        "processes": processes + 1,
        "samples": processes * values,
        "calls": calls,
        "wall_s": calls * duration_s,
        "not_counted": f"{processes + 1} Python interpreter start-ups",
    }


def targets_met(result: Mapping[str, Any]) -> dict[str, bool]:
    """Which self-test targets the figures in `result` meet (only the sections present)."""
    out: dict[str, bool] = {}
    if "cpu_overhead_s_per_sample" in result:
        overhead = result["cpu_overhead_s_per_sample"]
        out["cpu_overhead"] = _finite(overhead) and overhead <= CPU_OVERHEAD_TARGET_S
    if "cpu_known_duration" in result:
        entries = result["cpu_known_duration"]
        out["cpu_known_duration"] = _all_within(entries, "duration_s", _cpu_tolerance)
        if all("spun_median_s" in e for e in entries):
            out["cpu_timer_error"] = _all_within(entries, "spun_median_s", _cpu_tolerance)
    if "cuda_known_duration" in result:
        entries = result["cuda_known_duration"]
        out["cuda_known_duration"] = _all_within(entries, "duration_s", gpu_tolerance_s)
    if "host_blocking" in result:
        ran = [e for e in result["host_blocking"] if not e.get("skipped")]
        out["host_blocking"] = bool(ran) and all(e["expected"] == e["detected"] for e in ran)
    return out


def _cpu_tolerance(true_s: float) -> float:
    return CPU_REL_TARGET * true_s


def _all_within(
    entries: list[Mapping[str, Any]], truth: str, tolerance: Callable[[float], float]
) -> bool:
    """Every entry's median is finite and within `tolerance(truth)` of its `truth` field."""
    return bool(entries) and all(
        _finite(e["median_s"]) and abs(e["median_s"] - e[truth]) <= tolerance(e[truth])
        for e in entries
    )


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


# ---------------------------------------------------------------------------- measuring


def _quick_options(quick: bool) -> MeasureOptions:
    return MeasureOptions(warmup_s=0.01, max_time_s=0.5) if quick else MeasureOptions()


def _timed_case(
    fn: Callable[[], Any], clock: Clock, opts: MeasureOptions
) -> tuple[dict[str, Any], Measurement]:
    """First call then the sampler, as the runner does; the figures the sampler reports."""
    start = clock.now()
    _, first_s = first_call(fn, clock)
    m = measure(fn, clock, opts, start_s=start)
    figures = {
        "median_s": statistics.median(m.samples_s),
        "samples": len(m.samples_s),
        "number": m.number,
        "warmup_calls": m.warmup_calls,
        "calls": 1 + m.warmup_calls + len(m.samples_s) * m.number,
        "first_call_s": first_s,
        "rel_ci": m.rel_ci,
        "elapsed_s": m.elapsed_s,
        "stop_reason": m.stop_reason,
        "noisy": m.noisy,
    }
    return figures, m


def _involuntary_switches() -> int | None:
    try:
        import resource
    except ImportError:  # not on Unix
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw)


def busy_wait_case(duration_s: float, opts: MeasureOptions) -> dict[str, Any]:
    """A busy-wait through the real sampler, beside the busy-wait's own view of its length.

    `relative_error` compares the sampler's median with the requested duration; it includes
    the OS preempting the spin past its deadline. `timer_relative_error` compares it with what
    the spins themselves measured, which isolates the harness's own error.
    """
    spun: list[float] = []
    switches = _involuntary_switches()
    figures, m = _timed_case(make_busy_wait(duration_s, spun), PerfCounterClock(), opts)
    after = _involuntary_switches()
    entry = _known_entry(duration_s, figures)
    n, k = len(m.samples_s), m.number
    tail = spun[-n * k :]
    own = [statistics.fmean(tail[i * k : (i + 1) * k]) for i in range(n)]
    entry["spun_median_s"] = statistics.median(own)
    entry["timer_overhead_s"] = statistics.median(
        [s - o for s, o in zip(m.samples_s, own, strict=True)]
    )
    entry["timer_relative_error"] = relative_error(entry["median_s"], entry["spun_median_s"])
    entry["involuntary_context_switches"] = (
        None if switches is None or after is None else after - switches
    )
    return entry


def _known_entry(duration_s: float, case: dict[str, Any]) -> dict[str, Any]:
    median = case["median_s"]
    return {
        "duration_s": duration_s,
        "median_s": median,
        "relative_error": relative_error(median, duration_s),
        "abs_error_s": abs(median - duration_s),
        **{k: v for k, v in case.items() if k != "median_s"},
    }


def _empty() -> None:
    return None


def cpu_overhead_samples(samples: int) -> list[float]:
    """What PerfCounterClock reports for an empty callable, one call per sample."""
    clock = PerfCounterClock()
    timer = clock.time
    return [timer(_empty, 1) for _ in range(samples)]


def cpu_section(quick: bool) -> dict[str, Any]:
    """Overhead of a timed empty call, busy-waits of known length, and the 10 ms comparison."""
    overhead = cpu_overhead_samples(5_000 if quick else 200_000)
    opts = _quick_options(quick)
    known = [busy_wait_case(d, opts) for d in CPU_DURATIONS_S]
    stable = next(e for e in known if e["duration_s"] == STABLE_DURATION_S)
    return {
        "cpu_overhead_s_per_sample": statistics.median(overhead),
        "cpu_overhead_detail": {
            "samples": len(overhead),
            "min_s": min(overhead),
            "p90_s": statistics.quantiles(overhead, n=10)[-1],
            "perf_counter_resolution_s": time.get_clock_info("perf_counter").resolution,
        },
        "cpu_known_duration": known,
        "stable_10ms_comparison": stable_comparison(stable, opts),
    }


def stable_comparison(entry: Mapping[str, Any], opts: MeasureOptions) -> dict[str, Any]:
    """Our measured cost of a stable 10 ms result beside the peers' computed defaults."""
    ours = {
        "source": "measured in this run (first call + warm-up + samples)",
        "reached_ci_target": entry["stop_reason"] == "ci_target",
        "rel_ci_target": opts.rel_ci_target,
        "rel_ci": entry["rel_ci"],
        "samples": entry["samples"],
        "calls": entry["calls"],
        "wall_s": entry["elapsed_s"],
        "stop_reason": entry["stop_reason"],
    }
    d = entry["duration_s"]
    peers = {"pytest_benchmark": pytest_benchmark_plan(d), "pyperf": pyperf_plan(d)}
    return {
        "duration_s": d,
        "eigenbench": ours,
        **peers,
        "wall_ratio_vs_eigenbench": {
            name: plan["wall_s"] / ours["wall_s"] for name, plan in peers.items()
        },
    }


# ---------------------------------------------------------------------------- CUDA


def _host_seconds_of_sleep(torch: Any, cycles: int) -> float:
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    torch.cuda._sleep(cycles)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def calibrate_sleep_host(min_s: float = CALIBRATION_MIN_S, repeats: int = 3) -> dict[str, Any]:
    """Cycles per second of `torch.cuda._sleep`, from the host wall clock (no CUDA events).

    Sleeps of ≈`min_s` and ≈2·`min_s`, each fenced by `torch.cuda.synchronize()`; the rate is
    the cycle difference over the time difference, so the fixed launch and sync cost cancels.
    """
    import torch

    _host_seconds_of_sleep(torch, 1000)  # load the kernel
    probe = 10_000_000
    rough = probe / min(_host_seconds_of_sleep(torch, probe) for _ in range(3))
    base = int(rough * min_s * 1.1)
    rates, direct = [], []
    for _ in range(repeats):
        short = _host_seconds_of_sleep(torch, base)
        long = _host_seconds_of_sleep(torch, 2 * base)
        direct.append(2 * base / long)
        if long > short:
            rates.append(base / (long - short))
    if not rates:
        raise EnvironmentProblem(
            "sleep-kernel calibration failed: the longer sleep never took longer"
        )
    rate = statistics.median(rates)
    return {
        "cycles_per_s": rate,
        "method": "host perf_counter around synchronize-fenced sleeps (difference of two lengths)",
        "sleep_s": [base / rate, 2 * base / rate],
        "repeats": repeats,
        "spread": (max(rates) - min(rates)) / rate,
        "direct_cycles_per_s": statistics.median(direct),
    }


def cuda_known_durations(cycles_per_s: float, opts: MeasureOptions) -> list[dict[str, Any]]:
    """Sleep kernels of known length timed by CudaEventClock through the sampler."""
    import torch

    out = []
    for d in GPU_DURATIONS_S:
        cycles = max(1, round(d * cycles_per_s))

        def kernel(cycles: int = cycles) -> None:
            torch.cuda._sleep(cycles)

        entry = _known_entry(d, _timed_case(kernel, CudaEventClock(), opts)[0])
        entry["cycles"] = cycles
        entry["tolerance_s"] = gpu_tolerance_s(d)
        entry["within_target"] = entry["abs_error_s"] <= entry["tolerance_s"]
        out.append(entry)
    return out


def cuda_event_overhead(samples: int) -> dict[str, Any]:
    """Event time and host time of CudaEventClock on an empty callable, one call per sample."""
    clock = CudaEventClock()
    events, host = [], []
    for _ in range(samples):
        t0 = time.perf_counter()
        events.append(clock.time(_empty, 1))
        host.append(time.perf_counter() - t0)
    return {
        "cuda_event_overhead_s": statistics.median(events),
        "cuda_host_overhead_s_per_sample": statistics.median(host),
        "samples": samples,
    }


def _warm(fn: Callable[[], Any], calls: int = 3) -> None:
    import torch

    for _ in range(calls):
        fn()
    torch.cuda.synchronize()


def _blocking_entry(
    label: str, expected: str, fn: Callable[[], Any], guard_s: float
) -> dict[str, Any]:
    from eigenbench.measure.hostsync import detect_host_blocking

    _warm(fn)
    verdict = detect_host_blocking(fn, margin_s=guard_s)
    detected = "blocking" if verdict["host_blocking"] else "non-blocking"
    return {
        "label": label,
        "expected": expected,
        "detected": detected,
        "correct": detected == expected,
        "evidence": verdict["evidence"],
    }


def _cupy_callable(a: Any) -> tuple[Callable[[], Any] | None, str | None]:
    """CuPy's eigvalsh on `a` through the bridge, or None and why it cannot run."""
    if importlib.util.find_spec("cupy") is None:
        return None, "CuPy is not installed (pip install cupy-cuda12x)"
    try:
        from eigenbench.ops.cupy_bridge import cupy_eigvalsh
    except (ImportError, MissingDependency) as exc:
        return None, f"eigenbench.ops.cupy_bridge cannot be imported: {exc}"
    return (lambda: cupy_eigvalsh(a)), None


SLOW_LAUNCHES = 3000


def _launch_many(a: Any, launches: int) -> None:
    """Many tiny kernels: the host spends longer launching them than a short guard lasts."""
    x = a[0, 0, :1].clone()
    for _ in range(launches):
        x.add_(1.0)


def host_blocking_section(guard_s: float) -> list[dict[str, Any]]:
    """Blocking verdicts on torch eigvalsh (expected blocking), many small kernels and CuPy
    eigvalsh (both expected not)."""
    import torch

    gen = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(*BLOCKING_BATCH, device="cuda", generator=gen)
    a = (a + a.mT) / 2
    shape = "×".join(map(str, BLOCKING_BATCH))
    entries = [
        _blocking_entry(
            f"torch.linalg.eigvalsh cuda {shape} float32",
            "blocking",
            lambda: torch.linalg.eigvalsh(a),
            guard_s,
        ),
        _blocking_entry(
            f"{SLOW_LAUNCHES} small torch kernels (slow to launch, no sync)",
            "non-blocking",
            lambda: _launch_many(a, SLOW_LAUNCHES),
            guard_s,
        ),
    ]
    label = f"cupy eigvalsh (eigenbench.ops.cupy_bridge) {shape} float32"
    fn, reason = _cupy_callable(a)
    if fn is not None:
        try:
            entries.append(_blocking_entry(label, "non-blocking", fn, guard_s))
        except MissingDependency as exc:
            reason = str(exc)
        except Exception as exc:  # a broken CuPy install: report it, keep the other figures
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            entries.append(
                {
                    "label": label,
                    "expected": "non-blocking",
                    "detected": None,
                    "correct": False,
                    "error": error,
                }
            )
    if reason is not None:
        entries.append({"label": label, "expected": "non-blocking", "skipped": reason})
    return entries


def cuda_section(quick: bool) -> dict[str, Any]:
    """Event overhead, known-duration sleep kernels, and host-blocking verdicts."""
    from eigenbench.measure.hostsync import sleep_cycles_per_second

    overhead = cuda_event_overhead(200 if quick else 2000)
    calibration = calibrate_sleep_host(repeats=1 if quick else 3)
    calibration["event_cycles_per_s"] = sleep_cycles_per_second()
    return {
        "cuda_event_overhead_s": overhead["cuda_event_overhead_s"],
        "cuda_host_overhead_s_per_sample": overhead["cuda_host_overhead_s_per_sample"],
        "cuda_sleep_calibration": calibration,
        "cuda_known_duration": cuda_known_durations(
            calibration["cycles_per_s"], _quick_options(quick)
        ),
        "host_blocking": host_blocking_section(guard_s=0.1 if quick else 0.2),
    }


def environment() -> dict[str, Any]:
    """A short description of the machine the self-test ran on (GPU 0's name, or None)."""
    import torch

    from eigenbench.env import cpu_model

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": gpu,
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def run_selftest(device: str = "cpu", *, quick: bool = False) -> dict[str, Any]:
    """Measure the harness itself on `device` ("cpu" or "cuda"); JSON-ready figures and verdicts."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"selftest device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise EnvironmentProblem(
                "selftest --device cuda needs a CUDA GPU, and torch sees none on this machine"
            )
    result: dict[str, Any] = {"device": device, "quick": quick, "env": environment()}
    result.update(cpu_section(quick))
    if device == "cuda":
        result.update(cuda_section(quick))
    result["targets"] = targets_met(result)
    result["target_definitions"] = {k: v for k, v in TARGETS.items() if k in result["targets"]}
    return result


# ---------------------------------------------------------------------------- text


def _fmt(s: float | None) -> str:
    from eigenbench.console import fmt_seconds

    return fmt_seconds(s)


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("PASS" if ok else "FAIL")


def _known_lines(title: str, entries: list[dict[str, Any]]) -> list[str]:
    lines = [title]
    for e in entries:
        lines.append(
            f"  {_fmt(e['duration_s']):>7}: median {e['median_s'] * 1e6:.2f} µs, "
            f"error {e['relative_error']:.3%} ({_fmt(e['abs_error_s'])}); "
            f"{e['samples']} samples × {e['number']}, {e['elapsed_s']:.2f} s, {e['stop_reason']}"
        )
        if "spun_median_s" in e:
            lines.append(
                f"           the spins measured themselves at {e['spun_median_s'] * 1e6:.2f} µs: "
                f"timer error {e['timer_relative_error']:.3%} "
                f"(overhead {_fmt(e['timer_overhead_s'])}); "
                f"{e['involuntary_context_switches']} involuntary context switches"
            )
    return lines


def _comparison_lines(c: Mapping[str, Any]) -> list[str]:
    ours = c["eigenbench"]
    reached = "reached" if ours["reached_ci_target"] else "NOT reached"
    rows = [
        ("eigenbench", ours, f"measured; ±{ours['rel_ci']:.2%} interval {reached}"),
        ("pytest-benchmark", c["pytest_benchmark"], "computed from defaults, not run"),
        ("pyperf", c["pyperf"], f"computed from defaults, not run; + {c['pyperf']['not_counted']}"),
    ]
    lines = [f"Cost of a stable {_fmt(c['duration_s'])} result (busy-wait):"]
    for name, r, note in rows:
        lines.append(
            f"  {name:<17}{r['samples']:>5} samples {r['calls']:>6} calls "
            f"{r['wall_s']:>7.2f} s  ({note})"
        )
    return lines


def _blocking_lines(entries: list[dict[str, Any]]) -> list[str]:
    lines = ["Host-blocking detection:"]
    for e in entries:
        if e.get("skipped"):
            lines.append(f"  {e['label']}: skipped ({e['skipped']})")
            continue
        if e.get("error"):
            lines.append(f"  {e['label']}: FAILED to run ({e['error']})")
            continue
        ev = e["evidence"]
        lines.append(
            f"  {e['label']}: expected {e['expected']}, detected {e['detected']} "
            f"[{'ok' if e['correct'] else 'WRONG'}] (returned after {_fmt(ev['host_return_s'])} "
            f"behind a {_fmt(ev['guard_kernel_s'])} kernel; "
            f"{len(ev['torch_sync_warnings'])} torch sync warning(s))"
        )
    return lines


def format_selftest(result: Mapping[str, Any]) -> str:
    """The self-test result as plain text for a terminal or a CI log."""
    env = result["env"]
    targets = result.get("targets", targets_met(result))
    lines = [
        f"eigenbench selftest ({result['device']}{', quick' if result.get('quick') else ''}) — "
        f"{env['cpu']} ×{env['cpu_count']}, torch {env['torch']}, GPU: {env['gpu'] or 'none'}",
        f"CPU overhead per sample (empty callable): {_fmt(result['cpu_overhead_s_per_sample'])} "
        f"[target ≤ {_fmt(CPU_OVERHEAD_TARGET_S)}: {_verdict(targets.get('cpu_overhead'))}]",
    ]
    lines += _known_lines(
        f"CPU busy-waits [target ≤ {CPU_REL_TARGET:.0%}: "
        f"{_verdict(targets.get('cpu_known_duration'))}]",
        result["cpu_known_duration"],
    )
    if "cpu_timer_error" in targets:
        lines.append(
            f"  [timer error target ≤ {CPU_REL_TARGET:.0%}: "
            f"{_verdict(targets.get('cpu_timer_error'))}; load average "
            f"{env.get('load_average_1min') or 0:.2f} on {env['cpu_count']} cores]"
        )
    lines += _comparison_lines(result["stable_10ms_comparison"])
    if "cuda_known_duration" in result:
        lines.append(
            f"CUDA event overhead (empty callable): {_fmt(result['cuda_event_overhead_s'])}; "
            f"host time per sample {_fmt(result['cuda_host_overhead_s_per_sample'])}"
        )
        lines += _known_lines(
            f"CUDA sleep kernels [target ≤ max({GPU_REL_TARGET:.0%}, "
            f"{_fmt(GPU_ABS_TARGET_S)}): {_verdict(targets.get('cuda_known_duration'))}]",
            result["cuda_known_duration"],
        )
    if "host_blocking" in result:
        lines += _blocking_lines(result["host_blocking"])
        lines.append(f"  [target all correct: {_verdict(targets.get('host_blocking'))}]")
    return "\n".join(lines)
