"""Robustness probe (issue 22): mutated inputs × every command that reads a file, signals, races.

From a real small run of a tiny NumPy suite it writes mutated run files (truncations, type
swaps, deleted and added fields, huge numbers, NaN/Infinity tokens, deep nesting, lone
surrogates, duplicate ids, ANSI/rich markup, over-long names) and special files (a symlink
to /dev/zero, a FIFO, a directory, binary junk), and runs every command that reads a file on
each, in a subprocess with a timeout. Then signal trials (SIGINT/SIGTERM at a random moment
of a run: the file must stay valid and keep its finished records) and concurrency trials
(two runs with one --out, two `baseline save`s into one root, one run saved twice).

    python tools/robust_probe.py --quick          # a few hundred tries, < 3 min on 2 cores
    python tools/robust_probe.py --out probe.json # every mutation × every command

Counts (want 0 for all but tries, clean_rejects and accepted): tracebacks, hangs, data_lost,
writes_on_reject, messy_rejects (exit 2/3/4 without exactly one `eigenbench: error:` line),
bad_exits (an exit code the command may not give), accepted_bad (exit 0/1 on a file that
must be refused), raw_escapes (ESC from a file reaching the terminal). Offending cases are
listed under `cases`. Exit 0 always (the counts are the result), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe_trials import FAST, Setup, Tally, prepare, race_trials, run_cli, signal_trials, snapshot

ESC_TEXT = "[/x] [enforce fail at alloc.cpp] \x1b[31mred\x1b]0;title\x07 [bold]b"
MAY_REGRESS = {"compare", "compare-base", "check"}


@dataclass
class Mutation:
    family: str
    detail: str
    must_reject: bool
    write: Callable[[Path], None]
    """Creates the input at the given path (a file, link, FIFO or folder)."""


# ---------------------------------------------------------------- mutations


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any, *, delete: bool = False) -> Any:
    doc = json.loads(json.dumps(doc))
    target = doc
    for key in path[:-1]:
        target = target[key]
    if delete and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


def _text_writer(text: str | bytes) -> Callable[[Path], None]:
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text

    def write(p: Path) -> None:
        p.write_bytes(data)

    return write


def _token(doc: Any, path: tuple[Any, ...], token: str) -> str:
    """The doc with the value at `path` replaced by a raw JSON token (e.g. NaN, 1e400)."""
    return json.dumps(_set(doc, path, "@@TOKEN@@")).replace('"@@TOKEN@@"', token)


def _special(kind: str) -> Callable[[Path], None]:
    def write(p: Path) -> None:
        if kind == "dev-zero":
            p.symlink_to("/dev/zero")
        elif kind == "dev-null":
            p.symlink_to("/dev/null")
        elif kind == "fifo":
            os.mkfifo(p)
        elif kind == "empty-dir":
            p.mkdir()
        elif kind == "dir-with-fifo":
            p.mkdir()
            os.mkfifo(p / "x.json")
        elif kind == "dangling-link":
            p.symlink_to(p.with_name("nowhere.json"))

    return write


def mutations(doc: dict[str, Any], rng: random.Random, per_family: int) -> list[Mutation]:
    """Every family, `per_family` random picks in each of the path-based ones."""
    return [
        *_shape_mutations(doc, rng, per_family),
        *_token_mutations(doc, rng, per_family),
        *_other_mutations(doc, rng, per_family),
    ]


def _shape_mutations(doc: dict[str, Any], rng: random.Random, per_family: int) -> list[Mutation]:
    """Truncations, type swaps, deleted and added fields."""
    text = json.dumps(doc, indent=1)
    paths = _paths(doc)[1:]
    objects = [p for p in [(), *paths] if isinstance(_get(doc, p), dict)]
    out: list[Mutation] = []
    for frac in (0.0, 0.01, 0.3, 0.6, 0.99):
        cut = int(len(text) * frac)
        out.append(
            Mutation("truncate", f"{cut} of {len(text)} chars", True, _text_writer(text[:cut]))
        )
    swaps: list[Any] = ["x", [], {}, None, True, -1, 1.5, 0]
    for p in rng.sample(paths, min(per_family, len(paths))):
        v = rng.choice(swaps)
        out.append(
            Mutation("swap", f"{_ptr(p)} = {v!r}", False, _text_writer(json.dumps(_set(doc, p, v))))
        )
    for p in rng.sample(paths, min(per_family, len(paths))):
        mutated = json.dumps(_set(doc, p, None, delete=True))
        out.append(Mutation("delete", _ptr(p), False, _text_writer(mutated)))
    for p in rng.sample(objects, min(per_family, len(objects))):
        mutated = json.dumps(_set(doc, (*p, "zz_extra"), {"a": [1, "b"]}))
        out.append(Mutation("add", f"{_ptr(p)}/zz_extra", False, _text_writer(mutated)))
    return out


def _token_mutations(doc: dict[str, Any], rng: random.Random, per_family: int) -> list[Mutation]:
    """Raw JSON the schema cannot see: huge and non-finite numbers, deep nesting, surrogates."""
    paths = _paths(doc)[1:]
    numeric = [p for p in paths if _get(doc, p).__class__ in (int, float)]
    strings = [p for p in paths if isinstance(_get(doc, p), str)]
    out: list[Mutation] = []
    for tok in ("1e400", "-1e400", "1" + "0" * 400, "1e308", "-0.0", "123456789" * 50):
        for p in rng.sample(numeric, min(max(1, per_family // 3), len(numeric))):
            bad = tok not in ("1e308", "-0.0")
            out.append(
                Mutation("huge", f"{_ptr(p)} = {tok[:12]}", bad, _text_writer(_token(doc, p, tok)))
            )
    for tok in ("NaN", "Infinity", "-Infinity"):
        for p in rng.sample(numeric, min(max(1, per_family // 3), len(numeric))):
            out.append(
                Mutation("nonfinite", f"{_ptr(p)} = {tok}", True, _text_writer(_token(doc, p, tok)))
            )
    for depth in (1000, 100000):
        p = rng.choice(paths)
        nested = "[" * depth + "]" * depth
        out.append(
            Mutation(
                "deep", f"{_ptr(p)} nested {depth}", True, _text_writer(_token(doc, p, nested))
            )
        )
    for p in rng.sample(strings, min(max(2, per_family // 2), len(strings))):
        out.append(
            Mutation(
                "surrogate",
                f"{_ptr(p)} lone \\ud800",
                True,
                _text_writer(_token(doc, p, '"a\\ud800b"')),
            )
        )
    return out


def _other_mutations(doc: dict[str, Any], rng: random.Random, per_family: int) -> list[Mutation]:
    """Bad bytes, duplicate ids, terminal escapes, over-long names, special files, junk."""
    text = json.dumps(doc, indent=1)
    strings = [p for p in _paths(doc)[1:] if isinstance(_get(doc, p), str)]
    out: list[Mutation] = []
    out.append(
        Mutation(
            "surrogate",
            "invalid UTF-8 bytes",
            True,
            _text_writer(text.encode()[:50] + b"\xff\xfe\xed" + text.encode()[50:]),
        )
    )
    if doc["records"]:
        dup = json.dumps({**doc, "records": [*doc["records"], doc["records"][0]]})
        out.append(Mutation("dup-id", "records[0] twice", True, _text_writer(dup)))
    for p in [
        q for q in strings if q[-1] in ("reason", "impl", "id", "run_id", "command", "machine_key")
    ][:per_family]:
        out.append(
            Mutation(
                "markup",
                f"{_ptr(p)} = ANSI/rich",
                False,
                _text_writer(json.dumps(_set(doc, p, ESC_TEXT))),
            )
        )
    for key in (("env", "machine_key"), ("records", 0, "suite")):
        out.append(
            Mutation(
                "long-name",
                f"{_ptr(key)} 300 chars",
                False,
                _text_writer(json.dumps(_set(doc, key, "k" * 300))),
            )
        )
    for kind in ("dev-zero", "dev-null", "fifo", "empty-dir", "dir-with-fifo", "dangling-link"):
        out.append(Mutation("special", kind, True, _special(kind)))
    out.append(
        Mutation(
            "junk",
            "4 KB binary",
            True,
            _text_writer(bytes(rng.randrange(256) for _ in range(4096))),
        )
    )
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _ptr(path: tuple[Any, ...]) -> str:
    return "/" + "/".join(map(str, path))


# ---------------------------------------------------------------- commands


def commands(
    work: Path, good: Path, base_root: Path
) -> dict[str, Callable[[Path], tuple[list[str], Path | None]]]:
    """Each command that reads a file: argv for input F, and the output it may write (or None)."""
    return {
        "show": lambda f: (["show", str(f)], None),
        "show-json": lambda f: (["show", str(f), "--json"], None),
        "report": lambda f: (["report", str(f), "--out", str(work / "report")], work / "report"),
        "report-baseline": lambda f: (
            ["report", str(good), "--baseline", str(f), "--out", str(work / "report")],
            work / "report",
        ),
        "compare": lambda f: (["compare", str(good), str(f), "--json"], None),
        "compare-base": lambda f: (["compare", str(f), str(good)], None),
        "baseline-save": lambda f: (
            ["baseline", "save", str(f), "--root", str(base_root)],
            base_root,
        ),
        "export-pyperf": lambda f: (
            ["export", str(f), "--format", "pyperf", "--out", str(work / "x.json")],
            work / "x.json",
        ),
        "export-gha": lambda f: (["export", str(f), "--format", "github-action"], None),
        "merge": lambda f: (
            ["merge", str(f), "--out", str(work / "merged.json")],
            work / "merged.json",
        ),
        "check": lambda f: (
            [
                "check",
                "probe",
                "--quick",
                "--baseline",
                str(f),
                "--out",
                str(work / "check.json"),
                *FAST,
            ],
            work / "check.json",
        ),
        "resume": lambda f: (["run", "probe", "--quick", "--resume", str(f), *FAST], f),
    }


def judge(
    t: Tally, result: dict[str, Any], *, command: str, mutation: Mutation | None, changed: bool
) -> None:
    """Count one try's outcome and flag what is wrong with it."""
    info = {"command": command}
    if mutation is not None:
        info.update(family=mutation.family, detail=mutation.detail)
    rc, err = result["rc"], result["err"]
    info["rc"] = rc
    info["stderr"] = err.strip().splitlines()[-1][:200] if err.strip() else ""
    t.counts["tries"] += 1
    if rc is None:
        t.flag("hangs", **info)
        return
    if "Traceback (most recent call last)" in err + result["out"]:
        t.flag("tracebacks", **info)
    elif rc in (2, 3, 4):
        errors = [line for line in err.splitlines() if line.startswith("eigenbench: error:")]
        if len(errors) == 1:
            t.counts["clean_rejects"] += 1
        else:
            t.flag("messy_rejects", **info)
    elif rc == 0 or (rc == 1 and command in MAY_REGRESS):
        t.counts["accepted"] += 1
        if mutation is not None and mutation.must_reject:
            t.flag("accepted_bad", **info)
    else:
        t.flag("bad_exits", **info)
    if rc not in (0, 1) and changed:
        t.flag("writes_on_reject", **info)
    if mutation is not None and mutation.family == "markup" and "\x1b" in result["out"] + err:
        t.flag("raw_escapes", **info)


