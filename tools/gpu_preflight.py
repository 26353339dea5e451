"""Step 1 of `make gpu-check`: is there a CUDA device, and do eigenbench's CUDA paths work?

Writes one JSON file, rewritten after every section so that a kill keeps what was learnt:
`cuda` and `reason` first, then package versions, the device (torch and NVML), the L2 flush
buffer, a CuPy smoke test, the torch↔CuPy bridge (result, warnings, host overhead of
`cupy_on_torch_stream`), whether exact Spearman on CUDA synchronises the host, and
eigvalsh/eigh timings by CUDA events. Every sub-check is guarded: a failure is one line in
`errors`, never fatal. Without torch or without a CUDA device it stops after the first section.

    python3 tools/gpu_preflight.py --out results/gpu-check/preflight.json

Needs eigenbench importable for the bridge and Spearman checks (the repository root is put
on sys.path). Exit 0 whatever it finds; 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCHEMA = "eigenbench.preflight/1"
REPO = Path(__file__).resolve().parents[1]

DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "cupy": ("cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy"),
    "triton": ("triton", "pytorch-triton"),
    "numpy": ("numpy",),
    "scipy": ("scipy",),
    "hypothesis": ("hypothesis",),
    "pytest": ("pytest",),
    "pytest_benchmark": ("pytest-benchmark",),
    "nvidia-ml-py": ("nvidia-ml-py", "pynvml"),
    "rich": ("rich",),
    "matplotlib": ("matplotlib",),
    "jinja2": ("jinja2",),
}

TIMING_LIMIT_S = 20.0
"""The timings section starts no new timing after this long."""
TIMING_REPS = 5
ENTRY_LIMIT_S = 4.0
"""One timing entry stops repeating after this long."""
RANK_POINTS = 10**7
FALLBACK_L2_BYTES = 256 * 1024 * 1024

# (op, backend, batch, n), most telling first: the timings section may stop early.
TIMING_CASES: tuple[tuple[str, str, int, int], ...] = (
    ("eigvalsh", "torch", 500, 100),
    ("eigvalsh", "cupy", 500, 100),
    ("eigvalsh", "torch", 500, 32),
    ("eigvalsh", "torch", 500, 33),
    ("eigvalsh", "torch", 1, 32),
    ("eigvalsh", "torch", 1, 33),
    ("eigh", "torch", 500, 32),
    ("eigh", "torch", 500, 33),
)


def one_line(exc: BaseException) -> str:
    """`Type: first line of the message`, at most 300 characters."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def timing_label(op: str, backend: str, batch: int, n: int) -> str:
    return f"{backend}.{op} {batch}x{n}x{n} float32"


class Report:
    """The JSON document being built; saved atomically after every section."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.doc: dict[str, Any] = {
            "schema": SCHEMA,
            "cuda": None,
            "reason": None,
            "python": platform.python_version(),
            "executable": sys.executable,
            "errors": [],
            "section_seconds": {},
        }
        self.t0 = time.perf_counter()

    def error(self, where: str, message: str) -> None:
        self.doc["errors"].append(f"{where}: {message}")

    def save(self) -> None:
        self.doc["elapsed_s"] = round(time.perf_counter() - self.t0, 3)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(self.doc, indent=1, default=str) + "\n")
        os.replace(tmp, self.path)

    def section(self, name: str, fn: Callable[[Report], Any]) -> None:
        """Run one guarded sub-check and store its result under `name`."""
        t0 = time.perf_counter()
        try:
            self.doc[name] = fn(self)
        except Exception as exc:
            self.error(name, one_line(exc))
            self.doc[name] = {"error": one_line(exc)}
        finally:
            self.doc["section_seconds"][name] = round(time.perf_counter() - t0, 3)
            self.save()


# ---------------------------------------------------------------------------- sections


def cuda_status() -> tuple[bool, str | None, dict[str, Any]]:
    """(CUDA usable?, why not, torch facts): the first thing the orchestrator reads."""
    try:
        import torch
    except Exception as exc:
        return False, f"torch cannot be imported ({one_line(exc)})", {"torch": None}
    facts: dict[str, Any] = {"torch": torch.__version__, "torch_cuda": torch.version.cuda}
    try:
        available = bool(torch.cuda.is_available())
    except Exception as exc:
        return False, f"torch.cuda.is_available() raised {one_line(exc)}", facts
    if not available:
        build = " (torch is a CPU-only build)" if torch.version.cuda is None else ""
        return False, f"torch.cuda.is_available() is False{build}", facts
    facts["device_count"] = torch.cuda.device_count()
    return True, None, facts


def distribution_version(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def versions(_: Report) -> dict[str, Any]:
    """Installed versions (package metadata, nothing imported) and torch's CUDA."""
    found: dict[str, Any] = {"python": platform.python_version()}
    found.update({label: distribution_version(names) for label, names in DISTRIBUTIONS.items()})
    try:
        import torch

        found["torch"] = torch.__version__
        found["torch_cuda"] = torch.version.cuda
    except Exception:
        pass
    return found


