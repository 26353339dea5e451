"""eigenbench beside `triton.testing.do_bench` and `torch.utils.benchmark` on the same cases.

One process, interleaved: in every round each case is timed once by each tool, the tools'
order rotated from case to case and from round to round, so that drift falls on all of them
alike. Per tool and case it records the value of every round (seconds), their median, spread
(max/min − 1) and relative standard deviation, the wall seconds the tool spent, and for the
case of known length (on CUDA a kernel spinning 1 ms on the GPU's nanosecond %globaltimer, and a
calibrated `torch.cuda._sleep`, whose cycle count stretches with the SM clock; a busy-wait on the
CPU) the error against that length. Each tool gets about the same time per call.

    python3 tools/peers.py --device cuda --out results/gpu-check/peers.json --rounds 5 --budget 45

Cases on CUDA: a µs-scale `torch.mul` on 2¹⁶ float32, CuPy eigvalsh 500×100×100 through
`eigenbench.ops.cupy_bridge`, exact Spearman on 10⁷ float32 points, a 1 ms sleep kernel. On the
CPU: `torch.mul` on 4096 floats, `torch.linalg.eigvalsh` 50×32×32, Spearman on 10⁵ points and
a 1 ms busy-wait; triton is then recorded unavailable. `--budget` bounds the whole script:
no round starts that would not finish in time, and the file says how many rounds ran.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "eigenbench.peers/1"
REPO = Path(__file__).resolve().parents[1]
TOOL_NAMES = ("eigenbench", "triton_do_bench", "torch_benchmark")
KNOWN_S = 1e-3
"""Length of the sleep kernel / busy-wait whose timing is checked against the truth."""
MAX_CALL_S = 0.2
MIN_CALL_S = 0.02

Fn = Callable[[], Any]


@dataclass
class Case:
    """One workload: a callable, or why it cannot run."""

    name: str
    description: str
    fn: Fn | None = None
    truth_s: float | None = None
    skipped: str | None = None


@dataclass
class Tool:
    """One timer: `time(fn)` gives seconds per call, or `reason` says why it is unavailable."""

    name: str
    time: Callable[[Fn], float] | None = None
    reason: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class Cell:
    """What one tool measured on one case, round after round."""

    values_s: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    error: str | None = None


# ---------------------------------------------------------------------------- pure helpers


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def rotated(items: Sequence[Any], k: int) -> list[Any]:
    """`items` rotated left by `k` (modulo its length)."""
    if not items:
        return []
    k %= len(items)
    return [*items[k:], *items[:k]]


def per_call_seconds(budget_s: float, rounds: int, cases: int, tools: int) -> float:
    """Time each tool gets per call: a share of the budget, between 20 ms and 200 ms."""
    calls = max(1, rounds * cases * tools)
    return min(MAX_CALL_S, max(MIN_CALL_S, 0.5 * budget_s / calls))


def spread_stats(values: Sequence[float]) -> dict[str, float | None]:
    """Median, max/min − 1 and relative sd of positive values (None where undefined)."""
    if not values:
        return {"median_s": None, "spread": None, "rel_sd": None}
    low, high = min(values), max(values)
    mean = statistics.fmean(values)
    return {
        "median_s": statistics.median(values),
        "spread": high / low - 1 if low > 0 else None,
        "rel_sd": statistics.stdev(values) / mean if len(values) > 1 and mean > 0 else 0.0,
    }


def truth_error(median_s: float | None, truth_s: float | None) -> dict[str, float] | None:
    """Error of a median against a known length, absolute (s) and relative."""
    if median_s is None or truth_s is None or truth_s <= 0:
        return None
    return {"abs_s": median_s - truth_s, "rel": (median_s - truth_s) / truth_s}


def tool_entry(tool: Tool, cell: Cell | None, truth_s: float | None) -> dict[str, Any]:
    """The JSON entry of one tool on one case."""
    if tool.time is None:
        return {"available": False, "reason": tool.reason}
    cell = cell or Cell()
    stats = spread_stats(cell.values_s)
    return {
        "available": True,
        "settings": tool.settings,
        "rounds": len(cell.values_s),
        "values_s": cell.values_s,
        **stats,
        "wall_s": cell.wall_s,
        "wall_total_s": sum(cell.wall_s),
        "error_vs_truth": truth_error(stats["median_s"], truth_s),
        "error": cell.error,
    }


def round_fits(now_s: float, last_round_s: float, deadline_s: float) -> bool:
    """Start another round only if one as long as the last still ends by the deadline."""
    return now_s + last_round_s <= deadline_s


# ---------------------------------------------------------------------------- tools


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def eigenbench_tool(device: str, call_s: float) -> Tool:
    """eigenbench's sampler with the device's clock (CUDA events or perf_counter)."""
    from eigenbench.measure.clocks import clock_for
    from eigenbench.measure.loop import MeasureOptions, measure

    clock = clock_for(device)
    opts = MeasureOptions(
        warmup_s=call_s / 4, min_samples=5, max_time_s=call_s, timeout_s=max(1.0, 5 * call_s)
    )

    def time_fn(fn: Fn) -> float:
        m = measure(fn, clock, opts)
        if not m.samples_s:
            raise RuntimeError(f"no sample (stop reason: {m.stop_reason})")
        return float(statistics.median(m.samples_s))

    settings = {
        "clock": getattr(clock, "name", type(clock).__name__),
        "warmup_s": opts.warmup_s,
        "min_samples": opts.min_samples,
        "max_time_s": opts.max_time_s,
        "l2_flush": False,
        "value": "median of the sampler's samples",
    }
    return Tool("eigenbench", time_fn, settings=settings)


def _do_bench_call(do_bench: Any, warmup_ms: int, rep_ms: int) -> tuple[Callable[[Fn], Any], str]:
    """A call of do_bench giving the median if this triton can, and what it returns."""
    params = inspect.signature(do_bench).parameters
    kwargs: dict[str, Any] = {}
    if "warmup" in params:
        kwargs["warmup"] = warmup_ms
    if "rep" in params:
        kwargs["rep"] = rep_ms
    if "return_mode" in params:
        return (lambda fn: do_bench(fn, **kwargs, return_mode="median")), "median"
    if "quantiles" in params:
        return (lambda fn: do_bench(fn, **kwargs, quantiles=[0.5])), "median (quantiles=[0.5])"
    return (lambda fn: do_bench(fn, **kwargs)), "default return (mean)"


def triton_tool(device: str, call_s: float) -> Tool:
    """`triton.testing.do_bench` (milliseconds, L2 flushed before each repetition)."""
    name = "triton_do_bench"
    if device != "cuda":
        return Tool(name, reason="triton.testing.do_bench times CUDA work only (device is cpu)")
    try:
        from triton.testing import do_bench
    except Exception as exc:
        return Tool(name, reason=f"triton is not importable ({one_line(exc)})")
    warmup_ms = max(1, round(call_s * 250))
    rep_ms = max(1, round(call_s * 750))
    call, mode = _do_bench_call(do_bench, warmup_ms, rep_ms)

    def time_fn(fn: Fn) -> float:
        value = call(fn)
        if isinstance(value, (list, tuple)):
            value = value[0]
        return float(value) * 1e-3

    settings = {"warmup_ms": warmup_ms, "rep_ms": rep_ms, "value": mode, "l2_flush": True}
    return Tool(name, time_fn, settings=settings)


def torch_benchmark_tool(call_s: float) -> Tool:
    """`torch.utils.benchmark.Timer(...).blocked_autorange(...).median` (synchronises CUDA)."""
    from torch.utils import benchmark

    def time_fn(fn: Fn) -> float:
        timer = benchmark.Timer(stmt="fn()", globals={"fn": fn})
        return float(timer.blocked_autorange(min_run_time=call_s).median)

    settings = {"min_run_time_s": call_s, "value": "blocked_autorange median", "l2_flush": False}
    return Tool("torch_benchmark", time_fn, settings=settings)


def make_tools(device: str, call_s: float) -> list[Tool]:
    tools = []
    for name, build in (
        ("eigenbench", lambda: eigenbench_tool(device, call_s)),
        ("triton_do_bench", lambda: triton_tool(device, call_s)),
        ("torch_benchmark", lambda: torch_benchmark_tool(call_s)),
    ):
        try:
            tools.append(build())
        except Exception as exc:
            tools.append(Tool(name, reason=f"cannot be set up: {one_line(exc)}"))
    return tools


# ---------------------------------------------------------------------------- cases


def busy_wait(seconds: float) -> Fn:
    """A callable spinning on perf_counter_ns for `seconds` (the CPU's known-length case)."""
    ns = int(seconds * 1e9)
    counter = time.perf_counter_ns

    def spin() -> None:
        end = counter() + ns
        while counter() < end:
            pass

    return spin


def _sym(batch: int, n: int, device: str) -> Any:
    import torch

    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(batch, n, n, device=device, generator=gen)
    return (a + a.mT) / 2


def _pair(n: int, device: str) -> tuple[Any, Any]:
    import torch

    gen = torch.Generator(device=device).manual_seed(1)
    x = torch.rand(n, device=device, generator=gen)
    return x, x + 0.5 * torch.rand(n, device=device, generator=gen)


def _mul_case(n: int, device: str) -> Fn:
    import torch

    x, y = torch.rand(n, device=device), torch.rand(n, device=device)
    z = torch.empty_like(x)
    return lambda: torch.mul(x, y, out=z)


def _spearman_case(n: int, device: str) -> Fn:
    from eigenbench.ops.rank import spearman

    x, y = _pair(n, device)
    return lambda: spearman(x, y)


def _cupy_case() -> Fn:
    from eigenbench.ops.cupy_bridge import cupy_eigvalsh, has_cupy

    if not has_cupy():
        raise RuntimeError("CuPy is not importable")
    a = _sym(500, 100, "cuda")
    return lambda: cupy_eigvalsh(a)


def _cpu_eigvalsh_case() -> Fn:
    import torch

    a = _sym(50, 32, "cpu")
    return lambda: torch.linalg.eigvalsh(a)


def _sleep_case() -> tuple[Fn, float]:
    """A `torch.cuda._sleep` kernel of ~1 ms and its length from the calibrated cycle rate."""
    import torch

    from eigenbench.measure.hostsync import sleep_cycles_per_second

    rate = sleep_cycles_per_second()
    cycles = max(1, round(KNOWN_S * rate))
    return (lambda: torch.cuda._sleep(cycles)), cycles / rate


SPIN_KERNEL = r"""
extern "C" __global__ void spin_ns(unsigned long long ns) {
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < ns);
}
"""
"""One thread spinning on the GPU's nanosecond wall clock: a length no SM clock change bends."""


def _globaltimer_case() -> tuple[Fn, float]:
    """A kernel that lasts 1 ms by the GPU's %globaltimer, launched on torch's stream (CuPy)."""
    from eigenbench.ops.cupy_bridge import cupy_on_torch_stream

    with cupy_on_torch_stream() as cupy:
        kernel = cupy.RawKernel(SPIN_KERNEL, "spin_ns")
        ns = cupy.uint64(round(KNOWN_S * 1e9))

    def spin() -> None:
        with cupy_on_torch_stream():
            kernel((1,), (1,), (ns,))

    return spin, KNOWN_S


Builder = Callable[[], tuple[Fn, float | None]]


def case_specs(device: str) -> list[tuple[str, str, Builder]]:
    """(name, description, builder) of the cases on `device`; a builder returns (fn, truth)."""
    if device == "cuda":
        return [
            (
                "mul_65536",
                "torch.mul of 2^16 float32 (µs scale)",
                lambda: (_mul_case(1 << 16, device), None),
            ),
            (
                "cupy_eigvalsh_500x100x100",
                "CuPy eigvalsh via eigenbench.ops.cupy_bridge, float32",
                lambda: (_cupy_case(), None),
            ),
            (
                "spearman_1e7",
                "eigenbench.ops.rank.spearman, 10^7 float32 points",
                lambda: (_spearman_case(10**7, device), None),
            ),
            (
                "sleep_1ms",
                "torch.cuda._sleep of 1 ms by eigenbench's calibrated cycle rate (SM cycles: "
                "its length moves with the clock)",
                _sleep_case,
            ),
            (
                "spin_1ms",
                "a kernel spinning 1 ms on the GPU's %globaltimer (CuPy; the independent truth)",
                _globaltimer_case,
            ),
        ]
    return [
        ("mul_4096", "torch.mul of 4096 float32", lambda: (_mul_case(4096, device), None)),
        (
            "eigvalsh_50x32x32",
            "torch.linalg.eigvalsh 50×32×32 float32",
            lambda: (_cpu_eigvalsh_case(), None),
        ),
        (
            "spearman_1e5",
            "eigenbench.ops.rank.spearman, 10^5 float32 points",
            lambda: (_spearman_case(10**5, device), None),
        ),
        (
            "busy_wait_1ms",
            "perf_counter busy-wait of 1 ms (the truth)",
            lambda: (busy_wait(KNOWN_S), KNOWN_S),
        ),
    ]


def make_cases(device: str) -> list[Case]:
    """Build every case and call it once (warm-up, and a check that it runs)."""
    cases = []
    for name, description, build in case_specs(device):
        case = Case(name, description)
        try:
            case.fn, case.truth_s = build()
            case.fn()
            _sync(device)
        except Exception as exc:
            case.fn, case.skipped = None, one_line(exc)
        cases.append(case)
    return cases


# ---------------------------------------------------------------------------- rounds


@dataclass
class Progress:
    """Where the interleaved rounds stand."""

    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    rounds: int = 0
    stopped: str | None = None


def _time_one(tool: Tool, case: Case, cell: Cell, device: str) -> None:
    assert tool.time is not None and case.fn is not None
    t0 = time.perf_counter()
    try:
        value = tool.time(case.fn)
        _sync(device)
    except Exception as exc:
        cell.error = one_line(exc)
        return
    finally:
        cell.wall_s.append(time.perf_counter() - t0)
    if math.isfinite(value):
        cell.values_s.append(value)


def run_rounds(
    cases: list[Case],
    tools: list[Tool],
    rounds: int,
    deadline: float,
    device: str,
    on_round: Callable[[Progress], None] = lambda _: None,
) -> Progress:
    """Up to `rounds` rounds, each case by each tool in a rotated order, until `deadline`
    (a `time.perf_counter()` value); a round cut short by the deadline is not counted."""
    runnable = [c for c in cases if c.fn is not None]
    timers = [t for t in tools if t.time is not None]
    progress = Progress({(c.name, t.name): Cell() for c in runnable for t in timers})
    last_round_s = 0.0
    for r in range(rounds):
        t_round = time.perf_counter()
        if not round_fits(t_round, last_round_s, deadline):
            progress.stopped = f"budget spent: {r} of {rounds} rounds ran"
            break
        for i, case in enumerate(runnable):
            for tool in rotated(timers, r + i):
                cell = progress.cells[(case.name, tool.name)]
                if cell.error is None and time.perf_counter() < deadline:
                    _time_one(tool, case, cell, device)
        if time.perf_counter() > deadline:
            progress.stopped = f"budget spent during round {r + 1}: {r} of {rounds} rounds ran"
            on_round(progress)
            break
        progress.rounds = r + 1
        last_round_s = time.perf_counter() - t_round
        on_round(progress)
    return progress


# ---------------------------------------------------------------------------- document


def environment(device: str) -> dict[str, Any]:
    """GPU, torch and triton versions; on the CPU, one torch thread for every tool, as
    torch.utils.benchmark.Timer uses by default (so the tools time the same thing)."""
    import torch

    if device == "cpu":
        torch.set_num_threads(1)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else None
    try:
        import triton

        triton_version: str | None = triton.__version__
    except Exception:
        triton_version = None
    return {
        "gpu": gpu,
        "torch": torch.__version__,
        "triton": triton_version,
        "torch_threads": torch.get_num_threads(),
    }


def _case_tool_entry(case: Case, tool: Tool, progress: Progress) -> dict[str, Any]:
    if case.skipped is not None:
        return {"available": False, "reason": f"case skipped: {case.skipped}"}
    return tool_entry(tool, progress.cells.get((case.name, tool.name)), case.truth_s)


def build_doc(
    device: str,
    env: dict[str, Any],
    requested: int,
    budget_s: float,
    cases: list[Case],
    tools: list[Tool],
    progress: Progress,
    errors: list[str],
) -> dict[str, Any]:
    """The peers JSON document."""
    case_docs = []
    for case in cases:
        case_docs.append(
            {
                "name": case.name,
                "description": case.description,
                "truth_s": case.truth_s,
                "skipped": case.skipped,
                "tools": {t.name: _case_tool_entry(case, t, progress) for t in tools},
            }
        )
    return {
        "schema": SCHEMA,
        "device": device,
        "gpu": env.get("gpu"),
        "torch": env.get("torch"),
        "triton": env.get("triton"),
        "python": platform.python_version(),
        "torch_threads": env.get("torch_threads"),
        "rounds": progress.rounds,
        "rounds_requested": requested,
        "budget_s": budget_s,
        "stopped_early": progress.stopped,
        "order": "interleaved: per round, per case, the tools in a rotated order",
        "cases": case_docs,
        "errors": errors,
    }


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)


