"""Resolving a case's ``[parameters]`` section into a :class:`~app.parameter_set.ParameterTable`.

The set file is read (:mod:`app.parameter_set`), the case's overrides replace single values or
function bodies, every name, unit and expression is checked, constants are evaluated (those
defined by expressions after what they use), and ``initial_soc``/``initial_voltage`` set the
initial concentrations through :mod:`app.state_of_charge`. Functions are parsed on first use, so
a function that calls itself, directly or through others, is found and refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import state_of_charge as soc
from app.errors import CaseError, did_you_mean, listing
from app.expressions import Expression, ExpressionError, Function, parse
from app.parameter_set import (
    CASE_KEYS,
    PHYSICAL,
    RESERVED,
    Constant,
    ConstantSpec,
    DefinedFunction,
    InitialState,
    ParameterTable,
    SetFile,
    locate,
    read_set_file,
    shipped,
)
from app.units import coherent, compatible, looks_like_quantity, parse_units, to_si


def resolve(section: Any, base_dir: Path) -> ParameterTable | None:
    """The parameter table of a case's ``[parameters]`` section (None without one).

    Raises:
        CaseError: An unknown set or name, a bad value, units or expression, functions that
            call themselves, an unreachable state of charge.
    """
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise CaseError("parameters", f"expected a table, got {section!r}")
    given = section.get("set")
    if not isinstance(given, str) or not given:
        shown = "missing" if given is None else f"got {given!r}"
        raise CaseError(
            "parameters.set",
            f"expected the name of a parameter set or the path of a set file, {shown}",
            f'e.g. set = "Chen2020" (shipped: {listing(shipped())})',
        )
    path = locate(given, base_dir)
    spec = read_set_file(path)
    builder = _Builder(path, spec, section)
    table = ParameterTable(
        spec.name,
        spec.description,
        spec.citation,
        path,
        builder.constants(),
        builder.functions(),
        overridden=builder.overridden,
        doi=spec.doi,
    )
    state = builder.state_of_charge_section(table)
    if "initial_soc" in section or "initial_voltage" in section:
        _initial_state(table, state, section)
    return table


class _Builder:
    """Resolves a set file with a case's overrides: names, units, expressions, recursion."""

    def __init__(self, path: Path, spec: SetFile, section: Mapping[str, Any]):
        self.path, self.spec = path, spec
        self.constant_specs, self.function_specs = dict(spec.constants), dict(spec.functions)
        self._check_names()
        self.overridden: list[str] = []
        for key, value in section.items():
            if key not in CASE_KEYS:
                self._override(str(key), value)
        self._done: dict[str, Function] = {}
        self._resolved: dict[str, Constant] = {
            name: Constant(value, units, text) for name, (value, units, text) in PHYSICAL.items()
        }
        self._stack: list[str] = []

    # Errors ---------------------------------------------------------------------------------
    def fail(self, kind: str, name: str, problem: str, fix: str | None = None) -> CaseError:
        """An error of a constant or function: at its override, or at its place in the file."""
        if name in self.overridden:
            return CaseError(f"parameters.{name}", problem, fix)
        key = "value" if kind == "constants" else "expression"
        return CaseError(
            "parameters.set", f"set file '{self.path}', {kind}.{name}.{key}: {problem}", fix
        )

    def _check_names(self) -> None:
        where = f"set file '{self.path}'"
        for kind, names in (("constants", self.constant_specs), ("functions", self.function_specs)):
            for name, item in names.items():
                if not name.isidentifier() or name.startswith("_") or name in RESERVED:
                    raise CaseError(
                        "parameters.set",
                        f"{where}, {kind}.{name}: not a usable name (letters, digits and "
                        f"underscores, not starting with '_', and not {listing(RESERVED)})",
                    )
                for units in (item.units, *getattr(item, "arguments", {}).values()):
                    self._check_units(f"{where}, {kind}.{name}", units)
        both = sorted(set(self.constant_specs) & set(self.function_specs))
        if both:
            raise CaseError("parameters.set", f"{where}: '{both[0]}' is a constant and a function")

    @staticmethod
    def _check_units(where: str, units: str) -> None:
        try:
            parse_units(units)
        except ValueError:
            raise CaseError("parameters.set", f"{where}: unknown unit '{units}'") from None
        if not coherent(units):
            raise CaseError(
                "parameters.set",
                f"{where}: '{units}' is not an SI unit (expressions compute in SI)",
                'declare the SI unit and give the value with its own ("5 A*h" in "C")',
            )

    def _override(self, name: str, value: Any) -> None:
        where = f"parameters.{name}"
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise CaseError(where, f"expected a number or a string, got {value!r}")
        if name in self.constant_specs:
            spec = self.constant_specs[name]
            self.constant_specs[name] = spec.model_copy(update={"value": value})
        elif name in self.function_specs:
            spec = self.function_specs[name]
            self.function_specs[name] = spec.model_copy(update={"expression": str(value)})
        else:
            known = [*self.constant_specs, *self.function_specs]
            raise CaseError(
                where,
                f"unknown parameter '{name}' of set {self.spec.name}{did_you_mean(name, known)}",
                f"override one of its names ({len(known)}, listed by `scalebridge check`) or "
                f"one of {', '.join(CASE_KEYS)}",
            )
        self.overridden.append(name)

    # Functions ------------------------------------------------------------------------------
    def functions(self) -> dict[str, DefinedFunction]:
        return {
            name: DefinedFunction(
                self.function(name), dict(spec.arguments), spec.units, spec.description
            )
            for name, spec in self.function_specs.items()
        }

    def function(self, name: str) -> Function:
        if name in self._done:
            return self._done[name]
        if name in self._stack:
            loop = " -> ".join([*self._stack[self._stack.index(name) :], name])
            raise self.fail(
                "functions", name, f"{name} calls itself ({loop})", "functions may not recurse"
            )
        spec = self.function_specs[name]
        self._stack.append(name)
        try:
            body = parse(spec.expression, _Lookup(self))
            body.check_names({*spec.arguments, *self.constant_specs, *PHYSICAL})
        except ExpressionError as exc:
            raise self.fail("functions", name, str(exc)) from None
        finally:
            self._stack.pop()
        local = dict(spec.arguments)
        self._check_calls(body, local, "functions", name)
        self._done[name] = Function(name, tuple(spec.arguments), body)
        return self._done[name]

    def _check_calls(self, body: Expression, local: Mapping[str, str], kind: str, name: str):
        """Bare names passed to functions must have the units the function expects."""
        for callee, given in body.calls:
            wanted = self.function_specs[callee].arguments
            for position, (argument, units) in enumerate(wanted.items()):
                written = given[position]
                have = local.get(written) or self._units(written)
                if have is not None and not compatible(have, units):
                    raise self.fail(
                        kind,
                        name,
                        f"argument {position + 1} of {callee}() is {argument} in {units}, "
                        f"but '{written}' is in {have}",
                    )

    def _units(self, name: str | None) -> str | None:
        if name in PHYSICAL:
            return PHYSICAL[name][1]
        spec = self.constant_specs.get(name) if name else None
        return spec.units if spec else None

    # Constants ------------------------------------------------------------------------------
    def constants(self) -> dict[str, Constant]:
        for name in self.constant_specs:
            self.constant(name)
        return self._resolved

    def constant(self, name: str) -> Constant:
        if name in self._resolved:
            return self._resolved[name]
        if name in self._stack:
            loop = " -> ".join([*self._stack[self._stack.index(name) :], name])
            raise self.fail("constants", name, f"{name} is defined by itself ({loop})")
        spec = self.constant_specs[name]
        self._stack.append(name)
        try:
            value, definition = self._value(name, spec)
        finally:
            self._stack.pop()
        if not math.isfinite(value):
            raise self.fail("constants", name, f"must be a finite number, got {value}")
        self._resolved[name] = Constant(value, spec.units, spec.description, definition)
        return self._resolved[name]

    def _value(self, name: str, spec: ConstantSpec) -> tuple[float, Expression | None]:
        raw = spec.value
        if isinstance(raw, int | float):
            return float(raw), None
        try:
            expression = parse(raw, _Lookup(self))
        except ExpressionError as exc:
            numbers_only = not re.search(r"[^\W\d_eE]", raw)  # no unit word: "1e308*1e308"
            if numbers_only or not looks_like_quantity(raw):
                raise self.fail("constants", name, str(exc)) from None
            try:
                return to_si(raw, spec.units, ""), None
            except CaseError as error:
                raise self.fail("constants", name, error.problem, error.fix) from None
        try:
            expression.check_names({*self.constant_specs, *PHYSICAL})
        except ExpressionError as exc:
            raise self.fail("constants", name, str(exc)) from None
        head = self._units(expression.head) or self.function_specs.get(expression.head or "")
        head = getattr(head, "units", head)
        if head is not None and not compatible(head, spec.units):
            raise self.fail(
                "constants", name, f"'{raw}' is in {head} but {name} is in {spec.units}"
            )
        self._check_calls(expression, {}, "constants", name)
        values = {other: self.constant(other).value for other in expression.names}
        try:
            value = float(expression.evaluate(values))
        except ExpressionError as exc:
            raise self.fail("constants", name, str(exc)) from None
        return value, expression if expression.names else None

    # State of charge ------------------------------------------------------------------------
    def state_of_charge_section(self, table: ParameterTable) -> _StateOfCharge | None:
        spec = self.spec.state_of_charge
        if spec is None:
            return None
        constants = {*table.constants}

        def read(place: str, text: str, local: set[str] = frozenset()) -> Expression:
            try:
                expression = parse(text, table.parsed_functions)
                expression.check_names(constants | local)
            except ExpressionError as exc:
                raise CaseError(
                    "parameters.set", f"set file '{self.path}', state_of_charge.{place}: {exc}"
                ) from None
            return expression

        electrodes = {}
        for side in ("negative", "positive"):
            electrode = getattr(spec, side)
            held = electrode.concentration
            if held not in table.constants or table.constants[held].definition is not None:
                raise CaseError(
                    "parameters.set",
                    f"set file '{self.path}', state_of_charge.{side}.concentration: "
                    f"'{held}' is not a constant of the set given by a value",
                )
            electrodes[side] = (
                read(f"{side}.ocp", electrode.ocp, {"theta", "T"}),
                read(f"{side}.capacity", electrode.capacity),
                held,
                read(f"{side}.maximum_concentration", electrode.maximum_concentration),
            )
        limits = [
            read(key, getattr(spec, key))
            for key in (
                "lower_voltage",
                "upper_voltage",
                "reference_temperature",
                "initial_temperature",
            )
        ]
        return _StateOfCharge(electrodes, *limits)