def _copy_tree(src: Path, dst: Path) -> None:
    for p in src.rglob("*"):
        q = dst / p.relative_to(src)
        if p.is_dir():
            q.mkdir(parents=True, exist_ok=True)
        else:
            q.parent.mkdir(parents=True, exist_ok=True)
            q.write_bytes(p.read_bytes())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few hundred tries (< 3 min)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2, help="commands at once (default 2)")
    p.add_argument("--timeout", type=float, help="seconds per command (10 quick, 30 full)")
    p.add_argument("--only", nargs="*", metavar="COMMAND", help="only these commands")
    p.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "robust_probe.json")
    a = p.parse_args(argv)
    timeout = a.timeout or (10.0 if a.quick else 30.0)
    rng = random.Random(a.seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="robust_probe.") as d:
        setup = prepare(Path(d))
        doc = json.loads(setup.good.read_text())
        muts = mutations(doc, rng, 2 if a.quick else 12)
        names = list(commands(setup.tmp, setup.good, setup.base_root))
        if a.only:
            names = [n for n in names if n in a.only]
        t = Tally()
        pairs = [(m, n) for m in muts for n in names]
        if a.quick:  # the cheap commands on every mutation, run/check/report on a sample
            costly = {"check", "resume", "report", "report-baseline"}
            pairs = [(m, n) for m, n in pairs if n not in costly or rng.random() < 0.15]
        mutation_trials(t, setup, pairs, timeout, max(1, a.jobs))
        signal_trials(t, setup, 4 if a.quick else 30, rng)
        race_trials(t, setup, 2 if a.quick else 10)
    keys = [
        "tries",
        "clean_rejects",
        "accepted",
        "tracebacks",
        "hangs",
        "data_lost",
        "writes_on_reject",
        "messy_rejects",
        "bad_exits",
        "accepted_bad",
        "raw_escapes",
        "signal_trials",
        "race_trials",
    ]
    counts = {k: t.counts.get(k, 0) for k in keys}
    by_family = Counter(f"{c['kind']}: {c.get('family')} × {c['command']}" for c in t.cases)
    report = {
        "mode": "quick" if a.quick else "full",
        "seconds": round(time.monotonic() - started, 1),
        "counts": counts,
        "by_family": dict(sorted(by_family.items())),
        "cases": t.cases,
    }
    a.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("mode", "seconds", "counts", "by_family")}, indent=1))
    print(f"robust_probe: {len(t.cases)} offending case(s) listed in {a.out}", file=sys.stderr)
    return 0


def mutation_trials(
    t: Tally, setup: Setup, pairs: list[tuple[Mutation, str]], timeout: float, jobs: int
) -> None:
    """Each (mutation, command) in a fresh folder with its own copy of the baseline root."""
    counter = iter(range(10**9))

    def one(mut: Mutation, name: str) -> None:
        work = setup.tmp / f"try{next(counter)}"
        work.mkdir()
        f = work / "input.json"
        mut.write(f)
        root = work / "root"
        _copy_tree(setup.base_root, root)
        argv, target = commands(work, setup.good, root)[name](f)
        before = snapshot(target) if target is not None else None
        result = run_cli(argv, setup.env, work, timeout)
        after = snapshot(target) if target is not None else None
        judge(t, result, command=name, mutation=mut, changed=before != after)

    with ThreadPoolExecutor(jobs) as pool:
        for fut in [pool.submit(one, m, n) for m, n in pairs]:
            fut.result()


if __name__ == "__main__":
    sys.exit(main())
