"""`run --workers N`, `run --executor submitit`, `run --shard i/K` and `plan --shards K --emit`.

The splitting is `eigenbench.run.shards`, the worker processes and the merging
`eigenbench.run.fanout`; this module turns arguments into shard jobs and prints.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from eigenbench.errors import UsageError

EMITS = ("github-matrix", "slurm-array")


def fanout_requested(args: argparse.Namespace) -> bool:
    """Whether `run` should start worker processes instead of measuring in this one."""
    if getattr(args, "workers", 1) < 1:
        raise UsageError(f"eigenbench run: --workers must be at least 1, got {args.workers}")
    return bool(getattr(args, "workers", 1) > 1 or getattr(args, "executor", None) == "submitit")


def shard_weights(cases: list[Any], options: Any) -> dict[str, float] | None:
    """Seconds by case id from the suites' priors alone (no baseline, nothing machine
    specific), so that every machine splits the same cases alike; None: count cases."""
    from eigenbench.run.plan import estimate_plan

    try:
        return {c.id: c.seconds for c in estimate_plan(cases, options).cases}
    except Exception:  # a broken prior: split by counts rather than stop
        return None


def select_shard(args: argparse.Namespace, runner: Any, cases: list[Any]) -> list[Any]:
    """`--shard i/K`: the cases of shard i, noted in the run file's `shards`."""
    from eigenbench.env import cuda_available, gpu_info
    from eigenbench.run.shards import parse_shard, shard_cases

    try:
        spec = parse_shard(args.shard)
    except ValueError as exc:
        raise UsageError(f"eigenbench run: --shard: {exc}") from None
    mine = shard_cases(cases, spec, shard_weights(cases, runner.options))
    gpu = gpu_info() if "cuda" in runner.options.devices and cuda_available() else None
    runner.run_doc["shards"] = [
        {
            "index": spec.index,
            "count": spec.count,
            "cases": len(mine),
            "host": runner.env.get("hostname"),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "gpu": gpu,
            "torch_threads": (runner.env.get("cpu") or {}).get("torch_threads"),
        }
    ]
    return mine


def _slots(args: argparse.Namespace, devices: tuple[str, ...], local: bool) -> list[str | None]:
    """Each worker's `CUDA_VISIBLE_DEVICES` (None: left as it is)."""
    from eigenbench.run.shards import gpu_slots, parse_visible

    if args.workers_per_gpu < 1:
        raise UsageError("eigenbench run: --workers-per-gpu must be at least 1")
    if "cuda" not in devices or not local:
        return [None] * args.workers
    import torch

    visible = parse_visible(os.environ.get("CUDA_VISIBLE_DEVICES"))
    gpus = visible if visible is not None else [str(i) for i in range(torch.cuda.device_count())]
    try:
        return list(gpu_slots(args.workers, gpus, args.workers_per_gpu))
    except ValueError as exc:
        raise UsageError(f"eigenbench run: --workers {args.workers}: {exc}") from None


def _launcher(args: argparse.Namespace, folder: Path, cluster: str) -> Any:
    if args.executor != "submitit":
        from eigenbench.run.fanout import pool_launcher

        return pool_launcher
    from eigenbench.run.fanout_submitit import SlurmSettings, submitit_launcher

    slurm = SlurmSettings(
        args.slurm_partition, args.slurm_gpus_per_task, args.slurm_time, args.slurm_account
    )
    return submitit_launcher(folder / "submitit", slurm, cluster)


