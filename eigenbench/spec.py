"""Declarations of what to measure: Suite → Workload → Impl, and their expansion into Cases.

Pure data: nothing here touches a device, a clock or a file. Suites are Python files in
`suites/` that define `SUITE = Suite(...)`; `eigenbench.suites` loads them.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from eigenbench.errors import SuiteError

DEVICES = ("cpu", "cuda")
DTYPES = ("float16", "bfloat16", "float32", "float64")
KINDS = ("time", "convergence")
ParamValue = int | float | str | bool
Params = Mapping[str, ParamValue]
Grid = Mapping[str, Sequence[ParamValue]] | Sequence[Mapping[str, ParamValue]]
CallEstimate = Callable[[Params, str, str], float]
"""(params, device, dtype) -> rough seconds per timed call, a prior for `eigenbench plan`."""
MAX_NAME_CHARS = 100
"""Longest suite, workload or impl name: names become parts of file names and case ids."""
ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
"""Bytes per element of each dtype, for `Cost` formulas."""


@dataclass(frozen=True, slots=True)
class Cost:
    """The minimum work of an algorithm for one timed call: floating-point operations and
    bytes of memory traffic (what any implementation must do, not what one impl does)."""

    flops: float
    bytes: float


CostModel = Callable[[Params, str], Cost]
"""(params, dtype) -> the algorithm's Cost per timed call (see `Workload.cost`)."""


@dataclass(frozen=True, slots=True)
class Impl:
    """One implementation of a workload: a callable, the devices it runs on, what it needs."""

    name: str
    fn: Callable[..., Any]
    devices: frozenset[str] = frozenset({"cpu"})
    requires: tuple[str, ...] = ()
    """Optional modules that must import (e.g. `cupy`), else its cases are skipped."""
    when: Callable[[Params, str], bool] | None = None
    """Restricts the cases this impl runs (params, device) -> bool, e.g. small sizes only."""
    prepare: Callable[[Any], Any] | None = None
    """Converts the shared inputs to what `fn` takes (e.g. to NumPy), once and untimed."""
    description: str = ""
    call_estimate_s: CallEstimate | None = None
    """This impl's own prior per call, when it differs much from the workload's (see
    `Workload.call_estimate_s`)."""
    expected_invalid: str | None = None
    """Why this impl is expected to fail validation, when it is wrong on purpose (e.g. "seed
    000's naive version: ties get different ranks"): kept as a measured baseline. The runner
    records it on the impl's invalid records as `expected_invalid`; ok records get nothing.
    Not part of the version hash."""


@dataclass(frozen=True, slots=True)
class Validation:
    """How far a result is from the float64 reference, and whether that is within tolerance."""

    ok: bool
    max_abs_err: float | None
    max_rel_err: float | None
    reference: str
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "ok": self.ok,
            "max_abs_err": self.max_abs_err,
            "max_rel_err": self.max_rel_err,
            "reference": self.reference,
        }
        if self.detail:
            d["detail"] = self.detail
        return d


class Problem(Protocol):
    """What an impl of a convergence workload returns: an optimisation to step through."""

    def step(self) -> Any:
        """One optimisation step; returns the loss after it (float or 0-d tensor)."""
        ...

    def result(self) -> Any:
        """The current solution, for validation against the reference."""
        ...


@dataclass(frozen=True, slots=True)
class Convergence:
    """Target and budgets of a convergence workload (time-to-accuracy)."""

    target: float
    """Loss at or below which the problem counts as solved."""
    budget_steps: int = 10_000
    budget_s: float = 10.0
    max_points: int = 200
    """Trajectory points kept in the run file (every step early on, then thinned)."""


Bind = Callable[[Impl, Any, str], Callable[[], Any]]
"""(impl, inputs, phase) -> the zero-argument callable that is timed for that phase."""


def call_impl(impl: Impl, inputs: Any, phase: str) -> Callable[[], Any]:
    """Default binding: the timed callable is `impl.fn(inputs)` (after `impl.prepare`)."""
    fn = impl.fn
    args = impl.prepare(inputs) if impl.prepare is not None else inputs
    return lambda: fn(args)


