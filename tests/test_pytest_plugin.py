"""pytest plugin: `cuda_benchmark` feeds its own timings to pytest-benchmark's stored stats."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
HAS_PYTEST_BENCHMARK = importlib.util.find_spec("pytest_benchmark") is not None
needs_pytest_benchmark = pytest.mark.skipif(
    not HAS_PYTEST_BENCHMARK, reason="needs pytest-benchmark (pip install pytest-benchmark)"
)


def _plugin_args() -> list[str]:
    """`-p eigenbench.pytest_plugin` unless the installed entry point already loads it."""
    eps = importlib.metadata.entry_points(group="pytest11")
    if any(ep.value == "eigenbench.pytest_plugin" for ep in eps):
        return []
    return ["-p", "eigenbench.pytest_plugin"]


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose subprocesses can import eigenbench from this checkout."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return pytester


def _run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    quiet = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")  # hypothesis: +5 s
    return pytester.runpytest_inprocess(*_plugin_args(), *quiet, *args)


def test_plugin_imports_cheaply():
    code = (
        "import sys, eigenbench.pytest_plugin; "
        "print(sorted(m for m in ('torch', 'pytest_benchmark', 'scipy', 'numpy') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


FAKE_CLOCK_TEST = """
import pytest

DURATIONS = [0.5, 0.25] + [0.001 * (i + 1) for i in range(7)]  # 2 warm-ups, then 7 rounds


class FakeClock:
    name = "fake"

    def __init__(self):
        self.calls = 0

    def time(self, fn, number):
        fn()
        value = DURATIONS[self.calls]
        self.calls += 1
        return value


CALLS = []


@pytest.mark.eigenbench(clock=FakeClock())
def test_fed(cuda_benchmark):
    result = cuda_benchmark(lambda x: CALLS.append(x) or x * 2, 21, rounds=7, warmup_rounds=2)
    assert result == 42
    assert len(CALLS) == 9
"""


@needs_pytest_benchmark
def test_measured_values_are_what_pytest_benchmark_stores(inner):
    inner.makepyfile(test_fed=FAKE_CLOCK_TEST)
    result = _run_inner(inner, "--benchmark-json=out.json")
    result.assert_outcomes(passed=1)
    doc = json.loads((inner.path / "out.json").read_text())
    (bench,) = doc["benchmarks"]
    stats = bench["stats"]
    expected = [0.001 * (i + 1) for i in range(7)]
    assert stats["rounds"] == 7
    assert stats["data"] == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert stats["min"] == pytest.approx(0.001)
    assert stats["max"] == pytest.approx(0.007)
    assert stats["median"] == pytest.approx(0.004)
    assert stats["mean"] == pytest.approx(0.004)
    assert "eigenbench_fake" in bench["options"]["timer"]
    assert bench["extra_info"]["eigenbench_timer"] == "fake"


CPU_TEST = """
import time


