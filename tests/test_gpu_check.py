"""`make gpu-check` on a machine without CUDA, and the orchestrator's pure pieces.

tools/gpu_check.py is a script (standard library only); it and its two modules
(gpu_check_summary.py, gpu_check_steps.py) are loaded here from their files.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gsum = _load("gpu_check_summary")  # the modules first: the script imports them by name
gsteps = _load("gpu_check_steps")
gc = _load("gpu_check")
no_cuda_here = pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the path of a machine without CUDA"
)


# ---------------------------------------------------------------------------- end to end


def _make_gpu_check(out: Path | None, env_out: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("OUT", None)
    if env_out is not None:
        env["OUT"] = str(env_out)
    args = ["make", "--no-print-directory", "gpu-check", f"PYTHON={sys.executable}"]
    if out is not None:
        args.append(f"OUT={out}")
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def _check_no_cuda_output(out: Path) -> None:
    files = [p for p in out.iterdir()]
    assert 1 <= len(files) <= 8
    assert all(p.is_file() for p in files)
    summary = (out / "summary.md").read_text()
    assert "no CUDA device found" in summary
    assert json.loads((out / "preflight.json").read_text())["cuda"] is False
    assert "== preflight" in (out / "steps.log").read_text()


@no_cuda_here
def test_make_gpu_check_without_cuda(tmp_path):
    out = tmp_path / "gc"
    done = _make_gpu_check(out)
    assert done.returncode == 0, done.stderr
    _check_no_cuda_output(out)


@no_cuda_here
def test_make_gpu_check_takes_out_from_the_environment(tmp_path):
    out = tmp_path / "from-env"
    done = _make_gpu_check(None, env_out=out)
    assert done.returncode == 0, done.stderr
    _check_no_cuda_output(out)


def test_bad_arguments_exit_2_with_one_line(tmp_path):
    script = str(REPO / "tools" / "gpu_check.py")
    (tmp_path / "other.txt").write_text("not ours")
    for args in (
        ["--out", str(tmp_path / "a"), "--budget", "0"],
        ["--out", str(tmp_path / "b"), "--bench-args", '"unclosed'],
        ["--out", str(tmp_path)],  # holds a file that is not ours
        ["--no-such-option"],
    ):
        done = subprocess.run(
            [sys.executable, script, *args], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, args
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# ---------------------------------------------------------------------------- budget


@pytest.mark.parametrize(
    ("cap", "remaining", "reserve", "grace", "expected"),
    [
        (60, 420, 105, 3, 60),  # plenty left: the cap
        (60, 150, 105, 3, 42),  # the reserve bites
        (60, 100, 105, 3, 0),  # nothing left
        (120, 107.5, 0, 2.5, 105),
    ],
)
def test_step_timeout(cap, remaining, reserve, grace, expected):
    assert gsteps.step_timeout(cap, remaining, reserve, grace) == pytest.approx(expected)


def test_step_never_gets_more_than_what_is_left_minus_the_reserve():
    for cap in (0, 5, 60, 1e9):
        for remaining in (-10, 0, 1, 50, 300, 420):
            for reserve in (0, 5, 105):
                t = gsteps.step_timeout(cap, remaining, reserve, gsteps.GRACE_S)
                assert 0 <= t <= cap
                assert t <= max(0.0, remaining - reserve)


def test_default_budget_leaves_bench_its_minimum():
    caps = gc.PREFLIGHT_CAP_S + gc.TESTS_CAP_S + gc.SELFTEST_CAP_S + gc.PEERS_CAP_S
    left = gc.DEFAULT_BUDGET_S - caps - gc.REPORT_CAP_S - gc.FINISH_S
    assert left >= gc.BENCH_MIN_S


def test_tests_time_split_keeps_time_for_the_second_call():
    assert gsteps.split_tests_time(120) == 90
    assert gsteps.split_tests_time(40) == 40  # too little to split: all to the first


# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("....\n36 skipped, 519 deselected in 3.38s\n", {"skipped": 36, "deselected": 519}),
        (
            "FAILED tests/a.py::t - x\n== 2 failed, 30 passed, 1 error, 3 warnings in 12.01s ==",
            {"failed": 2, "passed": 30, "error": 1, "warning": 3},
        ),
        ("===== 4 errors in 0.50s =====", {"error": 4}),
        ("no tests ran in 0.01s", {}),
        ("collected 3 items\n..", None),  # killed before the summary
        ("", None),
    ],
)
def test_parse_pytest_summary(text, expected):
    assert gsum.parse_pytest_summary(text) == expected


def test_failed_tests_are_the_failed_and_error_lines():
    log = (
        "FAILED tests/test_a.py::test_x - AssertionError: 1\n"
        "ERROR tests/test_b.py::test_y - RuntimeError\n"
        "some FAILED in the middle\n"
        "FAILED tests/test_a.py::test_x - AssertionError: 1\n"
    )
    assert gsum.failed_tests(log) == [
        "FAILED tests/test_a.py::test_x - AssertionError: 1",
        "ERROR tests/test_b.py::test_y - RuntimeError",
    ]


def test_plugin_args_only_without_the_entry_point():
    assert gsteps.plugin_args(["eigenbench.pytest_plugin", "other"]) == []
    assert gsteps.plugin_args(["other"]) == ["-p", "eigenbench.pytest_plugin"]


def test_pythonpath_is_prepended():
    assert gsteps.prepend_path("/repo", None) == "/repo"
    assert gsteps.prepend_path("/repo", "/x") == f"/repo{os.pathsep}/x"


def test_foreign_entries_spare_deliverables_and_own_leftovers():
    names = ["summary.md", ".bench-gpu.json.abc.tmp", "bench-gpu.recheck.json", "notes.txt"]
    assert gsteps.foreign_entries(names) == ["notes.txt"]


def test_clean_out_removes_only_our_leftovers(tmp_path):
    for name in ("summary.md", ".x.tmp", "a.recheck.json", "peers.json"):
        (tmp_path / name).write_text("{}")
    assert gsteps.clean_out(tmp_path) == [".x.tmp", "a.recheck.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["peers.json", "summary.md"]


# ---------------------------------------------------------------------------- JSON files


def test_an_oversize_run_file_loses_its_samples_only(tmp_path, monkeypatch):
    run = {"status": "complete", "records": [{"id": "a", "samples_s": [1.0] * 50, "summary": {}}]}
    path = tmp_path / "bench-gpu.json"
    path.write_text(json.dumps(run))
    assert gsteps.fit_run_file(path, gsum.Loaded(run)) == ""  # small enough: untouched
    monkeypatch.setattr(gsteps, "MAX_FILE_BYTES", 100)
    assert "samples_s emptied" in gsteps.fit_run_file(path, gsum.Loaded(run))
    slim = json.loads(path.read_text())
    assert slim["records"] == [{"id": "a", "samples_s": [], "summary": {}}]
    assert slim["status"] == "complete"
    assert gsteps.without_samples({"records": "odd"}) == {"records": "odd"}


def test_load_json_says_why_a_file_is_not_available(tmp_path):
    assert gsum.load_json(tmp_path / "missing.json").why == "missing.json was not written"
    (tmp_path / "empty.json").write_text("")
    assert "empty" in gsum.load_json(tmp_path / "empty.json").why
    (tmp_path / "bad.json").write_text("{not json")
    assert "not valid JSON" in gsum.load_json(tmp_path / "bad.json").why
    (tmp_path / "list.json").write_text("[1, 2]")
    assert "not an object" in gsum.load_json(tmp_path / "list.json").why
    (tmp_path / "ok.json").write_text('{"a": 1}')
    assert gsum.load_json(tmp_path / "ok.json").data == {"a": 1}


def test_dig_tolerates_any_shape():
    data = {"a": {"b": [10, {"c": 3}]}}
    assert gsum.dig(data, "a", "b", 1, "c") == 3
    assert gsum.dig(data, "a", "x", "c") is None
    assert gsum.dig(data, "a", "b", 5) is None
    assert gsum.dig("text", "a") is None
    assert gsum.dig(None, "a") is None


# ---------------------------------------------------------------------------- summary

PREFLIGHT: dict[str, Any] = {
    "cuda": True,
    "reason": None,
    "python": "3.12.3",
    "versions": {"torch": "2.11.0+cu130", "torch_cuda": "13.0", "cupy": "14.2.0"},
    "gpu": {
        "name": "NVIDIA H100 80GB HBM3",
        "capability": "9.0",
        "total_memory_bytes": 85_000_000_000,
        "l2_cache_bytes": 52_428_800,
        "sm_count": 132,
    },
    "nvml": {"driver": "580.65", "cuda_driver": "13.0"},
    "errors": ["cupy: eigvalsh differs from NumPy by 0.1"],
    "bridge": {"warning_count": 1, "warnings": ["FutureWarning: streams"]},
    "rank": {"rank_sync_free": False, "error": "called a synchronizing CUDA operation"},
    "timings": {
        "entries": [
            {"op": "eigvalsh", "backend": "torch", "batch": 500, "n": 100, "median_ms": 41.5},
            {"op": "eigvalsh", "backend": "cupy", "batch": 500, "n": 100, "median_ms": 7.25},
            {"op": "eigvalsh", "backend": "torch", "batch": 500, "n": 32, "median_ms": 1.5},
            {"op": "eigvalsh", "backend": "torch", "batch": 500, "n": 33, "median_ms": 90.0},
        ]
    },
}
SELFTEST = {
    "targets": {"cpu_overhead": True, "cuda_known_duration": False},
    "host_blocking": [
        {"label": "torch.linalg.eigvalsh", "expected": "blocking", "detected": "blocking"}
    ],
}
PEERS = {
    "rounds": 3,
    "rounds_requested": 5,
    "stopped_early": "budget spent: 3 of 5 rounds ran",
    "cases": [
        {
            "name": "sleep_1ms",
            "truth_s": 1e-3,
            "tools": {
                "eigenbench": {
                    "available": True,
                    "median_s": 1.001e-3,
                    "spread": 0.01,
                    "rel_sd": 0.004,
                    "wall_total_s": 0.6,
                    "error_vs_truth": {"abs_s": 1e-6, "rel": 1e-3},
                },
                "triton_do_bench": {"available": False, "reason": "triton is not importable"},
            },
        }
    ],
}


def _record(impl: str, n: int, status: str = "ok", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"eigvalsh_batched/{impl}/cuda/float32/batch=500,n={n}",
        "workload": "eigvalsh_batched",
        "impl": impl,
        "device": "cuda",
        "dtype": "float32",
        "params": {"batch": 500, "n": n},
        "status": status,
        "reason": None if status == "ok" else "out of memory",
        "summary": {"median_s": 0.04} if status == "ok" else None,
        "host_blocking": impl == "torch",
        **extra,
    }


RUN = {
    "status": "interrupted",
    "records": [_record("torch", 100), _record("cupy", 100), _record("cupy", 33, "failed")],
}
STEPS = [
    gsum.StepResult("preflight", ["python3", "x"], rc=0, seconds=20.0),
    gsum.StepResult("bench-gpu", ["python3", "y"], rc=130, seconds=200.0, timed_out=True),
]
TESTS_LOG = "FAILED tests/test_ops_rank.py::test_cuda - AssertionError\n1 failed, 3 passed in 2.0s"


def _inputs(**over: Any) -> Any:
    base: dict[str, Any] = {
        "steps": STEPS,
        "preflight": gsum.Loaded(PREFLIGHT),
        "selftest": gsum.Loaded(SELFTEST),
        "peers": gsum.Loaded(PEERS),
        "run": gsum.Loaded(RUN),
        "tests_text": TESTS_LOG,
        "tests_counts": {
            "tests-gpu": gsum.parse_pytest_summary(TESTS_LOG),
            "tests-cuda-files": None,
        },
        "interpreter": "python3 (3.12.3)",
        "started": "2026-01-01T00:00:00",
        "budget_s": 420.0,
        "elapsed_s": 400.0,
    }
    base.update(over)
    return gsum.SummaryInputs(**base)


def test_summary_from_synthetic_results():
    text = gsum.render_summary(_inputs())
    for expected in (
        "NVIDIA H100 80GB HBM3",
        "580.65",
        "2.11.0+cu130",
        "| bench-gpu | 130 | 200.0 | yes |",
        "cupy: eigvalsh differs from NumPy",
        "FAILED tests/test_ops_rank.py::test_cuda",
        "tests-cuda-files): no pytest summary line",
        "eigvalsh_batched/cupy/cuda/float32/batch=500,n=33: failed — out of memory",
        "| torch eigvalsh 500×100×100 | 41.5 ms | 40 ms |",
        "| CuPy eigvalsh 500×100×100 | 7.25 ms | 40 ms |",
        "| torch eigvalsh 500×33×33 | 90 ms | n/a |",
        "rank_sync_free (exact Spearman, 10⁷ float32 on CUDA): False",
        "bridge warnings: 1",
        "cuda_known_duration: NOT met",
        "cpu_overhead: met",
        "host blocking, torch.linalg.eigvalsh: blocking (expected blocking)",
        "rounds: 3 of 5 (budget spent: 3 of 5 rounds ran)",
        "| sleep_1ms | eigenbench | 1.001 ms | 1 % | 0.4 % | 0.6 | 0.1 % |",
        "| sleep_1ms | triton_do_bench | unavailable: triton is not importable |",
        "run status: interrupted; 3 records: 2 ok, 1 failed",
        "host_blocking, torch eigvalsh records: 1 blocking of 1",
        "host_blocking, cupy eigvalsh records: 0 blocking of 2",
        "tests-gpu: 1 failed, 3 passed",
    ):
        assert expected in text, expected


@pytest.mark.parametrize(
    "broken",
    [
        gsum.Loaded(why="x.json was not written"),
        gsum.Loaded(why="x.json is not valid JSON (Expecting value)"),
        gsum.Loaded({"unexpected": "shape"}),
        gsum.Loaded({"cases": "not a list", "records": {"a": 1}, "targets": [1, 2], "gpu": 3}),
        gsum.Loaded({"timings": {"entries": [None, 3, {"op": []}]}, "errors": "oops"}),
    ],
)
def test_summary_tolerates_missing_and_malformed_files(broken):
    inputs = _inputs(
        preflight=broken, selftest=broken, peers=broken, run=broken, tests_text=None, steps=[]
    )
    text = gsum.render_summary(inputs)
    for title in ("Machine", "Steps", "What failed", "Headline figures", "Selftest", "Peers"):
        assert f"## {title}" in text
    if not broken.ok:
        assert f"not available: {broken.why}" in text


def test_no_cuda_summary_names_the_reason_and_interpreter():
    preflight = gsum.Loaded({"cuda": False, "reason": "torch cannot be imported", "torch": {}})
    assert gsum.no_cuda_reason(preflight) == "torch cannot be imported"
    assert gsum.no_cuda_reason(gsum.Loaded(PREFLIGHT)) is None
    assert gsum.no_cuda_reason(gsum.Loaded(why="not written")) is None  # then torch is probed
    text = gsum.render_no_cuda("torch cannot be imported", _inputs(preflight=preflight))
    assert "no CUDA device found" in text
    assert "torch cannot be imported" in text
    assert "python3 (3.12.3)" in text


def test_step_block_has_everything_steps_log_needs():
    block = gsum.step_block(
        gsum.StepResult("peers", ["python3", "tools/peers.py"], 1, 3.25, True, "boom", 60.0, "n")
    )
    for expected in (
        "== peers",
        "command: python3 tools/peers.py",
        "rc: 1",
        "seconds: 3.2",
        "timed out: yes",
        "boom",
    ):
        assert expected in block


# ---------------------------------------------------------------------------- processes


def test_a_step_past_its_cap_is_killed_and_recorded_timed_out(tmp_path):
    code = "import subprocess, sys, time; print('started', flush=True); time.sleep(60)"
    t0 = time.monotonic()
    step = gsteps.run_step(
        "sleeper",
        [sys.executable, "-c", code],
        timeout_s=1.0,
        stdout_path=tmp_path / "out",
        stderr_path=tmp_path / "err",
        grace_s=1.0,
    )
    assert step.timed_out
    assert step.rc is not None and step.rc != 0
    assert time.monotonic() - t0 < 30
    assert "timed out: yes" in gsum.step_block(step)


def test_a_step_that_ignores_sigterm_is_killed(tmp_path):
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    step = gsteps.run_step(
        "stubborn",
        [sys.executable, "-c", code],
        timeout_s=1.0,
        stdout_path=tmp_path / "out",
        grace_s=0.5,
        term_leader_only=True,
    )
    assert step.timed_out
    assert step.rc == -9


def test_a_step_that_finishes_keeps_its_rc_and_stderr(tmp_path):
    code = "import sys; print('bad news', file=sys.stderr); sys.exit(3)"
    step = gsteps.run_step(
        "quick",
        [sys.executable, "-c", code],
        timeout_s=30,
        stdout_path=tmp_path / "out",
        stderr_path=tmp_path / "err",
    )
    assert (step.rc, step.timed_out) == (3, False)
    assert "bad news" in step.stderr_tail


def test_a_command_that_cannot_start_is_recorded(tmp_path):
    step = gsteps.run_step(
        "missing", [str(tmp_path / "no-such-program")], timeout_s=5, stdout_path=tmp_path / "o"
    )
    assert step.rc is None
    assert "could not start" in step.note


# ---------------------------------------------------------------------------- peers.py


def test_peers_on_the_cpu_writes_every_tool_and_the_truth_error(tmp_path):
    out = tmp_path / "peers.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "peers.py"),
            "--device",
            "cpu",
            "--out",
            str(out),
            "--rounds",
            "2",
            "--budget",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == "eigenbench.peers/1"
    assert doc["device"] == "cpu" and doc["gpu"] is None
    assert 1 <= doc["rounds"] <= 2
    names = [c["name"] for c in doc["cases"]]
    assert names == ["mul_4096", "eigvalsh_50x32x32", "spearman_1e5", "busy_wait_1ms"]
    for case in doc["cases"]:
        tools = case["tools"]
        assert set(tools) == {"eigenbench", "triton_do_bench", "torch_benchmark"}
        assert tools["triton_do_bench"]["available"] is False
        assert tools["triton_do_bench"]["reason"]
        for name in ("eigenbench", "torch_benchmark"):
            entry = tools[name]
            assert entry["available"] is True
            assert len(entry["values_s"]) == doc["rounds"]
            assert all(v > 0 for v in entry["values_s"])
            assert entry["median_s"] > 0 and entry["wall_total_s"] > 0
    busy = doc["cases"][-1]
    assert busy["truth_s"] == pytest.approx(1e-3)
    for name in ("eigenbench", "torch_benchmark"):
        assert set(busy["tools"][name]["error_vs_truth"]) == {"abs_s", "rel"}


def test_peers_pure_helpers():
    peers = _load("peers")
    assert peers.rotated([1, 2, 3], 4) == [2, 3, 1]
    assert peers.rotated([], 2) == []
    stats = peers.spread_stats([1.0, 2.0, 3.0])
    assert stats["median_s"] == 2.0 and stats["spread"] == pytest.approx(2.0)
    assert stats["rel_sd"] == pytest.approx(0.5)
    assert peers.spread_stats([]) == {"median_s": None, "spread": None, "rel_sd": None}
    assert peers.truth_error(1.1e-3, 1e-3)["rel"] == pytest.approx(0.1)
    assert peers.truth_error(None, 1e-3) is None
    assert peers.round_fits(10.0, 5.0, 20.0) and not peers.round_fits(16.0, 5.0, 20.0)
    assert peers.MIN_CALL_S <= peers.per_call_seconds(1.0, 5, 4, 3) <= peers.MAX_CALL_S
    entry = peers.tool_entry(peers.Tool("t", reason="no GPU"), None, None)
    assert entry == {"available": False, "reason": "no GPU"}


# ---------------------------------------------------------------------------- whole flow

GPU_TEST_FILE = """
import pytest

