"""Baselines: one run file per machine and suite, `<root>/<machine_key>/<suite>.json`.

A baseline file is an ordinary run file holding one suite's records, so everything that reads
runs reads baselines. A folder of them merges back into one run for `compare`.

A baseline also remembers the last few runs saved into it: `history_run_ids` at the top and,
in every record, `run_medians_s`, the case's median in each of those runs (oldest first, null
where the case was absent or not timed). `compare` takes the baseline level from their median
and each case's own run-to-run drift from their spread, which one run cannot show.
"""

from __future__ import annotations

import copy
import os
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from eigenbench.errors import BaselineError, ResultsFileError
from eigenbench.results import load_run, validate_run
from eigenbench.results.files import checked_run_text, write_all_atomic
from eigenbench.results.locks import folder_lock
from eigenbench.results.merge import machines_of

DEFAULT_ROOT = Path("results/baselines")
DEFAULT_KEEP = 5
"""Runs a baseline remembers by default (`baseline save --keep`)."""
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def machine_key(run: Mapping[str, Any]) -> str:
    """The run's machine key (`env.machine_key`), checked to be safe as a folder name."""
    # lazy: matching loads NumPy, and `eigenbench.cli` imports this module at start
    from eigenbench.gate.matching import machine_of

    key = machine_of(run)
    if not isinstance(key, str) or not key:
        raise BaselineError("run has no env.machine_key; it cannot be saved as a baseline")
    return _safe_name(key, "env.machine_key")


def _safe_name(name: str, what: str) -> str:
    if not _SAFE.match(name) or ".." in name or len(name) > 100:
        raise BaselineError(
            f"{what} {name[:60]!r} cannot be a file name (use up to 100 letters, digits, "
            "'.', '_' and '-')"
        )
    return name


def baseline_dir(key: str, root: str | os.PathLike[str] = DEFAULT_ROOT) -> Path:
    """The folder holding one machine's baselines."""
    return Path(root) / _safe_name(key, "machine key")


def baseline_path(key: str, suite: str, root: str | os.PathLike[str] = DEFAULT_ROOT) -> Path:
    """Where one machine's baseline of one suite lives."""
    return baseline_dir(key, root) / f"{_safe_name(suite, 'suite')}.json"


