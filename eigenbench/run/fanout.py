"""The parent side of a sharded run: start shards on an executor, merge their part files.

Each shard runs `fanout_worker.run_shard` in a fresh process: by default a `ProcessPoolExecutor`
(spawn) of one worker per shard, so that a shard that dies breaks only its own pool; with
`--executor submitit` a submitit job array (Slurm, or submitit's local processes). The parent
polls the part files every `POLL_S`, adds new records to its own `Runner`'s run file (saved
atomically after each), and when every shard has ended closes the run:

- a shard that ended without closing its part (killed, crashed, out of memory) is reported
  with one line naming it and its unfinished cases, which are recorded `interrupted` so that
  `--resume` measures them again; the run is then `interrupted`;
- Ctrl-C or SIGTERM in the parent sends SIGTERM to every worker (each records its current case
  `interrupted` and closes its part), waits `GRACE_S`, kills what is left, merges what
  finished, closes the run `interrupted` and re-raises KeyboardInterrupt.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import platform
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from eigenbench.run.fanout_worker import ShardJob, run_shard
from eigenbench.run.records import base_record
from eigenbench.run.shards import unfinished
from eigenbench.spec import Case
from eigenbench.units import one_line

POLL_S = 0.2
GRACE_S = 10.0
"""How long interrupted workers get to record their current case before they are killed."""


class Handle(Protocol):
    """A started shard: a `concurrent.futures.Future` or a submitit job both fit."""

    def done(self) -> bool: ...

    def result(self) -> Any: ...

    def cancel(self) -> Any: ...


class Launched(Protocol):
    """Started shards, one handle per job, and how to end them by force."""

    handles: list[Any]

    def kill(self) -> None: ...

    def close(self) -> None: ...


Launcher = Callable[[Sequence[ShardJob]], Launched]


class PoolLaunch:
    """One single-worker spawn `ProcessPoolExecutor` per shard: fresh processes, and a death
    that breaks one pool only."""

    def __init__(self, jobs: Sequence[ShardJob]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pools = [ProcessPoolExecutor(max_workers=1, mp_context=ctx) for _ in jobs]
        self.handles: list[Any] = [
            pool.submit(run_shard, job) for pool, job in zip(self._pools, jobs, strict=True)
        ]

    def kill(self) -> None:
        for pool in self._pools:
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                with contextlib.suppress(Exception):
                    proc.kill()
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        for pool in self._pools:
            pool.shutdown(wait=True)


def pool_launcher(jobs: Sequence[ShardJob]) -> Launched:
    """The default executor: local worker processes."""
    return PoolLaunch(jobs)


@dataclass(frozen=True, slots=True)
class ShardOutcome:
    """How one shard ended."""

    job: ShardJob
    status: str
    """"complete", "interrupted" (stopped by the parent) or "died"."""
    error: str | None
    unfinished: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FanoutResult:
    """The shards' outcomes; `deaths` are the lines to report."""

    outcomes: tuple[ShardOutcome, ...]

    @property
    def deaths(self) -> list[str]:
        return [
            f"shard {o.job.label} died ({o.error}); {len(o.unfinished)} unfinished case(s) "
            f"recorded interrupted: {', '.join(o.unfinished) or 'none'}"
            for o in self.outcomes
            if o.status == "died"
        ]