@pytest.mark.gpu
def test_marked():
    pass

def test_unmarked():
    pass
"""


def _fake_cuda_preflight(ctx: Any) -> Any:
    """Pretend preflight found a GPU, so every later step runs (they fail fast on the CPU)."""
    path = ctx.out / "preflight.json"
    path.write_text(json.dumps(PREFLIGHT))
    ctx.record(gsum.StepResult("preflight", ["fake"], rc=0))
    return gsum.load_json(path)


def test_every_step_runs_and_at_most_8_files_remain(tmp_path, monkeypatch):
    """The CUDA path end to end with a faked preflight: the bench runs on the CPU (its last
    --device wins), selftest and peers refuse --device cuda (rc 4), the rest is real."""
    tests_file = tmp_path / "test_tiny.py"
    tests_file.write_text(GPU_TEST_FILE)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the same steps on a GPU machine: no GPU
    monkeypatch.setattr(gc, "do_preflight", _fake_cuda_preflight)
    monkeypatch.setattr(gc, "GPU_TEST_PATHS", (str(tests_file),))
    monkeypatch.setattr(gc, "CUDA_SENSITIVE_TESTS", (str(tests_file),))
    out = tmp_path / "out"
    bench = "--device cpu --quick --min-samples 3 --max-time 0.1 --filter eigvalsh_batched/torch"
    assert gc.main(["--out", str(out), "--budget", "300", "--bench-args", bench]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert len(names) <= 8 and set(names) <= set(gsteps.OUTPUT_FILES)
    assert {"summary.md", "steps.log", "tests.log", "bench-gpu.json", "report.tar.gz"} <= set(names)
    log = (out / "steps.log").read_text()
    for step in ("tests-gpu", "tests-cuda-files", "selftest", "peers", "bench-gpu", "report"):
        assert f"== {step}" in log
    summary = (out / "summary.md").read_text()
    assert "tests-gpu: 1 passed, 1 deselected" in summary
    assert "tests-cuda-files: 1 passed, 1 deselected" in summary
    assert "run status: complete" in summary
    assert "| selftest | 4 |" in summary
