"""The union of loaded runs from one or several machines as one run document (pure).

Every record of the merged run carries its `machine_key`, and the top-level `machines` maps
each machine key to that machine's env (peaks included). With one machine (a sharded sweep's
part files) the merged `env` is that machine's env; with several it is `merged_env`: the
machine key `merged: k1 + k2`, no cpu or gpu, the packages and git commit every machine
shares. `merged_from` lists the runs the records came from (a merged input's own sources,
so merging a merged run again keeps them all).

The same case id on the same machine twice is an error naming both inputs, unless
`prefer="newest"`: the record of the input whose run finished (else started) last wins (for
a merged input, its latest source on that machine); between equal times, the later input.

The readers' side: `records_by_machine` splits a run's records per machine, `is_multi_machine`
says whether a run spans several, and `align_machines` re-keys two runs for `compare` so that
cases match on (machine key, case id).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eigenbench.errors import InputFileError
from eigenbench.results.schema import SCHEMA_ID, Record, validate_run

PREFER = ("newest",)
"""How a case measured twice on one machine may be resolved (`merge --prefer`)."""
MERGED_PREFIX = "merged: "
"""The merged `env.machine_key` of a run of several machines: `merged: k1 + k2`."""
MACHINE_SEP = " @ "
"""Between a case id and its machine key where a reader needs one name for both."""
_DROPPED = ("history_run_ids", "ab", "sources", "machines", "merged_from", "records")
"""Top-level fields of an input that describe that input alone, not the union."""


@dataclass(frozen=True)
class MergeInput:
    """One loaded run and where it came from (a file or folder name, for messages)."""

    source: str
    run: Mapping[str, Any]


@dataclass
class MergeResult:
    """The merged run, and how many duplicates `prefer` resolved and warnings to print."""

    run: dict[str, Any]
    replaced: int = 0
    warnings: list[str] = field(default_factory=list)


def machines_of(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A run's machines: its `machines` map, else {env.machine_key: env}."""
    machines = run.get("machines")
    if isinstance(machines, Mapping) and machines:
        return {str(k): dict(v) for k, v in machines.items()}
    env = dict(run.get("env") or {})
    return {str(env.get("machine_key") or "unknown"): env}


def machine_of_record(rec: Mapping[str, Any], run: Mapping[str, Any]) -> str:
    """The machine a record was measured on: its `machine_key`, else the run's."""
    key = rec.get("machine_key")
    if isinstance(key, str) and key:
        return key
    return str((run.get("env") or {}).get("machine_key") or "unknown")


def is_multi_machine(run: Mapping[str, Any]) -> bool:
    """Whether the run's records come from more than one machine."""
    return len(machines_of(run)) > 1


def records_by_machine(run: Mapping[str, Any]) -> dict[str, list[Record]]:
    """The run's records per machine key, machines in the `machines` order (or first seen)."""
    out: dict[str, list[Record]] = {key: [] for key in machines_of(run)}
    for rec in run.get("records") or []:
        out.setdefault(machine_of_record(rec, run), []).append(rec)
    return {k: v for k, v in out.items() if v}