def run_workers(
    args: argparse.Namespace, runner: Any, cases: list[Any], out: Path, what: str
) -> tuple[dict[str, Any] | None, list[str]]:
    """Measure `cases` in shards on worker processes, merged into `out`; (the run or None
    when interrupted, the lines naming shards that died)."""
    from rich.console import Console

    from eigenbench.console import Progress
    from eigenbench.run.fanout import Fanout
    from eigenbench.run.fanout_worker import ShardJob
    from eigenbench.run.shards import split_cases
    from eigenbench.suites import suites_dir

    if args.shard:
        raise UsageError(
            "eigenbench run: --shard runs one shard in this process; drop --workers/--executor"
        )
    cluster = "local"
    if args.executor == "submitit":
        from eigenbench.run.fanout_submitit import cluster_here

        cluster = cluster_here()
    devices = runner.options.devices
    slots = _slots(args, devices, local=cluster == "local")
    err = Console(stderr=True)
    threads = args.threads
    cores = os.cpu_count() or 1
    if "cuda" not in devices and cluster == "local" and args.workers > 1:
        threads = threads or max(1, cores // args.workers)
        err.print(
            f"warning: {args.workers} CPU workers share this machine's {cores} cores: their "
            f"timings interfere (torch threads {threads} each; --workers 1 for clean timings)",
            markup=False,
            soft_wrap=True,
        )
    done = {r["id"] for r in runner.run_doc["records"]}
    todo = [c for c in cases if c.id not in done]
    folder = out.with_name(f"{out.name}.shards")  # covered by the lock on `out`
    for stale in folder.glob("shard-*.json"):
        stale.unlink()
    jobs = [
        ShardJob(
            index=i,
            count=args.workers,
            suites=tuple(sorted({c.suite for c in shard})),
            suites_dir=str(Path(suites_dir()).resolve()),
            case_ids=tuple(c.id for c in shard),
            options=runner.options.to_dict(),
            part=str((folder / f"shard-{i}.json").resolve()),
            command=runner.command,
            env=runner.env,
            cuda_visible_devices=slots[i],
            threads=threads,
        )
        for i, shard in enumerate(
            split_cases(todo, args.workers, shard_weights(todo, runner.options))
        )
        if shard
    ]
    runner.out_path = out
    how = "submitit " + cluster if args.executor == "submitit" else "worker processes"
    err.print(
        f"eigenbench: {len(todo)} cases of {what} in {len(jobs)} shard(s) on {how} → {out}",
        soft_wrap=True,
    )
    fan = Fanout(runner, jobs, todo)
    with Progress(len(todo)) as progress:
        runner.on_record = progress.advance
        try:
            result = fan.run(_launcher(args, folder, cluster))
        except KeyboardInterrupt:
            err.print(
                f"interrupted: {len(runner.run_doc['records'])} records kept in {out}; "
                f"continue with --resume {out}"
            )
            return None, []
    deaths = result.deaths
    for line in deaths:
        print(f"eigenbench: error: {line}; continue with --resume {out}", file=sys.stderr)
    if not deaths:
        shutil.rmtree(folder, ignore_errors=True)
    return dict(runner.run_doc), deaths


def _run_command(args: argparse.Namespace, suites: list[str]) -> list[str]:
    """The `eigenbench run …` arguments that reproduce this plan's cases and options."""
    argv = ["eigenbench", "run", *suites, "--device", args.device]
    if args.quick:
        argv.append("--quick")
    if args.filter:
        argv += ["--filter", args.filter]
    for flag, name in (
        ("--min-samples", "min_samples"),
        ("--max-time", "max_time_s"),
        ("--rel-ci", "rel_ci_target"),
        ("--warmup", "warmup_s"),
        ("--timeout", "timeout_s"),
    ):
        value = getattr(args, name, None)
        if value is not None:
            argv += [flag, repr(value)]
    if args.rounds != 1:
        argv += ["--rounds", str(args.rounds)]
    return argv


def emit_shards(args: argparse.Namespace, cases: list[Any], options: Any, plan: Any) -> str:
    """`plan --shards K --emit …`: a GitHub Actions matrix (JSON) or an sbatch array script."""
    from eigenbench.run.plan import shard_totals
    from eigenbench.run.shards import split_cases
    from eigenbench.units import fmt_duration

    k = args.shards
    if k is None or k < 1:
        raise UsageError("eigenbench plan: --emit needs --shards K (K ≥ 1)")
    shards = split_cases(cases, k, shard_weights(cases, options))
    totals = shard_totals(plan, shards)
    base = _run_command(args, list(args.suites))
    if args.emit is None:
        return "\n".join(
            f"shard {i}/{k}: {len(shard)} cases, {fmt_duration(totals[i])}"
            for i, shard in enumerate(shards)
        )
    if args.emit == "github-matrix":
        import json

        include = [
            {
                "shard": f"{i}/{k}",
                "index": i,
                "cases": len(shard),
                "estimate_s": round(totals[i], 1),
                "command": shlex.join(
                    [*base, "--shard", f"{i}/{k}", "--out", f"results/runs/shard-{i}.json"]
                ),
            }
            for i, shard in enumerate(shards)
        ]
        return json.dumps({"include": include}, indent=1)
    return slurm_script(args, base, k, totals, fmt_duration)


def slurm_script(
    args: argparse.Namespace, base: list[str], k: int, totals: list[float], fmt: Any
) -> str:
    """An sbatch script running shard $SLURM_ARRAY_TASK_ID of K per array task."""
    longest_min = int(max(totals, default=0.0) * 2 / 60) + 10  # twice the estimate, plus 10
    time_min = args.slurm_time or longest_min
    lines = [
        "#!/bin/bash",
        "#SBATCH --job-name=eigenbench",
        f"#SBATCH --array=0-{k - 1}",
        f"#SBATCH --time={time_min}",
        "#SBATCH --output=results/runs/shard-%a.log",
    ]
    for flag, value in (
        ("--partition", args.slurm_partition),
        ("--gpus-per-task", args.slurm_gpus_per_task),
        ("--account", args.slurm_account),
    ):
        if value is not None:
            lines.append(f"#SBATCH {flag}={value}")
    lines.append(
        "# estimated time per shard: " + ", ".join(f"{i}: {fmt(t)}" for i, t in enumerate(totals))
    )
    lines += [
        "set -euo pipefail",
        "mkdir -p results/runs",
        shlex.join(base)
        + f" --shard $SLURM_ARRAY_TASK_ID/{k}"
        + " --out results/runs/shard-$SLURM_ARRAY_TASK_ID.json",
        "# afterwards: eigenbench merge results/runs/shard-*.json --out results/runs/merged.json",
    ]
    return "\n".join(lines) + "\n"
