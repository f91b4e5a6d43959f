"""Quantities a case defines from other quantities: ``[output.quantities]``.

A plug-in reports what it knows (the current through a boundary per unit area, a potential at
a probe); what a user reads off a device is often a combination of those, or their running
integral in time. A case names them, with their units::

    [output.quantities]
    voltage = { value = "p_right_phi_s_V - p_left_phi_s_V", units = "V" }
    current = { value = "solid_current_right_A_per_m2*A_cc", units = "A" }
    discharge_capacity = { integral = "current_A", units = "A*h" }

``value`` is an expression of quantities.csv columns (plug-in quantities, point probes and
earlier entries of this table) and of the parameter set's constants, in SI; ``integral`` is the
running integral in time of one column from the start of the run (the trapezoidal rule over the
accepted steps). Columns enter an expression in SI (``discharge_capacity_Ah`` as coulombs), so
they combine with the set's constants whatever units each was written in. Each becomes a column
``<name>_<units>`` (``voltage_V``, ``discharge_capacity_Ah``) that events, protocols (``until
2.5 V`` with ``monitor = "voltage_V"``) and studies read like any other. The units are
checked: the expression's units (from its columns' and constants' units) must convert to the
declared ones, and the value is written in them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pint
from pydantic import Field, model_validator

from app.contracts import Parameters
from app.errors import CaseError, did_you_mean, listing
from app.expressions import Expression, ExpressionError, parse
from app.units import parse_units, registry


class QuantitySpec(Parameters):
    """A quantity computed from other quantities."""

    value: str | None = Field(None, description="Expression of columns and set constants (SI)")
    integral: str | None = Field(None, description="Column whose running time integral it is")
    units: str = Field("dimensionless", description="Units of the result")
    description: str = Field("", description="One line for the CSV's readers")

    @model_validator(mode="after")
    def _one_definition(self) -> QuantitySpec:
        if (self.value is None) == (self.integral is None):
            raise ValueError("give either value (an expression) or integral (a column name)")
        try:
            parse_units(self.units)
        except Exception as exc:  # pint's own errors are many; the message says what
            raise ValueError(f"units {self.units!r}: {exc}") from None
        return self


@dataclass
class _Defined:
    column: str
    spec: QuantitySpec
    expression: Expression | None
    factor: float  # SI value -> value in the declared units
    integral: float = 0.0  # of the committed steps
    before: tuple[float, float] | None = None  # (time, integrand) at the last commit


class CaseQuantities:
    """The case's ``[output.quantities]``, resolved against the run's columns.

    Args:
        specs: The table, by name.
        units: Units of every column the run writes before these.
        constants: The parameter set's constants by name (SI values, units), or None.
        column: The function naming a column from a name and units.

    Raises:
        CaseError: At ``output.quantities.<name>``: an unknown column or name, units that do
            not convert, a column defined twice.
    """

    def __init__(
        self,
        specs: Mapping[str, QuantitySpec],
        units: Mapping[str, str],
        constants: Any,
        column: Callable[[str, str], str],
    ):
        self._table = constants  # read at each evaluation: a protocol may set a constant
        constants = {} if constants is None else constants.constants
        known = dict(units)
        self.defined: list[_Defined] = []
        for name, spec in specs.items():
            where = f"output.quantities.{name}"
            key = column(name, spec.units)
            if key in known:
                raise CaseError(where, f"the column '{key}' is already written", "rename it")
            if spec.integral is not None:
                given = _column_units(spec.integral, known, where)
                result = _si_unit(given) * registry().second
                expression = None
            else:
                expression = _parsed(spec.value, where)
                result = _units_of(expression, known, constants, where)
            factor = _conversion(result, spec.units, where)
            self.defined.append(_Defined(key, spec, expression, factor))
            known[key] = spec.units
        self.units = {d.column: d.spec.units for d in self.defined}
        self._to_si = {name: _si_factor(units) for name, units in known.items()}

    @property
    def columns(self) -> list[str]:
        return [d.column for d in self.defined]

    def needs(self) -> set[str]:
        """Columns (of plug-ins and probes) the definitions read."""
        read = set()
        for d in self.defined:
            read |= {d.spec.integral} if d.expression is None else set(d.expression.names)
        constants = set() if self._table is None else set(self._table.constants)
        return read - constants - set(self.columns)

    def evaluate(self, values: Mapping[str, float], time: float) -> dict[str, float]:
        """Every defined column at ``time``, from the values of the columns they read."""
        known = {name: value * self._to_si[name] for name, value in values.items()}
        results = {}
        for d in self.defined:
            if d.expression is None:
                value = self._running(d, known[d.spec.integral], time)
            else:
                env = {**(self._table.values() if self._table else {}), **known}
                value = d.factor * float(d.expression.evaluate(env))
            results[d.column] = value
            known[d.column] = value * self._to_si[d.column]
        return results

    def _running(self, d: _Defined, integrand: float, time: float) -> float:
        if d.before is None:
            return d.factor * d.integral
        start, earlier = d.before
        return d.factor * (d.integral + 0.5 * (earlier + integrand) * (time - start))

    def commit(self, values: Mapping[str, float], time: float) -> None:
        """Take the state at ``time`` (after an accepted step, or the start) into the running
        integrals."""
        known = dict(values) | self.evaluate(values, time)
        for d in self.defined:
            if d.expression is None:
                integrand = known[d.spec.integral] * self._to_si[d.spec.integral]
                if d.before is not None:
                    start, earlier = d.before
                    d.integral += 0.5 * (earlier + integrand) * (time - start)
                d.before = (time, integrand)

    def reset(self) -> None:
        for d in self.defined:
            d.integral, d.before = 0.0, None


def _parsed(text: str, where: str) -> Expression:
    try:
        return parse(text)
    except ExpressionError as exc:
        raise CaseError(f"{where}.value", str(exc)) from None


def _column_units(name: str, known: Mapping[str, str], where: str) -> str:
    if name not in known:
        raise CaseError(
            f"{where}.integral",
            f"unknown column '{name}'{did_you_mean(name, known)}",
            f"columns: {listing(known)}",
        )
    return known[name]


def _units_of(
    expression: Expression,
    known: Mapping[str, str],
    constants: Mapping[str, Any],
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
            names = [*known, *constants]
            raise CaseError(
                f"{where}.value",
                f"unknown name '{name}'{did_you_mean(name, names)}",
                f"use quantities.csv columns ({listing(known)}) or the parameter set's constants",
            )
    try:
        result = expression.combine(env)
    except (pint.DimensionalityError, ValueError, TypeError) as exc:
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
            f"the value is in {units:~} [{units.dimensionality}], which does not convert to "
            f"{declared}",
            "declare the units of the value",
        ) from None
