"""The constants of a case's parameter set as UFL constants, and their protocol controls."""

from __future__ import annotations

from typing import Any

from dolfinx import fem
from petsc4py import PETSc

from app.parameter_set import ParameterTable
from app.timeint import StartValues


class ParameterConstants:
    """The constants of a case's parameter set as ``fem.Constant`` objects: one per name and
    mesh, shared by every form on that mesh. Setting a value (:meth:`set`, or a protocol
    control's ``value``) updates them, and the constants defined from it, without recompiling.
    """

    def __init__(self, table: ParameterTable | None, start_values: StartValues | None = None):
        self.table, self._start_values = table, start_values
        self._meshes: list[tuple[Any, dict[str, fem.Constant]]] = []

    def on(self, mesh: Any) -> dict[str, fem.Constant]:
        """Every constant by name, on ``mesh`` (none without a parameter set)."""
        if self.table is None:
            return {}
        for known, constants in self._meshes:
            if known is mesh:
                return constants
        values = self.table.values()
        constants = {n: fem.Constant(mesh, PETSc.ScalarType(v)) for n, v in values.items()}
        for constant in constants.values() if self._start_values else ():
            self._start_values.track(constant)  # a protocol may set any of them
        self._meshes.append((mesh, constants))
        return constants

    def set(self, name: str, value: float) -> None:
        """Change a constant everywhere (and what is defined from it)."""
        for changed in self.table.set_value(name, value):
            for _, constants in self._meshes:
                constants[changed].value = self.table.constants[changed].value

    def control(self, name: str) -> ParameterControl:
        """What a protocol step sets: an object whose ``value`` is this constant."""
        return ParameterControl(self, name)


class ParameterControl:
    """A parameter-set constant as a protocol control target (``value = ...`` sets it)."""

    def __init__(self, constants: ParameterConstants, name: str):
        self._constants, self.name = constants, name

    @property
    def value(self) -> float:
        return self._constants.table.constants[self.name].value

    @value.setter
    def value(self, value: float) -> None:
        self._constants.set(self.name, value)