def gpu_info(_: Report) -> dict[str, Any]:
    import torch

    p = torch.cuda.get_device_properties(0)
    l2 = int(getattr(p, "L2_cache_size", 0) or 0)
    return {
        "name": p.name,
        "capability": f"{p.major}.{p.minor}",
        "total_memory_bytes": int(p.total_memory),
        "l2_cache_bytes": l2 or None,
        "sm_count": int(p.multi_processor_count),
        "device_count": torch.cuda.device_count(),
        "cuda_runtime": torch.version.cuda,
    }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def nvml_info(_: Report) -> dict[str, Any]:
    """Driver and board facts from NVML (nvidia-ml-py), GPU 0."""
    import pynvml

    pynvml.nvmlInit()
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        cuda_driver = int(pynvml.nvmlSystemGetCudaDriverVersion())
        info: dict[str, Any] = {
            "driver": _text(pynvml.nvmlSystemGetDriverVersion()),
            "cuda_driver": f"{cuda_driver // 1000}.{cuda_driver % 1000 // 10}",
            "name": _text(pynvml.nvmlDeviceGetName(handle)),
        }
        for key, call in (
            ("sm_clock_max_mhz", lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, 1)),
            ("power_limit_w", lambda: pynvml.nvmlDeviceGetPowerManagementLimit(handle) / 1000),
            ("temperature_c", lambda: pynvml.nvmlDeviceGetTemperature(handle, 0)),
        ):
            try:
                info[key] = call()
            except Exception as exc:
                info[key] = f"unavailable: {one_line(exc)}"
        return info
    finally:
        pynvml.nvmlShutdown()


