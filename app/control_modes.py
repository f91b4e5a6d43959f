"""Control modes: settings of one plug-in of which one is in force at a time (a cell terminal
under current or under voltage control), each weighed in the forms by a 0/1 indicator constant,
so a protocol switches between them without rebuilding or recompiling anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dolfinx import fem
from petsc4py import PETSc

from app.errors import listing


@dataclass(eq=False)
class ControlModes:
    """Settings of one plug-in of which one is in force at a time (see
    :meth:`Context.control_modes`), with the indicator constant of each."""

    settings: dict[str, Any]  # name -> parameter value
    indicators: dict[str, fem.Constant]
    initial: str

    def activate(self, name: str) -> None:
        for key, indicator in self.indicators.items():
            indicator.value = 1.0 if key == name else 0.0

    def reset(self) -> None:
        """The setting in force before any protocol step."""
        self.activate(self.initial)


class SwitchingControl:
    """One setting of a group of control modes as a protocol target: giving it a value puts
    it in force (a voltage hold switches a terminal from current to voltage control)."""

    def __init__(self, constant: fem.Constant, modes: ControlModes, name: str):
        self._constant, self._modes, self.name = constant, modes, name

    @property
    def value(self) -> float:
        return float(self._constant.value)

    @value.setter
    def value(self, value: float) -> None:
        self._constant.value = value
        self._modes.activate(self.name)


class ModeRegistry:
    """The groups of control modes of one plug-in instance, found by their settings' values."""

    def __init__(self) -> None:
        self._by_value: dict[int, tuple[ControlModes, str]] = {}  # by id of a setting's value

    def declare(self, mesh: Any, settings: Mapping[str, Any], active: str) -> dict[str, Any]:
        """The indicator constant of each setting (1 for ``active``); asked again for the same
        settings, the same constants."""
        if active not in settings:
            raise ValueError(f"control_modes: '{active}' is not one of {listing(settings)}")
        known = self._by_value.get(id(next(iter(settings.values()))))
        if known is not None and _same(known[0].settings, settings):
            return known[0].indicators
        indicators = {
            name: fem.Constant(mesh, PETSc.ScalarType(1.0 if name == active else 0.0))
            for name in settings
        }
        modes = ControlModes(dict(settings), indicators, active)
        for name, value in settings.items():
            self._by_value[id(value)] = (modes, name)
        return indicators

    def control_of(self, value: Any, constant: fem.Constant) -> Any:
        """What a protocol sets for a parameter value that became ``constant``: the constant, or
        for a setting of control modes the object that also puts that setting in force."""
        found = self._by_value.get(id(value))
        return constant if found is None else SwitchingControl(constant, *found)

    def reset(self) -> None:
        """Every group back to the setting in force at the start."""
        for modes, _ in self._by_value.values():
            modes.reset()


def _same(these: Mapping[str, Any], those: Mapping[str, Any]) -> bool:
    """The same names for the same value objects."""
    return these.keys() == those.keys() and all(these[k] is those[k] for k in these)
