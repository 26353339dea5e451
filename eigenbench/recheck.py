"""Recheck: a case called `slower` is measured again, and stays `slower` only if it still is.

Pure: runs and CompareResults in, a CompareResult out; `eigenbench check` does the measuring.

Why: on a shared machine a neighbour's burst of work can slow a few consecutive cases by
5-10 % for a few seconds. The baseline's history cannot foresee that, and it looks exactly
like a regression in those cases. A real regression is still there when the case is timed
again; a burst has passed. Requiring both measurements to agree costs a little power (a
real 10 % slowdown must be caught twice) and removes most false alarms of that kind.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from eigenbench.compare import CompareResult, Verdict


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

    A slower case that the recheck finds slower (or failed, or invalid) keeps the
    recheck's verdict, with both ratios in its reason; one that the recheck does not find
    slower becomes `inconclusive`. Every other verdict is `first`'s.
    """
    again = {v.id: v for v in second.verdicts}
    verdicts = []
    for v in first.verdicts:
        if v.label != "slower":
            verdicts.append(v)
            continue
        w = again.get(v.id)
        verdicts.append(_confirmed(v, w) if w is not None else _unconfirmed(v, None))
    return replace(first, verdicts=tuple(verdicts))


def _ratio_text(v: Verdict | None) -> str:
    if v is None:
        return "not measured again"
    return f"ratio {v.ratio:.3g}, {v.label}" if v.ratio is not None else v.label


def _confirmed(v: Verdict, w: Verdict) -> Verdict:
    if w.label in ("slower", "failed", "invalid"):
        reason = f"{w.reason}; measured twice: first ratio {v.ratio:.3g}, then {_ratio_text(w)}"
        return replace(w, reason=reason)
    return _unconfirmed(v, w)


def _unconfirmed(v: Verdict, w: Verdict | None) -> Verdict:
    return replace(
        v,
        label="inconclusive",
        reason=f"slower at first (ratio {v.ratio:.3g}) but not when measured again "
        f"({_ratio_text(w)}): a passing disturbance, or a change too small to be sure of",
    )
