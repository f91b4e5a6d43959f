"""What a protocol control (or a study's override of a constant) may set, found by case path.

A control names a parameter by the dotted path a case writes (``physics.heat.boundaries.bottom
.value``) or a constant of the parameter set (``parameters.T_amb``). Behind the first is the
``fem.Constant`` the plug-in's context made of that value, behind the second the set's constant
on every mesh; setting either changes the equations without recompiling a form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.case import LoadedCase
from app.context import FormContext, parameter_owner
from app.contracts import Formula, Value
from app.errors import CaseError, did_you_mean
from app.parameter_constants import ParameterConstants
from app.units import compatible, si_factor


class ControlTargets:
    """The constants behind case paths.

    Args:
        loaded: The case with its plug-in instances and parameter set.
        context: The context of an instance (its constants are made there).
        parameters: The parameter set's constants.
    """

    def __init__(
        self,
        loaded: LoadedCase,
        context: Callable[[str], FormContext],
        parameters: ParameterConstants,
    ):
        self.loaded, self._context, self._parameters = loaded, context, parameters

    def controlled(self) -> frozenset[int]:
        """Identities of the parameter values the protocol sets (they are not fixed, even when
        they start at 0). A target that does not resolve is reported with the protocol."""
        protocol, physics, found = self.loaded.case.protocol, self.loaded.physics, set()
        for control in protocol.controls.values() if protocol else ():
            parts = control.target.split(".")
            if len(parts) >= 3 and parts[0] == "physics" and parts[1] in physics:
                owner, name = parameter_owner(physics[parts[1]].params, ".".join(parts[2:]))
                if owner is not None:
                    found.add(id(getattr(owner, name)))
        return frozenset(found)

    def nominal_capacity(self) -> float | None:
        """The capacity [A h] C-rates refer to: the protocol's, else the parameter set's
        nominal capacity ``Q_nom``."""
        protocol, table = self.loaded.case.protocol, self.loaded.parameters
        nominal = table.constants.get("Q_nom") if table is not None else None
        if protocol.capacity is not None or nominal is None or not compatible(nominal.units, "C"):
            return protocol.capacity
        return nominal.value * si_factor(nominal.units) / 3600.0

    def constant_at(self, path: str) -> tuple[Any, str]:
        """The constant behind the constant parameter at a case path, and its unit.

        Raises:
            CaseError: At ``protocol.controls``, saying why the path names no such constant.
        """
        found = self.find(path)
        if isinstance(found, tuple) and found[1] is None:
            found = f"target {path!r} is a constant without declared units"
        if isinstance(found, str):
            problem, _, fix = found.partition(". Fix: ")
            raise CaseError("protocol.controls", problem, fix or None)
        return found

    def find(self, path: str) -> tuple[Any, str | None] | str:
        """The constant behind the constant parameter at a case path and its unit (None if the
        parameter declares none), or why there is none."""
        parts = path.split(".")
        if parts[0] == "parameters":
            return self._parameter_at(path)
        physics = self.loaded.physics
        if len(parts) < 3 or parts[0] != "physics" or parts[1] not in physics:
            return f"target {path!r} is not a parameter path 'physics.<instance>.<name>'"
        owner, name = parameter_owner(physics[parts[1]].params, ".".join(parts[2:]))
        value = getattr(owner, name, None) if owner is not None else None
        if not isinstance(value, Value):
            head = value.expression.head if isinstance(value, Formula) else None
            table = self.loaded.parameters
            named = table is not None and head in table.constants
            fix = f". Fix: it is the set's constant {head}: target 'parameters.{head}'"
            return (
                f"target {path!r} is not a constant parameter (an expression, a table by region "
                "or a plain setting cannot be controlled)" + (fix if named else "")
            )
        ctx = self._context(parts[1])
        constant = ctx.constant_of(value)
        if constant is None:
            return f"target {path!r} is not used by '{parts[1]}'"
        return ctx.control_of(value, constant), owner.units_here(name)

    def _parameter_at(self, path: str) -> tuple[Any, str] | str:
        """A constant of the parameter set as a control target (``parameters.T_amb``), or why
        there is none."""
        table, name = self.loaded.parameters, path.partition(".")[2]
        constants = table.constants if table else {}
        if name not in constants:
            return (
                f"target {path!r} is not a constant of the parameter set"
                + (did_you_mean(name, list(constants)) if table else " (the case names no set)")
                + ". Fix: give parameters.<name> of one of the set's constants"
            )
        return self._parameters.control(name), constants[name].units
