"""The command line contract: outputs, files and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eigenbench.cli import main
from eigenbench.results import load_run

ROOT = Path(__file__).resolve().parents[1]


def test_run_quick_cpu_writes_a_valid_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "X.json"
    code = main(
        [
            "run",
            "eigvalsh_batched",
            "--quick",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--max-time",
            "0.05",
            "--warmup",
            "0",
        ]
    )
    assert code == 0
    run = load_run(out)
    assert run["status"] == "complete"
    ok = [r for r in run["records"] if r["status"] == "ok"]
    assert {r["impl"] for r in ok} == {"torch", "numpy", "scipy"}
    for r in ok:
        assert r["samples_s"] and r["summary"]["n"] == len(r["samples_s"])
        assert r["validation"]["ok"]
    assert run["env"]["machine_key"] and run["env"]["packages"]["torch"]
    assert "eigvalsh_batched/torch/cpu/float32/batch=10,n=16" in capsys.readouterr().out


def test_list_json_lists_suites_with_impls(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--json"]) == 0
    suites = {s["name"]: s for s in json.loads(capsys.readouterr().out)["suites"]}
    impls = {i["name"] for i in suites["eigvalsh_batched"]["workloads"][0]["impls"]}
    assert impls == {"torch", "numpy", "scipy", "cupy"}


def test_cuda_without_gpu_exits_4_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["run", "eigvalsh_batched", "--device", "cuda"]) == 4
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no CUDA GPU" in err


def test_unknown_suite_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no_such_suite", "--quick"]) == 3
    assert "unknown suite 'no_such_suite'" in capsys.readouterr().err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 2
    assert main(["run", "eigvalsh_batched", "--min-samples", "1"]) == 2
    assert "min_samples" in capsys.readouterr().err


def test_console_script_runs_as_a_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "eigenbench", "env", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "machine_key" in json.loads(proc.stdout)


def test_package_imports_with_torch_and_numpy_only() -> None:
    code = (
        "import sys\n"
        "for m in ('scipy', 'rich', 'matplotlib', 'pyperf', 'jinja2', 'jsonschema', 'cupy'):\n"
        "    sys.modules[m] = None\n"
        "import eigenbench, eigenbench.spec, eigenbench.runner, eigenbench.stats\n"
        "import eigenbench.measure, eigenbench.ops\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