def split_by_suite(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """One run dict per suite, each a copy of `run` holding only that suite's records (an
    `ab` tag is dropped: a baseline is not one side of an A/B pair)."""
    records = run.get("records") or []
    suites: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        suites.setdefault(str(rec.get("suite")), []).append(rec)
    out = {}
    for suite, recs in suites.items():
        part = {k: copy.deepcopy(v) for k, v in run.items() if k not in ("records", "ab")}
        part["records"] = copy.deepcopy(recs)
        out[suite] = part
    return out


def save_baseline(
    run: Mapping[str, Any],
    root: str | os.PathLike[str] = DEFAULT_ROOT,
    *,
    keep: int = DEFAULT_KEEP,
) -> list[Path]:
    """Write `root/<machine_key>/<suite>.json` for every suite in the run, each atomically.

    The run's records replace those of the same cases in an existing baseline of the same
    machine and suite, whose last `keep` - 1 runs' medians are carried into `run_medians_s`
    (see `with_history`); cases the run did not measure, and other suites' files, stay.
    """
    return save_baselines([run], root, keep=keep)


def save_baselines(
    runs: Sequence[Mapping[str, Any]],
    root: str | os.PathLike[str] = DEFAULT_ROOT,
    *,
    keep: int = DEFAULT_KEEP,
    on_note: Callable[[str], None] | None = None,
) -> list[Path]:
    """`save_baseline` of several runs, oldest first, folded in memory: every baseline file
    is read once and written once, and nothing is written unless every run, suite name and
    old file is fine.

    Safe to run concurrently: a lock on `root` makes a second save wait for the first (both
    runs end in the history). All or nothing: every suite's new file is written under a
    temporary name before any is renamed into place. A run already in a baseline's history
    (the same run id saved again) changes nothing there; `on_note` hears one line about it.
    """
    if not (isinstance(keep, int) and keep >= 1):
        raise BaselineError(f"keep must be a whole number of runs >= 1, got {keep!r}")
    for run in runs:
        check_saveable(run)
    with folder_lock(root):
        folded: dict[Path, dict[str, Any]] = {}
        for run in runs:
            key = machine_key(run)
            for suite, part in split_by_suite(run).items():
                path = baseline_path(key, suite, root)
                if path in folded:
                    previous: Mapping[str, Any] | None = folded[path]
                else:
                    previous = load_run(path) if os.path.lexists(path) else None
                if previous is not None and str(run["run_id"]) in history_of(previous):
                    if on_note is not None:
                        on_note(f"{path}: run {run['run_id']} is already saved there; unchanged")
                    continue
                folded[path] = with_history(previous, part, keep)
        texts = [(path, checked_run_text(part, path)) for path, part in folded.items()]
        return write_all_atomic(texts)


def history_of(baseline: Mapping[str, Any]) -> list[str]:
    """The run ids a baseline holds: its `history_run_ids`, else its own run id."""
    ids = baseline.get("history_run_ids") or [baseline.get("run_id")]
    return [str(i) for i in ids]


def check_saveable(run: Mapping[str, Any]) -> None:
    """Raise unless `run` can become a baseline: a valid, finished run with records and a
    safe machine key."""
    validate_run(run, "<run to save as baseline>")
    machines = machines_of(run)
    if len(machines) > 1:
        raise BaselineError(
            f"run {run.get('run_id')!r} is a merged run of {len(machines)} machines "
            f"({', '.join(machines)}); a baseline holds one machine's runs: save each "
            "machine's own run files"
        )
    machine_key(run)
    if not run.get("records"):
        raise BaselineError(f"run {run.get('run_id')!r} has no records; nothing to save")
    if run.get("status") == "running":
        raise BaselineError(f"run {run.get('run_id')!r} is still running; save it when it ends")


def run_median(rec: Mapping[str, Any]) -> float | None:
    """The median of a timed record's samples, or None (not ok, or no samples)."""
    samples = rec.get("samples_s")
    if rec.get("status") != "ok" or not samples:
        return None
    return float(statistics.median(samples))


def with_history(
    previous: Mapping[str, Any] | None, run: Mapping[str, Any], keep: int
) -> dict[str, Any]:
    """`run` (one suite) carrying the last `keep` runs' medians of `previous` and itself.

    Pure. Each record gets `run_medians_s` aligned with the run's `history_run_ids`, newest
    last; a case that `previous` lacks, or held under another workload version, gets null
    for the older runs. A case of `previous` that the run did not measure (a filtered run)
    is kept, with null for this run. With `keep` = 1 there are no history fields.
    """
    out = copy.deepcopy(dict(run))
    measured = {rec["id"] for rec in out["records"]}
    kept = [
        copy.deepcopy(rec)
        for rec in (previous or {}).get("records", [])
        if rec["id"] not in measured
    ]
    for rec in out["records"]:
        rec.pop("run_medians_s", None)
    out.pop("history_run_ids", None)
    if keep == 1:
        for rec in kept:
            rec.pop("run_medians_s", None)
        out["records"].extend(kept)
        return out
    old_ids: list[str] = []
    old: dict[str, tuple[Any, list[float | None]]] = {}  # id -> (version, medians)
    if previous is not None:
        old_ids = list(previous.get("history_run_ids") or [str(previous["run_id"])])
        for rec in previous["records"]:
            medians = rec.get("run_medians_s") or [run_median(rec)]
            old[rec["id"]] = (rec.get("version"), list(medians)[-len(old_ids) :])
    tail = keep - 1
    ids = old_ids[-tail:] if tail else []
    for rec in out["records"]:
        version, prior = old.get(rec["id"], (None, []))
        if version != rec.get("version"):
            prior = []
        pad: list[float | None] = [None] * (len(old_ids) - len(prior))
        prior = pad + prior
        rec["run_medians_s"] = (prior[-tail:] if tail else []) + [run_median(rec)]
    for rec in kept:
        history = old[rec["id"]][1]
        padded: list[float | None] = [None] * (len(old_ids) - len(history))
        padded += history
        rec["run_medians_s"] = (padded[-tail:] if tail else []) + [None]
    # a case no run in the window measured has left the suite (or its grid): drop it
    kept = [rec for rec in kept if any(m is not None for m in rec["run_medians_s"])]
    out["records"].extend(kept)
    out["history_run_ids"] = [*ids, str(run["run_id"])]
    return out


def _run_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


def load_runs_from(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run from a run file, or from a folder of run files merged into one.

    Merging keeps the first file's metadata, concatenates the records (files in name order) and
    lists the files under `sources`. Two files holding the same case id, files from different
    machines, and a folder with no run files are errors naming the files.
    """
    p = Path(path)
    if p.is_dir():
        files = _run_files(p)
        if not files:
            raise ResultsFileError(
                p, "/", "a run file, or a folder holding run files (*.json); this folder has none"
            )
        return merge_runs([(f, load_run(f)) for f in files])
    return load_run(p)


def merge_runs(runs: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """Merge loaded runs (with the files they came from) into one run dict."""
    # lazy: matching loads NumPy, and `eigenbench.cli` imports this module at start
    from eigenbench.gate.matching import machine_of

    first_path, first = runs[0]
    merged = {k: copy.deepcopy(v) for k, v in first.items() if k != "records"}
    key = machine_of(first)
    seen: dict[str, Path] = {}
    records: list[dict[str, Any]] = []
    for path, run in runs:
        if machine_of(run) != key:
            raise ResultsFileError(
                path,
                "/env/machine_key",
                f"{key!r} like {first_path.name} (a folder must hold one machine's runs), "
                f"got {machine_of(run)!r}",
            )
        for rec in run["records"]:
            if rec["id"] in seen:
                raise ResultsFileError(
                    path,
                    "/records",
                    f"case ids unique across the folder; {rec['id']!r} is "
                    f"also in {seen[rec['id']].name}",
                )
            seen[rec["id"]] = path
            records.append(rec)
    if len(runs) > 1:
        merged.pop("history_run_ids", None)  # each file's own; records keep their medians
        merged["run_id"] = "+".join(dict.fromkeys(str(r["run_id"]) for _, r in runs))
        merged["started"] = min(str(r["started"]) for _, r in runs)
        ends = [r.get("finished") for _, r in runs]
        merged["finished"] = None if None in ends else max(str(e) for e in ends)
        statuses = {r["status"] for _, r in runs}
        merged["status"] = (
            "complete"
            if statuses == {"complete"}
            else ("interrupted" if "interrupted" in statuses else "running")
        )
    merged["records"] = records
    merged["sources"] = [str(path) for path, _ in runs]
    return merged


def records_by_id(
    machine_key: str | None, root: str | os.PathLike[str] = DEFAULT_ROOT
) -> dict[str, Any]:
    """This machine's baseline records by case id; {} when it has none.

    BaselineError (or ResultsFileError) when its files cannot be read.
    """
    if not machine_key:
        return {}
    folder = baseline_dir(machine_key, root)
    if not folder.is_dir():
        return {}
    return {r["id"]: r for r in load_runs_from(folder)["records"]}


def for_suites(baseline: dict[str, Any], suites: set[str], path: Path) -> dict[str, Any]:
    """A baseline folder's records of the suites a run measured (a file is used whole)."""
    if not path.is_dir():
        return baseline
    return {**baseline, "records": [r for r in baseline["records"] if r["suite"] in suites]}
