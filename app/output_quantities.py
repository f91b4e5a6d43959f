"""Quantities a case defines itself: ``[output.quantities]``.

Plug-ins report what they know (amounts, flows, reactions, a potential at a probe); a case often
needs numbers of its own. One table names them, each of one of two kinds::

    [output.quantities]
    packet_mineral = { value = "HA", over = "packets" }                  # mean over a region
    axial_stiffness = { value = "stress_xx", per = "strain_xx", units = "Pa" }
    mineral_volume = { value = "HA", integral = true, units = "m^2" }   # per unit depth in 2D
    top_pressure = { value = "-stress_yy", over = "top", units = "Pa" }  # mean over a boundary
    voltage = { value = "p_right_phi_s_V - p_left_phi_s_V", units = "V" }
    current = { value = "solid_current_right_A_per_m2*A_cc", units = "A" }
    discharge_capacity = { time_integral = "current_A", units = "Ah" }
    centre_half_cured = { first_crossing = "centre_degree_of_cure", at = 0.5, units = "min" }
    peak_overshoot = { maximum = "overshoot_K", units = "K" }

**Of fields** (the value reads a field or x, y, z, t; or ``over``, ``per`` or ``integral`` is
given): the integral of ``value`` over ``over`` (the whole mesh by default; a region, or a
boundary) divided by the integral of ``per`` (default 1, so the mean), or with
``integral = true`` the integral itself. Expressions read x, y, z, t, scalar fields by name and
components of vector and tensor fields as ``<field>_<component>`` (``displacement_x``,
``stress_xy``), as probe columns name them. They are integrated at the highest quadrature degree
of the case's groups, evaluated at every output time like the plug-ins' quantities.

**Of columns** (the value reads only quantities.csv columns -- plug-ins' quantities, probes,
the quantities of fields and earlier column quantities -- and the parameter set's constants):
the expression's value, or with ``time_integral = "<column>"`` the running integral in time of
one column from the start of the run (the trapezoidal rule over the accepted steps; a protocol
step's jump counts from its new value); with ``first_crossing = "<column>"`` and ``at`` (in the
column's units, or with units: "400 K") the first time the column reaches ``at`` from either
side, interpolated linearly within the step (NaN until then); with ``maximum`` or ``minimum``
the column's extreme over the accepted steps so far. Columns enter in SI
(``discharge_capacity_Ah`` as coulombs), so they combine with the set's constants whatever
units each was written in; the units are checked: the expression's must convert to the
declared ones.

``units`` are those of the result, which the column name carries (``axial_stiffness_Pa``,
``discharge_capacity_Ah``); expressions are in SI. Events, protocols (``monitor =
"voltage_V"``), step limits and studies read every one of them like any other column.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pint
import ufl

from app.contracts import Quantity
from app.errors import CaseError, did_you_mean, listing
from app.expressions import Expression, ExpressionError, parse
from app.fields import FieldStore
from app.forms import with_degree
from app.meshing import MeshData
from app.output_quantity_spec import OutputQuantity
from app.units import parse_units, registry, to_si

AXES = "xyz"


def of_fields(
    specs: Mapping[str, OutputQuantity], names: Mapping[str, Any]
) -> tuple[dict[str, OutputQuantity], dict[str, OutputQuantity]]:
    """(quantities of fields, quantities of columns): a quantity is of fields when it is
    integrated (over, per, integral) or its value reads a name of ``names`` (fields, x, y, z,
    t); the others read columns and constants."""
    fields, columns = {}, {}
    for name, spec in specs.items():
        integrated = spec.over is not None or spec.per is not None or spec.integral
        reads = spec.value is not None and any(n in names for n in parse(spec.value).names)
        (fields if integrated or reads else columns)[name] = spec
    return fields, columns


def namespace(store: FieldStore, t: Any) -> dict[str, Any]:
    """What the expressions may read: coordinates, t, the fields of the whole mesh (scalars by
    name, components as ``<field>_<component>``)."""
    mesh = store.mesh
    names: dict[str, Any] = dict(zip(AXES, ufl.SpatialCoordinate(mesh), strict=False))
    names["t"] = t
    for field in store:
        if field.space.mesh is not mesh or field.is_global:
            continue  # fields of a region or boundary mesh: not integrable over the parent
        u, shape = field.function, field.function.ufl_shape
        if not shape:
            names[field.spec.name] = u
        elif len(shape) == 1:
            names |= {f"{field.spec.name}_{AXES[i]}": u[i] for i in range(shape[0])}
        else:
            names |= {
                f"{field.spec.name}_{AXES[i]}{AXES[j]}": u[i, j]
                for i in range(shape[0])
                for j in range(shape[1])
            }
    return names


def build(
    specs: Mapping[str, OutputQuantity],
    store: FieldStore,
    mesh_data: MeshData,
    t: Any,
    degree: int,
) -> dict[str, Quantity]:
    """The case's quantities by name, as UFL.

    Raises:
        CaseError: An unknown name in an expression, an unknown place, or a point set.
    """
    names = namespace(store, t)
    quantities = {}
    for name, spec in specs.items():
        where = f"output.quantities.{name}"
        measure, interior = _measure(spec.over, store, mesh_data, f"{where}.over")
        value = _ufl(spec.value, names, f"{where}.value", interior)
        description = f"{'integral' if spec.integral else 'mean'} of {spec.value}"
        form = with_degree(value * measure, degree)
        if spec.integral:
            quantities[name] = Quantity.integral(form, spec.units, description)
            continue
        per = ufl.as_ufl(1.0)
        if spec.per is not None:
            per = _ufl(spec.per, names, f"{where}.per", interior)
            description = f"int {spec.value} / int {spec.per}"
        quantities[name] = Quantity.ratio(
            form, with_degree(per * measure, degree), spec.units, description
        )
    return quantities


def _ufl(text: str, names: Mapping[str, Any], where: str, interior: bool) -> Any:
    """The expression as UFL; on an interior boundary the mean of its two sides."""
    expression = parse(text)
    missing = next((n for n in sorted(expression.names) if n not in names), None)
    if missing is not None:
        raise CaseError(
            where,
            f"unknown name '{missing}'{did_you_mean(missing, names)} in {text!r}; quantities "
            f"read {listing(sorted(names))}",
        )
    try:
        value = ufl.as_ufl(expression.to_ufl(names))
    except ExpressionError as exc:
        raise CaseError(where, str(exc)) from None
    return ufl.avg(value) if interior else value


def _measure(
    over: str | None, store: FieldStore, mesh_data: MeshData, where: str
) -> tuple[Any, bool]:
    """The measure of a place (the mesh's shared measures, app/measures.py), and whether it is
    an interior boundary (an interface)."""
    measures = store.domains.measures(mesh_data)
    if over is None:
        return ufl.Measure("dx", domain=mesh_data.mesh), False
    if over in mesh_data.regions:
        return measures.dx(mesh_data.regions[over]), False
    if over in mesh_data.interior_boundaries:
        return measures.dS(mesh_data.boundaries[over]), True
    if over in mesh_data.boundaries:
        return measures.ds(over), False
    places = [*mesh_data.regions, *mesh_data.boundaries]
    raise CaseError(
        where,
        f"unknown region or boundary '{over}'{did_you_mean(over, places)}; places here: "
        f"{listing(places)}",
        "a quantity is integrated over a region or a boundary (point and edge sets have no "
        "measure)",
    )


@dataclass
class _Defined:
    column: str
    spec: OutputQuantity
    expression: Expression | None
    factor: float  # SI value -> value in the declared units
    threshold: float = 0.0  # of first_crossing, SI
    # of the committed steps: the integral, the extreme or the crossing time (None: not yet)
    integral: float | None = 0.0
    before: tuple[float, float] | None = None  # (time, SI value of the column) at the last commit
    place: str = ""  # in the case file

    @property
    def source(self) -> str | None:
        """The column a quantity of history reads."""
        return self.spec.history[1] if self.spec.history else None

    def initial(self) -> float | None:
        return 0.0 if self.spec.time_integral else None


class ColumnQuantities:
    """The case's quantities of columns, resolved against the run's columns.

    Args:
        specs: The table, by name.
        units: Units of every column the run writes before these.
        constants: The parameter set's constants by name (SI values, units), or None.
        column: The function naming a column from a name and units.
        fields: What quantities of fields read (for the message about an unknown name).

    Raises:
        CaseError: At ``output.quantities.<name>``: an unknown column or name, units that do
            not convert, a column defined twice.
    """

    def __init__(
        self,
        specs: Mapping[str, OutputQuantity],
        units: Mapping[str, str],
        constants: Any,
        column: Callable[[str, str], str],
        fields: Sequence[str] = (),
    ):
        self._table = constants  # read at each evaluation: a protocol may set a constant
        constants = {} if constants is None else constants.constants
        known = dict(units)
        self.defined: list[_Defined] = []
        columns = {column(name, spec.units): name for name, spec in specs.items()}
        for name, spec in specs.items():
            where = f"output.quantities.{name}"
            key = column(name, spec.units)
            if key in known:
                raise CaseError(where, f"the column '{key}' is already written", "rename it")
            threshold, expression = 0.0, None
            if spec.history is not None:
                kind, source = spec.history
                _reads_defined_before({source} - known.keys(), columns, name, f"{where}.{kind}")
                given = _column_units(source, known, where, kind)
                result = {
                    "time_integral": _si_unit(given) * registry().second,
                    "first_crossing": registry().Quantity(1.0, "s"),
                }.get(kind, _si_unit(given))
                if kind == "first_crossing":
                    threshold = to_si(spec.at, given, f"{where}.at") * _si_factor(given)
            else:
                expression = _parsed(spec.value, where)
                reads = expression.names - known.keys()
                _reads_defined_before(reads, columns, name, f"{where}.value")
                result = _units_of(expression, known, constants, fields, where)
            factor = _conversion(result, spec.units, where)
            defined = _Defined(key, spec, expression, factor, threshold, place=f"{where}.value")
            defined.integral = defined.initial()
            self.defined.append(defined)
            known[key] = spec.units
        self.units = {d.column: d.spec.units for d in self.defined}
        self._to_si = {name: _si_factor(units) for name, units in known.items()}

    @property
    def columns(self) -> list[str]:
        return [d.column for d in self.defined]

    def needs(self, columns: Iterable[str] | None = None) -> set[str]:
        """Columns (of plug-ins and probes) the definitions of ``columns`` (default: all) read,
        directly or through the defined columns they read."""
        read = set().union(*(_reads(d) for d in self._reached(columns)))
        constants = set() if self._table is None else set(self._table.constants)
        return read - constants - set(self.columns)

    def _reached(self, columns: Iterable[str] | None) -> list[_Defined]:
        """The definitions of ``columns`` and of the defined columns they read, in order (a
        definition reads only columns defined before it)."""
        if columns is None:
            return self.defined
        wanted = set(columns)
        for d in reversed(self.defined):
            if d.column in wanted:
                wanted |= _reads(d)
        return [d for d in self.defined if d.column in wanted]

    def evaluate(
        self, values: Mapping[str, float], time: float, columns: Iterable[str] | None = None
    ) -> dict[str, float]:
        """The defined ``columns`` (default: all) at ``time``, from the values of the columns
        they read (:meth:`needs`)."""
        known = {name: value * self._to_si[name] for name, value in values.items()}
        env = {**(self._table.values() if self._table else {}), **known}
        results = {}
        for d in self._reached(columns):
            if d.expression is None:
                value = self._running(d, known[d.source], time)
            else:
                try:
                    value = d.factor * float(d.expression.evaluate(env))
                except ExpressionError as exc:  # the columns reached a value it is not defined at
                    raise CaseError(
                        d.place,
                        f"{exc} at t = {time:g} s",
                        "guard it where it is undefined, e.g. 'a/b if b != 0 else 0'",
                    ) from None
            results[d.column] = value
            known[d.column] = env[d.column] = value * self._to_si[d.column]
        return results

    def _running(self, d: _Defined, value: float, time: float) -> float:
        """A quantity of history with the column at ``value`` (SI) at ``time``, in SI."""
        kind, accumulated = d.spec.history[0], d.integral
        if kind == "time_integral":
            if d.before is None:
                return d.factor * accumulated
            start, earlier = d.before
            return d.factor * (accumulated + 0.5 * (earlier + value) * (time - start))
        if kind == "first_crossing":
            return d.factor * _crossing(d.before, (time, value), d.threshold, accumulated)
        if accumulated is None:
            return d.factor * value
        return d.factor * (max if kind == "maximum" else min)(accumulated, value)

    def commit(self, values: Mapping[str, float], time: float) -> None:
        """Take the state at ``time`` (after an accepted step, or the start) into the running
        integrals, extremes and crossings."""
        results = self.evaluate(values, time)
        known = {name: value * self._to_si[name] for name, value in (values | results).items()}
        for d in self.defined:
            if d.expression is None:
                value = known[d.source]
                if d.spec.time_integral is None:  # the extreme or the crossing, SI
                    found = results[d.column] / d.factor
                    d.integral = None if found != found else found  # NaN: not crossed yet
                elif d.before is not None:
                    start, earlier = d.before
                    d.integral += 0.5 * (earlier + value) * (time - start)
                d.before = (time, value)

    def reset(self) -> None:
        for d in self.defined:
            d.integral, d.before = d.initial(), None

    def state(self) -> dict[str, Any]:
        """The running integrals' part of a checkpoint (app/checkpoint.py)."""
        return {d.column: [d.integral, d.before] for d in self.defined}

    def restore(self, state: dict[str, Any]) -> None:
        for d in self.defined:
            integral, before = state[d.column]
            d.integral, d.before = integral, None if before is None else tuple(before)


def _reads(d: _Defined) -> set[str]:  # columns and parameter-set constants
    return {d.source} if d.expression is None else set(d.expression.names)


def _parsed(text: str, where: str) -> Expression:
    try:
        return parse(text)
    except ExpressionError as exc:
        raise CaseError(f"{where}.value", str(exc)) from None


def _crossing(
    before: tuple[float, float] | None, now: tuple[float, float], at: float, found: float | None
) -> float:
    """The time a column first reaches ``at``: ``found`` if it did before, else within the
    step from ``before`` to ``now`` (linearly), else NaN."""
    if found is not None:
        return found
    time, value = now
    if before is None:
        return time if value == at else math.nan
    start, earlier = before
    if (earlier - at) * (value - at) > 0 or value == earlier:
        return math.nan
    return start + (at - earlier) / (value - earlier) * (time - start)


def _column_units(name: str, known: Mapping[str, str], where: str, kind: str) -> str:
    if name not in known:
        raise CaseError(
            f"{where}.{kind}",
            f"unknown column '{name}'{did_you_mean(name, known)}",
            f"columns: {listing(known)}",
        )
    return known[name]


def _reads_defined_before(
    reads: set[str], columns: Mapping[str, str], name: str, where: str
) -> None:
    """A quantity reads the columns defined above it: one of its own, or below it, would make
    a definition through itself (a = b + 1, b = a + 1) that has no value."""
    for read in sorted(reads & columns.keys()):
        source = columns[read]
        what = "this quantity itself" if source == name else f"defined below, by {source}"
        fix = f"move {source} above {name}, unless it reads {name}: then write one out"
        raise CaseError(
            where,
            f"'{read}' is {what}; a quantity reads the columns defined above it, so that none "
            "is defined through itself",
            "write the expression out" if source == name else fix,
        )


def _units_of(
    expression: Expression,
    known: Mapping[str, str],
    constants: Mapping[str, Any],
    fields: Sequence[str],
    where: str,
) -> pint.Quantity:
    """The SI units of an expression: evaluated on quantities of magnitude 1 in the SI units
    of each name (only the units of the result are kept)."""
    env: dict[str, Any] = {}
    for name in expression.names:
        if name in known:
            env[name] = _si_unit(known[name])
        elif name in constants:
            env[name] = _si_unit(constants[name].units)
        else:
            names = [*fields, *known, *constants]
            raise CaseError(
                f"{where}.value",
                f"unknown name '{name}'{did_you_mean(name, names)}",
                f"read fields and x, y, z, t ({listing(sorted(fields))}), quantities.csv "
                f"columns ({listing(known)}) or the parameter set's constants",
            )
    try:
        with warnings.catch_warnings():  # magnitudes of 1 may meet a 0 of the expression
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                result = expression.combine(env)
            except ZeroDivisionError:  # a difference of two names, (a - b)/(c - d): 1 - 1 = 0
                distinct = {
                    name: value * (1 + math.sqrt(2) * (i + 1))
                    for i, (name, value) in enumerate(env.items())
                }
                result = expression.combine(distinct)
    except (pint.DimensionalityError, ValueError, TypeError, ZeroDivisionError) as exc:
        raise CaseError(f"{where}.value", f"inconsistent units: {exc}") from None
    return result if isinstance(result, pint.Quantity) else registry().Quantity(result)


def _si_unit(units: str) -> pint.Quantity:
    """1 in the SI base units of ``units``."""
    base = registry().Quantity(1.0, parse_units(units)).to_base_units()
    return registry().Quantity(1.0, base.units)


def _si_factor(units: str) -> float:
    """A value in ``units`` -> its SI value."""
    return float(registry().Quantity(1.0, parse_units(units)).to_base_units().m)


def _conversion(result: Any, declared: str, where: str) -> float:
    """The factor from the SI value of ``result``'s units to the declared units."""
    units = result.units if isinstance(result, pint.Quantity) else registry().dimensionless
    try:
        return float(registry().Quantity(1.0, units).to_base_units().to(parse_units(declared)).m)
    except pint.DimensionalityError:
        raise CaseError(
            f"{where}.units",
            f"the value is in {f'{units:~}' or 'no units'} [{units.dimensionality}], which does "
            f"not convert to {declared}",
            "declare the units of the value",
        ) from None
