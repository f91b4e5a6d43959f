"""Parsed parameter values: what a case may write where a plug-in declares a ``quantity(...)``
parameter (a constant, an expression, a table by region, a surrogate, an extent read per mesh
dimension). :mod:`app.parameters` reads case text into them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import core_schema

if TYPE_CHECKING:
    from app.expressions import Expression


class CaseValue:
    """Base of parsed parameter values; pydantic stores them as they are and dumps them back to
    the form a case file accepts, so a resolved case can be run again."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.is_instance_schema(
            cls,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value: value.to_case()
            ),
        )

    def to_case(self) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Value(CaseValue):
    """A constant, in the parameter's SI unit."""

    value: float

    def to_case(self) -> float:
        return self.value


@dataclass(frozen=True)
class Formula(CaseValue):
    """An expression of coordinates (x, y, z), time (t) and field names, in SI units."""

    expression: Expression

    @property
    def names(self) -> frozenset[str]:
        return self.expression.names

    def to_case(self) -> str:
        return self.expression.source


@dataclass(frozen=True)
class PerRegion(CaseValue):
    """One value per named cell region (``{insulation = 0.04, brick = 0.8}``); a surrogate
    entry serves that region's cells."""

    values: Mapping[str, Value | Formula | Surrogate]

    def to_case(self) -> dict[str, Any]:
        return {name: value.to_case() for name, value in self.values.items()}


@dataclass(frozen=True)
class Surrogate(CaseValue):
    """A property served by a surrogate of the case's ``[surrogates.<name>]`` section
    (``{ surrogate = "mineral" }``): cell by cell, from the microstructure's state there.

    Attributes:
        name: The surrogate.
        component: What of its property (None: the default for the parameter; see
            :mod:`app.multiscale.properties`).
        units: The parameter's unit (the surrogate's must be compatible).
        tensor: The parameter accepts a tensor (a conductivity), not only a scalar.
        parameter: The parameter's name (an elastic modulus named like a component).
    """

    name: str
    component: str | None = None
    units: str = ""
    tensor: bool = False
    parameter: str = ""

    def to_case(self) -> dict[str, str]:
        return {"surrogate": self.name} | ({"component": self.component} if self.component else {})


Property = Value | Formula | PerRegion | Surrogate
"""A parameter that may be a constant, an expression, a table by region or a surrogate."""

SURROGATE_KEYS = ("surrogate", "component")


@dataclass(frozen=True)
class PerDimension(CaseValue):
    """A constant whose unit follows from the mesh dimension (see :func:`extent`), read in the
    unit of each dimension when the case loads.

    Attributes:
        raw: The value as written.
        readings: By mesh dimension, the value read in that dimension's unit, or why it cannot
            be (a constant of other units).
    """

    raw: Any
    readings: Mapping[int, Value | Formula | str]

    def on(self, dimension: int) -> Value | Formula:
        """The value on a mesh of ``dimension``.

        Raises:
            ValueError: It has the wrong units there (the message says which it has).
        """
        reading = self.readings[dimension]
        if isinstance(reading, str):
            raise ValueError(reading)
        return reading

    def to_case(self) -> Any:
        return self.raw

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        """What a case writes: a number, a quantity string or an expression of constants."""
        return {"anyOf": [{"type": "number"}, {"type": "string"}]}
