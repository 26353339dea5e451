"""Time-to-accuracy: follow an optimisation to its loss target and keep its trajectory.

`follow` acts (steps the problem, reads the clock); `thin` and `to_record` are pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eigenbench.spec import Convergence, Problem


@dataclass(frozen=True, slots=True)
class Trajectory:
    """Loss after each step, with the clock time since the start of the optimisation."""

    points: tuple[tuple[int, float, float], ...]
    """(step, elapsed_s, loss) for every step taken."""
    reached_at: int | None
    """Index into `points` of the first step at or below the target, or None."""


def as_float(loss: Any) -> float:
    """A Python float from a float or 0-d tensor (reading a CUDA tensor synchronises)."""
    return float(loss.item() if hasattr(loss, "item") else loss)


def follow(problem: Problem, conv: Convergence, now: Callable[[], float]) -> Trajectory:
    """Step until the loss reaches the target or a budget (steps or seconds) runs out."""
    points: list[tuple[int, float, float]] = []
    start = now()
    for step in range(1, conv.budget_steps + 1):
        loss = as_float(problem.step())
        elapsed = now() - start
        points.append((step, elapsed, loss))
        if loss <= conv.target:
            return Trajectory(tuple(points), len(points) - 1)
        if elapsed >= conv.budget_s or not math.isfinite(loss):
            break
    return Trajectory(tuple(points), None)


def thin(n: int, keep: int, must: tuple[int, ...] = ()) -> list[int]:
    """Indices of `n` points to keep: about `keep` of them, log-spaced, plus first, last, must."""
    if n <= keep:
        return list(range(n))
    idx = {0, n - 1, *(i for i in must if 0 <= i < n)}
    ratio = (n - 1) ** (1 / max(1, keep - 1))
    x = 1.0
    while x < n:
        idx.add(int(x) - 1 if x >= 1 else 0)
        x = max(x * ratio, x + 1)
    return sorted(idx)


def to_record(traj: Trajectory, conv: Convergence) -> dict[str, Any]:
    """The run file's `convergence` field."""
    must = () if traj.reached_at is None else (traj.reached_at,)
    kept = [traj.points[i] for i in thin(len(traj.points), conv.max_points, must)]
    hit = None if traj.reached_at is None else traj.points[traj.reached_at]
    return {
        "target": conv.target,
        "reached": hit is not None,
        "steps_to_target": None if hit is None else hit[0],
        "seconds_to_target": None if hit is None else hit[1],
        "budget_steps": conv.budget_steps,
        "budget_s": conv.budget_s,
        "steps_taken": len(traj.points),
        "final_loss": traj.points[-1][2] if traj.points else None,
        "trajectory": [[s, t, loss if math.isfinite(loss) else None] for s, t, loss in kept],
    }
