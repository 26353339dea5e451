"""The pure part of `make gpu-check`: JSON files read defensively, and summary.md and
steps.log rendered from the step results and those files. Standard library only."""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TAIL_LINES = 40
LIST_LIMIT = 30


# ---------------------------------------------------------------------------- results and files


@dataclass
class StepResult:
    """What one step did: the command, its exit code (None: not run or not reaped), time."""

    name: str
    command: list[str]
    rc: int | None = None
    seconds: float = 0.0
    timed_out: bool = False
    stderr_tail: str = ""
    limit_s: float | None = None
    note: str = ""


@dataclass
class Loaded:
    """A JSON file's content, or why it is not available."""

    data: Any = None
    why: str | None = None

    @property
    def ok(self) -> bool:
        return self.why is None


@dataclass
class SummaryInputs:
    """Everything the summary is rendered from (all optional but the steps)."""

    steps: list[StepResult]
    preflight: Loaded = field(default_factory=lambda: Loaded(why="not run"))
    selftest: Loaded = field(default_factory=lambda: Loaded(why="not run"))
    peers: Loaded = field(default_factory=lambda: Loaded(why="not run"))
    run: Loaded = field(default_factory=lambda: Loaded(why="not run"))
    tests_text: str | None = None
    tests_counts: dict[str, dict[str, int] | None] = field(default_factory=dict)
    interpreter: str = ""
    started: str = ""
    budget_s: float | None = None
    elapsed_s: float | None = None
    files_note: str = ""


def load_json(path: Path) -> Loaded:
    """Read a JSON object from `path`; a missing, empty or malformed file says why."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Loaded(why=f"{path.name} was not written")
    except OSError as exc:
        return Loaded(why=f"{path.name} cannot be read ({exc})")
    if not text.strip():
        return Loaded(why=f"{path.name} is empty")
    try:
        data = json.loads(text)
    except ValueError as exc:
        return Loaded(why=f"{path.name} is not valid JSON ({exc})")
    if not isinstance(data, dict):
        return Loaded(why=f"{path.name} holds a {type(data).__name__}, not an object")
    return Loaded(data)


def dig(data: Any, *keys: Any) -> Any:
    """data[k1][k2]… or None when any level is missing or of the wrong type."""
    for key in keys:
        if isinstance(data, Mapping):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data):
            data = data[key]
        else:
            return None
    return data


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------- pytest output

_SUMMARY_COUNT = re.compile(
    r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?|rerun)\b"
)
_SUMMARY_TIME = re.compile(r"\bin [\d.]+s\b")


def parse_pytest_summary(text: str) -> dict[str, int] | None:
    """Counts of pytest's last summary line ("3 passed, 1 failed, 2 skipped in 4.1s"), keys
    singular ("error", "warning"); None when there is none (e.g. pytest was killed)."""
    for line in reversed(text.splitlines()):
        if not _SUMMARY_TIME.search(line):
            continue
        counts = {
            k.rstrip("s") if k in ("errors", "warnings") else k: int(n)
            for n, k in _SUMMARY_COUNT.findall(line)
        }
        if counts or "no tests ran" in line:
            return counts
    return None


def failed_tests(text: str) -> list[str]:
    """The `FAILED …` and `ERROR …` lines of pytest's short summary, in order, deduplicated."""
    seen: dict[str, None] = {}
    for line in text.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            seen.setdefault(line.strip()[:300], None)
    return list(seen)


# ---------------------------------------------------------------------------- summary


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def fmt_num(x: Any, digits: int = 3) -> str:
    return f"{x:.{digits}g}" if _is_number(x) else "n/a"


def fmt_ms(x: Any, *, in_seconds: bool = True) -> str:
    """`x` seconds (or milliseconds, `in_seconds=False`) as "1.234 ms"; "n/a" if no number."""
    return f"{x * 1e3 if in_seconds else x:.4g} ms" if _is_number(x) else "n/a"


