"""This machine's measured peaks: dense matmul FLOP/s and streaming bandwidth per device and
dtype, timed by eigenbench's own sampler and kept once per machine in
`results/peaks/<machine_key>.json` (the roofs that records' `throughput` is judged against).

The arithmetic (`matmul_flops`, `copy_bytes`, `rate`) is pure; `measure_device` times; the
file functions keep what was measured. Datasheet peaks are about 2× what is reachable, so
the roofs are measured, not looked up.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from eigenbench.measure.clocks import clock_for
from eigenbench.measure.loop import MeasureOptions, measure

PEAK_DTYPES = ("float32", "float64")
MATMUL_N = {"cpu": 1024, "cuda": 4096}
"""Side of the square matrices multiplied: big enough to reach the compute roof."""
COPY_BYTES = {"cpu": 64 << 20, "cuda": 1 << 30}
"""Bytes of the buffer copied: far beyond the last-level cache (the L2 on a GPU)."""
PEAK_OPTIONS = MeasureOptions(warmup_s=0.05, min_samples=5, max_time_s=0.25, rel_ci_target=0.05)
"""Short budgets: four measurements per device, about 1.5 s on the CPU."""
DEFAULT_ROOT = Path("results/peaks")
ROOT_VARIABLE = "EIGENBENCH_PEAKS_DIR"
"""An environment variable naming another folder for the peaks files."""

Peaks = dict[str, dict[str, dict[str, float]]]
"""{device: {dtype: {"flop_per_s": …, "bytes_per_s": …}}}"""
MeasureDevice = Callable[[str, Iterable[str]], dict[str, dict[str, float]]]
"""(device, dtypes) -> {dtype: {"flop_per_s", "bytes_per_s"}}"""


def matmul_flops(n: int) -> float:
    """Floating-point operations of one n×n by n×n product: n² dot products of n multiply-adds."""
    return 2.0 * n**3


def copy_bytes(buffer_bytes: int) -> float:
    """Memory traffic of one copy of a buffer: read once, written once."""
    return 2.0 * buffer_bytes


def rate(amount: float, seconds: float) -> float:
    """`amount` per second; 0 when the time is not positive."""
    return amount / seconds if seconds > 0 else 0.0


def measure_device(device: str, dtypes: Iterable[str] = PEAK_DTYPES) -> dict[str, dict[str, float]]:
    """Time a dense matmul and a large copy per dtype on `device`; the fastest sample counts
    (a peak is what the machine can reach)."""
    return {
        dtype: {
            "flop_per_s": _matmul_rate(device, dtype),
            "bytes_per_s": _copy_rate(device, dtype),
        }
        for dtype in dtypes
    }


def _matmul_rate(device: str, dtype: str) -> float:
    import torch

    n, t = MATMUL_N[device], getattr(torch, dtype)
    a, b = (torch.randn(n, n, device=device, dtype=t) for _ in range(2))
    c = torch.empty(n, n, device=device, dtype=t)
    m = measure(lambda: torch.matmul(a, b, out=c), clock_for(device), PEAK_OPTIONS)
    return rate(matmul_flops(n), min(m.samples_s, default=0.0))


def _copy_rate(device: str, dtype: str) -> float:
    import torch

    t = getattr(torch, dtype)
    src = torch.ones(COPY_BYTES[device] // t.itemsize, device=device, dtype=t)
    dst = torch.empty_like(src)
    m = measure(lambda: dst.copy_(src), clock_for(device), PEAK_OPTIONS)
    return rate(copy_bytes(COPY_BYTES[device]), min(m.samples_s, default=0.0))


def peaks_root() -> Path:
    """Where the peaks files live: $EIGENBENCH_PEAKS_DIR, else results/peaks."""
    return Path(os.environ.get(ROOT_VARIABLE) or DEFAULT_ROOT)


def peaks_path(machine_key: str, root: Path | None = None) -> Path:
    return (root or peaks_root()) / f"{machine_key}.json"


def load_peaks(path: Path) -> Peaks:
    """The peaks kept in `path`; {} when it is absent or unreadable (they are measured again)."""
    try:
        doc = json.loads(path.read_text())
        peaks = doc["peaks"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return peaks if isinstance(peaks, dict) else {}


def save_peaks(path: Path, machine_key: str, peaks: Mapping[str, Any]) -> None:
    from eigenbench.results.files import write_atomic  # lazy: results is not needed to measure

    text = json.dumps({"machine_key": machine_key, "peaks": peaks}, indent=1)
    write_atomic(path, text + "\n")


def peaks_for(
    machine_key: str,
    devices: Iterable[str],
    *,
    remeasure: bool = False,
    root: Path | None = None,
    measure_fn: MeasureDevice | None = None,
) -> Peaks:
    """The peaks of `devices` on this machine: read from its peaks file, a device measured
    (and the file updated) when the file lacks it or `remeasure` asks."""
    path = peaks_path(machine_key, root)
    kept = load_peaks(path)
    measure_one = measure_fn or measure_device
    changed = False
    for device in devices:
        have = kept.get(device) or {}
        if remeasure or any(d not in have for d in PEAK_DTYPES):
            kept[device] = measure_one(device, PEAK_DTYPES)
            changed = True
    if changed:
        save_peaks(path, machine_key, kept)
    return {d: kept[d] for d in devices if d in kept}