def align_machines(
    baseline: Mapping[str, Any], current: Mapping[str, Any]
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The two runs as `compare` matches them: unchanged when neither spans several machines;
    else every record re-keyed `id @ machine_key` (its suite too, so each machine has its own
    run shift), a single-machine side by its env's machine key."""
    if not (is_multi_machine(baseline) or is_multi_machine(current)):
        return baseline, current
    return _rekeyed(baseline), _rekeyed(current)


def _rekeyed(run: Mapping[str, Any]) -> dict[str, Any]:
    records = []
    for rec in run.get("records") or []:
        key = machine_of_record(rec, run)
        records.append(
            {
                **rec,
                "id": f"{rec['id']}{MACHINE_SEP}{key}",
                "suite": f"{rec.get('suite')}{MACHINE_SEP}{key}",
                "machine_key": key,
            }
        )
    return {**run, "records": records}


def _sources(item: MergeInput) -> list[dict[str, Any]]:
    """The `merged_from` entries an input brings: its own, or a merged input's list."""
    run = item.run
    inherited = run.get("merged_from")
    if isinstance(inherited, list) and inherited:
        return [dict(s) for s in inherited]
    return [
        {
            "run_id": str(run.get("run_id")),
            "file": item.source,
            "machine_key": str((run.get("env") or {}).get("machine_key")),
            "started": run.get("started"),
            "finished": run.get("finished"),
        }
    ]


def _time(run: Mapping[str, Any], machine: str) -> str:
    """When `run` measured `machine`'s records: its end (else start); for a merged run, the
    latest of its sources on that machine."""
    own = [s for s in run.get("merged_from") or [] if s.get("machine_key") == machine] or [run]
    return max(str(s.get("finished") or s.get("started") or "") for s in own)


def _shared(values: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The (key, value) pairs every mapping holds alike, in the first one's order."""
    first = values[0] if values else {}
    return {k: v for k, v in first.items() if all(m.get(k, object()) == v for m in values[1:])}


def merged_env(machines: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The top-level env of a run of several machines (see the module docstring)."""
    envs = list(machines.values())
    commits = {e.get("git_commit") for e in envs}
    return {
        "machine_key": MERGED_PREFIX + " + ".join(machines),
        "cpu": None,
        "gpu": None,
        "packages": _shared([e.get("packages") or {} for e in envs]),
        "git_commit": commits.pop() if len(commits) == 1 else None,
    }


def _env_warning(key: str, kept: MergeInput, other: MergeInput, a: Any, b: Any) -> str | None:
    for what in ("packages", "git_commit"):
        x, y = (a or {}).get(what), (b or {}).get(what)
        if x != y:
            return (
                f"machine {key!r}: {what} differ between {kept.source} and {other.source}; "
                f"the env of {kept.source} is kept"
            )
    return None


def merge_runs(
    inputs: Sequence[MergeInput], *, prefer: str | None = None, command: str = "eigenbench merge"
) -> MergeResult:
    """The union of `inputs` as one schema-valid run (see the module docstring).

    InputFileError (exit 3) naming both inputs when one machine measured a case twice and
    `prefer` is None; ValueError for an unknown `prefer` or no input.
    """
    if not inputs:
        raise ValueError("merge_runs: no runs to merge")
    if prefer is not None and prefer not in PREFER:
        raise ValueError(f"merge_runs: prefer must be one of {PREFER}, got {prefer!r}")
    machines: dict[str, dict[str, Any]] = {}
    env_from: dict[str, MergeInput] = {}
    result = MergeResult(run={})
    records: list[dict[str, Any]] = []
    where: dict[tuple[str, str], tuple[int, MergeInput]] = {}
    sources: list[dict[str, Any]] = []
    for item in inputs:
        for key, env in machines_of(item.run).items():
            if key not in machines:
                machines[key], env_from[key] = copy.deepcopy(env), item
            else:
                warning = _env_warning(key, env_from[key], item, machines[key], env)
                if warning and warning not in result.warnings:
                    result.warnings.append(warning)
        for entry in _sources(item):
            if entry not in sources:
                sources.append(entry)
        result.replaced += _add_records(item, records, where, prefer)
    result.run = _document(inputs, machines, records, sources, command)
    validate_run(result.run, "<merged run>")
    return result


def _add_records(
    item: MergeInput,
    records: list[dict[str, Any]],
    where: dict[tuple[str, str], tuple[int, MergeInput]],
    prefer: str | None,
) -> int:
    """Append `item`'s records (each with its machine key) to `records`, `where` indexing
    them by (machine key, case id); a duplicate is an error, or with `prefer` the newer run's
    record takes the older's place. Returns how many duplicates were resolved."""
    replaced = 0
    for i, rec in enumerate(item.run.get("records") or []):
        key = machine_of_record(rec, item.run)
        new = {**copy.deepcopy(rec), "machine_key": key}
        seen = where.get((key, rec["id"]))
        if seen is None:
            where[(key, rec["id"])] = (len(records), item)
            records.append(new)
            continue
        index, first = seen
        if prefer is None:
            raise InputFileError(
                item.source,
                f"/records/{i}/id",
                f"each case once per machine; {rec['id']!r} on {key!r} is also in "
                f"{first.source} (merge --prefer newest keeps the newer)",
            )
        replaced += 1
        if _time(item.run, key) >= _time(first.run, key):
            records[index] = new
            where[(key, rec["id"])] = (index, item)
    return replaced


def _document(
    inputs: Sequence[MergeInput],
    machines: dict[str, dict[str, Any]],
    records: list[dict[str, Any]],
    sources: list[dict[str, Any]],
    command: str,
) -> dict[str, Any]:
    runs = [item.run for item in inputs]
    first = runs[0]
    ids = "\n".join(f"{s['run_id']}@{s['machine_key']}" for s in sources)
    ends = [r.get("finished") for r in runs]
    statuses = {r.get("status") for r in runs}
    env = copy.deepcopy(next(iter(machines.values()))) if len(machines) == 1 else None
    doc = {k: copy.deepcopy(v) for k, v in first.items() if k not in _DROPPED}
    doc.update(
        {
            "schema": SCHEMA_ID,
            "run_id": "merged-" + hashlib.sha256(ids.encode()).hexdigest()[:10],
            "started": min(str(r.get("started")) for r in runs),
            "finished": None if None in ends else max(str(e) for e in ends),
            "status": "complete"
            if statuses == {"complete"}
            else ("interrupted" if "interrupted" in statuses else "running"),
            "command": command,
            "env": env if env is not None else merged_env(machines),
            "options": _shared([r.get("options") or {} for r in runs]),
            "machines": machines,
            "merged_from": sources,
            "records": records,
        }
    )
    return doc
