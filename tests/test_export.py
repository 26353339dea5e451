"""export: pyperf files that pyperf itself reads, and github-action-benchmark entries."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from factories import make_record, make_run, make_samples

from eigenbench.errors import ExportError, UsageError
from eigenbench.results.export import (
    dumps_export,
    to_github_action,
    to_pyperf,
    write_export,
)


def _run(scale: float = 1.0, seed: int = 0):
    return make_run(
        [
            make_record(params={"n": 8}, samples_s=make_samples(2e-3 * scale, n=25, seed=seed)),
            make_record(
                impl="cupy",
                device="cuda",
                params={"n": 8},
                samples_s=make_samples(5e-4 * scale, n=25, seed=seed + 1),
            ),
            make_record(impl="scipy", status="invalid"),
            make_record(impl="numpy", status="skipped"),
        ]
    )


def test_pyperf_suite_is_read_by_pyperf(tmp_path):
    import pyperf

    run = _run()
    path = write_export(run, "pyperf", tmp_path / "run.pyperf.json")
    suite = pyperf.BenchmarkSuite.load(str(path))
    ok = [r for r in run["records"] if r["status"] == "ok"]
    assert suite.get_benchmark_names() == [r["id"] for r in ok]
    for rec in ok:
        bench = suite.get_benchmark(rec["id"])
        assert list(bench.get_values()) == pytest.approx(rec["samples_s"], rel=1e-15)
        assert bench.median() == pytest.approx(float(np.median(rec["samples_s"])), rel=1e-12)
        assert bench.get_unit() == "second"
        meta = bench.get_metadata()
        assert meta["eigenbench_device"] == rec["device"]
        assert meta["eigenbench_machine_key"] == "test-machine"


def _pyperf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyperf", *args], capture_output=True, text=True, timeout=60
    )


def test_pyperf_cli_stats_and_compare_to(tmp_path):
    base = write_export(_run(seed=0), "pyperf", tmp_path / "base.json")
    cur = write_export(_run(scale=1.2, seed=7), "pyperf", tmp_path / "cur.json")
    stats = _pyperf("stats", str(base))
    assert stats.returncode == 0, stats.stderr
    assert "Median +- MAD" in stats.stdout
    assert "eigvalsh_batched/cupy/cuda/float32/n=8" in stats.stdout
    compare = _pyperf("compare_to", str(base), str(cur))
    assert compare.returncode == 0, compare.stderr
    assert "slower" in compare.stdout
    assert "1.20x slower" in compare.stdout or "1.19x slower" in compare.stdout


def test_pyperf_drops_nonpositive_values_and_keeps_first_call_as_warmup():
    rec = make_record(samples_s=[0.0, 1e-3, 2e-3, 0.0, 3e-3], first_call_s=0.01)
    doc = to_pyperf(make_run([rec]))
    (bench,) = doc["benchmarks"]
    (prun,) = bench["runs"]
    assert prun["values"] == [1e-3, 2e-3, 3e-3]
    assert prun["warmups"] == [[1, 0.01]]
    assert prun["metadata"]["name"] == rec["id"]
    assert doc["version"] == "1.0"


def test_pyperf_metadata_is_what_pyperf_accepts():
    import pyperf

    rec = make_record(reason=None)
    run = make_run([rec], env={**make_run([])["env"], "git_commit": None, "gpu": None})
    doc = to_pyperf(run)
    suite = pyperf.BenchmarkSuite.loads(json.dumps(doc))  # raises on a bad metadata value
    assert "git_commit" not in suite.get_metadata()


def test_nothing_to_export_is_an_error():
    with pytest.raises(ExportError, match="no ok records"):
        to_pyperf(make_run([make_record(status="failed")]))
    with pytest.raises(ExportError, match="no ok records"):
        to_github_action(make_run([]))


def _check_custom_entry(entry: dict) -> None:
    """The fields github-action-benchmark's customSmallerIsBetter schema reads (§3.1)."""
    assert set(entry) <= {"name", "unit", "value", "range", "extra"}
    assert isinstance(entry["name"], str) and entry["name"]
    assert isinstance(entry["unit"], str)
    assert isinstance(entry["value"], float) and entry["value"] > 0
    assert isinstance(entry.get("range", ""), str) and isinstance(entry.get("extra", ""), str)


def test_github_action_entries():
    run = _run()
    entries = to_github_action(run)
    ok = [r for r in run["records"] if r["status"] == "ok"]
    assert [e["name"] for e in entries] == [r["id"] for r in ok]
    for entry, rec in zip(entries, ok, strict=True):
        _check_custom_entry(entry)
        assert entry["unit"] == "s"
        assert entry["value"] == pytest.approx(np.median(rec["samples_s"]), rel=1e-12)
        half = (rec["summary"]["ci95_high_s"] - rec["summary"]["ci95_low_s"]) / 2
        assert entry["range"].startswith("± ")
        assert float(entry["range"][2:]) == pytest.approx(half, rel=1e-5)
        assert f"device: {rec['device']}" in entry["extra"].split("\n")


def test_github_action_unit_scaling():
    run = _run()
    seconds = to_github_action(run)
    millis = to_github_action(run, unit="ms")
    assert [e["unit"] for e in millis] == ["ms", "ms"]
    for s, m in zip(seconds, millis, strict=True):
        assert m["value"] == pytest.approx(s["value"] * 1e3)
        assert float(m["range"][2:]) == pytest.approx(float(s["range"][2:]) * 1e3, rel=1e-5)
    with pytest.raises(UsageError, match="unit"):
        to_github_action(run, unit="msec")


def test_dumps_and_write(tmp_path):
    run = _run()
    text = dumps_export(run, "github-action")
    assert json.loads(text) == to_github_action(run)
    out = write_export(run, "github-action", tmp_path / "sub" / "bench.json")
    assert json.loads(out.read_text()) == to_github_action(run)
    with pytest.raises(UsageError, match="pyperf"):
        dumps_export(run, "csv")