@dataclass(frozen=True, slots=True)
class Workload:
    """One operation family: its parameter grids, implementations, inputs and reference."""

    name: str
    impls: tuple[Impl, ...]
    make_inputs: Callable[[Params, str, str, int], Any]
    """(params, device, dtype, seed) -> inputs, seeded so every impl sees the same data."""
    reference: Callable[[Any, Params, str], Any]
    """(inputs, params, phase) -> the expected output, computed in float64 on the CPU."""
    validate: Callable[[Any, Any, Params, str], Validation]
    """(output, expected, params, dtype) -> Validation."""
    grid: Grid
    quick_grid: Grid
    gpu_grid: Grid | None = None
    """Full grid on CUDA when it differs from the CPU one (bigger batches)."""
    dtypes: tuple[str, ...] = ("float32",)
    phases: tuple[str, ...] = ("call",)
    bind: Bind = call_impl
    kind: str = "time"
    convergence: Convergence | None = None
    """For kind "convergence": impls return a Problem; the runner records time per step and
    the loss trajectory to `convergence.target`."""
    flush_l2: bool = True
    description: str = ""
    measure: Mapping[str, Any] = field(default_factory=dict)
    """Overrides of the run's MeasureOptions for this workload (e.g. fewer samples of a
    seconds-long training epoch); recorded in each record's `measure_overrides`."""
    revalidate: bool = True
    """Check the output of one more call after timing (an impl may turn wrong while timed);
    False for a workload whose calls differ by design (each call trains one more epoch)."""
    reference_impl: str | None = None
    """The impl the report compares the others against (e.g. the seed's final version);
    recorded in each record as `reference_impl`, never part of the version hash."""
    call_estimate_s: CallEstimate | None = None
    """(params, device, dtype) -> rough seconds per timed call (for a convergence workload:
    per step). A prior for `eigenbench plan` and the run's ETA only, used where this
    machine's baseline lacks the case; never part of the version hash."""
    cost: CostModel | None = None
    """(params, dtype) -> the algorithm's minimum flops and bytes per timed call, its formula
    and source in its docstring; gives each timed record its `throughput` against the
    machine's measured peaks. Optional; never part of the version hash."""

    def grid_for(self, *, quick: bool, device: str) -> list[dict[str, ParamValue]]:
        """The parameter points to run, in declared order (sizes ascending)."""
        if quick:
            return expand_grid(self.quick_grid)
        if device == "cuda" and self.gpu_grid is not None:
            return expand_grid(self.gpu_grid)
        return expand_grid(self.grid)


@dataclass(frozen=True, slots=True)
class Suite:
    """A named set of workloads, declared in one file under `suites/`."""

    name: str
    workloads: tuple[Workload, ...]
    description: str = ""


@dataclass(frozen=True, slots=True)
class Case:
    """One measurement: suite × workload × impl × params × device × dtype × phase."""

    suite: str
    workload: Workload
    impl: Impl
    params: tuple[tuple[str, ParamValue], ...]
    device: str
    dtype: str
    phase: str

    @property
    def id(self) -> str:
        """Stable id, e.g. `eigvalsh_batched/cupy/cuda/float32/batch=500,n=100`."""
        return case_id(
            self.workload.name,
            self.impl.name,
            self.device,
            self.dtype,
            dict(self.params),
            self.phase,
        )

    @property
    def param_dict(self) -> dict[str, ParamValue]:
        return dict(self.params)

    @property
    def version(self) -> str:
        return version_hash(self.workload, self.impl)


def case_id(
    workload: str, impl: str, device: str, dtype: str, params: Params, phase: str = "call"
) -> str:
    """The one place where case ids are built."""
    ptxt = ",".join(f"{k}={_fmt(v)}" for k, v in params.items())
    tail = "" if phase == "call" else f"/{phase}"
    return f"{workload}/{impl}/{device}/{dtype}/{ptxt}{tail}"


