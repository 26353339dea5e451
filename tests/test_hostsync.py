"""Host-blocking verdicts on a simulated GPU timeline (virtual time, no GPU, no sleeping)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from eigenbench.measure.hostsync import detect_host_blocking, guard_seconds


class FakeGpu:
    """One in-order stream in virtual time: kernels queue behind each other."""

    def __init__(self) -> None:
        self.t = 0.0  # host time
        self.busy_until = 0.0  # when the stream drains

    def now(self) -> float:
        return self.t

    def queue(self, seconds: float) -> None:
        self.busy_until = max(self.busy_until, self.t) + seconds

    def synchronize(self) -> None:
        self.t = max(self.t, self.busy_until)

    def sleep(self, seconds: float) -> None:
        self.queue(seconds)

    def marker(self) -> _Marker:
        return _Marker(self, self.busy_until)

    @contextlib.contextmanager
    def sync_warnings(self) -> Iterator[list[str]]:
        yield []


class _Marker:
    def __init__(self, gpu: FakeGpu, at: float) -> None:
        self.gpu, self.at = gpu, at

    def query(self) -> bool:
        return self.gpu.t >= self.at


def call(gpu: FakeGpu, *, host_s: float, gpu_s: float, blocks: bool) -> Callable[[], None]:
    """A call that spends `host_s` launching `gpu_s` of work, then maybe synchronises."""

    def fn() -> None:
        gpu.t += host_s
        gpu.queue(gpu_s)
        if blocks:
            gpu.synchronize()

    return fn


@pytest.mark.parametrize(
    ("host_s", "gpu_s", "blocks"),
    [
        (1e-5, 1e-3, False),  # a batched solver: launch and return
        (0.2, 0.25, False),  # thousands of launches: the host is busy longer than 50 ms
        (0.8, 0.8, True),  # torch's per-matrix solver loop with its info check
        (1e-4, 2e-3, True),  # a short call that synchronises
    ],
)
def test_verdict_follows_the_synchronisation_not_the_host_time(
    host_s: float, gpu_s: float, blocks: bool
) -> None:
    gpu = FakeGpu()
    fn = call(gpu, host_s=host_s, gpu_s=gpu_s, blocks=blocks)
    for call_s in (gpu_s, None):  # measured time given, or one unguarded call measures it
        verdict = detect_host_blocking(fn, call_s=call_s, gpu=gpu, now=gpu.now)
        assert verdict["host_blocking"] is blocks
        ev = verdict["evidence"]
        assert ev["guard_kernel_s"] >= 2 * host_s
        assert ev["host_return_s"] == pytest.approx(
            ev["guard_kernel_s"] + gpu_s if blocks else host_s
        )


def test_a_fixed_50ms_guard_would_call_a_slow_launcher_blocking() -> None:
    """The fault this method fixes: host time alone over the guard read as blocking."""
    gpu = FakeGpu()
    fn = call(gpu, host_s=0.2, gpu_s=0.25, blocks=False)
    gpu.synchronize()
    gpu.sleep(0.05)
    marker = gpu.marker()
    fn()
    assert marker.query()  # what the old verdict used
    assert detect_host_blocking(fn, call_s=0.25, gpu=gpu, now=gpu.now)["host_blocking"] is False


def test_guard_grows_with_the_call() -> None:
    assert guard_seconds(0.0) == pytest.approx(0.05)
    assert guard_seconds(0.3) == pytest.approx(0.65)
    assert guard_seconds(-1.0) == pytest.approx(0.05)
