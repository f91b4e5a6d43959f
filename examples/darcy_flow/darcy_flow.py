"""Darcy flow in a porous medium: the pressure, and the Darcy velocity transport plug-ins read.

An out-of-tree ScaleBridge plug-in (installed through the ``scalebridge.physics`` entry point,
like any third-party package). Single-phase flow of a slightly compressible fluid::

    S dp/dt + div q = s,        q = -(k/mu) grad p         in the domain
    p = p_b                                                 "pressure" boundaries
    q . n = -g                                              "inflow" boundaries (g > 0 enters)

Boundaries the case does not list are impermeable (q . n = 0). ``q`` is the Darcy (superficial)
velocity, volume flux per unit area: what ``mass_transport`` reads with ``velocity = "velocity"``
(the pore velocity is q/eps). Permeability and viscosity may vary by region or be expressions of
x, y, z, t and other fields (a permeability that falls as a mineral fills the pores). With zero
storage (the default) the pressure has no time derivative: it follows the boundary values at
every step.

Outputs: the flow leaving through each boundary (m^3/s in 3D, per m of depth in 2D, per m^2 in
1D; on pressure boundaries from the discrete residual, so the balance closes to round-off), the
volume injected by sources, and the pressure extremes.

A case uses it as::

    [physics.flow]
    type = "darcy_flow"
    permeability = { sand = "1e-11 m^2", clay = "1e-15 m^2" }
    viscosity = "1 mPa*s"
    boundaries.left = { type = "pressure", value = "1 bar" }
    boundaries.right = { type = "pressure", value = 0 }
"""

from typing import Literal

import ufl
from app.contracts import (
    Context,
    Dirichlet,
    FieldSpec,
    Parameters,
    Physics,
    Property,
    Quantity,
    one_of,
    quantity,
)
from pydantic import Field


class PressureBoundary(Parameters):
    """Prescribed pressure (a reservoir, an open outlet)."""

    type: Literal["pressure"]
    value: Property = quantity("Pa", ..., "Boundary pressure p_b")


class InflowBoundary(Parameters):
    """Prescribed volume flux into the domain (an injection well, a pumped inlet)."""

    type: Literal["inflow"]
    value: Property = quantity("m/s", ..., "Volume flux g entering per unit area (negative leaves)")


Boundary = one_of(PressureBoundary, InflowBoundary)


class FieldNames(Parameters):
    """Global names of the fields (rename them to run several instances)."""

    pressure: str = Field("pressure", description="Solved pressure")
    velocity: str = Field("velocity", description="Derived Darcy velocity q")


class DarcyFlow(Physics):
    """Darcy flow in a porous medium: pressure and Darcy velocity.

    Provides ``pressure`` (Pa) and ``velocity`` (m/s, derived: the Darcy flux that
    ``mass_transport`` advects species with).
    """

    name = "darcy_flow"
    spd = True

    class Parameters(Parameters):
        degree: int = Field(1, ge=1, le=3, description="Lagrange degree of the pressure")
        permeability: Property = quantity("m^2", ..., "Intrinsic permeability k", gt=0)
        viscosity: Property = quantity("Pa*s", 1e-3, "Dynamic viscosity mu of the fluid", gt=0)
        storage: Property = quantity(
            "1/Pa", 0.0, "Specific storage S (0: incompressible, no time derivative)", ge=0
        )
        source: Property = quantity("1/s", 0.0, "Volumetric source s (fluid volume per volume)")
        initial: Property = quantity("Pa", 0.0, "Initial pressure (read when storage > 0)")
        boundaries: dict[str, Boundary] = Field(
            default_factory=dict,
            description="Condition per named boundary; boundaries not listed are impermeable",
        )
        fields: FieldNames = Field(default_factory=FieldNames, description="Field names")

    @property
    def provides(self) -> list[FieldSpec]:
        names, degree = self.params.fields, self.params.degree
        return [
            FieldSpec(names.pressure, "scalar", "Pa", ("Lagrange", degree), description="p"),
            FieldSpec(
                names.velocity,
                "vector",
                "m/s",
                ("DG", degree - 1),
                derived=True,
                description="Darcy velocity q = -(k/mu) grad p",
            ),
        ]

    def _mobility(self, ctx: Context) -> ufl.core.expr.Expr:
        """k/mu."""
        return ctx.coefficient(self.params.permeability) / ctx.coefficient(self.params.viscosity)

    def _velocity(self, ctx: Context) -> ufl.core.expr.Expr:
        return -self._mobility(ctx) * ufl.grad(ctx.field(self.params.fields.pressure))

    def _inflows(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        """Prescribed volume flux entering through each inflow boundary."""
        return {
            name: ctx.coefficient(bc.value)
            for name, bc in self.params.boundaries.items()
            if isinstance(bc, InflowBoundary)
        }

    def residual(self, ctx: Context) -> ufl.Form:
        name = self.params.fields.pressure
        p, v = ctx.field(name), ctx.test(name)
        form = self._mobility(ctx) * ufl.inner(ufl.grad(p), ufl.grad(v)) * ctx.dx()
        form -= ctx.coefficient(self.params.source) * v * ctx.dx()
        for boundary, inflow in self._inflows(ctx).items():
            form -= inflow * v * ctx.ds(boundary)
        return form

    def capacity(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        storage = self.params.storage
        if getattr(storage, "value", None) == 0.0:
            return {}  # incompressible: the pressure follows the boundaries instantly
        return {self.params.fields.pressure: ctx.coefficient(storage)}

    def dirichlet(self, ctx: Context) -> list[Dirichlet]:
        return [
            Dirichlet(self.params.fields.pressure, name, ctx.coefficient(bc.value))
            for name, bc in self.params.boundaries.items()
            if isinstance(bc, PressureBoundary)
        ]

    def initial(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        return {self.params.fields.pressure: ctx.coefficient(self.params.initial)}

    def derived(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        return {self.params.fields.velocity: self._velocity(ctx)}

    def quantities(self, ctx: Context) -> dict[str, Quantity]:
        """Flow leaving through each boundary, volume injected by sources, pressure extremes."""
        name = self.params.fields.pressure
        p = ctx.field(name)
        flow = ctx.per_depth("m^3/s")
        inflows = self._inflows(ctx)
        quantities = {}
        fixed = [b for b, bc in self.params.boundaries.items() if isinstance(bc, PressureBoundary)]
        for boundary in dict.fromkeys([*ctx.boundaries, *fixed]):  # fixed points and edges too
            description = f"Fluid volume leaving through '{boundary}' per second"
            if boundary in fixed:
                quantities[f"outflow_{boundary}"] = Quantity.reaction(
                    name, boundary, flow, description, scale=-1.0
                )
            else:  # zero on an impermeable boundary: UFL drops the integral
                leaving = -inflows.get(boundary, 0 * p)
                quantities[f"outflow_{boundary}"] = Quantity.integral(
                    leaving * ctx.ds(boundary), flow, description
                )
        return quantities | {
            "injected": Quantity.integral(
                ctx.coefficient(self.params.source) * ctx.dx(), flow, "Sources integrated"
            ),
            "max_pressure": Quantity.maximum(name, "Pa", "Highest pressure"),
            "min_pressure": Quantity.minimum(name, "Pa", "Lowest pressure"),
        }
