"""`eigenbench profile CASE_ID`: the table, the JSON, the trace file and the exit codes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

from eigenbench.cli import main

TORCH_CASE = "eigvalsh_batched/torch/cpu/float32/batch=10,n=16"


def test_profile_writes_a_chrome_trace_and_prints_the_top_ops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "sub" / "t.json"
    code = main(["profile", TORCH_CASE, "--calls", "2", "--top", "5", "--out", str(trace)])
    assert code == 0
    assert "traceEvents" in json.loads(trace.read_text())
    out = capsys.readouterr().out
    assert "aten::_linalg_eigh" in out
    assert "dispatch (2 calls): aten::linalg_eigvalsh ×2" in out


def test_profile_json_counts_every_profiled_call(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", TORCH_CASE, "--calls", "3", "--top", "4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["case"] == TORCH_CASE and doc["trace"] is None
    assert doc["dispatch"]["ops"]["aten::linalg_eigvalsh"] == 3
    assert len(doc["rows"]) == 4
    assert {"kind", "name", "count", "self_cpu_us", "device_us"} <= set(doc["rows"][0])


def test_profile_of_scipy_code_records_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("scipy")
    case = TORCH_CASE.replace("/torch/", "/scipy/")
    assert main(["profile", case, "--calls", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dispatch"] is None and doc["rows"] == []


def test_an_unknown_case_exits_3_naming_the_nearest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", TORCH_CASE.replace("n=16", "n=17")]) == 3
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "nearest:" in err and TORCH_CASE in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", TORCH_CASE, "--device", "cuda"]) == 4
    assert "no CUDA GPU" in capsys.readouterr().err


def test_calls_below_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", TORCH_CASE, "--calls", "0"]) == 2
    assert "--calls must be at least 1" in capsys.readouterr().err


@pytest.mark.gpu
def test_profile_on_cuda_sees_kernels(capsys: pytest.CaptureFixture[str]) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    case = "eigvalsh_batched/torch/cuda/float32/batch=500,n=32"
    assert main(["profile", case, "--calls", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dispatch"]["kernels"], doc
    assert any(r["kind"] == "kernel" and r["device_us"] > 0 for r in doc["rows"])


MISBEHAVING_SUITE = textwrap.dedent(
    """
    import sys
    import torch
    from eigenbench.spec import Impl, Suite, Workload, Validation

    def exits(x):
        sys.exit(0)

    def raises(x):
        raise ValueError("broken impl")

    def prints(x):
        print("chatter from the impl")
        return torch.linalg.eigvalsh(x)

    SUITE = Suite("bad", (Workload(
        name="w",
        impls=(Impl("exits", exits), Impl("raises", raises), Impl("prints", prints)),
        make_inputs=lambda p, d, t, s: torch.eye(3),
        reference=lambda x, p, ph: 1.0,
        validate=lambda o, r, p, t: Validation(True, 0.0, 0.0, "x"),
        grid={"n": [3]}, quick_grid={"n": [3]},
    ),))
    """
)


@pytest.fixture
def bad_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "bad.py").write_text(MISBEHAVING_SUITE)
    monkeypatch.setenv("EIGENBENCH_SUITES", str(folder))


@pytest.mark.parametrize(
    ("impl", "said"), [("exits", "sys.exit(0)"), ("raises", "ValueError: broken impl")]
)
def test_an_impl_that_exits_or_raises_is_one_line_exit_3(
    bad_suite: None, capsys: pytest.CaptureFixture[str], impl: str, said: str
) -> None:
    """It exited 0 with no output (sys.exit) or with a traceback (an exception)."""
    assert main(["profile", f"w/{impl}/cpu/float32/n=3", "--calls", "1"]) == 3
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and said in err and "Traceback" not in err


def test_what_an_impl_prints_stays_out_of_the_json(
    bad_suite: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profile", "w/prints/cpu/float32/n=3", "--calls", "1", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["case"] == "w/prints/cpu/float32/n=3"
    assert "chatter from the impl" in err


def test_the_trace_never_replaces_a_run_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from factories import make_record, make_run

    from eigenbench.results import save_run

    run = save_run(make_run([make_record()]), tmp_path / "run.json")
    before = run.read_bytes()
    assert main(["profile", TORCH_CASE, "--calls", "1", "--out", str(run)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert run.read_bytes() == before
