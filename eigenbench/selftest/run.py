"""`run_selftest`: the environment, the CPU section, the CUDA section on request, the verdicts."""

from __future__ import annotations

import os
import platform
from typing import Any

from eigenbench.errors import EnvironmentProblem
from eigenbench.selftest.cpu import cpu_section
from eigenbench.selftest.cuda import cuda_section
from eigenbench.selftest.targets import TARGETS, targets_met


def environment() -> dict[str, Any]:
    """A short description of the machine the self-test ran on (GPU 0's name, or None)."""
    import torch

    from eigenbench.env import cpu_model

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": gpu,
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def run_selftest(device: str = "cpu", *, quick: bool = False) -> dict[str, Any]:
    """Measure the harness itself on `device` ("cpu" or "cuda"); JSON-ready figures and verdicts."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"selftest device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise EnvironmentProblem(
                "selftest --device cuda needs a CUDA GPU, and torch sees none on this machine"
            )
    result: dict[str, Any] = {"device": device, "quick": quick, "env": environment()}
    result.update(cpu_section(quick))
    if device == "cuda":
        result.update(cuda_section(quick))
    result["targets"] = targets_met(result)
    result["target_definitions"] = {k: v for k, v in TARGETS.items() if k in result["targets"]}
    return result
