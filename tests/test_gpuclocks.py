"""GPU clocks read through NVML during a case: a fake NVML module stands in for the driver."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from eigenbench.measure import gpuclocks
from eigenbench.measure.gpuclocks import (
    ClockWatch,
    Reading,
    handle_for,
    reader_for,
    reason_names,
    summarize_readings,
    throttle_warning,
)


class FakeNvml:
    """The calls eigenbench makes of nvidia-ml-py, over two GPUs known by UUID."""

    def __init__(self, *, renamed: bool = True) -> None:
        self.handles = {"GPU-aaaa": "h0", "GPU-bbbb": "h1", "MIG-cccc": "h2"}
        self.sm = {"h0": 1980.0, "h1": 1755.0, "h2": 1410.0}
        self.reasons = 0x1
        self.renamed = renamed
        if not renamed:  # NVML before 12.x only has the "throttle reasons" name
            self.nvmlDeviceGetCurrentClocksThrottleReasons = self._reasons

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:
        if uuid not in self.handles:
            raise RuntimeError("NVML_ERROR_NOT_FOUND")
        return self.handles[uuid]

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"h{index}"

    def nvmlDeviceGetClockInfo(self, handle: str, kind: int) -> float:
        return self.sm[handle] if kind == gpuclocks.NVML_CLOCK_SM else 2619.0

    def _reasons(self, handle: str) -> int:
        return self.reasons

    def __getattr__(self, name: str) -> Any:
        if name == "nvmlDeviceGetCurrentClocksEventReasons" and self.__dict__["renamed"]:
            return self._reasons
        raise AttributeError(name)

    def nvmlDeviceGetTemperature(self, handle: str, sensor: int) -> int:
        return 61

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")  # some boards do not report power


def test_the_device_is_found_by_uuid_not_by_index() -> None:
    """With CUDA_VISIBLE_DEVICES=1, torch's device 0 is NVML's device 1."""
    nvml = FakeNvml()
    assert handle_for(nvml, "bbbb", 0) == "h1"
    assert handle_for(nvml, "GPU-aaaa", 1) == "h0"
    assert handle_for(nvml, None, 1) == "h1"  # no UUID from torch: the index is all there is
    assert handle_for(nvml, "cccc", 0) == "h2"  # a MIG slice


@pytest.mark.parametrize("renamed", [True, False])
def test_a_reading_has_clocks_reasons_temperature_and_no_power(renamed: bool) -> None:
    nvml = FakeNvml(renamed=renamed)
    assert hasattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons") is renamed
    nvml.reasons = 0x1 | 0x20
    r = reader_for(nvml, "h1")()
    assert (r.sm_mhz, r.mem_mhz, r.temperature_c, r.power_w) == (1755.0, 2619.0, 61.0, None)
    assert reason_names(r.reasons) == ["gpu_idle", "sw_thermal_slowdown"]


def _reading(sm: float, reasons: int = 0) -> Reading:
    return Reading(sm, 2619.0, reasons, 55.0, 350.0)


def test_summary_and_warning_of_a_steady_gpu() -> None:
    s = summarize_readings([_reading(1980.0, 0x1), _reading(1965.0), _reading(1980.0)], 1980.0)
    assert s["readings"] == 3 and s["sm_mhz"] == {"min": 1965.0, "median": 1972.5, "max": 1980.0}
    assert s["reasons"] == []  # idle between samples is no slowdown
    assert throttle_warning(s) is None


def test_idle_readings_do_not_count_as_a_clock_drop() -> None:
    idle = 0x1
    s = summarize_readings([_reading(1980.0)] * 4 + [_reading(345.0, idle)], 1980.0)
    assert s["sm_mhz"]["min"] == 1980.0 and throttle_warning(s) is None


def test_power_capping_or_a_clock_drop_is_a_warning() -> None:
    capped = summarize_readings([_reading(1980.0), _reading(1900.0, 0x4)], 1980.0)
    assert "sw_power_cap" in (throttle_warning(capped) or "")
    dropped = summarize_readings([_reading(1980.0)] * 4 + [_reading(1300.0)], 1980.0)
    assert "1300" in (throttle_warning(dropped) or "")
    assert throttle_warning(None) is None


def test_the_watch_polls_on_a_thread_while_entered() -> None:
    polls: list[float] = []

    def read() -> Reading:
        polls.append(1.0)
        return _reading(1980.0)

    import time

    watch = ClockWatch(read, max_sm_mhz=1980.0, interval_s=0.001)
    with watch:
        deadline = time.monotonic() + 30
        while len(polls) < 5 and time.monotonic() < deadline:  # the thread polls by itself
            time.sleep(0.001)
    assert len(polls) >= 5
    n = len(polls)
    assert watch.summary()["readings"] == n  # type: ignore[index]
    assert len(polls) == n  # nothing polls after the exit


def test_a_failing_nvml_query_does_not_break_the_case() -> None:
    def read() -> Reading:
        raise RuntimeError("NVML_ERROR_GPU_IS_LOST")

    with ClockWatch(read) as watch:
        pass
    assert watch.summary() == {
        "tool": "nvml",
        "readings": 0,
        "error": "RuntimeError: NVML_ERROR_GPU_IS_LOST",
    }


def test_without_nvidia_ml_py_there_is_no_watch_and_the_env_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gpuclocks._nvml.cache_clear()
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    try:
        assert "nvidia-ml-py is not installed" in gpuclocks.nvml_status()
        assert gpuclocks.driver_version() is None
        assert gpuclocks.watch_current_gpu() is None  # no GPU here either: never raises
    finally:
        gpuclocks._nvml.cache_clear()


def test_cusolver_version_is_read_from_cupys_private_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """CuPy has `cusolver._getVersion()` (a tuple) and no public `getVersion`."""
    from eigenbench.env import cusolver_version

    libs = types.ModuleType("cupy_backends.cuda.libs")
    cusolver = types.ModuleType("cupy_backends.cuda.libs.cusolver")
    cusolver._getVersion = lambda: (11, 7, 5)  # type: ignore[attr-defined]
    libs.cusolver = cusolver  # type: ignore[attr-defined]
    for name, module in (
        ("cupy_backends", types.ModuleType("cupy_backends")),
        ("cupy_backends.cuda", types.ModuleType("cupy_backends.cuda")),
        ("cupy_backends.cuda.libs", libs),
        ("cupy_backends.cuda.libs.cusolver", cusolver),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    sys.modules["cupy_backends"].cuda = sys.modules["cupy_backends.cuda"]  # type: ignore[attr-defined]
    sys.modules["cupy_backends.cuda"].libs = libs  # type: ignore[attr-defined]
    assert cusolver_version() == "11.7.5"
    del cusolver._getVersion  # a CuPy without it (or without its CUDA libraries): no guess
    assert cusolver_version() is None
