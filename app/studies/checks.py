"""Checks of a study against its case, all before any member runs.

- the case loads with the study's overrides;
- every parameter path is a value of the case (setting it changes that value and adds nothing
  else), and the case accepts every value of a list, the bounds of a bounded distribution and
  the 1e-6 and 1 - 1e-6 quantiles of an unbounded one;
- every quantity reads a column that a run of the case writes: the simulation is built on this
  rank alone, without compiling or solving, and asked for its columns;
- what the method needs (distributions for polynomial chaos and calibration priors, a transient
  case for quantities over time, the measured data).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.case import LoadedCase, load_case
from app.errors import CaseError, did_you_mean, listing
from app.studies.design import from_unit, member_overrides
from app.studies.spec import ParameterSpec, QuantitySpec, StudySpec

# Where an unbounded distribution is checked.
EXTREME = 1e-6
OVER_TIME = {
    "integral": "time integral",
    "crossing": "crossing time",
    "at": "value at a time",
    "end_time": "end time",
}


@dataclass
class CaseFacts:
    """What the study learned about its case."""

    path: Path
    columns: list[str]
    start: float
    end: float | None
    transient: bool
    output_times: list[float]


def case_path(spec: StudySpec, study_dir: Path) -> Path:
    path = (study_dir / spec.case).resolve()
    if not path.is_file():
        raise CaseError(
            "case", f"case file '{path}' not found", "the path is relative to the study file"
        )
    return path


def check_study(spec: StudySpec, study_dir: Path) -> CaseFacts:
    """Check the study against its case (see the module docstring); raise CaseError."""
    from mpi4py import MPI

    from app.simulation import Simulation

    path = case_path(spec, study_dir)
    base = _base_case(spec, path)
    typical = {name: _typical(parameter) for name, parameter in spec.parameters.items()}
    for name, parameter in spec.parameters.items():
        _check_path(spec, name, path, base, typical)
        for label, value in _extremes(parameter):
            _check_value(spec, name, path, typical | {name: value}, label)
    _check_method(spec)
    simulation = Simulation(load_case(path, member_overrides(spec, typical)), MPI.COMM_SELF)
    simulation.build()
    time = simulation.case.time
    facts = CaseFacts(
        path, simulation.columns, time.start, time.end, time.transient, base.case.output.times
    )
    for name, quantity in spec.quantities.items():
        check_quantity(quantity, facts, f"quantities.{name}")
    return facts


def _base_case(spec: StudySpec, path: Path) -> LoadedCase:
    try:
        return load_case(path, spec.overrides)
    except CaseError as exc:
        overridden = next((key for key in spec.overrides if _within(exc.path, key)), None)
        where = f"overrides.{overridden}" if overridden else "case"
        raise CaseError(where, f"{path.name}: {exc}") from None


def _within(path: str, key: str) -> bool:
    return path == key or path.startswith(f"{key}.") or key.startswith(f"{path}.")


def _typical(parameter: ParameterSpec) -> Any:
    """A value inside the parameter's range: the median, or the first of a list."""
    return (
        from_unit(parameter, np.array([0.5]))[0]
        if parameter.values is None
        else parameter.values[0]
    )


def _check_path(
    spec: StudySpec, name: str, path: Path, base: LoadedCase, typical: dict[str, Any]
) -> None:
    """Setting the path must change that value of the case and nothing else."""
    where, target = f"parameters.{name}", spec.path_of(name)
    try:
        loaded = load_case(path, member_overrides(spec, typical))
    except CaseError as exc:
        raise CaseError(where, f"'{target}' cannot be set: {_inner(exc)}", exc.fix) from None
    changed = [key for key in base.differences(loaded) if key != target]
    other_paths = {spec.path_of(other) for other in spec.parameters}
    # a constant of the parameter set changes, as it should, each value written as it
    constants = {p.removeprefix("parameters.") for p in other_paths if p.startswith("parameters.")}
    outside = [
        key
        for key in changed
        if not any(key == p or key.startswith(f"{p}.") for p in other_paths)
        and not _reads_constant(base, key, constants)
    ]
    if outside or (not changed and not _exists(base, target)):
        added = outside[0] if outside else target
        raise CaseError(
            where,
            f"'{target}' is not a value of the case: setting it adds '{added}'"
            f"{_nearest(base.resolved(), target)}",
            "give the dotted path of a value the case has (scalebridge check and modules list "
            "them), or create it first in [overrides]",
        )


