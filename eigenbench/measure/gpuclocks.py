"""GPU clocks, throttle reasons, temperature and power, read through NVML while a case runs.

A daemon thread polls NVML (nvidia-ml-py, imported as `pynvml`) every 0.2 s (rarely enough
that its few GIL hand-offs hardly touch the samples) between entering and leaving a
`ClockWatch`, and once at each end, so the record shows the clocks
*during* sampling, not an idle reading before or after it. Each query is a library call of
microseconds (no `nvidia-smi` process), and the GPU is the one torch uses: found by its UUID,
so `CUDA_VISIBLE_DEVICES` renumbering does not matter.

`summarize_readings` and `throttle_warning` are pure; the tests drive them and the watch
with a fake NVML module.
"""

from __future__ import annotations

import functools
import statistics
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

# NVML's clocks-event (throttle) reason bits, as nvml.h defines them.
REASON_BITS: dict[str, int] = {
    "gpu_idle": 0x1,
    "applications_clocks_setting": 0x2,
    "sw_power_cap": 0x4,
    "hw_slowdown": 0x8,
    "sync_boost": 0x10,
    "sw_thermal_slowdown": 0x20,
    "hw_thermal_slowdown": 0x40,
    "hw_power_brake_slowdown": 0x80,
    "display_clock_setting": 0x100,
}
SLOWDOWNS = frozenset(
    {
        "sw_power_cap",
        "hw_slowdown",
        "sw_thermal_slowdown",
        "hw_thermal_slowdown",
        "hw_power_brake_slowdown",
    }
)
"""Reasons that mean the GPU ran slower than it could while being timed."""
NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0


@dataclass(frozen=True, slots=True)
class Reading:
    """One NVML poll of the GPU."""

    sm_mhz: float
    mem_mhz: float
    reasons: int
    temperature_c: float | None
    power_w: float | None


def reason_names(bits: int) -> list[str]:
    """The names of the reason bits set in `bits`, in NVML's order."""
    return [name for name, bit in REASON_BITS.items() if bits & bit]


def summarize_readings(readings: Sequence[Reading], max_sm_mhz: float | None) -> dict[str, Any]:
    """What the record keeps: clock ranges, the reasons seen, peak temperature and power.

    The SM clock range counts only readings taken while the GPU was busy (a GPU idle between
    samples may drop its clock without slowing any); all of them when none was busy.
    """
    busy = [r for r in readings if not r.reasons & REASON_BITS["gpu_idle"]] or list(readings)
    sm = [r.sm_mhz for r in busy]
    mem = [r.mem_mhz for r in readings]
    seen = 0
    for r in readings:
        seen |= r.reasons
    temps = [r.temperature_c for r in readings if r.temperature_c is not None]
    power = [r.power_w for r in readings if r.power_w is not None]
    return {
        "tool": "nvml",
        "readings": len(readings),
        "sm_mhz": {"min": min(sm), "median": statistics.median(sm), "max": max(sm)},
        "max_sm_mhz": max_sm_mhz,
        "mem_mhz": {"min": min(mem), "max": max(mem)},
        "reasons": [n for n in reason_names(seen) if n != "gpu_idle"],
        "temperature_c_max": max(temps) if temps else None,
        "power_w_max": max(power) if power else None,
    }


def throttle_warning(summary: dict[str, Any] | None, drop: float = 0.10) -> str | None:
    """A warning when the GPU slowed itself down while the case was timed, else None."""
    if not summary or not summary.get("readings"):
        return None
    slow = [n for n in summary["reasons"] if n in SLOWDOWNS]
    if slow:
        return f"GPU clocks were held down during the case: {', '.join(slow)}"
    sm = summary["sm_mhz"]
    if sm["min"] < (1 - drop) * sm["median"]:
        return (
            f"GPU SM clock fell to {sm['min']:.0f} MHz during the case "
            f"(median {sm['median']:.0f} MHz)"
        )
    return None