def read_part(path: str | Path) -> dict[str, Any] | None:
    """A part file as far as it was written (None before its first save)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _stamp(path: str | Path) -> tuple[int, int, int] | None:
    """Which version of a part file is there (each save renames a new file over it)."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class Fanout:
    """Merges the shards' part files into `runner`'s run, in the cases' run order."""

    def __init__(
        self,
        runner: Any,
        jobs: Sequence[ShardJob],
        cases: Sequence[Case],
        *,
        poll_s: float = POLL_S,
        grace_s: float = GRACE_S,
    ) -> None:
        self.runner = runner
        self.jobs = list(jobs)
        self.cases = {c.id: c for c in cases}
        self.order = {c.id: i for i, c in enumerate(cases)}
        self.poll_s = poll_s
        self.grace_s = grace_s
        self._kept = len(runner.run_doc["records"])
        self._seen = {r["id"] for r in runner.run_doc["records"]}
        self._merged: dict[str, Any] = {}
        """The records this fan-out merged, by id: a worker rewrites them after later rounds
        and the deferred CUDA fingerprints, and the merged copy follows."""
        self._total = sum(len(j.case_ids) for j in self.jobs)
        self._entries: dict[int, dict[str, Any]] = {}
        self._stamps: dict[int, tuple[int, int, int]] = {}

    def run(self, launcher: Launcher) -> FanoutResult:
        """Start the shards, merge until all have ended, close the run."""
        launched = launcher(self.jobs)
        try:
            while not all(h.done() for h in launched.handles):
                self.merge()
                time.sleep(self.poll_s)
        except KeyboardInterrupt:
            self._stop(launched)
            self._close(launched, stopped=True)
            raise
        launched.close()
        return self._close(launched, stopped=False)

    def merge(self) -> int:
        """Add the records the shards wrote since the last call; how many were new."""
        new = 0
        for job in self.jobs:
            stamp = _stamp(job.part)
            if stamp is None or stamp == self._stamps.get(job.index):
                continue  # not written yet, or unchanged since the last poll: not read again
            part = read_part(job.part)
            if part is None:
                continue
            self._stamps[job.index] = stamp
            entries = part.get("shards") or []
            if entries and isinstance(entries[0], dict):
                self._entries[job.index] = dict(entries[0])
            lost = part.get("cuda_lost")
            if lost and "cuda_lost" not in self.runner.run_doc:
                self.runner.run_doc["cuda_lost"] = lost
                self.runner.cuda_lost = f"CUDA context lost in shard {job.label}: {lost['error']}"
            changed = False
            for record in part.get("records") or []:
                merged = self._merged.get(record.get("id"))
                if merged is not None:  # later rounds or a deferred fingerprint
                    if merged != record:
                        merged.clear()
                        merged.update(record)
                        changed = True
                    continue
                if record.get("id") in self._seen:
                    continue
                self._seen.add(record["id"])
                self._merged[record["id"]] = record
                self.runner.add(record, len(self._seen) - self._kept - 1, self._total)
                new += 1
            if changed:
                self.runner.save()
        return new

    def _stop(self, launched: Launched) -> None:
        """SIGTERM every worker of this host, wait for their parts to close, kill the rest."""
        host = platform.node()
        for job in self.jobs:
            entry = (read_part(job.part) or {}).get("shards") or [{}]
            pid, where = entry[0].get("pid"), entry[0].get("host")
            if isinstance(pid, int) and where == host and entry[0].get("status") == "running":
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: stop waiting
            while time.monotonic() < deadline and not all(h.done() for h in launched.handles):
                time.sleep(self.poll_s)
        for h in launched.handles:
            with contextlib.suppress(Exception):
                h.cancel()
        launched.kill()

    def _close(self, launched: Launched, *, stopped: bool) -> FanoutResult:
        self.merge()
        outcomes = [
            self._outcome(job, handle, stopped)
            for job, handle in zip(self.jobs, launched.handles, strict=True)
        ]
        for o in outcomes:
            if o.status == "died":
                for case_id in o.unfinished:
                    if case_id in self._seen:  # merged after the part file was last read
                        continue
                    reason = f"shard {o.job.label} died: {o.error}"
                    self._seen.add(case_id)
                    self.runner.add(
                        base_record(self.cases[case_id], "interrupted", reason),
                        len(self._seen) - self._kept - 1,
                        self._total,
                    )
        self._sort()
        self.runner.run_doc["shards"] = [self._entry(o) for o in outcomes]
        failed = stopped or any(o.status != "complete" for o in outcomes)
        self.runner.finish("interrupted" if failed else "complete")
        return FanoutResult(tuple(outcomes))

    def _outcome(self, job: ShardJob, handle: Any, stopped: bool) -> ShardOutcome:
        part = read_part(job.part) or {}
        left = tuple(unfinished(job.case_ids, {r["id"] for r in part.get("records") or []}))
        if part.get("status") == "complete":
            return ShardOutcome(job, "complete", None, left)
        if stopped:
            return ShardOutcome(job, "interrupted", None, left)
        return ShardOutcome(job, "died", _error_of(handle, part), left)

    def _entry(self, o: ShardOutcome) -> dict[str, Any]:
        entry = self._entries.get(o.job.index) or {
            "index": o.job.index,
            "count": o.job.count,
            "cases": len(o.job.case_ids),
            "cuda_visible_devices": o.job.cuda_visible_devices,
        }
        entry.pop("pid", None)
        return {**entry, "status": o.status, "error": o.error}

    def _sort(self) -> None:
        """Kept (resumed) records first, then the shards' records in the cases' run order."""
        records = self.runner.run_doc["records"]
        kept, merged = records[: self._kept], records[self._kept :]
        merged.sort(key=lambda r: self.order.get(r["id"], len(self.order)))
        self.runner.run_doc["records"] = kept + merged


def _error_of(handle: Any, part: Mapping[str, Any]) -> str:
    """One line on why a shard ended without closing its part."""
    try:
        handle.result()
    except BaseException as exc:  # whatever the executor says about the worker's end
        return one_line(exc) if str(exc) else type(exc).__name__
    if not part:
        return "its worker wrote no part file"
    return f"its part file says {part.get('status')!r}"
