"""Heat conduction: the reference plug-in.

Transient conduction in a solid with region-wise (or temperature-dependent) properties::

    rho c_p dT/dt - div(k grad T) = q + heat_source           in the domain
    T = T_b                                                      "temperature" boundaries
    -k grad T . n = -q_b                                         "flux" boundaries (q_b > 0 heats)
    -k grad T . n = h (T - T_inf)                                "convection" boundaries
    -k grad T . n = eps sigma (T^4 - T_inf^4)                    "radiation" boundaries

Boundaries the case does not list are insulated. ``heat_source`` is an optional field another
plug-in may provide (Joule heating, reaction heat); without a provider it is zero. A case with
several providers names one field each in ``heat_sources`` (``["joule_heat", "reaction_heat"]``)
and heat adds them up.

This file is the template for new plug-ins: a pydantic ``Parameters`` model whose fields document
themselves (units, defaults, bounds), the fields the plug-in provides and requires, and methods
that return UFL. The framework discretises ``capacity * dT/dt`` in time, builds function spaces,
boundary conditions and solvers, and writes the outputs.

A case uses it as::

    [physics.heat]
    conductivity = { insulation = "0.04 W/(m*K)", brick = "0.8 W/(m*K)" }
    density = 1800
    specific_heat = "840 J/(kg*K)"
    initial = "20 degC"
    boundaries.left = { type = "temperature", value = "300 K" }
    boundaries.right = { type = "convection", h = 10, ambient = "273.15 K" }
"""

from typing import Literal

import ufl
from pydantic import Field

from app.contracts import (
    STEFAN_BOLTZMANN,
    Context,
    Dirichlet,
    FieldNames,
    FieldSpec,
    Parameters,
    Physics,
    Property,
    Quantity,
    one_of,
    quantity,
)


class TemperatureBoundary(Parameters):
    """Prescribed temperature."""

    type: Literal["temperature"]
    value: Property = quantity("K", ..., "Boundary temperature T_b")


class FluxBoundary(Parameters):
    """Prescribed heat flux into the domain."""

    type: Literal["flux"]
    value: Property = quantity("W/m^2", ..., "Heat flux q_b into the domain (negative cools)")


class ConvectionBoundary(Parameters):
    """Newton cooling to an ambient temperature (a Robin condition)."""

    type: Literal["convection"]
    h: Property = quantity("W/(m^2*K)", ..., "Heat transfer coefficient", ge=0)
    ambient: Property = quantity("K", ..., "Ambient temperature T_inf")


class RadiationBoundary(Parameters):
    """Grey-body radiation exchange with surroundings at an ambient temperature."""

    type: Literal["radiation"]
    emissivity: Property = quantity("dimensionless", ..., "Emissivity eps in [0, 1]", ge=0)
    ambient: Property = quantity("K", ..., "Temperature of the surroundings T_inf")


Boundary = one_of(TemperatureBoundary, FluxBoundary, ConvectionBoundary, RadiationBoundary)


