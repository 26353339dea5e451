"""One side of an A/B measurement (`eigenbench ab`): a child process driven over its stdin.

The parent (`eigenbench.gate.ab`) starts `python -m eigenbench.ab_worker` with the side's
interpreter, folder and environment, then sends one JSON object per line and reads one back
per line:

- `{"op": "plan", "suites": [...], "devices": [...], "quick": bool, "filter": str | null,
  "options": RunOptions dict, "command": str}` → `{"cases": [ids]}`: suites (or `all`) loaded from
  this side's `suites/`, cases expanded as `eigenbench run` would;
- `{"op": "first", "id": ID}` → `{"status": ..., "median_s": ...}`: the case validated and
  timed (its round 1), kept in this side's run;
- `{"op": "again", "id": ID}` → `{"median_s": ...}`: one more round, pooled into its record;
- `{"op": "run"}` → `{"run": RUN}`: the run so far (status `complete` once every case is in).

Every reply may be `{"error": one line, "exit_code": N}` instead (N of an eigenbench
error, e.g. 3 for an unknown suite; absent for anything else). The protocol uses a private copy of
stdout; whatever the measured code prints goes to stderr, so it cannot break a reply.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import IO, Any

from eigenbench.errors import EigenbenchError
from eigenbench.results import Record, json_line
from eigenbench.run.runner import Runner
from eigenbench.spec import Case
from eigenbench.units import one_line


class Side:
    """The state of this side: its runner and cases, and the records measured so far."""

    def __init__(self) -> None:
        self.runner: Runner | None = None
        self.cases: dict[str, Case] = {}
        self.records: dict[str, Record] = {}

    def handle(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        op = msg.get("op")
        if op == "plan":
            return self._plan(msg)
        if self.runner is None:
            raise EigenbenchError(f"ab worker: {op!r} before a plan")
        if op == "first":
            case = self._case(msg)
            record = self.runner.run_case(case)
            self.runner.add(record)
            self.records[case.id] = record
            summary = record.get("summary") or {}
            return {"status": record["status"], "median_s": summary.get("median_s")}
        if op == "again":
            case = self._case(msg)
            if case.id not in self.records:
                raise EigenbenchError(f"ab worker: case {case.id!r} has no first round")
            return {"median_s": self.runner.round_again(case, self.records[case.id])}
        if op == "run":
            if len(self.records) == len(self.cases) and self.runner.run_doc["finished"] is None:
                self.runner.fingerprint_deferred()
                self.runner.finish("complete")
            return {"run": self.runner.run_doc}
        raise EigenbenchError(f"ab worker: unknown op {op!r}")

    def _plan(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        from eigenbench import env as envmod
        from eigenbench.run.options import RunOptions
        from eigenbench.suites import cases_of, load_suites

        options = RunOptions.from_dict(msg["options"])
        devices = tuple(msg["devices"])
        quick, text = bool(msg["quick"]), msg.get("filter")
        cases = cases_of(load_suites(msg["suites"]), devices=devices, quick=quick, text=text)
        self.cases = {c.id: c for c in cases}
        env = envmod.collect(with_gpu="cuda" in devices)
        self.runner = Runner(env=env, options=options, out_path=None, command=msg["command"])
        return {"cases": list(self.cases)}

    def _case(self, msg: Mapping[str, Any]) -> Case:
        case_id = msg.get("id")
        if case_id not in self.cases:
            raise EigenbenchError(f"ab worker: unknown case {case_id!r}")
        return self.cases[case_id]


def serve(requests: IO[str], replies: IO[str]) -> None:
    """Answer each request line with one reply line until the input ends."""
    side = Side()
    for line in requests:
        if not line.strip():
            continue
        try:
            reply = side.handle(json.loads(line))
        except KeyboardInterrupt:
            raise
        except EigenbenchError as exc:  # the parent names the side and keeps the exit code
            reply = {"error": str(exc), "exit_code": exc.exit_code}
        except Exception as exc:
            reply = {"error": one_line(exc)}
        replies.write(json_line(reply) + "\n")
        replies.flush()


def main() -> int:
    from eigenbench.run import contain

    contain.install_interrupts()  # an impl's own KeyboardInterrupt is then a failed record
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to stderr
    serve(sys.stdin, replies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
