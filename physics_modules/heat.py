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
from pydantic import Field, model_validator

from app.contracts import (
    STEFAN_BOLTZMANN,
    Context,
    Dirichlet,
    FieldNames,
    FieldSpec,
    Parameters,
    PerDimension,
    Physics,
    Property,
    Quantity,
    extent,
    one_of,
    quantity,
)


class TemperatureBoundary(Parameters):
    """Prescribed temperature."""

    type: Literal["temperature"]
    value: Property = quantity("K", ..., "Boundary temperature T_b", ge=0)


class FluxBoundary(Parameters):
    """Prescribed heat flux into the domain."""

    type: Literal["flux"]
    value: Property = quantity("W/m^2", ..., "Heat flux q_b into the domain (negative cools)")


class ConvectionBoundary(Parameters):
    """Newton cooling to an ambient temperature (a Robin condition)."""

    type: Literal["convection"]
    h: Property = quantity("W/(m^2*K)", ..., "Heat transfer coefficient", ge=0)
    ambient: Property = quantity("K", ..., "Ambient temperature T_inf", ge=0)


class RadiationBoundary(Parameters):
    """Grey-body radiation exchange with surroundings at an ambient temperature."""

    type: Literal["radiation"]
    emissivity: Property = quantity("dimensionless", ..., "Emissivity eps in [0, 1]", ge=0)
    ambient: Property = quantity("K", ..., "Temperature of the surroundings T_inf", ge=0)


Boundary = one_of(TemperatureBoundary, FluxBoundary, ConvectionBoundary, RadiationBoundary)


class Lumped(Parameters):
    """One temperature for the whole body (a battery cell): its heat capacity fills a volume,
    it is heated by the integral of the heat sources over the mesh and cooled by convection
    through an area."""

    volume: Property = quantity("m^3", ..., "Volume V of the body (its heat capacity)", gt=0)
    cross_section: PerDimension = extent(
        1.0, "What an integral over the mesh is multiplied by to give the whole body's"
    )
    cooling_area: Property = quantity("m^2", 0.0, "Area A cooled by convection", ge=0)
    h: Property = quantity("W/(m^2*K)", 0.0, "Heat transfer coefficient of the cooling", ge=0)
    ambient: Property = quantity("K", 298.15, "Ambient temperature T_inf", ge=0)


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
        volumetric_heat_capacity: Property | None = quantity(
            "J/(m^3*K)", None, "rho c_p, instead of density and specific_heat", gt=0
        )
        source: Property = quantity("W/m^3", 0.0, "Volumetric heat source q")
        initial: Property = quantity("K", 293.15, "Initial temperature", ge=0)
        reference: float = quantity("K", 293.15, "Reference temperature of the stored energy")
        heat_sources: FieldNames = Field(
            ["heat_source"],
            description="Heating fields (W/m^3) other plug-ins provide; each is optional "
            "([]: none, whoever provides them)",
        )
        boundaries: dict[str, Boundary] = Field(
            default_factory=dict,
            description="Condition per named boundary; boundaries not listed are insulated",
        )
        lumped: Lumped | None = Field(
            None, description="One temperature for the whole body instead of a field"
        )

        @model_validator(mode="after")
        def _one_heat_capacity(self) -> "Heat.Parameters":
            given = self.given("density", "specific_heat")
            if self.volumetric_heat_capacity is not None and given:
                raise ValueError(
                    f"{', '.join(sorted(given))}: volumetric_heat_capacity replaces density and "
                    "specific_heat; give one or the other"
                )
            return self

        @model_validator(mode="after")
        def _lumped_has_no_field_settings(self) -> "Heat.Parameters":
            misplaced = sorted(self.given("conductivity", "degree", "boundaries"))
            if self.lumped is not None and misplaced:
                raise ValueError(
                    f"{', '.join(misplaced)}: a lumped temperature has one value, so no "
                    "conductivity, degree or boundaries (cool it through lumped.cooling_area)"
                )
            return self

    @property
    def provides(self) -> list[FieldSpec]:
        if self.params.lumped is not None:
            text = "T of the whole body"
            return [FieldSpec("temperature", "scalar", "K", ("Real", 0), description=text)]
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
        if self.params.lumped is not None:  # per unit of the mesh's measure, like the sources
            return self._cooling(ctx) / self._whole(ctx) * v * ctx.dx() - self._source(ctx, v)
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

    def _whole(self, ctx: Context) -> ufl.core.expr.Expr:
        """What the mesh's measure stands for of a lumped body: its cross-section times the
        mesh's size (the heat sources' integral times the cross-section is the body's heat)."""
        return ctx.coefficient(self.params.lumped.cross_section) * ctx.size()

    def _cooling(self, ctx: Context) -> ufl.core.expr.Expr:
        """Heat a lumped body loses to the ambient: h A (T - T_inf), in W."""
        lumped = self.params.lumped
        excess = ctx.field("temperature") - ctx.coefficient(lumped.ambient)
        return ctx.coefficient(lumped.h) * ctx.coefficient(lumped.cooling_area) * excess

    def _heat_capacity(self, ctx: Context) -> ufl.core.expr.Expr:
        """rho c_p (per volume)."""
        p = self.params
        if p.volumetric_heat_capacity is not None:
            return ctx.coefficient(p.volumetric_heat_capacity)
        return ctx.coefficient(p.density) * ctx.coefficient(p.specific_heat)

    def capacity(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        capacity = self._heat_capacity(ctx)
        if self.params.lumped is not None:
            capacity = capacity * ctx.coefficient(self.params.lumped.volume) / self._whole(ctx)
        return {"temperature": capacity}

    def dirichlet(self, ctx: Context) -> list[Dirichlet]:
        boundaries = self.params.boundaries
        return [
            Dirichlet("temperature", name, ctx.coefficient(boundaries[name].value))
            for name in self._fixed()
        ]

    def initial(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        return {"temperature": ctx.coefficient(self.params.initial)}

    def derived(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        if self.params.lumped is not None:
            return {}
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
        if self.params.lumped is not None:
            return self._lumped_quantities(ctx)
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
        rho_cp = self._heat_capacity(ctx)
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

    def _lumped_quantities(self, ctx: Context) -> dict[str, Quantity]:
        """A lumped body's temperature, heat generated, heat lost to the ambient and heat
        stored, in W and J of the whole body: the stored heat's rate is generated - lost."""
        lumped, T = self.params.lumped, ctx.field("temperature")
        size, dx = ctx.size(), ctx.dx()
        stored = self._heat_capacity(ctx) * ctx.coefficient(lumped.volume)
        return {
            "temperature": Quantity.maximum("temperature", "K", "Temperature of the body"),
            "heat_generated": Quantity.integral(
                self._source(ctx, ctx.coefficient(lumped.cross_section)), "W", "Heat sources"
            ),
            "heat_flow_cooling": Quantity.integral(
                self._cooling(ctx) / size * dx, "W", "Heat lost to the ambient"
            ),
            "stored_energy": Quantity.integral(
                stored * (T - self.params.reference) / size * dx,
                "J",
                "Heat stored relative to the reference temperature",
            ),
        }

    def _fixed(self) -> list[str]:
        """Boundaries with a prescribed temperature."""
        boundaries = self.params.boundaries
        return [name for name, bc in boundaries.items() if isinstance(bc, TemperatureBoundary)]
