"""Sharded runs: the split, `run --workers`, `--executor submitit` (local and a fake Slurm),
`--shard i/K`, Ctrl-C and dying shards with `--resume`, and `plan --shards K --emit`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from factories import make_run

from eigenbench.cli import main
from eigenbench.errors import UsageError
from eigenbench.results import load_run, validate_run
from eigenbench.run.shards import (
    ShardSpec,
    gpu_slots,
    parse_shard,
    parse_visible,
    shard_cases,
    split_cases,
    sweep_key,
)
from eigenbench.suites import cases_of, load_suite

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--max-time", "0.05", "--min-samples", "3", "--warmup", "0"]
QUICK_EIG = ["run", "eigvalsh_batched", "--quick", "--device", "cpu", *FAST]

SUITES = """
import os, time
import numpy as np
from eigenbench.spec import Impl, Suite, Workload, Validation

def nap(x):
    time.sleep(0.02)
    return x

def dies(x):
    if os.path.exists(os.environ.get("SHARD_DIE_MARKER", "/nonexistent")):
        os._exit(3)
    return x

def workload(name, impls, sizes):
    return Workload(
        name=name, impls=impls,
        make_inputs=lambda p, d, t, s: np.zeros(int(p["n"])),
        reference=lambda x, p, ph: x,
        validate=lambda out, ref, p, t: Validation(True, 0.0, 0.0, "itself"),
        grid={"n": sizes}, quick_grid={"n": sizes[:1]},
    )

