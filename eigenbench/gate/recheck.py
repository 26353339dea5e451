"""Recheck: a case called `slower` is measured again, and stays `slower` only if it still is.

Pure: runs and CompareResults in, a CompareResult out; `eigenbench check` does the measuring.

Why: on a shared machine a neighbour's burst of work can slow a few consecutive cases by
5-10 % for a few seconds. The baseline's history cannot foresee that, and it looks exactly
like a regression in those cases. A real regression is still there when the case is timed
again; a burst has passed. Requiring both measurements to agree costs a little power (a
real 10 % slowdown must be caught twice) and removes most false alarms of that kind.

The second measurement tests a hypothesis fixed in advance (these cases got slower), so it
needs no correction across all cases: a suspect is confirmed when its change beyond its
suite's shift is again at least the threshold and significant one-sided at `alpha`
(Bonferroni across the suspects), or when the recheck calls it slower outright.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from eigenbench.gate.compare import compare_runs
from eigenbench.gate.verdicts import CompareResult, Verdict


def suspects(result: CompareResult) -> list[str]:
    """Ids of the cases to measure again: those called `slower`."""
    return [v.id for v in result.verdicts if v.label == "slower"]


def with_rechecked(run: Mapping[str, Any], recheck: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `run` whose records are replaced by `recheck`'s records of the same id.

    Everything else in `run` (the other cases, from which `compare` estimates drift) stays.
    """
    fresh = {r["id"]: r for r in recheck.get("records", [])}
    out = copy.deepcopy(dict(run))
    out["records"] = [copy.deepcopy(fresh.get(r["id"], r)) for r in out["records"]]
    return out


def confirm(first: CompareResult, second: CompareResult) -> CompareResult:
    """`first`, with each `slower` verdict kept only when `second` (the recheck) agrees.

    A confirmed case gets the recheck's verdict labelled `slower` (or its `failed` /
    `invalid`), both ratios in its reason; an unconfirmed one becomes `inconclusive`.
    Every other verdict is `first`'s.
    """
    again = {v.id: v for v in second.verdicts}
    m = max(1, len(suspects(first)))
    verdicts = []
    for v in first.verdicts:
        if v.label != "slower":
            verdicts.append(v)
            continue
        w = again.get(v.id)
        if w is not None and _agrees(w, first.threshold, first.alpha / m):
            verdicts.append(_confirmed(v, w))
        else:
            verdicts.append(_unconfirmed(v, w))
    return replace(first, verdicts=tuple(verdicts))


def judge_again(
    baseline: Mapping[str, Any],
    run: Mapping[str, Any],
    recheck_run: Mapping[str, Any],
    first: CompareResult,
    **settings: Any,
) -> CompareResult:
    """`eigenbench check`'s rule: `first` (`run` judged against `baseline`), each `slower`
    verdict kept only if `recheck_run`, which measured those cases again, confirms it
    (`confirm`). The recheck's records stand in for theirs in `run`, judged with the same
    `settings` (`compare_runs` keyword arguments) as `first`."""
    return confirm(first, compare_runs(baseline, with_rechecked(run, recheck_run), **settings))


def _agrees(w: Verdict, threshold: float, alpha: float) -> bool:
    """Whether a recheck verdict confirms a slowdown (see the module docstring)."""
    if w.label in ("slower", "failed", "invalid"):
        return True
    if w.change is None or w.p_session is None or w.change < 1 + threshold:
        return False
    return w.p_session / 2 <= alpha


def _ratio_text(v: Verdict | None) -> str:
    if v is None:
        return "not measured again"
    return f"ratio {v.ratio:.3g}, {v.label}" if v.ratio is not None else v.label


def _confirmed(v: Verdict, w: Verdict) -> Verdict:
    again = f"measured twice: first ratio {v.ratio:.3g}, then {_ratio_text(w)}"
    if w.label in ("slower", "failed", "invalid"):
        return replace(w, reason=f"{w.reason}; {again}")
    assert w.p_session is not None  # `_agrees` passed it on its p-value
    return replace(
        w,
        label="slower",
        reason=f"{v.reason}; confirmed one-sided (p = {w.p_session / 2:.2g}); {again}",
    )


def _unconfirmed(v: Verdict, w: Verdict | None) -> Verdict:
    return replace(
        v,
        label="inconclusive",
        reason=f"slower at first (ratio {v.ratio:.3g}) but not when measured again "
        f"({_ratio_text(w)}): a passing disturbance, or a change too small to be sure of",
    )