class Heat(Physics):
    """Transient heat conduction with region-wise properties, sources and convection.

    Provides ``temperature`` (K) and ``heat_flux`` (W/m^2, derived); optionally requires
    ``heat_source`` (W/m^3), or the fields ``heat_sources`` names, from other plug-ins.
    """

    name = "heat"
    spd = True

    class Parameters(Parameters):
        degree: int = Field(1, ge=1, le=3, description="Lagrange degree of the temperature")
        conductivity: Property = quantity(
            "W/(m*K)",
            1.0,
            "Thermal conductivity k (a surrogate may give a tensor)",
            gt=0,
            tensor=True,
        )
        density: Property = quantity("kg/m^3", 1.0, "Density rho", gt=0)
        specific_heat: Property = quantity("J/(kg*K)", 1.0, "Specific heat capacity c_p", gt=0)
        source: Property = quantity("W/m^3", 0.0, "Volumetric heat source q")
        initial: Property = quantity("K", 293.15, "Initial temperature")
        reference: float = quantity("K", 293.15, "Reference temperature of the stored energy")
        heat_sources: FieldNames = Field(
            ["heat_source"],
            min_length=1,
            description="Heating fields (W/m^3) other plug-ins provide; each is optional",
        )
        boundaries: dict[str, Boundary] = Field(
            default_factory=dict,
            description="Condition per named boundary; boundaries not listed are insulated",
        )

    @property
    def provides(self) -> list[FieldSpec]:
        degree = self.params.degree
        return [
            FieldSpec("temperature", "scalar", "K", ("Lagrange", degree), description="T"),
            FieldSpec(
                "heat_flux",
                "vector",
                "W/m^2",
                ("DG", degree - 1),
                derived=True,
                description="Conductive heat flux -k grad T",
            ),
        ]

    @property
    def requires(self) -> list[FieldSpec]:
        return [
            FieldSpec(name, "scalar", "W/m^3", optional=True, description="Volumetric heating")
            for name in self.params.heat_sources
        ]

    def residual(self, ctx: Context) -> ufl.Form:
        T, v = ctx.field("temperature"), ctx.test("temperature")
        k = ctx.coefficient(self.params.conductivity)
        # k grad T: a scalar k scales, a tensor k (anisotropic) multiplies the gradient
        form = ufl.inner(k * ufl.grad(T), ufl.grad(v)) * ctx.dx() - self._source(ctx, v)
        for name, outflow in self._boundary_outflows(ctx).items():
            form += outflow * v * ctx.ds(name)
        return form

    def _source(self, ctx: Context, weight: ufl.core.expr.Expr) -> ufl.Form:
        """Volumetric heating against ``weight``: the case's source plus every provided heat
        source (each over the region it lives on)."""
        heating = ctx.coefficient(self.params.source) * weight * ctx.dx()
        for name in self.params.heat_sources:
            if ctx.has(name):
                heating += ctx.field(name) * weight * ctx.dx(ctx.region_of(name))
        return heating

    def _boundary_outflows(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        """Heat flux leaving through each boundary with a natural (flux-type) condition."""
        T = ctx.field("temperature")
        outflows = {}
        for name, bc in self.params.boundaries.items():
            match bc:
                case FluxBoundary():
                    outflows[name] = -ctx.coefficient(bc.value)
                case ConvectionBoundary():
                    outflows[name] = ctx.coefficient(bc.h) * (T - ctx.coefficient(bc.ambient))
                case RadiationBoundary():
                    eps, ambient = ctx.coefficient(bc.emissivity), ctx.coefficient(bc.ambient)
                    outflows[name] = eps * STEFAN_BOLTZMANN * (T**4 - ambient**4)
        return outflows

    def capacity(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        rho = ctx.coefficient(self.params.density)
        return {"temperature": rho * ctx.coefficient(self.params.specific_heat)}

    def dirichlet(self, ctx: Context) -> list[Dirichlet]:
        boundaries = self.params.boundaries
        return [
            Dirichlet("temperature", name, ctx.coefficient(boundaries[name].value))
            for name in self._fixed()
        ]

    def initial(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        return {"temperature": ctx.coefficient(self.params.initial)}

    def derived(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        k = ctx.coefficient(self.params.conductivity)
        return {"heat_flux": -k * ufl.grad(ctx.field("temperature"))}

    def quantities(self, ctx: Context) -> dict[str, Quantity]:
        """Heat flow out through each boundary, heat generated, stored energy, extremes.

        Where the case prescribes a flux (flux, convection, radiation) the flow is that flux;
        on temperature boundaries (and point or edge sets held at a temperature) it is the
        reaction of the discrete equations; on insulated boundaries it is zero. So the discrete
        energy balance closes to round-off (BDF; under Crank-Nicolson by the trapezoidal rule,
        every flow being the flow at the row's time).
        """
        T = ctx.field("temperature")
        power, energy = ctx.per_depth("W"), ctx.per_depth("J")
        outflows = self._boundary_outflows(ctx)
        fixed = self._fixed()
        quantities = {}
        for name in dict.fromkeys([*ctx.boundaries, *fixed]):
            description = f"Heat leaving through '{name}'"
            if name in fixed:
                flow = Quantity.reaction("temperature", name, power, description, scale=-1.0)
            else:  # zero on an insulated boundary: UFL drops the integral
                flow = Quantity.integral(
                    outflows.get(name, 0 * T) * ctx.ds(name), power, description
                )
            quantities[f"heat_flow_{name}"] = flow
        rho_cp = self.capacity(ctx)["temperature"]
        return quantities | {
            "heat_generated": Quantity.integral(
                self._source(ctx, 1.0), power, "Volumetric heating integrated"
            ),
            "stored_energy": Quantity.integral(
                rho_cp * (T - self.params.reference) * ctx.dx(),
                energy,
                "Heat stored relative to the reference temperature",
            ),
            "max_temperature": Quantity.maximum("temperature", "K", "Highest temperature"),
            "min_temperature": Quantity.minimum("temperature", "K", "Lowest temperature"),
        }

    def _fixed(self) -> list[str]:
        """Boundaries with a prescribed temperature."""
        boundaries = self.params.boundaries
        return [name for name, bc in boundaries.items() if isinstance(bc, TemperatureBoundary)]
