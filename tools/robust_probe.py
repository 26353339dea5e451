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
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CMD = [sys.executable, "-m", "eigenbench"]
FAST = ["--warmup", "0", "--max-time", "0.02", "--min-samples", "3"]

SUITE = """
import time
import numpy as np
from eigenbench.spec import Impl, Suite, Validation, Workload

def nap(x):
    time.sleep(0.01)
    return x

WORKLOAD = Workload(
    name="nap",
    impls=(Impl("a", nap), Impl("b", nap), Impl("gone", nap, requires=("no_such_module_x",))),
    make_inputs=lambda p, d, t, s: np.zeros(int(p["n"])),
    reference=lambda x, p, ph: x,
    validate=lambda out, ref, p, t: Validation(True, 0.0, 0.0, "itself"),
    grid={"n": [1, 2, 3, 4, 5, 6, 7, 8]}, quick_grid={"n": [1, 2]},
)
SUITE = Suite(name="probe", workloads=(WORKLOAD,))
"""
ESC_TEXT = "[/x] [enforce fail at alloc.cpp] \x1b[31mred\x1b]0;title\x07 [bold]b"
MAY_REGRESS = {"compare", "compare-base", "check"}


@dataclass
class Mutation:
    family: str
    detail: str
    must_reject: bool
    write: Callable[[Path], None]
    """Creates the input at the given path (a file, link, FIFO or folder)."""


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    cases: list[dict[str, Any]] = field(default_factory=list)

    def flag(self, kind: str, **info: Any) -> None:
        self.counts[kind] += 1
        self.cases.append({"kind": kind, **info})


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float) -> dict[str, Any]:
    """One command in its own process group: rc, stdout, stderr, or rc None on a hang."""
    proc = subprocess.Popen(
        [*CMD, *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        rc = None
    return {
        "rc": rc,
        "out": out.decode("utf-8", "replace"),
        "err": err.decode("utf-8", "replace"),
    }


def snapshot(path: Path) -> Any:
    """What is at `path`, without reading special files: None, a hash, or a tree of them."""
    if not os.path.lexists(path):
        return None
    if path.is_symlink():
        return ("link", os.readlink(path))
    if path.is_dir():
        return tuple((str(p.relative_to(path)), snapshot(p)) for p in sorted(path.rglob("*")))
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return ("special", path.lstat().st_mode)


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
    text = json.dumps(doc, indent=1)
    paths = _paths(doc)[1:]
    numeric = [p for p in paths if _get(doc, p).__class__ in (int, float)]
    strings = [p for p in paths if isinstance(_get(doc, p), str)]
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


# ---------------------------------------------------------------- signals and races


def _ok_records(path: Path) -> int | None:
    try:
        return sum(r.get("status") == "ok" for r in json.loads(path.read_text())["records"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def signal_trials(t: Tally, setup: Setup, n: int, rng: random.Random) -> None:
    """SIGINT/SIGTERM at a random moment of a run: exit 130 (or 0 if it had finished), the
    file valid and holding every record that was finished before the signal."""
    from eigenbench.errors import EigenbenchError
    from eigenbench.results import load_run

    for k in range(n):
        sig = rng.choice([signal.SIGINT, signal.SIGTERM])
        delay = rng.uniform(0.05, 4.0)
        out = setup.tmp / f"sig{k}.json"
        info = {"command": "run", "family": "signal", "detail": f"{sig.name} at {delay:.2f} s"}
        proc = subprocess.Popen(
            [*CMD, "run", "probe", "--out", str(out), *FAST],
            cwd=setup.tmp,
            env=setup.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        seen, start = 0, time.monotonic()
        while time.monotonic() - start < delay and proc.poll() is None:
            seen = max(seen, _ok_records(out) or 0)
            time.sleep(0.02)
        proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            t.flag("hangs", **info)
            continue
        t.counts["signal_trials"] += 1
        info["rc"] = proc.returncode
        info["stderr"] = err.decode("utf-8", "replace").strip()[-200:]
        if proc.returncode not in (0, 130):
            t.flag("bad_exits", **info)
        if "Traceback" in info["stderr"]:
            t.flag("tracebacks", **info)
        if not out.exists():
            if seen:
                t.flag("data_lost", **info, why=f"no file, {seen} records had been written")
            continue
        try:
            kept = sum(r["status"] == "ok" for r in load_run(out)["records"])
        except EigenbenchError as exc:
            t.flag("data_lost", **info, why=f"file unreadable: {exc}")
            continue
        if kept < seen:
            t.flag("data_lost", **info, why=f"{kept} ok records kept, {seen} seen before")


def race_trials(t: Tally, setup: Setup, n: int) -> None:
    """Two runs with one --out; two baseline saves into one root; one run saved twice."""
    for k in range(n):
        out = setup.tmp / f"race{k}.json"
        procs = [
            subprocess.Popen(
                [*CMD, "run", "probe", "--quick", "--out", str(out), *FAST],
                cwd=setup.tmp,
                env=setup.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        rcs = [p.wait(timeout=120) for p in procs]
        for p in procs:
            p.communicate()
        t.counts["race_trials"] += 1
        info = {"command": "run ×2 --out", "family": "race", "rc": rcs}
        if rcs.count(0) == 2:  # both claim success, one file: one run's records are gone
            t.flag("data_lost", **info, why="both exited 0 into one --out")
        elif not all(rc in (0, 4) for rc in rcs):
            t.flag("bad_exits", **info)
    doc = json.loads(setup.good.read_text())
    for k in range(n):
        root = setup.tmp / f"broot{k}"
        files = []
        for side in range(2):
            f = setup.tmp / f"b{k}-{side}.json"
            f.write_text(json.dumps({**doc, "run_id": f"{doc['run_id']}-r{k}{side}"}))
            files.append(f)
        procs = [
            subprocess.Popen(
                [*CMD, "baseline", "save", str(f), "--root", str(root)],
                cwd=setup.tmp,
                env=setup.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for f in files
        ]
        rcs = [p.wait(timeout=120) for p in procs]
        for p in procs:
            p.communicate()
        t.counts["race_trials"] += 1
        info = {"command": "baseline save ×2", "family": "race", "rc": rcs}
        saved = [json.loads(p.read_text()).get("history_run_ids", []) for p in root.rglob("*.json")]
        ok_ids = {f"{doc['run_id']}-r{k}{s}" for s, rc in enumerate(rcs) if rc == 0}
        if any(not ok_ids <= set(h) for h in saved) or not saved:
            t.flag("data_lost", **info, why=f"history {saved} lacks one of {sorted(ok_ids)}")
    root = setup.tmp / "twice"
    for _ in range(2):
        run_cli(
            ["baseline", "save", str(setup.good), "--root", str(root)], setup.env, setup.tmp, 60
        )
    t.counts["race_trials"] += 1
    for p in root.rglob("*.json"):
        ids = json.loads(p.read_text()).get("history_run_ids", [])
        if len(ids) != len(set(ids)):
            t.flag(
                "data_lost",
                command="baseline save ×2 (same run)",
                family="race",
                why=f"history {ids}",
            )


# ---------------------------------------------------------------- setup and main


@dataclass
class Setup:
    tmp: Path
    env: dict[str, str]
    good: Path
    base_root: Path


def prepare(tmp: Path) -> Setup:
    """The tiny suite, fake peaks, a real quick run (`good`) and a baseline root from it."""
    from eigenbench import env as envmod
    from eigenbench.measure import peaks

    suites = tmp / "suites"
    suites.mkdir()
    (suites / "probe.py").write_text(SUITE)
    peak_dir = tmp / "peaks"
    key = envmod.collect(with_gpu=False)["machine_key"]
    fake = {d: {"flop_per_s": 1e11, "bytes_per_s": 1e10} for d in peaks.PEAK_DTYPES}
    peaks.save_peaks(peaks.peaks_path(key, peak_dir), key, {"cpu": fake})
    env = {
        **os.environ,
        "EIGENBENCH_SUITES": str(suites),
        peaks.ROOT_VARIABLE: str(peak_dir),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "COLUMNS": "120",
    }
    good = tmp / "good.json"
    r = run_cli(["run", "probe", "--out", str(good), *FAST], env, tmp, 300)
    if r["rc"] != 0:
        raise SystemExit(
            f"robust_probe: the reference run failed (exit {r['rc']}): {r['err'][-500:]}"
        )
    base_root = tmp / "base_root"
    r = run_cli(["baseline", "save", str(good), "--root", str(base_root)], env, tmp, 120)
    if r["rc"] != 0:
        raise SystemExit(f"robust_probe: baseline save failed: {r['err'][-500:]}")
    return Setup(tmp, env, good, base_root)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few hundred tries (< 3 min)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2, help="commands at once (default 2)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per command")
    p.add_argument("--only", nargs="*", metavar="COMMAND", help="only these commands")
    p.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "robust_probe.json")
    a = p.parse_args(argv)
    rng = random.Random(a.seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="robust_probe.") as d:
        setup = prepare(Path(d))
        doc = json.loads(setup.good.read_text())
        muts = mutations(doc, rng, 3 if a.quick else 12)
        names = list(commands(setup.tmp, setup.good, setup.base_root))
        if a.only:
            names = [n for n in names if n in a.only]
        t = Tally()
        pairs = [(m, n) for m in muts for n in names]
        if a.quick:  # the cheap commands on every mutation, run/check/report on a sample
            costly = {"check", "resume", "report", "report-baseline"}
            pairs = [(m, n) for m, n in pairs if n not in costly or rng.random() < 0.2]
        mutation_trials(t, setup, pairs, a.timeout, max(1, a.jobs))
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