class CaseIdParts(NamedTuple):
    """The fields a case id holds (params as the strings the id shows)."""

    workload: str
    impl: str
    device: str
    dtype: str
    params: dict[str, str]
    phase: str


def parse_case_id(case_id: str) -> CaseIdParts:
    """The inverse of `case_id`, as far as text allows; missing fields read "?"."""
    parts = case_id.split("/")
    parts += ["?"] * (5 - len(parts))
    workload, impl, device, dtype, ptxt = parts[:5]
    params = dict(p.split("=", 1) for p in ptxt.split(",") if "=" in p)
    return CaseIdParts(
        workload, impl, device, dtype, params, parts[5] if len(parts) > 5 else "call"
    )


def _fmt(v: ParamValue) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) >= 1e6:
        return f"{v:.0e}"
    return str(v)


def expand_grid(grid: Grid) -> list[dict[str, ParamValue]]:
    """A mapping of name → values becomes its Cartesian product; a list of points stays."""
    if isinstance(grid, Mapping):
        names = list(grid)
        values = [list(grid[n]) for n in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    return [dict(point) for point in grid]


def expand(suite: Suite, *, devices: Iterable[str], quick: bool) -> list[Case]:
    """All cases of a suite on the given devices, in a stable order."""
    cases = []
    for w in suite.workloads:
        for impl in w.impls:
            for device in devices:
                if device not in impl.devices:
                    continue
                for params in w.grid_for(quick=quick, device=device):
                    if impl.when is not None and not _allowed(impl, params, device, w.name):
                        continue
                    for dtype in w.dtypes:
                        for phase in w.phases:
                            cases.append(
                                Case(
                                    suite.name, w, impl, tuple(params.items()), device, dtype, phase
                                )
                            )
    return cases


def _allowed(impl: Impl, params: dict[str, ParamValue], device: str, workload: str) -> bool:
    """`impl.when(params, device)`; SuiteError when it raises (a declaration error)."""
    assert impl.when is not None
    try:
        return bool(impl.when(params, device))
    except Exception as exc:
        raise SuiteError(
            f"workload {workload!r}: impl {impl.name!r}: when({params}, {device!r}) raised "
            f"{type(exc).__name__}: {exc}"
        ) from None


def find_case(suite: Suite, case_id: str, *, devices: Iterable[str], quick: bool) -> Case | None:
    """The case of `suite` with this id on these devices and grid, or None."""
    for case in expand(suite, devices=devices, quick=quick):
        if case.id == case_id:
            return case
    return None


def version_hash(workload: Workload, impl: Impl) -> str:
    """Short hash of what defines a case's meaning: the code of its workload and impl, and grids.

    A changed hash means earlier timings of that case are not comparable (as asv's `version`).
    Timing priors (`call_estimate_s`), cost models (`Workload.cost`), descriptions and
    `Impl.expected_invalid` are not part of it.
    """
    parts = [
        workload.name,
        impl.name,
        repr(workload.dtypes),
        repr(workload.phases),
        repr(workload.flush_l2),
        workload.kind,
        repr(workload.convergence),
    ]
    for fn in (
        workload.make_inputs,
        workload.reference,
        workload.validate,
        workload.bind,
        impl.fn,
        impl.when,
        impl.prepare,
    ):
        parts.append(_source_of(fn))
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]


def _source_of(fn: object) -> str:
    if fn is None:
        return "-"
    target = getattr(fn, "func", fn)  # functools.partial
    try:
        return inspect.getsource(target)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return (
            f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', repr(target))}"
        )