def l2_flush(_: Report) -> dict[str, Any]:
    """Allocate and zero a buffer twice the L2 size, as eigenbench's L2 flush does."""
    import torch

    props = torch.cuda.get_device_properties(0)
    l2 = int(getattr(props, "L2_cache_size", 0) or 0) or FALLBACK_L2_BYTES
    buf = torch.empty(2 * l2 // 4, dtype=torch.int32, device="cuda")
    ms = _event_ms(buf.zero_, reps=3)
    del buf
    return {"ok": True, "bytes": 2 * l2, "l2_cache_bytes": l2, "flush_ms": statistics.median(ms)}


def _sym_numpy(batch: int, n: int) -> Any:
    import numpy as np

    a = np.random.default_rng(0).standard_normal((batch, n, n)).astype(np.float32)
    return (a + a.transpose(0, 2, 1)) / 2


def _sym_torch(batch: int, n: int) -> Any:
    import torch

    gen = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(batch, n, n, device="cuda", generator=gen)
    return (a + a.mT) / 2


def cupy_smoke(report: Report) -> dict[str, Any]:
    """An elementwise op and a small batched eigvalsh in CuPy, checked against NumPy."""
    import cupy
    import numpy as np

    x = cupy.arange(1024, dtype=cupy.float32)
    elementwise_ok = bool(
        np.array_equal(cupy.asnumpy(x * 2 + 1), np.arange(1024, dtype=np.float32) * 2 + 1)
    )
    a = _sym_numpy(8, 16)
    w = cupy.asnumpy(cupy.linalg.eigvalsh(cupy.asarray(a)))
    ref = np.linalg.eigvalsh(a.astype(np.float64))
    err = float(np.max(np.abs(w - ref)))
    eig_ok = err <= 1e-4 * max(1.0, float(np.max(np.abs(ref))))
    if not elementwise_ok:
        report.error("cupy", "elementwise result differs from NumPy")
    if not eig_ok:
        report.error("cupy", f"eigvalsh differs from NumPy by {err:.3g}")
    return {
        "version": cupy.__version__,
        "runtime_version": int(cupy.cuda.runtime.runtimeGetVersion()),
        "driver_version": int(cupy.cuda.runtime.driverGetVersion()),
        "elementwise_ok": elementwise_ok,
        "eigvalsh_max_abs_err": err,
        "eigvalsh_ok": eig_ok,
    }


def _warning_lines(caught: list[warnings.WarningMessage]) -> list[str]:
    lines = [f"{w.category.__name__}: {str(w.message).strip().splitlines()[0]}" for w in caught]
    return sorted(set(lines))


def stream_context_overhead_s(calls: int = 200, blocks: int = 5) -> float:
    """Median host seconds of one empty `with cupy_on_torch_stream():`."""
    from eigenbench.ops.cupy_bridge import cupy_on_torch_stream

    for _ in range(10):
        with cupy_on_torch_stream():
            pass
    per_call = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        for _ in range(calls):
            with cupy_on_torch_stream():
                pass
        per_call.append((time.perf_counter() - t0) / calls)
    return statistics.median(per_call)


def bridge_check(report: Report) -> dict[str, Any]:
    """`cupy_eigvalsh` on a CUDA tensor against torch, with the warnings it raised."""
    import torch

    from eigenbench.ops.cupy_bridge import cupy_eigvalsh

    a = _sym_torch(16, 32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        w = cupy_eigvalsh(a)  # first call: imports CuPy, loads cuSOLVER
        w = cupy_eigvalsh(a)
        torch.cuda.synchronize()
    ref = torch.linalg.eigvalsh(a)
    err = float((w - ref).abs().max())
    ok = err <= 1e-4 * max(1.0, float(ref.abs().max()))
    if not ok:
        report.error("bridge", f"cupy_eigvalsh differs from torch.linalg.eigvalsh by {err:.3g}")
    lines = _warning_lines(caught)
    return {
        "ok": ok,
        "max_abs_err": err,
        "result": {"device": str(w.device), "dtype": str(w.dtype), "shape": list(w.shape)},
        "warning_count": len(caught),
        "warnings": lines[:10],
        "stream_context_overhead_us": stream_context_overhead_s() * 1e6,
    }


def rank_sync_check(_: Report) -> dict[str, Any]:
    """Exact Spearman on 10⁷ float32 CUDA points under sync-debug mode "error"."""
    import torch

    from eigenbench.ops.rank import spearman

    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.rand(RANK_POINTS, device="cuda", generator=gen)
    y = x + 0.5 * torch.rand(RANK_POINTS, device="cuda", generator=gen)
    spearman(x, y)  # warm-up outside the debug mode: one-time set-up is not the question
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    previous = torch.cuda.get_sync_debug_mode()
    error = None
    rho = None
    try:
        torch.cuda.set_sync_debug_mode("error")
        start.record()
        rho = spearman(x, y)
        end.record()
    except RuntimeError as exc:
        error = " ".join(str(exc).split())[:500]
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    torch.cuda.synchronize()
    return {
        "points": RANK_POINTS,
        "dtype": "float32",
        "rank_sync_free": error is None,
        "error": error,
        "rho": float(rho) if rho is not None else None,
        "ms": start.elapsed_time(end) if error is None else None,
    }


def _event_ms(fn: Callable[[], Any], reps: int, limit_s: float = ENTRY_LIMIT_S) -> list[float]:
    """CUDA-event milliseconds of `reps` calls of `fn` after one warm-up call."""
    import torch

    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        out.append(float(start.elapsed_time(end)))
        if time.perf_counter() - t0 > limit_s:
            break
    return out


def _timing_fn(op: str, backend: str, a: Any) -> Callable[[], Any]:
    import torch

    if backend == "cupy":
        from eigenbench.ops.cupy_bridge import cupy_eigvalsh

        return lambda: cupy_eigvalsh(a)
    if op == "eigh":
        return lambda: torch.linalg.eigh(a)
    return lambda: torch.linalg.eigvalsh(a)


def timing_entry(op: str, backend: str, batch: int, n: int) -> dict[str, Any]:
    ms = _event_ms(_timing_fn(op, backend, _sym_torch(batch, n)), TIMING_REPS)
    return {
        "name": timing_label(op, backend, batch, n),
        "op": op,
        "backend": backend,
        "batch": batch,
        "n": n,
        "median_ms": statistics.median(ms),
        "ms": ms,
    }


def timings(report: Report, limit_s: float = TIMING_LIMIT_S) -> dict[str, Any]:
    """torch (and CuPy) eigvalsh/eigh timings; no new one starts after `limit_s`."""
    t0 = time.perf_counter()
    entries: list[dict[str, Any]] = []
    skipped: list[str] = []
    for op, backend, batch, n in TIMING_CASES:
        label = timing_label(op, backend, batch, n)
        if time.perf_counter() - t0 > limit_s:
            skipped.append(label)
            continue
        try:
            entries.append(timing_entry(op, backend, batch, n))
        except Exception as exc:
            report.error(f"timings {label}", one_line(exc))
            entries.append({"name": label, "op": op, "backend": backend, "batch": batch, "n": n})
            entries[-1]["error"] = one_line(exc)
    return {
        "method": "CUDA events around one call after one warm-up call; median of the repeats",
        "limit_s": limit_s,
        "entries": entries,
        "skipped_after_limit": skipped,
    }


# ---------------------------------------------------------------------------- driver

CUDA_SECTIONS: tuple[tuple[str, Callable[[Report], Any]], ...] = (
    ("gpu", gpu_info),
    ("nvml", nvml_info),
    ("l2_flush", l2_flush),
    ("cupy", cupy_smoke),
    ("bridge", bridge_check),
    ("rank", rank_sync_check),
    ("timings", timings),
)


def run_preflight(out: Path) -> dict[str, Any]:
    """Every check in order, saving `out` after each; the final document."""
    report = Report(out)
    ok, reason, facts = cuda_status()
    report.doc.update(cuda=ok, reason=reason, torch=facts)
    report.save()
    report.section("versions", versions)
    if ok:
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        for name, fn in CUDA_SECTIONS:
            report.section(name, fn)
    report.doc["finished"] = True
    report.save()
    return report.doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="the JSON file to write")
    args = parser.parse_args(argv)
    doc = run_preflight(args.out)
    state = "CUDA device found" if doc["cuda"] else f"no CUDA device found: {doc['reason']}"
    print(f"preflight: {state}; {len(doc['errors'])} error(s) → {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
