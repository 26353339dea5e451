"""What shapes a run: `RunOptions`, stored in every run file and read back from it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from eigenbench.measure.loop import MeasureOptions
from eigenbench.spec import Case

DEFAULT_ISOLATE_BUDGET_S = 600.0
"""A case's budget under `--isolate` without `--timeout`: the child is killed past it, so a
hung call never stalls the run for good."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything that shapes a run, stored in the run file."""

    quick: bool = False
    devices: tuple[str, ...] = ("cpu",)
    measure: MeasureOptions = field(default_factory=MeasureOptions)
    seed: int = 0
    memory: bool = True
    host_blocking: bool = True
    dispatch: bool = True
    """Profile one extra untimed call per case for its `dispatch` fingerprint."""
    isolate: bool = False
    """Run each case in a child process (own peak RSS; killed when it overruns its budget)."""
    graph: bool = False
    """CUDA cases: also capture the call in a CUDA graph and time its replays (`graph`)."""
    rounds: int = 1
    """Sample every timed case in this many rounds spread over the run, pooling the samples,
    so that drift lasting a few seconds spreads over all cases instead of shifting a few."""

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError("rounds must be at least 1")
        if self.rounds > 1 and self.isolate:
            raise ValueError("rounds > 1 cannot be combined with isolate")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["devices"] = list(self.devices)
        return d

    def changed_fields(self) -> dict[str, Any]:
        """`to_dict` without the fields left at their defaults: what an older revision of
        eigenbench (an `ab` base side) can read as long as the options it lacks are unused."""
        defaults = RunOptions().to_dict()
        return {k: v for k, v in self.to_dict().items() if defaults.get(k) != v}

    @classmethod
    def from_dict(cls, d: Any) -> RunOptions:
        """Inverse of `to_dict` (lists become tuples); ValueError on unknown keys."""
        kwargs: dict[str, Any] = {}
        for key, value in known_fields(cls, d, "run options").items():
            if key == "measure" and not isinstance(value, MeasureOptions):
                value = MeasureOptions(
                    **known_fields(MeasureOptions, value, "run options: measure")
                )
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[key] = value
        return cls(**kwargs)


def known_fields(cls: type, d: Any, where: str) -> Mapping[str, Any]:
    """`d` itself, once it is a mapping whose keys are all fields of the dataclass `cls`."""
    if not isinstance(d, Mapping):
        raise TypeError(f"{where} must be a mapping, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (known: {sorted(names)})")
    return d


def sampled_in_rounds(case: Case) -> bool:
    """Whether `--rounds` applies to this case's workload (a convergence is followed once)."""
    return case.workload.kind != "convergence"


def case_measure_options(case: Case, options: RunOptions) -> MeasureOptions:
    """The run's measure options with the workload's own overrides (before rounds)."""
    overrides = case.workload.measure
    return dataclasses.replace(options.measure, **overrides) if overrides else options.measure
