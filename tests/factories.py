"""Builders of schema-valid run and record dicts for tests (synthetic samples, no timing)."""

from __future__ import annotations

from typing import Any

import numpy as np

from eigenbench.measure.stats import summarize
from eigenbench.results import SCHEMA_ID


def make_samples(median_s: float, n: int = 30, cv: float = 0.01, seed: int = 0) -> list[float]:
    """Log-normal samples around `median_s` with coefficient of variation `cv`."""
    rng = np.random.default_rng(seed)
    return [float(v) for v in median_s * np.exp(rng.normal(0.0, cv, n))]


def make_record(
    workload: str = "eigvalsh_batched",
    impl: str = "torch",
    params: dict[str, Any] | None = None,
    *,
    suite: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    phase: str = "call",
    status: str = "ok",
    samples_s: list[float] | None = None,
    median_s: float = 1e-3,
    version: str = "v0",
    **overrides: Any,
) -> dict[str, Any]:
    """One record as the runner writes it; `overrides` replace any field."""
    params = {"batch": 4, "n": 16} if params is None else params
    ptxt = ",".join(f"{k}={v}" for k, v in params.items())
    case_id = f"{workload}/{impl}/{device}/{dtype}/{ptxt}" + (
        "" if phase == "call" else f"/{phase}"
    )
    timed = status in ("ok", "invalid")
    samples = (samples_s if samples_s is not None else make_samples(median_s)) if timed else []
    record: dict[str, Any] = {
        "id": case_id,
        "suite": suite or workload,
        "workload": workload,
        "impl": impl,
        "params": params,
        "device": device,
        "dtype": dtype,
        "phase": phase,
        "status": status,
        "reason": None if status == "ok" else f"{status} for a test",
        "timer": ("cuda_event" if device == "cuda" else "perf_counter") if timed else None,
        "samples_s": samples,
        "first_call_s": samples[0] * 3 if samples else None,
        "summary": summarize(samples).to_dict() if samples else None,
        "validation": {
            "ok": status != "invalid",
            "max_abs_err": 1e-7 if status != "invalid" else 0.5,
            "max_rel_err": 1e-7 if status != "invalid" else 0.5,
            "reference": "numpy float64",
        }
        if timed
        else None,
        "memory": {"peak_bytes": 1 << 20, "kind": "cpu_rss"} if timed else None,
        "host_blocking": None,
        "version": version,
        "convergence": None,
    }
    record.update(overrides)
    return record


def make_run(records: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    """A complete run holding `records`."""
    run: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "run_id": "20261122T000000Z-test",
        "started": "2026-11-22T00:00:00+00:00",
        "finished": "2026-11-22T00:01:00+00:00",
        "status": "complete",
        "command": "eigenbench run test",
        "env": {
            "machine_key": "test-machine",
            "hostname": "test",
            "cpu": {"model": "Test CPU", "cores": 2},
            "gpu": None,
            "packages": {"torch": "2.13.0", "numpy": "2.0"},
            "git_commit": "0000000",
        },
        "options": {"quick": True, "device": "cpu"},
        "records": records,
    }
    run.update(overrides)
    return run


RUN_ENV: dict[str, Any] = {
    "machine_key": "test",
    "cpu": {"model": "t"},
    "gpu": None,
    "packages": {},
    "git_commit": None,
}
"""The env a test hands a Runner: schema-valid, no probing of this machine."""


def make_dispatch(
    ops: dict[str, int] | None = None,
    kernels: dict[str, int] | None = None,
    syncs: dict[str, int] | None = None,
    *,
    calls: int = 1,
    tool: str = "torch.profiler",
    **overrides: Any,
) -> dict[str, Any]:
    """A record's `dispatch` fingerprint (DISPATCH_SCHEMA) as the profiler step writes it."""
    ops = {"aten::linalg_eigh": 1} if ops is None else ops
    kernels = {} if kernels is None else kernels
    syncs = {} if syncs is None else syncs
    shown = sorted({**ops, **kernels}.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
    short = ", ".join([*(f"{k} ×{n}" for k, n in shown), f"{sum(syncs.values())} syncs"])
    fp: dict[str, Any] = {
        "tool": tool,
        "calls": calls,
        "ops": dict(ops),
        "kernels": dict(kernels),
        "syncs": dict(syncs),
        "short": short,
    }
    fp.update(overrides)
    return fp


def make_ab_pair(
    base_records: list[dict[str, Any]], head_records: list[dict[str, Any]], rounds: int = 5
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two runs of one `eigenbench ab` (tagged with the same pair id); records without
    `round_medians_s` get `rounds` copies of their median."""
    runs = []
    for side, records in (("base", base_records), ("head", head_records)):
        for rec in records:
            median = (rec.get("summary") or {}).get("median_s")
            if median and "round_medians_s" not in rec:
                rec["round_medians_s"] = [median] * rounds
                rec["rounds"] = rounds
        tag = {"id": "20261122T000000Z-ab", "side": side, "rounds": rounds, "seed": 0}
        runs.append(make_run(records, ab=tag))
    return runs[0], runs[1]
