"""Machine fingerprint and metadata: CPU, GPU, driver, CUDA, library versions, git commit.

Read-only probes. `collect()` is called once per run by the CLI and passed to the runner.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eigenbench.errors import EnvironmentProblem
from eigenbench.measure.gpuclocks import driver_version, nvml_status

PACKAGES = (
    "torch",
    "numpy",
    "scipy",
    "cupy",
    "cupy-cuda12x",
    "cupy-cuda13x",
    "nvidia-ml-py",
    "matplotlib",
    "rich",
    "pyperf",
    "jinja2",
    "torchmetrics",
    "eigenbench",
)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux) or platform as a fallback."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that matter for timings (absent ones left out)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
    ).stdout.strip()


def git_commit(cwd: Path | None = None) -> str | None:
    """The checked-out commit (with `-dirty` when tracked files have changes), or None."""
    try:
        sha = _git("rev-parse", "--short=12", "HEAD", cwd=cwd)
        dirty = _git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def gpu_info() -> dict[str, Any] | None:
    """Name, capability, memory, L2 size, driver, CUDA, cuSOLVER of GPU 0 and whether its
    clocks can be watched during cases (NVML), or None without a GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    info: dict[str, Any] = {
        "name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "memory_bytes": int(props.total_memory),
        "multiprocessors": int(props.multi_processor_count),
        "l2_cache_bytes": int(getattr(props, "L2_cache_size", 0)) or None,
        "cuda_runtime": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "preferred_linalg_library": str(torch.backends.cuda.preferred_linalg_library()),
        "device_count": torch.cuda.device_count(),
    }
    info["driver_version"] = driver_version() or nvidia_smi(("driver_version",)).get(
        "driver_version"
    )
    info["clock_monitor"] = nvml_status()
    info["cusolver"] = cusolver_version()
    return info


def nvidia_smi(
    fields: tuple[str, ...] = (
        "driver_version",
        "clocks.sm",
        "clocks.max.sm",
        "clocks.mem",
        "temperature.gpu",
        "power.draw",
    ),
) -> dict[str, Any]:
    """Fields of GPU 0 through nvidia-smi (empty when unavailable): the fallback for the
    driver version where NVML cannot be loaded."""
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "-i",
                "0",
                f"--query-gpu={','.join(fields)}",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    values = [v.strip() for v in out.split(",")]
    result: dict[str, Any] = {}
    for key, value in zip(fields, values, strict=False):
        name = key.replace(".", "_")
        try:
            result[name] = float(value) if key != "driver_version" else value
        except ValueError:
            result[name] = None
    return result


def cusolver_version() -> str | None:
    """cuSOLVER's version as CuPy loads it ("major.minor.patch"), or None without CuPy.

    CuPy exposes it as `cusolver._getVersion()` (a tuple; no public `getVersion` in CuPy
    13.6–15), with `getVersion` tried for any other build.
    """
    try:
        from cupy_backends.cuda.libs import cusolver

        query = getattr(cusolver, "_getVersion", None) or cusolver.getVersion
        version = query()
    except Exception:  # optional, best effort: CuPy absent, or its CUDA libraries missing
        return None
    if isinstance(version, (tuple, list)):
        return ".".join(str(int(v)) for v in version)
    return str(version)


def make_machine_key(cpu: str, cores: int, gpu: dict[str, Any] | None) -> str:
    """A short, filesystem-safe key for baselines: the GPU name if any, else CPU model and cores."""
    raw = f"gpu-{gpu['name']}" if gpu else f"cpu-{cpu}-{cores}c"
    key = re.sub(r"\(r\)|\(tm\)|\bcpu\b @.*", "", raw.lower())
    key = re.sub(r"[^a-z0-9]+", "-", key).strip("-")
    return key[:80] or "unknown"


def collect(*, with_gpu: bool = True) -> dict[str, Any]:
    """The full environment record stored in every run."""
    import torch

    cores = os.cpu_count() or 1
    model = cpu_model()
    gpu = gpu_info() if with_gpu else None
    return {
        "machine_key": make_machine_key(model, cores, gpu),
        "hostname": platform.node(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": {"model": model, "cores": cores, "torch_threads": torch.get_num_threads()},
        "gpu": gpu,
        "packages": package_versions(),
        "torch_config": {"cuda": torch.version.cuda, "debug": bool(torch.version.debug)},
        "git_commit": git_commit(),
    }


def cuda_available() -> bool:
    """Whether torch sees a CUDA device here."""
    import torch

    return bool(torch.cuda.is_available())


def resolve_devices(choice: str, *, assume_gpu: bool = False) -> tuple[str, ...]:
    """The devices `--device` names (cpu, cuda, auto, all) on this machine; EnvironmentProblem
    for cuda without a GPU. `assume_gpu` (for planning): `cuda` and `all` list the CUDA cases
    as a GPU machine would run them, whether or not this machine has one."""
    if assume_gpu and choice in ("cuda", "all"):
        return ("cuda",) if choice == "cuda" else ("cpu", "cuda")
    has_cuda = cuda_available()
    if choice == "cuda" and not has_cuda:
        raise EnvironmentProblem(
            "--device cuda: no CUDA GPU is available on this machine "
            "(torch.cuda.is_available() is False)"
        )
    if choice == "auto":
        return ("cuda",) if has_cuda else ("cpu",)
    if choice == "all":
        return ("cpu", "cuda") if has_cuda else ("cpu",)
    return (choice,)


def first_on_pythonpath(env: Mapping[str, str], folder: str) -> dict[str, str]:
    """A copy of `env` whose PYTHONPATH starts with `folder`: a child process started with it
    imports that folder's `eigenbench` before any installed one."""
    rest = env.get("PYTHONPATH")
    return {**env, "PYTHONPATH": folder + (os.pathsep + rest if rest else "")}