def check_suite(suite: object, origin: str) -> Suite:
    """Reject malformed declarations at load time with one clear line naming the place."""
    if not isinstance(suite, Suite):
        raise SuiteError(
            f"{origin}: SUITE must be an eigenbench.spec.Suite, got {type(suite).__name__}"
        )
    _check_name(suite.name, f"{origin}: SUITE.name")
    _check_sequence(suite.workloads, f"{origin}: suite {suite.name!r}: workloads")
    if not suite.workloads:
        raise SuiteError(f"{origin}: suite {suite.name!r} declares no workloads")
    seen_ids: set[str] = set()
    for w in suite.workloads:
        if not isinstance(w, Workload):
            raise SuiteError(
                f"{origin}: suite {suite.name!r}: workloads must be eigenbench.spec.Workload, "
                f"got {type(w).__name__}"
            )
        where = f"{origin}: workload {w.name!r}"
        _check_workload(w, where)
        for device in DEVICES:
            for quick in (True, False):
                try:
                    cases = expand(Suite(suite.name, (w,)), devices=[device], quick=quick)
                except SuiteError as exc:
                    raise SuiteError(f"{origin}: {exc}") from None
                for case in cases:
                    key = f"{quick}:{case.id}"
                    if key in seen_ids:
                        raise SuiteError(f"{where}: duplicate case id {case.id!r}")
                    seen_ids.add(key)
    return suite


def _check_name(name: object, where: str) -> None:
    """A name that can be part of a case id and a file name."""
    if not isinstance(name, str):
        raise SuiteError(f"{where}: must be a string, got {type(name).__name__} {name!r}")
    if not name.strip() or len(name) > MAX_NAME_CHARS:
        raise SuiteError(
            f"{where}: must be 1 to {MAX_NAME_CHARS} characters, got {len(name)}: {name[:40]!r}"
        )
    if "/" in name or not name.isprintable():
        raise SuiteError(f"{where}: must not hold '/' or control characters, got {name!r}")


def _check_sequence(value: object, where: str) -> None:
    """A tuple or list (a lone item or a string is a common slip)."""
    if not isinstance(value, (tuple, list)):
        raise SuiteError(f"{where}: must be a tuple or list, got {type(value).__name__}")


def _check_shape(w: Workload, where: str) -> None:
    """Its name, and tuples where tuples are meant."""
    _check_name(w.name, f"{where}: name")
    for label in ("impls", "dtypes", "phases"):
        _check_sequence(getattr(w, label), f"{where}: {label}")
    for phase in w.phases:
        _check_name(phase, f"{where}: phase")


def _check_workload(w: Workload, where: str) -> None:
    if not isinstance(w, Workload):
        raise SuiteError(f"{where}: expected an eigenbench.spec.Workload, got {type(w).__name__}")
    _check_shape(w, where)
    if w.kind not in KINDS:
        raise SuiteError(f"{where}: kind must be one of {KINDS}, got {w.kind!r}")
    if w.kind == "convergence" and not isinstance(w.convergence, Convergence):
        raise SuiteError(f"{where}: a convergence workload needs convergence=Convergence(...)")
    if not w.impls:
        raise SuiteError(f"{where}: declares no impls")
    for label, g in (("grid", w.grid), ("quick_grid", w.quick_grid), ("gpu_grid", w.gpu_grid)):
        if g is None and label == "gpu_grid":
            continue
        _check_grid(g, f"{where}: {label}")
    for dtype in w.dtypes:
        if dtype not in DTYPES:
            raise SuiteError(f"{where}: dtype must be one of {DTYPES}, got {dtype!r}")
    _check_impls(w, where)
    for label in ("make_inputs", "reference", "validate", "bind"):
        if not callable(getattr(w, label)):
            raise SuiteError(f"{where}: {label} is not callable")
    _check_estimate(w.call_estimate_s, where)
    if w.cost is not None and not callable(w.cost):
        raise SuiteError(
            f"{where}: cost must be callable (params, dtype) -> Cost or None, "
            f"got {type(w.cost).__name__}"
        )


def _check_impls(w: Workload, where: str) -> None:
    names = [i.name for i in w.impls]
    for impl in w.impls:
        _check_impl(impl, names, where)
    if w.reference_impl is not None and w.reference_impl not in names:
        raise SuiteError(
            f"{where}: reference_impl {w.reference_impl!r} is not one of its impls {names}"
        )


