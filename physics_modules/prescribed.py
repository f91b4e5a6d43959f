"""Prescribed fields: values given by expressions instead of solved for.

A known temperature for a thermal-stress analysis, a concentration profile that swells a
particle, a velocity that advects a species: each becomes a field other plug-ins require, exactly
as if another physics provided it. Values are expressions of x, y, z, t (and of other fields),
constants with units, or tables by region; a field's units are SI (values are SI to every
reader), and its value may carry any unit of that dimension (``value = "20 degC"`` in K)::

    [physics.imposed]
    type = "prescribed"
    fields.temperature = { units = "K", value = "300 + 50*(x**2 + y**2)" }
    fields.velocity = { units = "m/s", value = ["1e-3", "0"] }
    fields.cure_strain = { value = [["-2e-3", "0"], ["0", "-1e-3"]] }   # a tensor, by rows
"""

from typing import Any, Literal

import ufl
from pydantic import Field, field_serializer, field_validator, model_validator

from app.contracts import (
    BadValue,
    Context,
    FieldSpec,
    Parameters,
    Physics,
    parse_property,
    parse_units,
)


class FieldValue(Parameters):
    """One prescribed field."""

    units: str = Field("dimensionless", description="SI units of the field (K, m/s, mol/m^3)")
    value: Any = Field(description="Value: expression, number, quantity, table by region, or list")
    degree: int = Field(1, ge=0, le=3, description="Degree of the field's space (0: cellwise)")

    @field_validator("units")
    @classmethod
    def _known_units(cls, units: str) -> str:
        parse_units(units)  # ValueError (a case error at this path) for an unknown unit
        return units

    @model_validator(mode="after")
    def _parse(self) -> "FieldValue":
        object.__setattr__(
            self, "value", _nested(self.value, lambda v: parse_property(v, self.units))
        )
        if self.rank == "tensor" and any(len(row) != len(self.value) for row in self.value):
            raise ValueError("a tensor value is a square list of rows, [[xx, xy], [yx, yy]]")
        return self

    @field_serializer("value")
    def _as_written(self, value: Any) -> Any:
        """Back to the form a case accepts (run folders store the case that way)."""
        return _nested(value, lambda item: item.to_case())

    def units_here(self, name: str) -> str | None:
        """The case gives the value's units (a protocol may set a constant value)."""
        return self.units if name == "value" else super().units_here(name)

    @property
    def rank(self) -> Literal["scalar", "vector", "tensor"]:
        if not isinstance(self.value, list):
            return "scalar"
        return "tensor" if all(isinstance(row, list) for row in self.value) else "vector"


def _nested(value: Any, apply: Any) -> Any:
    """``apply`` to a value, or to each item of a list (of lists)."""
    if isinstance(value, list):
        return [_nested(item, apply) for item in value]
    return apply(value)


class Prescribed(Physics):
    """Fields given by expressions, constants or tables by region (no equation solved)."""

    name = "prescribed"

    class Parameters(Parameters):
        fields: dict[str, FieldValue] = Field(description="Prescribed fields by name")

    @property
    def provides(self) -> list[FieldSpec]:
        specs = []
        for name, field in self.params.fields.items():
            family = "DG" if field.degree == 0 else "Lagrange"
            specs.append(
                FieldSpec(
                    name,
                    field.rank,
                    field.units,
                    (family, field.degree),
                    derived=True,
                    description="prescribed",
                )
            )
        return specs

    def derived(self, ctx: Context) -> dict[str, Any]:
        values = {}
        for name, field in self.params.fields.items():
            if isinstance(field.value, list) and len(field.value) != ctx.gdim:
                raise BadValue(
                    f"a {field.rank} on a {ctx.gdim}D mesh needs {ctx.gdim} "
                    f"{'rows' if field.rank == 'tensor' else 'components'}, "
                    f"got {len(field.value)}",
                    token=name,
                )
            values[name] = ufl.as_tensor(_nested(field.value, ctx.coefficient))
        return values
