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


def test_cuda_without_gpu_exits_4_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a GPU machine
    assert main(["run", "eigvalsh_batched", "--device", "cuda"]) == 4
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no CUDA GPU" in err


def test_unknown_suite_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no_such_suite", "--quick"]) == 3
    assert "unknown suite 'no_such_suite'" in capsys.readouterr().err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 2
    assert main(["run", "eigvalsh_batched", "--min-samples", "1"]) == 2
    assert "--min-samples" in capsys.readouterr().err


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
        "import eigenbench, eigenbench.spec, eigenbench.run.runner, eigenbench.measure.stats\n"
        "import eigenbench.measure, eigenbench.ops\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def _write_runs(tmp_path: Path, slow: float) -> tuple[Path, Path]:
    from factories import make_record, make_run, make_samples

    from eigenbench.results import save_run

    def run(factor: float, seed: int) -> dict:
        recs = [
            make_record(
                impl=i,
                samples_s=make_samples(1e-3 * (factor if i == "a" else 1), cv=0.005, seed=seed + k),
            )
            for k, i in enumerate(("a", "b", "c"))
        ]
        return make_run(recs)

    return (
        save_run(run(1.0, 0), tmp_path / "base.json"),
        save_run(run(slow, 10), tmp_path / "cur.json"),
    )


def test_compare_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, same = _write_runs(tmp_path, 1.0)
    assert main(["compare", str(base), str(same)]) == 0
    base, slower = _write_runs(tmp_path, 1.2)
    capsys.readouterr()
    assert main(["compare", str(base), str(slower), "--json"]) == 1
    verdicts = {
        v["id"].split("/")[1]: v["label"] for v in json.loads(capsys.readouterr().out)["verdicts"]
    }
    assert verdicts == {"a": "slower", "b": "unchanged", "c": "unchanged"}
    assert main(["compare", str(base), str(slower), "--report-only"]) == 0
    assert main(["compare", str(base), str(slower), "--threshold", "500"]) == 2
    assert main(["compare", str(base), str(slower), "--run-drift", "150"]) == 2
    capsys.readouterr()
    assert main(["compare", str(base), str(slower), "--json", "--run-drift", "2.5"]) == 1
    assert json.loads(capsys.readouterr().out)["settings"]["run_drift"] == pytest.approx(0.025)