class _Lookup(Mapping[str, Function]):
    """The set's functions for :func:`parse`, resolved on first use (so loops are found)."""

    def __init__(self, builder: _Builder):
        self.builder = builder

    def __getitem__(self, name: str) -> Function:
        return self.builder.function(name)

    def __contains__(self, name: object) -> bool:
        return name in self.builder.function_specs

    def __iter__(self) -> Iterator[str]:
        return iter(self.builder.function_specs)

    def __len__(self) -> int:
        return len(self.builder.function_specs)


@dataclass
class _StateOfCharge:
    electrodes: dict[str, tuple[Expression, Expression, str, Expression]]
    lower_voltage: Expression
    upper_voltage: Expression
    reference_temperature: Expression
    initial_temperature: Expression


def _initial_state(table: ParameterTable, state: _StateOfCharge | None, section: Mapping) -> None:
    """Set the initial concentrations the case's initial_soc or initial_voltage asks for."""
    asked = [key for key in ("initial_soc", "initial_voltage") if key in section]
    where = f"parameters.{asked[0]}"
    if len(asked) > 1:
        raise CaseError(where, "give initial_soc or initial_voltage, not both")
    if state is None:
        raise CaseError(
            where,
            f"set {table.name} has no [state_of_charge] section, so it cannot set an initial "
            "state of charge",
            "give the initial concentrations in the case instead",
        )
    values = table.values()
    try:
        temperature = state.reference_temperature.evaluate(values)
        electrodes = {}
        potentials = {}
        for side, (ocp, capacity, held, maximum) in state.electrodes.items():
            c_max = maximum.evaluate(values)
            potentials[side] = ocp
            electrodes[side] = soc.Electrode(
                _at(ocp, values, temperature), capacity.evaluate(values), values[held] / c_max
            )
        window = soc.window(
            electrodes["negative"],
            electrodes["positive"],
            state.lower_voltage.evaluate(values),
            state.upper_voltage.evaluate(values),
        )
        if asked[0] == "initial_soc":
            target = to_si(section["initial_soc"], "dimensionless", where)
            if not 0 <= target <= 1:
                raise CaseError(where, f"a state of charge is in [0, 1], got {target:g}")
            fraction, text = target, f"SOC {target:g}"
        else:
            target = to_si(section["initial_voltage"], "V", where)
            initial = state.initial_temperature.evaluate(values)
            negative, positive = (_at(potentials[s], values, initial) for s in potentials)
            fraction = soc.soc_at_voltage(window, negative, positive, target)
            text = f"voltage {target:g} V"
    except (ExpressionError, soc.StateOfChargeError) as exc:
        raise CaseError(where, f"set {table.name}: {exc}") from None
    x, y = window.at(fraction)
    for side, theta in (("negative", x), ("positive", y)):
        _, _, held, maximum = state.electrodes[side]
        table.set_value(held, theta * maximum.evaluate(table.values()))
    table.initial_state = InitialState(fraction, x, y, window, text)


def _at(ocp: Expression, values: Mapping[str, float], temperature: float):
    """U(theta) at a fixed temperature, as a function of a number."""
    return lambda theta: float(ocp.evaluate({**values, "theta": theta, "T": temperature}))