def fmt_pct(x: Any) -> str:
    return f"{x * 100:.3g} %" if _is_number(x) else "n/a"


def cell(text: Any) -> str:
    """A value safe inside a markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")[:200]


def no_cuda_reason(preflight: Loaded) -> str | None:
    """Why there is no CUDA device according to preflight.json; None if it found one, or if
    it did not say (then the orchestrator probes torch itself)."""
    if not preflight.ok:
        return None
    cuda = dig(preflight.data, "cuda")
    if cuda is True:
        return None
    if cuda is False:
        return str(dig(preflight.data, "reason") or "preflight found no CUDA device")
    return None


def render_no_cuda(reason: str, inputs: SummaryInputs) -> str:
    """The summary when there is no CUDA device: why, and which interpreter and torch."""
    torch_version = dig(inputs.preflight.data, "torch", "torch") or dig(
        inputs.preflight.data, "versions", "torch"
    )
    lines = [
        "# eigenbench gpu-check: no CUDA device found",
        "",
        f"No CUDA device found: {reason}. Nothing CUDA was run.",
        "",
        f"- interpreter: {inputs.interpreter or 'n/a'}",
        f"- torch: {torch_version or 'not importable'}"
        + (
            f" (CUDA build: {dig(inputs.preflight.data, 'torch', 'torch_cuda') or 'none'})"
            if torch_version
            else ""
        ),
        f"- started: {inputs.started}, budget {fmt_num(inputs.budget_s)} s",
        "",
        "## Steps",
        "",
        *steps_table(inputs.steps),
        "",
        "steps.log has each step's command and stderr; preflight.json what preflight found.",
    ]
    return "\n".join(lines) + "\n"


def render_crashed(trace: str, steps: Sequence[StepResult]) -> str:
    """The summary when the orchestrator itself failed or was stopped."""
    return "\n".join(
        [
            "# eigenbench gpu-check: the orchestrator failed or was stopped",
            "",
            "```",
            trace.rstrip(),
            "```",
            "",
            "## Steps",
            "",
            *steps_table(steps),
            "",
        ]
    )


def steps_table(steps: Sequence[StepResult]) -> list[str]:
    rows = ["| step | rc | seconds | timed out | note |", "|---|---|---|---|---|"]
    for s in steps:
        rc = "—" if s.rc is None else str(s.rc)
        timed = "yes" if s.timed_out else "no"
        rows.append(f"| {s.name} | {rc} | {s.seconds:.1f} | {timed} | {cell(s.note)} |")
    return rows


def machine_lines(inputs: SummaryInputs) -> list[str]:
    pf = inputs.preflight
    if not pf.ok:
        return [f"not available: {pf.why}"]
    d = pf.data
    mem = dig(d, "gpu", "total_memory_bytes")
    l2 = dig(d, "gpu", "l2_cache_bytes")
    return [
        f"- GPU: {dig(d, 'gpu', 'name') or 'n/a'} (capability {dig(d, 'gpu', 'capability')}, "
        f"{fmt_num(mem / 2**30 if isinstance(mem, (int, float)) else None)} GiB, "
        f"{dig(d, 'gpu', 'sm_count')} SMs, L2 "
        f"{fmt_num(l2 / 2**20 if isinstance(l2, (int, float)) else None)} MiB)",
        f"- driver: {dig(d, 'nvml', 'driver') or 'n/a'} "
        f"(CUDA driver {dig(d, 'nvml', 'cuda_driver') or 'n/a'})",
        f"- torch {dig(d, 'versions', 'torch') or 'n/a'}, CUDA "
        f"{dig(d, 'versions', 'torch_cuda') or 'n/a'}; CuPy {dig(d, 'versions', 'cupy') or 'n/a'}"
        f"; triton {dig(d, 'versions', 'triton') or 'n/a'}; Python {dig(d, 'python') or 'n/a'}",
        f"- interpreter: {inputs.interpreter}",
    ]


def _capped(items: Sequence[str], prefix: str, more: str) -> list[str]:
    """At most LIST_LIMIT items as table-safe lines, then `more` with the count left out."""
    lines = [f"{prefix}{cell(item)}" for item in items[:LIST_LIMIT]]
    if len(items) > LIST_LIMIT:
        lines.append(more.format(len(items) - LIST_LIMIT))
    return lines


def _preflight_errors(pf: Loaded) -> list[str]:
    if not pf.ok:
        return [f"- preflight: not available: {pf.why}"]
    errors = dig(pf.data, "errors")
    if not isinstance(errors, list):
        return ["- preflight: no `errors` list"]
    return [f"- preflight: {cell(e)}" for e in errors[:LIST_LIMIT]]


def _tests_failures(inputs: SummaryInputs) -> list[str]:
    if inputs.tests_text is None:
        return ["- tests: not available: tests.log was not written"]
    lines = []
    for name, counts in inputs.tests_counts.items():
        if counts is None:
            lines.append(f"- tests ({name}): no pytest summary line (killed or crashed?)")
    failed = failed_tests(inputs.tests_text)
    return lines + _capped(failed, "- test: ", "- … and {} more in tests.log")


def bad_records(run: Any) -> list[str]:
    """`id: status — reason` of the failed, invalid and timed-out records of a run."""
    records = dig(run, "records")
    if not isinstance(records, list):
        return []
    out = []
    for r in records:
        status = dig(r, "status")
        if status in ("failed", "invalid", "timeout"):
            out.append(f"{dig(r, 'id')}: {status} — {dig(r, 'reason') or 'no reason given'}")
    return out


def failure_lines(inputs: SummaryInputs) -> list[str]:
    lines = [
        f"- step {s.name}: " + ("timed out" if s.timed_out else f"rc {s.rc}")
        for s in inputs.steps
        if s.timed_out or (s.rc not in (0, None))
    ]
    lines += _preflight_errors(inputs.preflight)
    lines += _tests_failures(inputs)
    if inputs.run.ok:
        bad = bad_records(inputs.run.data)
        lines += _capped(bad, "- bench: ", "- bench: … and {} more in bench-gpu.json")
    else:
        lines.append(f"- bench: not available: {inputs.run.why}")
    return lines or ["nothing"]


def preflight_ms(pf: Any, op: str, backend: str, batch: int, n: int) -> Any:
    """Median ms of one preflight timing entry, or None."""
    entries = dig(pf, "timings", "entries")
    for e in entries if isinstance(entries, list) else []:
        key = (dig(e, "op"), dig(e, "backend"), dig(e, "batch"), dig(e, "n"))
        if key == (op, backend, batch, n):
            return dig(e, "median_ms")
    return None


def bench_median_s(run: Any, impl: str, batch: int, n: int) -> Any:
    """Median seconds of the ok CUDA float32 eigvalsh_batched record of `impl` at (batch, n)."""
    records = dig(run, "records")
    for r in records if isinstance(records, list) else []:
        if (
            dig(r, "workload") == "eigvalsh_batched"
            and dig(r, "impl") == impl
            and dig(r, "device") == "cuda"
            and dig(r, "dtype") == "float32"
            and dig(r, "status") == "ok"
            and dig(r, "params", "batch") == batch
            and dig(r, "params", "n") == n
        ):
            return dig(r, "summary", "median_s")
    return None


def eig_headlines(inputs: SummaryInputs) -> list[str]:
    pf, run = inputs.preflight.data, inputs.run.data
    lines = ["| figure | preflight | bench-gpu |", "|---|---|---|"]
    for label, impl, batch, n in (
        ("torch eigvalsh 500×100×100", "torch", 500, 100),
        ("CuPy eigvalsh 500×100×100", "cupy", 500, 100),
        ("torch eigvalsh 500×32×32", "torch", 500, 32),
        ("torch eigvalsh 500×33×33", "torch", 500, 33),
        ("torch eigvalsh 1×32×32", "torch", 1, 32),
        ("torch eigvalsh 1×33×33", "torch", 1, 33),
    ):
        pre = fmt_ms(preflight_ms(pf, "eigvalsh", impl, batch, n), in_seconds=False)
        lines.append(f"| {label} | {pre} | {fmt_ms(bench_median_s(run, impl, batch, n))} |")
    for n in (32, 33):
        pre = fmt_ms(preflight_ms(pf, "eigh", "torch", 500, n), in_seconds=False)
        lines.append(f"| torch eigh 500×{n}×{n} | {pre} | — |")
    return lines


def preflight_headlines(pf: Loaded) -> list[str]:
    if not pf.ok:
        return [f"- preflight figures not available: {pf.why}"]
    d = pf.data
    warnings_list = dig(d, "bridge", "warnings")
    shown = "; ".join(map(str, warnings_list[:3])) if isinstance(warnings_list, list) else ""
    error = dig(d, "rank", "error")
    return [
        "- rank_sync_free (exact Spearman, 10⁷ float32 on CUDA): "
        f"{dig(d, 'rank', 'rank_sync_free')}" + (f" — {cell(error)}" if error else ""),
        f"- bridge warnings: {dig(d, 'bridge', 'warning_count')}"
        + (f" ({cell(shown)})" if shown else ""),
        f"- cupy_on_torch_stream host overhead: "
        f"{fmt_num(dig(d, 'bridge', 'stream_context_overhead_us'))} µs per call",
        f"- L2 flush buffer: {dig(d, 'l2_flush', 'ok')} ({fmt_num(dig(d, 'l2_flush', 'bytes'))} B)",
    ]


def selftest_lines(st: Loaded) -> list[str]:
    if not st.ok:
        return [f"not available: {st.why}"]
    targets = dig(st.data, "targets")
    if not isinstance(targets, Mapping) or not targets:
        return ["not available: selftest.json has no `targets`"]
    lines = [
        f"- {k}: {'met' if v is True else 'NOT met' if v is False else v}"
        for k, v in targets.items()
    ]
    blocking = dig(st.data, "host_blocking")
    for entry in blocking if isinstance(blocking, list) else []:
        label = dig(entry, "label")
        verdict = dig(entry, "detected") or dig(entry, "skipped") or dig(entry, "error")
        lines.append(f"- host blocking, {label}: {verdict} (expected {dig(entry, 'expected')})")
    return lines


def peers_lines(peers: Loaded) -> list[str]:
    if not peers.ok:
        return [f"not available: {peers.why}"]
    cases = dig(peers.data, "cases")
    if not isinstance(cases, list):
        return ["not available: peers.json has no `cases` list"]
    lines = [
        f"rounds: {dig(peers.data, 'rounds')} of {dig(peers.data, 'rounds_requested')}"
        + (f" ({dig(peers.data, 'stopped_early')})" if dig(peers.data, "stopped_early") else ""),
        "",
        "| case | tool | median | spread | rel sd | wall s | error vs truth |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        tools = dig(case, "tools")
        for tool, e in tools.items() if isinstance(tools, Mapping) else []:
            lines.append(_peer_row(dig(case, "name"), tool, e))
    return lines


def _peer_row(case: Any, tool: str, e: Any) -> str:
    if dig(e, "available") is not True:
        return f"| {case} | {tool} | unavailable: {cell(dig(e, 'reason'))} | | | | |"
    err = dig(e, "error_vs_truth", "rel")
    note = f" ({cell(dig(e, 'error'))})" if dig(e, "error") else ""
    return (
        f"| {case} | {tool} | {fmt_ms(dig(e, 'median_s'))}{note} | {fmt_pct(dig(e, 'spread'))} | "
        f"{fmt_pct(dig(e, 'rel_sd'))} | {fmt_num(dig(e, 'wall_total_s'))} | "
        f"{fmt_pct(err) if err is not None else '—'} |"
    )


def run_lines(run: Loaded) -> list[str]:
    if not run.ok:
        return [f"not available: {run.why}"]
    records = dig(run.data, "records")
    if not isinstance(records, list):
        return ["not available: bench-gpu.json has no `records` list"]
    counts = Counter(str(dig(r, "status")) for r in records)
    lines = [
        f"- run status: {dig(run.data, 'status')}; {len(records)} records: "
        + (", ".join(f"{n} {s}" for s, n in counts.most_common()) or "none")
    ]
    for impl in ("torch", "cupy"):
        flags = [
            dig(r, "host_blocking")
            for r in records
            if dig(r, "workload") == "eigvalsh_batched" and dig(r, "impl") == impl
        ]
        flags = [f for f in flags if isinstance(f, bool)]
        if flags:
            lines.append(
                f"- host_blocking, {impl} eigvalsh records: {sum(flags)} blocking of {len(flags)}"
            )
    lost = dig(run.data, "cuda_lost")
    if isinstance(lost, dict):
        after, error = dig(lost, "after"), dig(lost, "error")
        lines.append(f"- CUDA context lost, detected after {after}: {error}")
    throttled = [
        f"{dig(r, 'id')}: {w}"
        for r in records
        for w in (dig(r, "warnings") or [])
        if isinstance(w, str) and w.startswith("GPU ")
    ]
    lines.extend(f"- {w}" for w in throttled[:LIST_LIMIT])
    return lines


def _section(title: str, render: Callable[[], list[str]]) -> list[str]:
    """A titled section; a renderer that trips on an odd file says so instead of crashing."""
    try:
        body = render()
    except Exception as exc:
        body = [f"not available: {type(exc).__name__}: {exc}"]
    return [f"## {title}", "", *body, ""]


def render_summary(inputs: SummaryInputs) -> str:
    """summary.md of a run with a CUDA device (short, read first)."""
    head = [
        "# eigenbench gpu-check",
        "",
        f"Started {inputs.started}; {fmt_num(inputs.elapsed_s, 4)} s of a "
        f"{fmt_num(inputs.budget_s, 4)} s budget. {inputs.files_note}".rstrip(),
        "",
    ]
    body = (
        _section("Machine", lambda: machine_lines(inputs))
        + _section("Steps", lambda: steps_table(inputs.steps))
        + _section("What failed", lambda: failure_lines(inputs))
        + _section(
            "Headline figures",
            lambda: [*eig_headlines(inputs), "", *preflight_headlines(inputs.preflight)],
        )
        + _section("Selftest targets", lambda: selftest_lines(inputs.selftest))
        + _section(
            "Peers (eigenbench, triton do_bench, torch.utils.benchmark)",
            lambda: peers_lines(inputs.peers),
        )
        + _section("Bench run", lambda: run_lines(inputs.run))
        + _section("Tests", lambda: tests_count_lines(inputs))
    )
    return "\n".join(head + body)


def tests_count_lines(inputs: SummaryInputs) -> list[str]:
    if not inputs.tests_counts:
        return ["not available: the tests did not run"]
    lines = []
    for name, counts in inputs.tests_counts.items():
        text = ", ".join(f"{n} {k}" for k, n in counts.items()) if counts else "no summary line"
        lines.append(f"- {name}: {text or 'no tests ran'}")
    return lines


def step_block(step: StepResult) -> str:
    """One steps.log block."""
    return "\n".join(
        [
            f"== {step.name}",
            f"command: {shlex.join(step.command)}",
            f"rc: {step.rc}",
            f"seconds: {step.seconds:.1f}"
            + (f" (limit {step.limit_s:.0f})" if step.limit_s is not None else ""),
            f"timed out: {'yes' if step.timed_out else 'no'}",
            *([f"note: {step.note}"] if step.note else []),
            f"stderr (last {TAIL_LINES} lines):",
            step.stderr_tail,
            "",
        ]
    )
