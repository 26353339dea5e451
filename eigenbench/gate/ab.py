"""`eigenbench ab`: time two setups of the same suites alternately, round by round.

A *setup* is an interpreter, a folder (a checkout of another revision, put first on
`PYTHONPATH`, its `suites/` used) and environment variables: two revisions of the code, two
virtual environments (a library upgrade), or one variable that switches a code path. Each
side runs in its own worker process (`eigenbench.ab_worker`); this module drives them:
round 1 validates and times every case on both sides, later rounds sample the cases both
timed again, in a fresh random order each round, each case's sides taking turns to go
first. The two runs come back as ordinary run files tagged `ab` (same id), and
`eigenbench.gate.paired` judges them round by round.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eigenbench.env import first_on_pythonpath
from eigenbench.errors import AbError
from eigenbench.results import json_line, new_run_id

SIDES: tuple[str, str] = ("base", "head")
WORKER_FILE = "eigenbench/ab_worker.py"
STDERR_TAIL_CHARS = 1500
TIMED = ("ok", "invalid")


@dataclass(frozen=True)
class Setup:
    """How one side runs: interpreter, folder (None: this one) and extra environment."""

    label: str
    python: str = sys.executable
    folder: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"python": self.python, "folder": self.folder, "env": dict(self.env)}


def child_env(setup: Setup, parent: Mapping[str, str]) -> dict[str, str]:
    """The worker's environment: the parent's, the setup's variables, and its folder first
    on `PYTHONPATH` (so that folder's `eigenbench` is the one imported)."""
    env = {**parent, **setup.env}
    return env if setup.folder is None else first_on_pythonpath(env, setup.folder)


def parse_env(pairs: Sequence[str], flag: str) -> dict[str, str]:
    """`KEY=VALUE` strings as a dict; ValueError naming the flag and the bad item."""
    out = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag}: expected KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def visit_order(
    case_ids: Sequence[str], round_index: int, seed: int
) -> list[tuple[str, tuple[str, str]]]:
    """Round `round_index`'s visits: the cases in a seeded random order, each with the order
    of its sides; a case's sides take turns to go first from one round to the next (and
    neighbouring cases start on opposite sides), so going first or second favours neither."""
    order = list(case_ids)
    random.Random(f"{seed}:{round_index}").shuffle(order)
    position = {c: i for i, c in enumerate(case_ids)}
    flipped = (SIDES[1], SIDES[0])
    return [(c, SIDES if (position[c] + round_index) % 2 == 0 else flipped) for c in order]


class Worker:
    """One side's worker process and its line protocol (see `eigenbench.ab_worker`)."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        if setup.folder is not None and not (Path(setup.folder) / WORKER_FILE).is_file():
            # else Python would mix this install's worker with that checkout's modules
            raise AbError(
                f"{setup.label} side: {setup.folder} has no {WORKER_FILE} "
                "(not an eigenbench checkout, or one older than `eigenbench ab`)"
            )
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
        try:
            self._proc = subprocess.Popen(
                [setup.python, "-m", "eigenbench.ab_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                cwd=setup.folder,
                env=child_env(setup, os.environ),
                text=True,
                encoding="utf-8",
            )
        except OSError as exc:
            self._stderr.close()
            raise AbError(f"{setup.label} side: cannot start {setup.python}: {exc}") from None

    def request(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        """Send one request and return its reply; AbError if the worker died or refused."""
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json_line(msg) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            code = proc.wait()
            raise AbError(f"{self.setup.label} side: worker exited ({code}): {self._tail()}")
        reply = json.loads(line)
        if "error" in reply:
            error = AbError(f"{self.setup.label} side: {reply['error']}")
            error.exit_code = int(reply.get("exit_code", AbError.exit_code))
            raise error
        return reply

    def _tail(self) -> str:
        self._stderr.seek(0)
        text = " ".join(self._stderr.read()[-STDERR_TAIL_CHARS:].split())
        return text or "no output"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stderr.close()


@contextlib.contextmanager
def workers(setups: Sequence[Setup]) -> Iterator[dict[str, Worker]]:
    """The setups' workers by label, all closed on the way out."""
    started: dict[str, Worker] = {}
    try:
        for s in setups:
            started[s.label] = Worker(s)
        yield started
    finally:
        for w in started.values():
            w.close()


Progress = Callable[[int, int], None]
"""Called with (visits done, visits planned)."""


def run_ab(
    base: Setup,
    head: Setup,
    plan: Mapping[str, Any],
    *,
    rounds: int,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Measure both setups alternately; return their runs (base, head), tagged `ab`.

    `plan` is the worker's plan request without `op` (suites, devices, quick, filter,
    options, command). Round 1 times every case on each side that has it; rounds 2..
    `rounds` sample again the cases both sides timed, until a round fails on either side.
    `progress(done, total)` is called after each visit.
    """
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    started = dt.datetime.now(dt.timezone.utc)
    pair_id = new_run_id(started)
    with workers((base, head)) as w:
        cases = {side: w[side].request({"op": "plan", **plan})["cases"] for side in SIDES}
        every = cases["base"] + [c for c in cases["head"] if c not in cases["base"]]
        total = 2 * len(every) * rounds  # until round 1 shows which cases both sides timed
        done = 0

        def visit(op: str, case_id: str, sides: Sequence[str]) -> dict[str, Any]:
            nonlocal done
            out: dict[str, Any] = {}
            for side in sides:
                if case_id in cases[side]:
                    out[side] = w[side].request({"op": op, "id": case_id})
                done += 1
                if progress is not None:
                    progress(done, total)
            return out

        timed = []
        for case_id, sides in visit_order(every, 0, seed):
            first = visit("first", case_id, sides)
            if all(first.get(s, {}).get("status") in TIMED for s in SIDES):
                timed.append(case_id)
        total = 2 * len(every) + 2 * (rounds - 1) * len(timed)
        for r in range(1, rounds):
            for case_id, sides in visit_order(timed, r, seed):
                again = visit("again", case_id, sides)
                if any(again[s]["median_s"] is None for s in SIDES):
                    timed.remove(case_id)  # the rounds so far stay paired
        runs = {side: w[side].request({"op": "run"})["run"] for side in SIDES}
    for side, setup in zip(SIDES, (base, head), strict=True):
        tag = {"id": pair_id, "side": side, "rounds": rounds, "seed": seed}
        runs[side]["ab"] = {**tag, "setup": setup.to_dict()}
    return runs["base"], runs["head"]
