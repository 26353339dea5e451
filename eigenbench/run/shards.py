"""Splitting a run's cases into shards (pure: no processes, no files, no devices).

A shard is a deterministic part of the case list: every machine that expands the same suites
with the same options gets the same split, so `run --shard i/K` on K machines (a CI matrix, a
Slurm array) measures each case exactly once. All cases of one impl sweep (workload, impl,
device, dtype, phase) stay in one shard, in run order, so that the runner's rule "bigger sizes
of an impl that timed out or ran out of memory are skipped" still sees the smaller sizes first.
Sweeps are dealt, heaviest first, to the shard with the least estimated seconds so far.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eigenbench.spec import Case

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True, slots=True)
class ShardSpec:
    """Shard `index` (0-based) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> ShardSpec:
    """`"i/K"` (0 ≤ i < K) as a ShardSpec; ValueError naming what is wrong."""
    m = _SHARD.match(text)
    if m is None:
        raise ValueError(f"expected i/K (e.g. 0/4), got {text!r}")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"expected 0 ≤ i < K in i/K, got {text!r}")
    return ShardSpec(index, count)


def sweep_key(case: Case) -> tuple[str, ...]:
    """The cases that must share a shard: one impl's sizes on one device, dtype and phase."""
    return (case.suite, case.workload.name, case.impl.name, case.device, case.dtype, case.phase)


def split_cases(
    cases: Sequence[Case], count: int, weights: Mapping[str, float] | None = None
) -> list[list[Case]]:
    """`cases` in `count` shards (some empty when there are fewer sweeps than shards).

    `weights` gives seconds by case id (default 1 per case); each shard keeps run order.
    """
    if count < 1:
        raise ValueError(f"shard count must be at least 1, got {count}")
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, case in enumerate(cases):
        groups.setdefault(sweep_key(case), []).append(i)

    def weight(members: list[int]) -> float:
        return sum((weights or {}).get(cases[i].id, 1.0) for i in members)

    order = sorted(groups.values(), key=lambda m: (-weight(m), m[0]))
    loads = [0.0] * count
    owner: dict[int, int] = {}
    for members in order:
        target = min(range(count), key=lambda s: (loads[s], s))
        loads[target] += weight(members)
        for i in members:
            owner[i] = target
    shards: list[list[Case]] = [[] for _ in range(count)]
    for i, case in enumerate(cases):
        shards[owner[i]].append(case)
    return shards


def shard_cases(
    cases: Sequence[Case], spec: ShardSpec, weights: Mapping[str, float] | None = None
) -> list[Case]:
    """The cases of shard `spec` of `cases`."""
    return split_cases(cases, spec.count, weights)[spec.index]


def parse_visible(text: str | None) -> list[str] | None:
    """The GPU ids of a `CUDA_VISIBLE_DEVICES` value, or None when it is unset."""
    if text is None:
        return None
    return [g.strip() for g in text.split(",") if g.strip()]


def gpu_slots(workers: int, gpus: Sequence[str], per_gpu: int = 1) -> list[str]:
    """The `CUDA_VISIBLE_DEVICES` value of each worker: one GPU each, dealt round-robin, at
    most `per_gpu` workers on one GPU; ValueError when that does not fit."""
    if per_gpu < 1:
        raise ValueError(f"--workers-per-gpu must be at least 1, got {per_gpu}")
    if not gpus:
        raise ValueError("no GPU is visible to give the CUDA workers")
    if workers > len(gpus) * per_gpu:
        raise ValueError(
            f"{workers} workers for {len(gpus)} visible GPU(s) ({', '.join(gpus)}) at "
            f"{per_gpu} per GPU; use --workers ≤ {len(gpus) * per_gpu} or --workers-per-gpu"
        )
    return [gpus[w % len(gpus)] for w in range(workers)]


def unfinished(case_ids: Sequence[str], recorded: set[str]) -> list[str]:
    """The ids of a shard that have no record yet, in run order."""
    return [c for c in case_ids if c not in recorded]