def busy(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def test_cpu(cuda_benchmark):
    t0 = time.perf_counter()
    result = cuda_benchmark(busy, 20_000, rounds=12, warmup_rounds=1)
    wall = time.perf_counter() - t0
    assert result == sum(i * i for i in range(20_000))
    cuda_benchmark.extra_info["wall_s"] = wall
"""


@needs_pytest_benchmark
def test_cpu_path_times_with_perf_counter(inner):
    inner.makepyfile(test_cpu=CPU_TEST)
    result = _run_inner(inner, "--benchmark-json=out.json")
    result.assert_outcomes(passed=1)
    (bench,) = json.loads((inner.path / "out.json").read_text())["benchmarks"]
    stats = bench["stats"]
    assert stats["rounds"] == 12 and len(stats["data"]) == 12
    assert all(v > 0 for v in stats["data"])
    # the 13 timed calls cannot take longer than the wall time around them
    assert sum(stats["data"]) < bench["extra_info"]["wall_s"]
    assert bench["extra_info"]["eigenbench_timer"] == "perf_counter"
    assert "eigenbench_perf_counter" in bench["options"]["timer"]


@needs_pytest_benchmark
def test_benchmark_disable_runs_once(inner):
    inner.makepyfile(test_fed=FAKE_CLOCK_TEST.replace("len(CALLS) == 9", "len(CALLS) == 1"))
    _run_inner(inner, "--benchmark-disable").assert_outcomes(passed=1)


def test_without_pytest_benchmark_the_fixture_skips_and_pytest_works(inner):
    inner.makepyfile(
        test_plain="""
def test_plain():
    assert 1 + 1 == 2


def test_fixture(cuda_benchmark):
    cuda_benchmark(len, [1, 2])
"""
    )
    result = _run_inner(inner, "-p", "no:benchmark", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs pytest-benchmark*"])


def test_clock_choice():
    from eigenbench.pytest_plugin import choose_clock

    assert choose_clock("cpu").name == "perf_counter"
    with pytest.raises(ValueError, match="device"):
        choose_clock("tpu")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(pytest.skip.Exception, match="no CUDA device"):
            choose_clock("cuda")
    assert choose_clock("auto").name == "perf_counter"


class FakeCudaTensor(__import__("torch").Tensor):
    """A CPU tensor that says it is on CUDA, so the auto choice is tested without a GPU."""

    @property
    def is_cuda(self) -> bool:  # type: ignore[override]
        return True


def test_auto_uses_events_only_for_gpu_arguments(monkeypatch):
    """On a GPU machine, CPU work under device="auto" must stay on perf_counter."""
    import torch

    from eigenbench.measure import clocks
    from eigenbench.pytest_plugin import choose_clock

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(clocks.CudaEventClock, "__init__", lambda self, *a, **k: None)
    cpu = torch.ones(3)
    assert choose_clock("auto", (cpu, 5), {"k": 2}).name == "perf_counter"
    assert choose_clock("auto", ()).name == "perf_counter"
    gpu = torch.ones(3).as_subclass(FakeCudaTensor)
    assert choose_clock("auto", (gpu,)).name == "cuda_event"
    assert choose_clock("auto", ((cpu, gpu),)).name == "cuda_event"
    assert choose_clock("auto", (), {"a": {"x": gpu}}).name == "cuda_event"


def test_auto_fences_cpu_timing_once_the_process_uses_cuda(monkeypatch):
    """A closure over CUDA tensors has no GPU argument: perf_counter, but synchronised."""
    import torch

    from eigenbench.pytest_plugin import choose_clock

    syncs: list[str] = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: syncs.append("sync"))
    clock = choose_clock("auto", (3,))
    assert clock.name == "perf_counter"
    clock.time(lambda: syncs.append("call"), 2)
    assert syncs == ["sync", "call", "call", "sync"]
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    assert choose_clock("auto", (3,)).sync is None


GPU_TEST = """
import pytest
import torch


@pytest.mark.eigenbench(device="cuda")  # the kernel is launched from an int: say it is GPU work
def test_gpu(cuda_benchmark):
    a = torch.randn(256, 256, device="cuda")
    cycles = 20_000_000
    cuda_benchmark(torch.cuda._sleep, cycles, rounds=5, warmup_rounds=1)
    # direct event timing of the same kernel, for comparison
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); torch.cuda._sleep(cycles); e.record(); e.synchronize()
    cuda_benchmark.extra_info["direct_s"] = s.elapsed_time(e) / 1e3
    del a
"""


@pytest.mark.gpu
@needs_pytest_benchmark
def test_gpu_path_stores_cuda_event_times(inner):
    inner.makepyfile(test_gpu=GPU_TEST)
    result = _run_inner(inner, "--benchmark-json=out.json")
    result.assert_outcomes(passed=1)
    (bench,) = json.loads((inner.path / "out.json").read_text())["benchmarks"]
    assert bench["extra_info"]["eigenbench_timer"] == "cuda_event"
    assert "peak_bytes" in bench["extra_info"]
    direct = bench["extra_info"]["direct_s"]
    # _sleep returns at once on the host; only device timing sees its duration
    assert bench["stats"]["median"] == pytest.approx(direct, rel=0.1)


NAN_CLOCK_TEST = """
import math
import pytest


class NanClock:
    name = "nan"

    def __init__(self, value):
        self.value = value

    def time(self, fn, number):
        fn()
        return self.value


@pytest.mark.eigenbench(clock=NanClock(math.nan))
def test_nan(cuda_benchmark):
    cuda_benchmark(lambda: 1, rounds=3, warmup_rounds=0)


@pytest.mark.eigenbench(clock=NanClock(math.inf))
def test_inf(cuda_benchmark):
    cuda_benchmark(lambda: 1, rounds=3, warmup_rounds=0)


def test_after(cuda_benchmark):  # the session goes on: a later benchmark still measures
    cuda_benchmark(lambda: 1, rounds=3, warmup_rounds=0)
"""


@needs_pytest_benchmark
def test_a_nan_or_inf_clock_value_fails_that_test_not_the_session(inner):
    inner.makepyfile(test_nan=NAN_CLOCK_TEST)
    result = _run_inner(inner, "--benchmark-json=out.json")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*clock 'nan' measured nan s for one call*"])
    assert "INTERNALERROR" not in result.stdout.str()


GPU_ONLY_TEST = """
import pytest


@pytest.mark.eigenbench(device="cuda")
def test_gpu_only(cuda_benchmark):
    cuda_benchmark(lambda: 1, rounds=3, warmup_rounds=0)
"""


@needs_pytest_benchmark
def test_device_cuda_without_a_gpu_is_skipped_not_failed(inner, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    inner.makepyfile(test_gpu_only=GPU_ONLY_TEST)
    _run_inner(inner).assert_outcomes(skipped=1)
