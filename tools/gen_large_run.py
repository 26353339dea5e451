"""Schema-valid run files of any size, for profiling `eigenbench compare` (issue 22).

Writes a baseline and a current run of CASES cases with SAMPLES samples each (log-normal
around a per-case median, a few cases slowed on the current side), and optionally a
baseline with a `--history` of run medians, as `baseline save --keep` leaves it.

    python tools/gen_large_run.py --cases 16000 --samples 30 --out /tmp/big
    /usr/bin/time -v python -m eigenbench compare /tmp/big/base.json /tmp/big/cur.json --json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from eigenbench.results import SCHEMA_ID


def summary_of(samples: np.ndarray) -> dict[str, Any]:
    """A schema-valid summary, computed cheaply (no bootstrap: this is test data)."""
    q1, median, q3 = np.quantile(samples, [0.25, 0.5, 0.75])
    return {
        "n": int(samples.size),
        "median_s": float(median),
        "mean_s": float(samples.mean()),
        "min_s": float(samples.min()),
        "max_s": float(samples.max()),
        "iqr_s": float(q3 - q1),
        "ci95_low_s": float(q1),
        "ci95_high_s": float(q3),
    }


def record(i: int, samples: np.ndarray, *, suites: int, history: list[float] | None) -> dict:
    """Case `i` as the runner writes it, spread over `suites` suites."""
    suite = f"suite{i % suites}"
    params = {"n": i}
    rec: dict[str, Any] = {
        "id": f"{suite}/w/torch/cpu/float32/n={i}",
        "suite": suite,
        "workload": "w",
        "impl": "torch",
        "params": params,
        "device": "cpu",
        "dtype": "float32",
        "phase": "call",
        "status": "ok",
        "reason": None,
        "timer": "perf_counter",
        "samples_s": samples.tolist(),
        "first_call_s": float(samples[0]) * 3,
        "summary": summary_of(samples),
        "validation": {"ok": True, "max_abs_err": 1e-7, "max_rel_err": 1e-7, "reference": "r"},
        "memory": {"peak_bytes": 1 << 20, "kind": "cpu_rss"},
        "host_blocking": None,
        "version": "v0",
        "convergence": None,
    }
    if history is not None:
        rec["run_medians_s"] = history
    return rec


def make_run(
    run_id: str, cases: int, samples: int, *, seed: int, slow: float, suites: int, history: int
) -> dict[str, Any]:
    """One run: case i's median is 1 ms × (1 + i % 7), every 50th case `slow` times slower."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(cases):
        median = 1e-3 * (1 + i % 7) * (slow if i % 50 == 0 else 1.0)
        x = median * np.exp(rng.normal(0.0, 0.02, samples))
        meds = None
        if history:
            meds = [float(median * np.exp(rng.normal(0.0, 0.01))) for _ in range(history)]
        records.append(record(i, x, suites=suites, history=meds))
    run: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "run_id": run_id,
        "started": "2026-11-22T00:00:00+00:00",
        "finished": "2026-11-22T00:01:00+00:00",
        "status": "complete",
        "command": "eigenbench run generated",
        "env": {
            "machine_key": "gen-machine",
            "cpu": {"model": "gen"},
            "gpu": None,
            "packages": {},
            "git_commit": None,
        },
        "options": {"quick": True},
        "records": records,
    }
    if history:
        run["history_run_ids"] = [f"{run_id}-{k}" for k in range(history)]
    return run


def write_pair(
    out: Path, cases: int, samples: int, *, suites: int = 4, history: int = 0
) -> tuple[Path, Path]:
    """base.json and cur.json in `out` (created); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    kw = {"suites": suites}
    base = make_run("base", cases, samples, seed=1, slow=1.0, history=history, **kw)
    cur = make_run("cur", cases, samples, seed=2, slow=1.3, history=0, **kw)
    paths = out / "base.json", out / "cur.json"
    for path, run in zip(paths, (base, cur), strict=True):
        path.write_text(json.dumps(run))
    return paths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=16000)
    p.add_argument("--samples", type=int, default=30)
    p.add_argument("--suites", type=int, default=4)
    p.add_argument("--history", type=int, default=0, help="run medians per baseline record")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    for path in write_pair(a.out, a.cases, a.samples, suites=a.suites, history=a.history):
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
