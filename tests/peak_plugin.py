"""A plug-in with memory for the tests: the highest temperature each place has seen.

It solves nothing: it reads ``temperature`` and keeps one internal variable, updated to
max(previous, T) at every accepted step, per cell or at the quadrature points.
"""

from typing import Literal

import ufl
from pydantic import Field

from app.contracts import Context, FieldSpec, InternalVariable, Parameters, Physics, Quantity


class PeakTemperature(Physics):
    """Remembers the highest temperature each cell (or quadrature point) has seen."""

    name = "peak_temperature"

    class Parameters(Parameters):
        at: Literal["cell", "quadrature"] = Field("cell", description="Where it is kept")

    @property
    def requires(self) -> list[FieldSpec]:
        return [FieldSpec("temperature", "scalar", "K", description="What is remembered")]

    @property
    def internal_variables(self) -> list[InternalVariable]:
        return [InternalVariable("peak_temperature", "K", at=self.params.at)]

    def initial(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        return {"peak_temperature": ctx.field("temperature")}  # the initial temperature

    def update(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        peak = ctx.previous("peak_temperature")
        return {"peak_temperature": ufl.max_value(peak, ctx.field("temperature"))}

    def quantities(self, ctx: Context) -> dict[str, Quantity]:
        return {
            "hottest_ever": Quantity.maximum("peak_temperature", "K", "Highest temperature seen")
        }