def run_peers(device: str, rounds: int, budget_s: float, out: Path) -> dict[str, Any]:
    """Set up, run the rounds within `budget_s` (counted from now) and write `out`."""
    deadline = time.perf_counter() + budget_s
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    env = environment(device)
    cases = make_cases(device)
    call_s = per_call_seconds(
        max(0.0, deadline - time.perf_counter()), rounds, len(cases), len(TOOL_NAMES)
    )
    tools = make_tools(device, call_s)
    errors = [f"case {c.name}: {c.skipped}" for c in cases if c.skipped]
    errors += [f"tool {t.name}: {t.reason}" for t in tools if t.time is None and t.reason]

    def doc_of(progress: Progress) -> dict[str, Any]:
        return build_doc(device, env, rounds, budget_s, cases, tools, progress, list(errors))

    progress = run_rounds(
        cases, tools, rounds, deadline, device, on_round=lambda p: write_json(out, doc_of(p))
    )
    for (case, tool), cell in progress.cells.items():
        if cell.error:
            errors.append(f"{tool} on {case}: {cell.error}")
    doc = doc_of(progress)
    write_json(out, doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--out", required=True, type=Path, help="the JSON file to write")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=45.0, help="seconds for the whole script")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.budget <= 0:
        parser.error("--rounds must be ≥ 1 and --budget > 0")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("peers: --device cuda but torch sees no CUDA device", file=sys.stderr)
            return 4
    doc = run_peers(args.device, args.rounds, args.budget, args.out)
    print(
        f"peers: {doc['rounds']} of {args.rounds} rounds, {len(doc['errors'])} error(s) "
        f"→ {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
