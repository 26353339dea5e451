"""pytest plugin: a `cuda_benchmark` fixture that gives pytest-benchmark true GPU times.

pytest-benchmark times each round with a host clock, which for asynchronous CUDA work measures
launch time, not device time. `cuda_benchmark` times every call itself — CUDA events for work
on a GPU, `perf_counter` otherwise — and feeds the result to `benchmark.pedantic` through a
virtual clock that advances only by the measured time. Stats, `--benchmark-json`, saving,
`--benchmark-compare` and `--benchmark-compare-fail` then all work on the measured values.

    def test_eigh(cuda_benchmark):
        a = torch.randn(64, 128, 128, device="cuda")
        cuda_benchmark(torch.linalg.eigh, a, rounds=30, warmup_rounds=3)

`device="auto"` (the default) uses CUDA events when an argument is a CUDA tensor or a CuPy
array (directly or inside a tuple, list or dict), `perf_counter` otherwise: pure CPU work on a
GPU machine is not timed as an empty event pair. Work on the GPU whose arguments are not arrays
(a kernel launched from sizes, a closure over CUDA tensors) needs
`@pytest.mark.eigenbench(device="cuda")`.

Loaded through the `pytest11` entry point; it imports nothing heavy (no torch, no
pytest-benchmark) until a test asks for the fixture.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import pytest


class VirtualClock:
    """A zero-argument clock that moves only when `advance` is called (seconds)."""

    def __init__(self, name: str) -> None:
        self.t = 0.0
        self.__name__ = name  # pytest-benchmark writes `module.__name__` as options.timer

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def __repr__(self) -> str:
        return f"VirtualClock({self.__name__!r})"


def _on_gpu(value: Any, depth: int = 2) -> bool:
    """True for a CUDA tensor or a CuPy array, also inside a tuple, list or dict."""
    torch = sys.modules.get("torch")  # code that made CUDA tensors has imported torch already
    if torch is not None and isinstance(value, torch.Tensor):
        return bool(value.is_cuda)
    if type(value).__module__.split(".")[0] == "cupy" and hasattr(value, "device"):
        return True
    if depth > 0 and isinstance(value, (tuple, list)):
        return any(_on_gpu(v, depth - 1) for v in value)
    if depth > 0 and isinstance(value, dict):
        return any(_on_gpu(v, depth - 1) for v in value.values())
    return False


def choose_clock(device: str = "auto", args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
    """An eigenbench Clock (`time(fn, number) -> seconds`): CUDA events or perf_counter.

    "auto" picks events only when one of `args`/`kwargs` lives on the GPU; otherwise
    perf_counter, fenced by `torch.cuda.synchronize` once this process has used CUDA.
    """
    from eigenbench.measure.clocks import CudaEventClock, PerfCounterClock

    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"cuda_benchmark: device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda":
        import torch  # CuPy-only tests may not have imported it; its events time CuPy work too

        if not torch.cuda.is_available():  # a GPU benchmark on a machine without one: skipped
            pytest.skip("cuda_benchmark(device='cuda'): torch sees no CUDA device")
        return CudaEventClock()
    if device == "auto" and (_on_gpu(args) or _on_gpu(dict(kwargs or {}))):
        return CudaEventClock()
    loaded = sys.modules.get("torch")
    if device == "auto" and loaded is not None and loaded.cuda.is_initialized():
        return PerfCounterClock(sync=loaded.cuda.synchronize)  # GPU work hidden in a closure
    return PerfCounterClock()


class CudaBenchmark:
    """Callable wrapper of pytest-benchmark's fixture; see the module docstring."""

    def __init__(self, benchmark: Any, *, clock: Any = None, device: str = "auto") -> None:
        self.benchmark = benchmark
        self._clock = clock
        self.device = device

    @property
    def extra_info(self) -> dict[str, Any]:
        return self.benchmark.extra_info

    def __call__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        rounds: int = 20,
        warmup_rounds: int = 3,
        iterations: int = 1,
        **kwargs: Any,
    ) -> Any:
        """Time `fn(*args, **kwargs)` for `rounds` rounds; return its last result."""
        clock = self._clock if self._clock is not None else choose_clock(self.device, args, kwargs)
        name = getattr(clock, "name", type(clock).__name__)
        virtual = VirtualClock(f"eigenbench_{name}")
        result: list[Any] = [None]

        def call() -> None:
            result[0] = fn(*args, **kwargs)

        def target() -> Any:
            virtual.advance(checked_seconds(clock.time(call, 1), name))
            return result[0]

        if not hasattr(self.benchmark, "_timer"):
            raise RuntimeError(
                "cuda_benchmark: this pytest-benchmark version has no BenchmarkFixture._timer; "
                "eigenbench needs pytest-benchmark >= 4"
            )
        # pytest-benchmark reads `_timer` when it builds each round's runner, so the virtual
        # clock is what it subtracts; there is no public per-call timer argument.
        self.benchmark._timer = virtual
        self.benchmark.extra_info.setdefault("eigenbench_timer", name)
        peak = _PeakMemory(name == "cuda_event")
        try:
            with peak:
                out = self.benchmark.pedantic(
                    target, rounds=rounds, warmup_rounds=warmup_rounds, iterations=iterations
                )
        except BaseException:  # pytest.fail too: no half-filled stats for the session's end
            self.benchmark.has_error = True
            raise
        if peak.bytes is not None:
            self.benchmark.extra_info.setdefault("peak_bytes", peak.bytes)
        return out


def checked_seconds(value: Any, clock: str) -> float:
    """One call's measured seconds, or the test fails with a clear line (NaN, inf or negative
    times would otherwise reach pytest-benchmark's statistics and end the whole session)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        pytest.fail(
            f"cuda_benchmark: clock {clock!r} measured {value!r} s for one call "
            "(expected a finite number of seconds >= 0)",
            pytrace=False,
        )
    return seconds


class _PeakMemory:
    """Peak CUDA memory allocated above the starting point, when timing on CUDA."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bytes: int | None = None
        self._start = 0

    def __enter__(self) -> _PeakMemory:
        if self.enabled:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled and exc[0] is None:
            import torch

            torch.cuda.synchronize()
            self.bytes = int(torch.cuda.max_memory_allocated() - self._start)


@pytest.fixture
def cuda_benchmark(request: pytest.FixtureRequest) -> CudaBenchmark:
    """pytest-benchmark's `benchmark`, timed by CUDA events for GPU arguments, else perf_counter.

    `@pytest.mark.eigenbench(device="cpu"|"cuda"|"auto", clock=obj)` overrides the choice.
    """
    try:
        benchmark = request.getfixturevalue("benchmark")
    except pytest.FixtureLookupError:
        pytest.skip("cuda_benchmark needs pytest-benchmark; pip install pytest-benchmark")
    marker = request.node.get_closest_marker("eigenbench")
    options = dict(marker.kwargs) if marker is not None else {}
    return CudaBenchmark(
        benchmark, clock=options.get("clock"), device=options.get("device", "auto")
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "eigenbench(device='auto', clock=None): options of the cuda_benchmark fixture",
    )
