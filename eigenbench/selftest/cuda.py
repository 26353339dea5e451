"""CUDA section: event overhead, sleep kernels of known length, and host-blocking verdicts.

The sleep kernels' cycle rate is calibrated against the host wall clock, not against CUDA events
(the thing under test).
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable
from typing import Any

from eigenbench.errors import EnvironmentProblem, MissingDependency
from eigenbench.measure.clocks import CudaEventClock
from eigenbench.measure.loop import MeasureOptions
from eigenbench.selftest.measuring import empty, known_entry, quick_options, timed_case
from eigenbench.selftest.targets import GPU_DURATIONS_S, gpu_tolerance_s

CALIBRATION_MIN_S = 0.2
BLOCKING_BATCH = (500, 100, 100)


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

        entry = known_entry(d, timed_case(kernel, CudaEventClock(), opts)[0])
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
        events.append(clock.time(empty, 1))
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
    label: str, expected: str, fn: Callable[[], Any], margin_s: float
) -> dict[str, Any]:
    from eigenbench.measure.hostsync import detect_host_blocking

    _warm(fn)
    verdict = detect_host_blocking(fn, margin_s=margin_s)
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


def host_blocking_section(margin_s: float) -> list[dict[str, Any]]:
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
            margin_s,
        ),
        _blocking_entry(
            f"{SLOW_LAUNCHES} small torch kernels (slow to launch, no sync)",
            "non-blocking",
            lambda: _launch_many(a, SLOW_LAUNCHES),
            margin_s,
        ),
    ]
    label = f"cupy eigvalsh (eigenbench.ops.cupy_bridge) {shape} float32"
    fn, reason = _cupy_callable(a)
    if fn is not None:
        try:
            entries.append(_blocking_entry(label, "non-blocking", fn, margin_s))
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
            calibration["cycles_per_s"], quick_options(quick)
        ),
        "host_blocking": host_blocking_section(margin_s=0.1 if quick else 0.2),
    }
