"""The schema of ``[output.quantities]``: one entry per quantity a case defines itself
(app/output_quantities.py evaluates them and says what each kind means)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field, field_validator, model_validator

from app.expressions import ExpressionError, parse
from app.parameters import Parameters
from app.units import has_offset, parse_units

#: Quantities of a column's history: what each accumulates over the accepted steps.
HISTORY = ("time_integral", "first_crossing", "maximum", "minimum")


class OutputQuantity(Parameters):
    """A quantity of the case: the mean (or ratio, or integral) of an expression of fields, or
    an expression of columns and set constants, or the running time integral of a column."""

    value: str | None = Field(
        None,
        description="Expression of x, y, z, t and fields (components: u_x, s_xy), or of "
        "quantities.csv columns and set constants",
    )
    per: str | None = Field(None, description="Denominator expression: int value / int per")
    over: str | None = Field(None, description="Region or boundary (default: the whole mesh)")
    integral: bool = Field(False, description="The integral of value instead of its mean")
    time_integral: str | None = Field(
        None, description="Column whose running integral in time this is"
    )
    first_crossing: str | None = Field(
        None, description="Column whose first crossing of 'at' this is (the time; NaN before)"
    )
    at: float | str | None = Field(
        None, description="The value first_crossing looks for, in the column's units"
    )
    maximum: str | None = Field(None, description="Column whose largest value so far this is")
    minimum: str | None = Field(None, description="Column whose smallest value so far this is")
    units: str = Field("dimensionless", description="Units of the result (column name)")
    description: str = Field("", description="One line for the CSV's readers")

    @field_validator("value", "per")
    @classmethod
    def _readable(cls, text: str | None) -> str | None:
        if text is not None:
            try:
                expression = parse(text)
            except ExpressionError as exc:
                raise ValueError(str(exc)) from None
            if expression.is_boolean:
                raise ValueError(f"{text!r} is a condition; write a number (1 if ... else 0)")
        return text

    @field_validator("units")
    @classmethod
    def _known_units(cls, units: str) -> str:
        parse_units(units)
        if has_offset(units):  # a column is its SI value times a factor: no room for an offset
            raise ValueError(
                f"a column cannot be written in {units!r}, a scale whose zero is not SI's; "
                "give its SI unit (units = 'K': a temperature in degC is the value in K minus "
                "273.15)"
            )
        return units

    @property
    def history(self) -> tuple[str, str] | None:
        """(kind, column) of a quantity of a column's history, else None."""
        return next(((kind, getattr(self, kind)) for kind in HISTORY if getattr(self, kind)), None)

    @model_validator(mode="after")
    def _one_definition(self) -> OutputQuantity:
        given = [kind for kind in ("value", *HISTORY) if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(
                "give one of value (an expression), time_integral, first_crossing, maximum or "
                f"minimum (a column name); got {' and '.join(given) or 'none'}"
            )
        if self.history and (self.per or self.over or self.integral):
            raise ValueError(f"{given[0]} (of a column) takes no per, over or integral")
        if self.first_crossing is not None and self.at is None:
            raise ValueError("first_crossing needs 'at': the value of the column it looks for")
        if self.first_crossing is None and self.at is not None:
            raise ValueError("'at' belongs to first_crossing only; remove it")
        if self.integral and self.per is not None:
            raise ValueError("integral = true takes no per (that would be a ratio)")
        return self


def check_names(quantities: Mapping[str, OutputQuantity]) -> Mapping[str, OutputQuantity]:
    """Quantity names start CSV column names: letters, digits and underscores."""
    for name in quantities:
        if not name.isidentifier():
            raise ValueError(f"quantity names are letters, digits and underscores, got {name!r}")
    return quantities
