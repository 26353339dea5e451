"""`format_selftest`: a self-test result as plain text for a terminal or a CI log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eigenbench.selftest.targets import (
    CPU_OVERHEAD_TARGET_S,
    CPU_REL_TARGET,
    GPU_ABS_TARGET_S,
    GPU_REL_TARGET,
    targets_met,
)
from eigenbench.units import fmt_seconds


def _fmt(s: float | None) -> str:
    return fmt_seconds(s)


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("PASS" if ok else "FAIL")


def _known_lines(title: str, entries: list[dict[str, Any]]) -> list[str]:
    lines = [title]
    for e in entries:
        lines.append(
            f"  {_fmt(e['duration_s']):>7}: median {e['median_s'] * 1e6:.2f} µs, "
            f"error {e['relative_error']:.3%} ({_fmt(e['abs_error_s'])}); "
            f"{e['samples']} samples × {e['number']}, {e['elapsed_s']:.2f} s, {e['stop_reason']}"
        )
        if "spun_median_s" in e:
            lines.append(
                f"           the spins measured themselves at {e['spun_median_s'] * 1e6:.2f} µs: "
                f"timer error {e['timer_relative_error']:.3%} "
                f"(overhead {_fmt(e['timer_overhead_s'])}); "
                f"{e['involuntary_context_switches']} involuntary context switches"
            )
    return lines


def _comparison_lines(c: Mapping[str, Any]) -> list[str]:
    ours = c["eigenbench"]
    reached = "reached" if ours["reached_ci_target"] else "NOT reached"
    rows = [
        ("eigenbench", ours, f"measured; ±{ours['rel_ci']:.2%} interval {reached}"),
        ("pytest-benchmark", c["pytest_benchmark"], "computed from defaults, not run"),
        ("pyperf", c["pyperf"], f"computed from defaults, not run; + {c['pyperf']['not_counted']}"),
    ]
    lines = [f"Cost of a stable {_fmt(c['duration_s'])} result (busy-wait):"]
    for name, r, note in rows:
        lines.append(
            f"  {name:<17}{r['samples']:>5} samples {r['calls']:>6} calls "
            f"{r['wall_s']:>7.2f} s  ({note})"
        )
    return lines


def _blocking_lines(entries: list[dict[str, Any]]) -> list[str]:
    lines = ["Host-blocking detection:"]
    for e in entries:
        if e.get("skipped"):
            lines.append(f"  {e['label']}: skipped ({e['skipped']})")
            continue
        if e.get("error"):
            lines.append(f"  {e['label']}: FAILED to run ({e['error']})")
            continue
        ev = e["evidence"]
        lines.append(
            f"  {e['label']}: expected {e['expected']}, detected {e['detected']} "
            f"[{'ok' if e['correct'] else 'WRONG'}] (returned after {_fmt(ev['host_return_s'])} "
            f"behind a {_fmt(ev['guard_kernel_s'])} kernel; "
            f"{len(ev['torch_sync_warnings'])} torch sync warning(s))"
        )
    return lines


def format_selftest(result: Mapping[str, Any]) -> str:
    """The self-test result as plain text for a terminal or a CI log."""
    env = result["env"]
    targets = result.get("targets", targets_met(result))
    lines = [
        f"eigenbench selftest ({result['device']}{', quick' if result.get('quick') else ''}) — "
        f"{env['cpu']} ×{env['cpu_count']}, torch {env['torch']}, GPU: {env['gpu'] or 'none'}",
        f"CPU overhead per sample (empty callable): {_fmt(result['cpu_overhead_s_per_sample'])} "
        f"[target ≤ {_fmt(CPU_OVERHEAD_TARGET_S)}: {_verdict(targets.get('cpu_overhead'))}]",
    ]
    lines += _known_lines(
        f"CPU busy-waits [target ≤ {CPU_REL_TARGET:.0%}: "
        f"{_verdict(targets.get('cpu_known_duration'))}]",
        result["cpu_known_duration"],
    )
    if "cpu_timer_error" in targets:
        lines.append(
            f"  [timer error target ≤ {CPU_REL_TARGET:.0%}: "
            f"{_verdict(targets.get('cpu_timer_error'))}; load average "
            f"{env.get('load_average_1min') or 0:.2f} on {env['cpu_count']} cores]"
        )
    lines += _comparison_lines(result["stable_10ms_comparison"])
    if "cuda_known_duration" in result:
        lines.append(
            f"CUDA event overhead (empty callable): {_fmt(result['cuda_event_overhead_s'])}; "
            f"host time per sample {_fmt(result['cuda_host_overhead_s_per_sample'])}"
        )
        lines += _known_lines(
            f"CUDA sleep kernels [target ≤ max({GPU_REL_TARGET:.0%}, "
            f"{_fmt(GPU_ABS_TARGET_S)}): {_verdict(targets.get('cuda_known_duration'))}]",
            result["cuda_known_duration"],
        )
    if "host_blocking" in result:
        lines += _blocking_lines(result["host_blocking"])
        lines.append(f"  [target all correct: {_verdict(targets.get('host_blocking'))}]")
    return "\n".join(lines)