def _check_estimate(estimate: object, where: str) -> None:
    if estimate is not None and not callable(estimate):
        raise SuiteError(
            f"{where}: call_estimate_s must be callable (params, device, dtype) -> seconds "
            f"or None, got {type(estimate).__name__}"
        )


def _check_impl(impl: Impl, names: list[str], where: str) -> None:
    if not isinstance(impl, Impl):
        raise SuiteError(f"{where}: impls must be eigenbench.spec.Impl, got {type(impl).__name__}")
    _check_name(impl.name, f"{where}: impl name")
    if not isinstance(impl.devices, (frozenset, set, tuple, list)):
        raise SuiteError(
            f"{where}: impl {impl.name!r}: devices must be a set of names, "
            f"got {type(impl.devices).__name__}"
        )
    if impl.when is not None and not callable(impl.when):
        raise SuiteError(f"{where}: impl {impl.name!r}: when is not callable")
    if names.count(impl.name) > 1:
        raise SuiteError(f"{where}: impl name {impl.name!r} is used twice")
    if not callable(impl.fn):
        raise SuiteError(f"{where}: impl {impl.name!r}: fn is not callable")
    bad = set(impl.devices) - set(DEVICES)
    if bad or not impl.devices:
        raise SuiteError(
            f"{where}: impl {impl.name!r}: devices must be a non-empty subset "
            f"of {DEVICES}, got {sorted(impl.devices)}"
        )
    _check_estimate(impl.call_estimate_s, f"{where}: impl {impl.name!r}")
    why = impl.expected_invalid
    if why is not None and (not isinstance(why, str) or not why.strip()):
        raise SuiteError(
            f"{where}: impl {impl.name!r}: expected_invalid must be a non-empty reason or None, "
            f"got {why!r}"
        )


def _check_grid(grid: object, where: str) -> None:
    """A mapping of name → list of values, or a list of points (mappings); finite numbers."""
    _check_grid_shape(grid, where)
    points = expand_grid(grid)  # type: ignore[arg-type]
    if not points:
        raise SuiteError(f"{where}: is empty")
    for point in points:
        for k, v in point.items():
            if not isinstance(k, str):
                raise SuiteError(f"{where}: param names must be strings, got {k!r}")
            if not isinstance(v, (int, float, str, bool)):
                raise SuiteError(
                    f"{where}: param {k!r} must be int, float, str or bool, got {type(v).__name__}"
                )
            if isinstance(v, float) and not math.isfinite(v):
                raise SuiteError(f"{where}: param {k!r} must be a finite number, got {v}")


def _check_grid_shape(grid: object, where: str) -> None:
    if isinstance(grid, Mapping):
        for k, values in grid.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise SuiteError(
                    f"{where}: param {k!r} must map to a list of values, "
                    f"got {type(values).__name__}"
                )
    elif isinstance(grid, (tuple, list)):
        for point in grid:
            if not isinstance(point, Mapping):
                raise SuiteError(
                    f"{where}: a list grid holds points (mappings of name → value), "
                    f"got {type(point).__name__}"
                )
    else:
        raise SuiteError(
            f"{where}: must be a mapping of name → values or a list of points, "
            f"got {type(grid).__name__}"
        )


def describe_suite(s: Suite) -> dict[str, Any]:
    """A suite's declarations as plain data (`eigenbench list --json`)."""
    return {
        "name": s.name,
        "description": s.description,
        "workloads": [
            {
                "name": w.name,
                "kind": w.kind,
                "impls": [
                    {"name": i.name, "devices": sorted(i.devices), "requires": list(i.requires)}
                    for i in w.impls
                ],
                "dtypes": list(w.dtypes),
                "phases": list(w.phases),
                "grid": expand_grid(w.grid),
                "quick_grid": expand_grid(w.quick_grid),
                "gpu_grid": expand_grid(w.gpu_grid) if w.gpu_grid is not None else None,
            }
            for w in s.workloads
        ],
    }