def _reads_constant(loaded: LoadedCase, path: str, constants: set[str]) -> bool:
    """Whether the case file writes the value at ``path`` with one of these set constants
    (``transference = "t_plus"``, resolved to the constant's number)."""
    node: Any = loaded.raw
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return isinstance(node, str) and bool(set(re.findall(r"[A-Za-z_]\w*", node)) & constants)


def _exists(loaded: LoadedCase, path: str) -> bool:
    for data in (loaded.raw, loaded.resolved()):
        node: Any = data
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None:
            return True
    return False


def _nearest(data: Mapping[str, Any], path: str) -> str:
    """ "; under 'physics' there are: heat (did you mean ...)" for the first missing key."""
    node: Any = data
    parts = path.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, Mapping) or part not in node:
            if not isinstance(node, Mapping):
                return ""
            under = ".".join(parts[:depth]) or "the case"
            return f"{did_you_mean(part, node)}; under '{under}' there are: {listing(node)}"
        node = node[part]
    return ""


def _inner(exc: CaseError) -> str:
    """A case error without its fix, to quote inside a study error."""
    return f"{exc.path}: {exc.problem}" if exc.path else exc.problem


def _extremes(parameter: ParameterSpec) -> list[tuple[str, Any]]:
    """Every value of a list; the ends of a bounded distribution; the 1e-6 and 1 - 1e-6
    quantiles of an unbounded one (as far out as any sampler goes in practice)."""
    if parameter.values is not None:
        return [(f"value {index}", value) for index, value in enumerate(parameter.values)]
    if parameter.bounded:
        low, high = from_unit(parameter, np.array([0.0, 1.0]))
        return [("the lower bound", low), ("the upper bound", high)]
    low, high = from_unit(parameter, np.array([EXTREME, 1 - EXTREME]))
    return [(f"the {EXTREME:g} quantile", low), (f"the 1 - {EXTREME:g} quantile", high)]


def _check_value(
    spec: StudySpec, name: str, path: Path, values: dict[str, Any], label: str
) -> None:
    try:
        load_case(path, member_overrides(spec, values))
    except CaseError as exc:
        raise CaseError(
            f"parameters.{name}",
            f"{label}, {values[name]!r}, is not accepted by the case: {_inner(exc)}",
            "keep the distribution (or the values) inside the parameter's valid range; "
            "truncated_normal or lognormal keep a positive value positive",
        ) from None


def _check_method(spec: StudySpec) -> None:
    method = spec.method
    if method.type in ("polynomial_chaos", "calibration"):
        for name, parameter in spec.parameters.items():
            if parameter.values is not None:
                raise CaseError(
                    f"parameters.{name}",
                    f"{method.type.replace('_', ' ')} needs a distribution, not a list of values",
                )
    if method.type == "calibration":
        if spec.quantities:
            raise CaseError(
                "quantities", "a calibration compares method.column with the data; remove them"
            )
        if method.walkers < 2 * len(spec.parameters):
            raise CaseError(
                "method.walkers",
                f"emcee needs at least twice as many walkers as parameters "
                f"({2 * len(spec.parameters)}), got {method.walkers}",
            )
    elif not spec.quantities:
        raise CaseError("quantities", "no quantities given", "add a [quantities.<name>] table")


def check_quantity(quantity: QuantitySpec, facts: CaseFacts, where: str) -> None:
    """The column exists and the reduction makes sense for the case's time span."""
    if quantity.column is not None and quantity.column not in facts.columns:
        raise CaseError(
            f"{where}.column",
            f"no run of the case writes a column '{quantity.column}'"
            f"{did_you_mean(quantity.column, facts.columns)}; columns: {listing(facts.columns)}",
        )
    if quantity.reduce in OVER_TIME and not facts.transient:
        raise CaseError(
            f"{where}.reduce",
            f"the case is steady (one row per run), so it has no {OVER_TIME[quantity.reduce]}",
            "use reduce = 'final'",
        )
    if (
        quantity.reduce == "at"
        and facts.end is not None
        and not (facts.start <= quantity.time <= facts.end)
    ):
        raise CaseError(
            f"{where}.time",
            f"{quantity.time:g} s is outside the run, {facts.start:g} s to {facts.end:g} s",
        )


def check_data(column: str, times: np.ndarray, facts: CaseFacts) -> None:
    """Measured times lie within a transient run that writes the measured column."""
    if not facts.transient:
        raise CaseError("case", "a calibration against data over time needs a transient case")
    check_quantity(QuantitySpec(column=column), facts, "method")
    end = facts.end if facts.end is not None else np.inf
    outside = times[(times < facts.start) | (times > end)]
    if outside.size:
        raise CaseError(
            "method.data",
            f"measured time {outside[0]:g} s is outside the run, {facts.start:g} s to {end:g} s",
        )
