"""The worker side of a sharded run: one shard's cases in this process, into a part file.

`run_shard` is what a worker process (a `ProcessPoolExecutor` worker, a submitit job) calls.
It takes its GPU (`CUDA_VISIBLE_DEVICES`) before anything touches CUDA, runs its cases with an
ordinary `Runner` whose run file is the shard's part file (rewritten atomically after every
case), and records its environment in the part's `shards` entry. SIGTERM ends it like Ctrl-C:
the current case is recorded `interrupted` and the part is closed before it exits.
"""

from __future__ import annotations

import os
import platform
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class ShardJob:
    """Everything a worker needs to run one shard (picklable, JSON-like values only)."""

    index: int
    count: int
    suites: tuple[str, ...]
    suites_dir: str
    case_ids: tuple[str, ...]
    options: dict[str, Any]
    """`RunOptions.to_dict()` of the run."""
    part: str
    """The shard's part file: a run file of its own records."""
    command: str
    env: dict[str, Any] = field(default_factory=dict)
    """The parent's environment record (its measured peaks give throughput)."""
    cuda_visible_devices: str | None = None
    threads: int | None = None

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def shard_entry(job: ShardJob, *, gpu: Any = None, threads: int | None = None) -> dict[str, Any]:
    """The `shards` entry of this worker: which shard, where it ran, on which GPU."""
    return {
        "index": job.index,
        "count": job.count,
        "cases": len(job.case_ids),
        "host": platform.node(),
        "pid": os.getpid(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "gpu": gpu,
        "torch_threads": threads,
        "status": "running",
    }


def run_shard(job: ShardJob) -> str:
    """Run one shard (in a worker process); its run status. KeyboardInterrupt (Ctrl-C,
    SIGTERM) propagates once the part file says `interrupted`."""
    signal.signal(signal.SIGTERM, _terminate)
    if job.cuda_visible_devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = job.cuda_visible_devices  # before CUDA starts
    os.environ["EIGENBENCH_SUITES"] = job.suites_dir

    import torch

    from eigenbench.env import cuda_available, gpu_info
    from eigenbench.results import save_run
    from eigenbench.run.options import RunOptions
    from eigenbench.run.runner import Runner
    from eigenbench.suites import cases_of, load_suite

    if job.threads is not None:
        torch.set_num_threads(job.threads)
    options = RunOptions.from_dict(job.options)
    folder = Path(job.suites_dir)
    suites = [load_suite(name, folder) for name in job.suites]
    wanted = set(job.case_ids)
    cases = [
        c for c in cases_of(suites, devices=options.devices, quick=options.quick) if c.id in wanted
    ]
    gpu = gpu_info() if "cuda" in options.devices and cuda_available() else None
    env = {**job.env, "cpu": {**job.env.get("cpu", {}), "torch_threads": torch.get_num_threads()}}
    part = Path(job.part)
    runner = Runner(env=env, options=options, out_path=part, command=job.command)
    entry = shard_entry(job, gpu=gpu, threads=torch.get_num_threads())
    runner.run_doc["shards"] = [entry]
    save_run(runner.run_doc, part)  # the pid is known before the first case ends
    try:
        runner.run(cases)
    finally:
        entry["status"] = runner.run_doc["status"]
        save_run(runner.run_doc, part)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # an idle pool worker just ends
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent reports Ctrl-C, not it
    return str(runner.run_doc["status"])