class ClockWatch:
    """Polls `read` every `interval_s` on a thread while entered; `summary()` afterwards."""

    def __init__(
        self,
        read: Callable[[], Reading],
        max_sm_mhz: float | None = None,
        interval_s: float = 0.2,
    ) -> None:
        self._read = read
        self.max_sm_mhz = max_sm_mhz
        self.interval_s = interval_s
        self.readings: list[Reading] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _poll(self) -> None:
        try:
            self.readings.append(self._read())
        except Exception as exc:  # a failing NVML query must not break the measurement
            self.error = f"{type(exc).__name__}: {exc}"
            self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._poll()

    def __enter__(self) -> ClockWatch:
        self._poll()
        self._thread = threading.Thread(target=self._loop, name="eigenbench-nvml", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.error is None:
            self._poll()

    def summary(self) -> dict[str, Any] | None:
        """The clocks seen, or a reason when NVML could not be read."""
        if not self.readings:
            return {"tool": "nvml", "readings": 0, "error": self.error}
        out = summarize_readings(self.readings, self.max_sm_mhz)
        if self.error:
            out["error"] = self.error
        return out


def _import_nvml() -> ModuleType:
    import pynvml  # nvidia-ml-py

    return pynvml


@functools.cache
def _nvml() -> ModuleType:
    nvml = _import_nvml()
    nvml.nvmlInit()
    return nvml


def _reasons(nvml: Any, handle: Any) -> int:
    query = (
        getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    )
    return int(query(handle))


def handle_for(nvml: Any, uuid: str | None, index: int) -> Any:
    """The NVML handle of torch's device: by UUID (immune to CUDA_VISIBLE_DEVICES), else index.

    torch gives the UUID without NVML's prefix: "GPU-" for a whole GPU, "MIG-" for a slice.
    """
    if not uuid:
        return nvml.nvmlDeviceGetHandleByIndex(index)
    if uuid.startswith(("GPU-", "MIG-")):
        return nvml.nvmlDeviceGetHandleByUUID(uuid)
    try:
        return nvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
    except Exception:  # not a whole GPU: a MIG slice
        return nvml.nvmlDeviceGetHandleByUUID(f"MIG-{uuid}")


def reader_for(nvml: Any, handle: Any) -> Callable[[], Reading]:
    """A zero-argument NVML poll of one GPU."""

    def optional(query: Callable[[], float]) -> float | None:
        try:
            return float(query())
        except Exception:  # temperature or power not exposed on this board
            return None

    def read() -> Reading:
        return Reading(
            sm_mhz=float(nvml.nvmlDeviceGetClockInfo(handle, NVML_CLOCK_SM)),
            mem_mhz=float(nvml.nvmlDeviceGetClockInfo(handle, NVML_CLOCK_MEM)),
            reasons=_reasons(nvml, handle),
            temperature_c=optional(
                lambda: nvml.nvmlDeviceGetTemperature(handle, NVML_TEMPERATURE_GPU)
            ),
            power_w=optional(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0),
        )

    return read


def torch_device_uuid(index: int) -> str | None:
    """torch's UUID of CUDA device `index` (as NVML knows it, less the `GPU-`), or None."""
    import torch

    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    return None if uuid is None else str(uuid)


def watch_current_gpu(interval_s: float = 0.2) -> ClockWatch | None:
    """A ClockWatch on the GPU torch is using now; None when NVML cannot be used."""
    import torch

    try:
        index = torch.cuda.current_device()
        nvml = _nvml()
        handle = handle_for(nvml, torch_device_uuid(index), index)
        max_sm = float(nvml.nvmlDeviceGetMaxClockInfo(handle, NVML_CLOCK_SM))
    except Exception:  # no GPU, no nvidia-ml-py, no driver library, or an unknown device
        return None
    return ClockWatch(reader_for(nvml, handle), max_sm, interval_s)


def nvml_status() -> str:
    """ "nvml" when GPU clocks can be read during cases, else why not (for the run's env)."""
    try:
        _nvml()
    except ImportError:
        return "unavailable: nvidia-ml-py is not installed (pip install nvidia-ml-py)"
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}: {exc}"
    return "nvml"


def driver_version() -> str | None:
    """The NVIDIA driver version through NVML, or None."""
    try:
        version = _nvml().nvmlSystemGetDriverVersion()
    except Exception:
        return None
    return version.decode() if isinstance(version, bytes) else str(version)
