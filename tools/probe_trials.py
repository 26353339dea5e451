"""Setup, signal and race trials of `tools/robust_probe.py` (issue 22).

The tiny NumPy suite, fake peaks, a real quick run to mutate; SIGINT/SIGTERM at random
moments of a run; two runs into one --out; two `baseline save`s into one root.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
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


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    cases: list[dict[str, Any]] = field(default_factory=list)

    def flag(self, kind: str, **info: Any) -> None:
        self.counts[kind] += 1
        self.cases.append({"kind": kind, **info})


MEMORY_CAP = 3 << 30
"""Address space of each command (a read of /dev/zero must not take the shared machine)."""


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


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
        preexec_fn=_cap_memory,
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
        return ("link", str(path.readlink()))
    if path.is_dir():
        return tuple((str(p.relative_to(path)), snapshot(p)) for p in sorted(path.rglob("*")))
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return ("special", path.lstat().st_mode)


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