def test_compare_with_a_corrupt_baseline_exits_3_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, cur = _write_runs(tmp_path, 1.0)
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "eigenbench.run/1"')
    assert main(["compare", str(bad), str(cur)]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.json" in err


def test_baseline_save_then_compare_against_the_folder(tmp_path: Path) -> None:
    base, cur = _write_runs(tmp_path, 1.0)
    root = tmp_path / "baselines"
    assert main(["baseline", "save", str(base), "--root", str(root)]) == 0
    folder = root / "test-machine"
    assert [p.name for p in folder.iterdir()] == ["eigvalsh_batched.json"]
    assert main(["compare", str(folder), str(cur)]) == 0


def test_export_pyperf_is_read_by_pyperf(tmp_path: Path) -> None:
    base, _ = _write_runs(tmp_path, 1.0)
    out = tmp_path / "pyperf.json"
    assert main(["export", str(base), "--format", "pyperf", "--out", str(out)]) == 0
    proc = subprocess.run(
        [sys.executable, "-m", "pyperf", "stats", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Number of benchmarks: 3" in proc.stdout


def _planted_run(out: Path) -> None:
    # warmed up: a cold first run would make the baseline's history look wildly noisy
    args = ["run", "planted", "--quick", "--out", str(out), "--max-time", "0.05"]
    args += ["--warmup", "0.05"]
    assert main(args) == 0


def test_check_finds_a_planted_slowdown_twice_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EIGENBENCH_SUITES", str(ROOT / "tools" / "suites"))
    monkeypatch.delenv("EIGENBENCH_PLANTED", raising=False)
    # the mechanics of check, whatever else runs here (load detection: tests/test_hostload.py)
    monkeypatch.setattr("eigenbench.measure.hostload.UNDER_LOAD_CORES", float("inf"))
    runs = [tmp_path / f"r{k}.json" for k in range(4)]
    for path in runs:
        _planted_run(path)
    root = tmp_path / "base"
    assert main(["baseline", "save", *map(str, runs), "--root", str(root)]) == 0
    folder = next(root.iterdir())
    monkeypatch.setenv("EIGENBENCH_PLANTED", "a:20")  # unmistakable even on a loaded 2-core VM
    out = tmp_path / "check.json"
    capsys.readouterr()
    timing = ["--max-time", "0.05", "--warmup", "0.05", "--json"]
    code = main(
        ["check", "planted", "--quick", "--baseline", str(folder), "--out", str(out), *timing]
    )
    result = json.loads(capsys.readouterr().out)
    slower = {v["id"] for v in result["verdicts"] if v["label"] == "slower"}
    assert code == 1, [(v["id"], v["label"], v["reason"]) for v in result["verdicts"][:3]]
    # the mechanics: both planted cases caught twice (false-alarm rates are measured by
    # tools/aa_power.py and the simulated A/A tests, not by one run at a 50 ms budget)
    planted = {"planted/a/cpu/float32/n=16", "planted/a/cpu/float32/n=32"}
    assert planted <= slower, [v for v in result["verdicts"] if v["id"] in planted - slower]
    assert all("measured twice" in v["reason"] for v in result["verdicts"] if v["id"] in slower)
    # the recheck holds every case first called slower; those it did not confirm (timing
    # noise at this tiny budget can flag one) end inconclusive
    rechecked = {r["id"] for r in load_run(tmp_path / "check.recheck.json")["records"]}
    assert slower <= rechecked
    for v in result["verdicts"]:
        if v["id"] in rechecked - slower:
            assert v["label"] == "inconclusive" and "measured again" in v["reason"]
    assert load_run(out)["status"] == "complete"


def test_check_without_a_baseline_exits_2_before_measuring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "check.json"
    code = main(["check", "eigvalsh_batched", "--quick", "--baseline", str(tmp_path / "no")])
    assert code == 2
    assert "no baseline" in capsys.readouterr().err
    assert not out.exists()


LOST_SUITE = """
import numpy as np
import torch

from eigenbench.spec import Impl, Suite, Workload
from eigenbench.validate import within_tolerance


def make_inputs(params, device, dtype, seed):
    if device == "cuda":
        raise RuntimeError("CUDA error: an illegal memory access was encountered")
    return torch.eye(int(params["n"]))


W = Workload(
    name="w",
    impls=(
        Impl("a", torch.linalg.eigvalsh, devices=frozenset({"cpu", "cuda"})),
        Impl("b", torch.linalg.eigvalsh, devices=frozenset({"cpu", "cuda"})),
    ),
    make_inputs=make_inputs,
    reference=lambda x, p, ph: np.linalg.eigvalsh(x.double().numpy()),
    validate=within_tolerance("numpy"),
    grid=[{"n": 4}],
    quick_grid=[{"n": 4}],
)
SUITE = Suite("lost", (W,))
"""


def test_a_lost_cuda_context_keeps_the_cpu_cases_and_exits_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    import eigenbench.env

    (tmp_path / "lost.py").write_text(LOST_SUITE)
    monkeypatch.setenv("EIGENBENCH_SUITES", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine…
    monkeypatch.setattr(eigenbench.env, "gpu_info", lambda: None)  # …whose details we skip
    out = tmp_path / "run.json"
    args = ["run", "lost", "--device", "all", "--out", str(out), "--max-time", "0.05"]
    assert main([*args, "--warmup", "0"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("eigenbench: error: CUDA context lost, detected after w/a/cuda/")
    run = load_run(out)
    status = {(r["impl"], r["device"]): r["status"] for r in run["records"]}
    assert status == {
        ("a", "cuda"): "failed",
        ("b", "cuda"): "skipped",
        ("a", "cpu"): "ok",
        ("b", "cpu"): "ok",
    }
    assert run["status"] == "complete" and run["cuda_lost"]["after"].startswith("w/a/cuda/")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--filter", "no-such-case"], "--filter 'no-such-case' matches no case"),
        (["--max-time", "-1"], "argument --max-time: expected > 0, got -1"),
        (["--timeout", "0"], "argument --timeout: expected > 0, got 0"),
        (["--warmup", "nan"], "argument --warmup: expected a finite number, got 'nan'"),
        (["--rounds", "0"], "argument --rounds: expected ≥ 1, got 0"),
    ],
)
def test_mistakes_are_usage_errors_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "run.json"
    args = ["run", "eigvalsh_batched", "--quick", "--device", "cpu", "--out", str(out)]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err
    assert not out.exists()


def test_debug_is_accepted_after_the_sub_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--debug"]) == 0
    assert main(["--debug", "list"]) == 0