SUITE = Suite(name="SUITE_NAME", workloads=(
    workload("nap", (Impl("a", nap), Impl("b", nap)), [1, 2, 3, 4]),
    workload("die", (Impl("dies", dies),), [1, 2]),
))
"""


@pytest.fixture
def suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "shardy.py").write_text(SUITES.replace("SUITE_NAME", "shardy"))
    monkeypatch.setenv("EIGENBENCH_SUITES", str(folder))
    monkeypatch.setenv("SHARD_DIE_MARKER", str(tmp_path / "die"))
    return folder


def _ids(path: Path) -> list[str]:
    return [r["id"] for r in load_run(path)["records"]]


# ------------------------------------------------------------------ the split (pure)


def test_parse_shard() -> None:
    assert parse_shard("1/4") == ShardSpec(1, 4)
    assert str(parse_shard(" 0 / 2 ")) == "0/2"
    for bad in ("4/4", "1", "a/b", "0/0", "-1/2"):
        with pytest.raises(ValueError, match="i/K"):
            parse_shard(bad)


def test_split_keeps_each_sweep_in_one_shard_covers_every_case_once(suites: Path) -> None:
    cases = cases_of([load_suite("shardy")], devices=("cpu",), quick=False)
    shards = split_cases(cases, 3)
    assert sorted(c.id for s in shards for c in s) == sorted(c.id for c in cases)
    owner = {sweep_key(c): i for i, s in enumerate(shards) for c in s}
    for i, shard in enumerate(shards):
        assert all(owner[sweep_key(c)] == i for c in shard)
        order = [cases.index(c) for c in shard]
        assert order == sorted(order)  # run order kept: smaller sizes first
    assert [len(s) for s in shards] == [4, 4, 2]  # heaviest sweeps dealt first
    assert split_cases(cases, 3) == shards  # deterministic


def test_split_balances_by_weight_and_leaves_extra_shards_empty(suites: Path) -> None:
    cases = cases_of([load_suite("shardy")], devices=("cpu",), quick=False)
    heavy = {c.id: 100.0 for c in cases if c.impl.name == "dies"}
    shards = split_cases(cases, 2, heavy)
    assert {c.impl.name for c in shards[0]} == {"dies"}
    assert {c.impl.name for c in shards[1]} == {"a", "b"}
    assert [len(s) for s in split_cases(cases, 5)].count(0) == 2
    assert shard_cases(cases, ShardSpec(1, 2), heavy) == shards[1]
    with pytest.raises(ValueError, match="at least 1"):
        split_cases(cases, 0)


def test_gpu_slots_one_worker_per_gpu_unless_asked() -> None:
    assert gpu_slots(2, ["0", "1"]) == ["0", "1"]
    assert gpu_slots(4, ["2", "5"], per_gpu=2) == ["2", "5", "2", "5"]
    with pytest.raises(ValueError, match=r"3 workers for 2 visible GPU"):
        gpu_slots(3, ["0", "1"])
    with pytest.raises(ValueError, match="no GPU"):
        gpu_slots(1, [])
    assert parse_visible(None) is None
    assert parse_visible("3, 1,") == ["3", "1"]


def test_more_cuda_workers_than_gpus_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from eigenbench.cli.fanout import _slots

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    args = argparse.Namespace(workers=2, workers_per_gpu=1)
    with pytest.raises(UsageError, match="--workers 2: 2 workers for 1 visible GPU") as err:
        _slots(args, ("cuda",), local=True)
    assert err.value.exit_code == 2
    assert _slots(argparse.Namespace(workers=2, workers_per_gpu=2), ("cuda",), True) == ["3"] * 2
    assert _slots(args, ("cuda",), local=False) == [None, None]  # Slurm gives the GPUs
    assert _slots(args, ("cpu",), local=True) == [None, None]


# ------------------------------------------------------------------ runs


def test_workers_2_measure_the_cases_of_a_serial_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serial, sharded = tmp_path / "serial.json", tmp_path / "w2.json"
    assert main([*QUICK_EIG, "--out", str(serial)]) == 0
    capsys.readouterr()
    assert main([*QUICK_EIG, "--workers", "2", "--out", str(sharded)]) == 0
    err = capsys.readouterr().err
    assert "CPU workers share" in err
    run = load_run(sharded)
    assert _ids(sharded) == _ids(serial)  # same cases, in the serial run's order
    assert {r["status"] for r in run["records"]} == {"ok"}
    assert run["status"] == "complete"
    assert [s["index"] for s in run["shards"]] == [0, 1]
    assert sum(s["cases"] for s in run["shards"]) == len(run["records"])
    assert all(s["status"] == "complete" and s["host"] for s in run["shards"])
    assert not (tmp_path / "w2.json.shards").exists()  # parts removed once merged


def test_submitit_local_workers_measure_the_cases_of_a_serial_run(tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    serial, sharded = tmp_path / "serial.json", tmp_path / "s2.json"
    assert main([*QUICK_EIG, "--out", str(serial)]) == 0
    argv = [*QUICK_EIG, "--executor", "submitit", "--workers", "2", "--out", str(sharded)]
    assert main(argv) == 0
    run = load_run(sharded)
    assert sorted(_ids(sharded)) == sorted(_ids(serial))
    assert {r["status"] for r in run["records"]} == {"ok"}
    assert len(run["shards"]) == 2


def test_missing_submitit_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit → ImportError
    out = tmp_path / "x.json"
    assert main([*QUICK_EIG, "--executor", "submitit", "--out", str(out)]) == 4
    assert "pip install eigenbench[cluster]" in capsys.readouterr().err
    assert not out.exists()


def test_shard_i_of_k_runs_its_part_and_notes_the_shard(suites: Path, tmp_path: Path) -> None:
    base = ["run", "shardy", "--device", "cpu", *FAST]
    parts = []
    for i in range(2):
        out = tmp_path / f"shard-{i}.json"
        assert main([*base, "--shard", f"{i}/2", "--out", str(out)]) == 0
        run = load_run(out)
        assert run["shards"][0]["index"] == i
        assert run["shards"][0]["count"] == 2
        assert run["shards"][0]["cases"] == len(run["records"])
        parts.append(set(_ids(out)))
    every = {c.id for c in cases_of([load_suite("shardy")], devices=("cpu",), quick=False)}
    assert parts[0] | parts[1] == every
    assert not parts[0] & parts[1]
    assert main([*base, "--shard", "2/2"]) == 2
    assert main([*base, "--shard", "0/2", "--workers", "2"]) == 2
    assert main([*base, "--workers", "0"]) == 2


def test_a_dying_shard_is_reported_and_its_cases_rerun_by_resume(
    suites: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "die").write_text("")
    out = tmp_path / "run.json"
    argv = ["run", "shardy", "--device", "cpu", *FAST, "--workers", "2", "--out", str(out)]
    assert main(argv) == 4
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if "died" in ln)
    assert "shard 0/2 died" in line  # the heaviest sweeps are dealt first
    assert "die/dies/cpu/float32/n=1, die/dies/cpu/float32/n=2" in line
    assert "--resume" in line
    run = load_run(out)
    assert run["status"] == "interrupted"
    died = [s for s in run["shards"] if s["status"] == "died"]
    assert len(died) == 1
    assert died[0]["error"]
    by_status = {r["id"]: r["status"] for r in run["records"]}
    assert by_status["die/dies/cpu/float32/n=1"] == "interrupted"
    assert by_status["die/dies/cpu/float32/n=2"] == "interrupted"
    assert sum(s == "ok" for s in by_status.values()) == 8  # the other shard finished
    assert (tmp_path / "run.json.shards").is_dir()  # kept for a look at what died

    (tmp_path / "die").unlink()
    assert main(["run", "shardy", "--device", "cpu", *FAST, "--resume", str(out)]) == 0
    final = load_run(out)
    assert final["status"] == "complete"
    assert final["run_id"] == run["run_id"]
    assert len(final["records"]) == 10
    assert {r["status"] for r in final["records"]} == {"ok"}


def _wait_for_records(path: Path, n: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if len(json.loads(path.read_text())["records"]) >= n:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{path} never held {n} records")


def test_sigint_during_workers_run_leaves_an_interrupted_file_resume_completes(
    suites: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run.json"
    cmd = [sys.executable, "-m", "eigenbench", "run", "shardy", "--device", "cpu"]
    proc = subprocess.Popen(
        [*cmd, "--warmup", "0", "--max-time", "0.5", "--workers", "2", "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    _wait_for_records(out, 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err
    interrupted = load_run(out)  # schema-valid
    assert interrupted["status"] == "interrupted"
    statuses = [r["status"] for r in interrupted["records"]]
    assert "ok" in statuses
    assert set(statuses) <= {"ok", "interrupted"}
    assert len(statuses) < 10

    resumed = subprocess.run(
        # the interrupted run's options: --resume refuses others (exit 3)
        [*cmd, "--warmup", "0", "--max-time", "0.5", "--resume", str(out), "--workers", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env=os.environ,
    )
    assert resumed.returncode == 0, resumed.stderr
    final = load_run(out)
    assert final["status"] == "complete"
    assert final["run_id"] == interrupted["run_id"]
    ids = [r["id"] for r in final["records"]]
    assert len(ids) == len(set(ids)) == 10
    assert {r["status"] for r in final["records"]} == {"ok"}
    kept = [r for r in interrupted["records"] if r["status"] == "ok"]
    assert final["records"][: len(kept)] == kept  # finished cases were not measured again


# ------------------------------------------------------------------ Slurm, faked

FAKES = {
    "srun": "#!/bin/sh\nexit 0\n",
    "sbatch": '#!/bin/sh\ncp "$1" "$FAKE_SLURM_DIR/sbatch.sh"\necho "Submitted batch job 4242"\n',
    "sacct": "#!/bin/sh\nprintf 'JobID|State|NodeList\\n4242_0|FAILED|n1\\n4242_1|FAILED|n1\\n'\n",
    "squeue": "#!/bin/sh\nexit 0\n",
    "scancel": "#!/bin/sh\nexit 0\n",
}


def test_slurm_array_script_carries_partition_gpus_time_account(
    suites: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("submitit")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in FAKES.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(tmp_path))
    out = tmp_path / "run.json"
    slurm = ["--slurm-partition", "gpu", "--slurm-gpus-per-task", "1"]
    slurm += ["--slurm-time", "30", "--slurm-account", "proj7"]
    argv = ["run", "shardy", "--device", "cpu", *FAST, "--executor", "submitit"]
    code = main([*argv, "--workers", "2", *slurm, "--out", str(out)])
    script = (tmp_path / "sbatch.sh").read_text()
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --time=30",
        "#SBATCH --account=proj7",
        "#SBATCH --array=0-1%2",
    ):
        assert line in script
    # The fake cluster ran nothing: both shards are reported and their cases kept for --resume.
    assert code == 4
    assert "shard 0/2 died" in capsys.readouterr().err
    run = load_run(out)
    assert {r["status"] for r in run["records"]} == {"interrupted"}
    assert len(run["records"]) == 10


# ------------------------------------------------------------------ plan --shards --emit


def test_plan_emits_a_github_matrix_of_shard_commands(
    suites: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", "shardy", "--device", "cpu", "--max-time", "0.5", "--shards", "3"]
    assert main([*argv, "--emit", "github-matrix"]) == 0
    matrix = json.loads(capsys.readouterr().out)
    entries = matrix["include"]
    assert [e["shard"] for e in entries] == ["0/3", "1/3", "2/3"]
    assert sum(e["cases"] for e in entries) == 10
    assert all(e["estimate_s"] > 0 for e in entries)
    assert "--shard 1/3" in entries[1]["command"]
    assert "--max-time 0.5" in entries[1]["command"]
    assert entries[1]["command"].startswith("eigenbench run shardy")


def test_plan_emits_an_sbatch_array_script(
    suites: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", "shardy", "--device", "cpu", "--shards", "4", "--emit", "slurm-array"]
    assert main([*argv, "--slurm-partition", "a100", "--slurm-account", "lab"]) == 0
    script = capsys.readouterr().out
    assert script.startswith("#!/bin/bash\n")
    assert "#SBATCH --array=0-3" in script
    assert "#SBATCH --partition=a100" in script
    assert "#SBATCH --account=lab" in script
    assert "--shard $SLURM_ARRAY_TASK_ID/4" in script
    assert "--out results/runs/shard-$SLURM_ARRAY_TASK_ID.json" in script
    assert "# estimated time per shard: 0:" in script
    assert main(["plan", "shardy", "--emit", "slurm-array"]) == 2  # no --shards


def test_shards_field_is_checked_by_the_schema() -> None:
    run = make_run([])
    run["shards"] = [{"index": 0, "count": 2, "host": "h", "cuda_visible_devices": "1"}]
    validate_run(run)
    run["shards"] = [{"index": 0, "count": 0}]
    with pytest.raises(Exception, match="shards"):
        validate_run(run)


# ------------------------------------------------------------------ the merge, without processes


class _Done:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error

    def done(self) -> bool:
        return True

    def result(self) -> str:
        if self.error is not None:
            raise self.error
        return "complete"

    def cancel(self) -> bool:
        return False


class _Launched:
    def __init__(self, handles: list[_Done]) -> None:
        self.handles = handles
        self.closed = False

    def kill(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_fanout_merges_parts_in_run_order_and_records_a_dead_shards_cases(
    suites: Path, tmp_path: Path
) -> None:
    from eigenbench.results import save_run
    from eigenbench.run.fanout import Fanout
    from eigenbench.run.fanout_worker import ShardJob
    from eigenbench.run.options import RunOptions
    from eigenbench.run.records import base_record
    from eigenbench.run.runner import Runner

    cases = cases_of([load_suite("shardy")], devices=("cpu",), quick=False)
    options = RunOptions()
    env = make_run([])["env"]
    runner = Runner(env=env, options=options, out_path=tmp_path / "run.json", command="test")
    shards = split_cases(cases, 2)
    jobs = [
        ShardJob(
            i,
            2,
            ("shardy",),
            str(suites),
            tuple(c.id for c in s),
            options.to_dict(),
            str(tmp_path / f"shard-{i}.json"),
            "test",
        )
        for i, s in enumerate(shards)
    ]
    for job, shard, status in zip(jobs, shards, ("complete", "running"), strict=True):
        part = {
            "status": status,
            "shards": [{"index": job.index, "count": 2, "host": "h", "pid": 1, "status": status}],
            "records": [base_record(c, "ok") for c in shard[: 1 if status == "running" else None]],
        }
        save_run(part, job.part)
    launched = _Launched([_Done(), _Done(RuntimeError("boom"))])
    result = Fanout(runner, jobs, cases, poll_s=0.0).run(lambda _jobs: launched)
    assert launched.closed
    doc = load_run(tmp_path / "run.json")
    assert [r["id"] for r in doc["records"]] == [c.id for c in cases]  # run order
    died = [o for o in result.outcomes if o.status == "died"]
    assert [o.job.index for o in died] == [1]
    assert died[0].unfinished == tuple(c.id for c in shards[1][1:])
    lost = [r for r in doc["records"] if r["status"] == "interrupted"]
    assert [r["id"] for r in lost] == list(died[0].unfinished)
    assert lost[0]["reason"] == "shard 1/2 died: RuntimeError: boom"
    assert doc["status"] == "interrupted"
    assert [s["status"] for s in doc["shards"]] == ["complete", "died"]
    assert "pid" not in doc["shards"][0]
    assert result.deaths[0].startswith("shard 1/2 died (RuntimeError: boom); 3 unfinished")


def test_a_record_a_worker_rewrites_after_its_first_save_is_merged_again(
    suites: Path, tmp_path: Path
) -> None:
    """Later rounds and the deferred CUDA fingerprints rewrite a record already saved in the
    part file: the merged run follows (it kept round 1 only)."""
    from eigenbench.results import save_run
    from eigenbench.run.fanout import Fanout
    from eigenbench.run.fanout_worker import ShardJob
    from eigenbench.run.options import RunOptions
    from eigenbench.run.records import base_record
    from eigenbench.run.runner import Runner

    cases = cases_of([load_suite("shardy")], devices=("cpu",), quick=False)[:2]
    options = RunOptions(rounds=3)
    runner = Runner(
        env=make_run([])["env"], options=options, out_path=tmp_path / "run.json", command="t"
    )
    job = ShardJob(
        0,
        1,
        ("shardy",),
        str(suites),
        tuple(c.id for c in cases),
        options.to_dict(),
        str(tmp_path / "shard-0.json"),
        "t",
    )
    first = [base_record(c, "ok") for c in cases]
    part = {"status": "running", "shards": [{"index": 0, "count": 1}], "records": first}
    save_run(part, job.part)
    fan = Fanout(runner, [job], cases, poll_s=0.0)
    assert fan.merge() == 2
    later = [{**r, "rounds": 3, "dispatch": None, "dispatch_reason": "r"} for r in first]
    save_run({**part, "status": "complete", "records": later}, job.part)
    assert fan.merge() == 0  # nothing new, two records rewritten
    doc = load_run(tmp_path / "run.json")
    assert [r.get("rounds") for r in doc["records"]] == [3, 3]
    assert all(r["dispatch_reason"] == "r" for r in doc["records"])


def test_a_worker_takes_its_gpu_and_notes_it_in_its_part(
    suites: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eigenbench.measure.loop import MeasureOptions
    from eigenbench.run.fanout_worker import ShardJob, run_shard
    from eigenbench.run.options import RunOptions

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # restored after the test
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    fast = MeasureOptions(warmup_s=0.0, min_samples=2, max_time_s=0.02)
    options = RunOptions(measure=fast)
    job = ShardJob(
        index=1,
        count=3,
        suites=("shardy",),
        suites_dir=str(suites),
        case_ids=("nap/a/cpu/float32/n=1",),
        options=options.to_dict(),
        part=str(tmp_path / "part.json"),
        command="test",
        env=make_run([])["env"],
        cuda_visible_devices="7",
        threads=1,
    )
    try:
        assert run_shard(job) == "complete"
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "7"
    part = load_run(tmp_path / "part.json")
    entry = part["shards"][0]
    assert (entry["index"], entry["count"], entry["cases"]) == (1, 3, 1)
    assert entry["cuda_visible_devices"] == "7"
    assert entry["status"] == "complete"
    assert [r["status"] for r in part["records"]] == ["ok"]
