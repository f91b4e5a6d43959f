"""Darcy flow in a porous medium, alone or coupled to the solid's deformation (Biot).

Single-phase flow of the pore fluid, written as the balance of the fluid content zeta::

    d(zeta)/dt + div q = Q                                       in the domain
    zeta = S p + alpha eps_v,     eps_v = div u                  (Biot's fluid content)
    q = -(k/mu) (grad p - rho_f g)                               Darcy velocity (superficial)
    p = p_b                                                      "pressure" boundaries (drained)
    -q . n = g                                                   "flux" boundaries (g > 0 enters)

Boundaries the case does not list are impermeable (q . n = 0). With constant S and alpha the
balance is S dp/dt + alpha d(eps_v)/dt - div(k/mu (grad p - rho_f g)) = Q.

* ``storage`` S (1/Pa) is the storage coefficient at constant volumetric strain, 1/M for
  Biot's modulus M: S = phi/K_f + (alpha - phi)/K_s for fluid and grain bulk moduli K_f, K_s
  (0 for incompressible constituents). With S = 0 and no coupling the pressure has no time
  derivative: it follows the boundaries and sources at every step.
* ``biot_coefficient`` alpha couples the flow to the volumetric strain of the displacement
  field named by ``displacement`` (a required field only then; mechanics provides it). The
  solid feels the pressure through mechanics' own ``pore_pressure`` option
  (sigma = sigma' - alpha p I), whose alpha should be this one: the two terms are one
  coupling, and only equal coefficients conserve energy. eps_v = div u is the volumetric strain
  of a Cartesian mesh: 3D, or plane strain on a 2D mesh (the flow is the plane section's per
  unit depth).
* ``permeability`` k (m^2, isotropic: a number, a table by region, an expression of fields or
  a surrogate) and ``viscosity`` mu. With ``kozeny_carman`` the permeability is the
  reference k0 of the Kozeny-Carman law of a porosity phi (a number or an expression naming a
  porosity field, e.g. reaction kinetics' ``porosity``)::

      k = k0 (phi/phi0)^3 ((1 - phi0)/(1 - phi))^2        (phi < 1; k = 0 where phi <= 0)

* ``gravity`` g (m/s^2, a vector; none by default) with the fluid density rho_f drives the
  hydrostatic part of the flow; p is then the pore pressure, not the excess over hydrostatic.
* ``source`` Q (1/s): fluid volume injected per volume of medium and second.
* ``coordinates = "axisymmetric"`` solves the flow of a body of revolution on its meridian
  (x = r >= 0, the axis at x = 0; y = z), or radial flow on a 1D mesh (x = r): integrals carry
  2 pi r, so flows, sources and stored volumes are those of the full revolution (per metre of
  height on a 1D mesh), and eps_v = du_r/dr + u_r/r + du_z/dz (mechanics' axisymmetric
  formulation).

Solved with mechanics in one group (the default: every plug-in of a case in one Newton solve)
the coupling is monolithic; a ``[coupling]`` section may split them instead.

Outputs: ``pressure`` (solved), ``darcy_velocity`` q (derived, the superficial velocity that
mass_transport reads with ``velocity = "darcy_velocity"``; the pore velocity is q/phi) and
``permeability`` (derived); the fluid volume leaving through each boundary (on pressure
boundaries from the discrete residual, so the balance closes to round-off), the volume injected
by sources, the fluid content stored and the pressure extremes. Field names are settings
(``fields``), so two instances can run side by side.

A case uses it as::

    [physics.darcy]
    permeability = { sand = "1e-11 m^2", clay = "1e-15 m^2" }
    viscosity = "1 mPa*s"
    storage = "1e-9 1/Pa"
    gravity = [0, "-9.81 m/s^2"]
    boundaries.top = { type = "pressure", value = 0 }
    boundaries.bottom = { type = "flux", value = "1e-6 m/s" }

and coupled to the solid (Terzaghi's consolidation, cases/terzaghi.toml)::

    [physics.darcy]
    biot_coefficient = 1
    [physics.mechanics]
    pore_pressure = { field = "pressure", biot_coefficient = 1 }
"""

import math
from typing import Literal

import ufl
from pydantic import Field, field_validator

from app.contracts import (
    BadValue,
    Context,
    Dirichlet,
    FieldName,
    FieldSpec,
    Parameters,
    Physics,
    Property,
    Quantity,
    Value,
    one_of,
    quantity,
)


class PressureBoundary(Parameters):
    """Prescribed pore pressure (a drained face, a reservoir)."""

    type: Literal["pressure"]
    value: Property = quantity("Pa", ..., "Boundary pressure p_b")


class FluxBoundary(Parameters):
    """Prescribed volume flux into the domain (an injection, a pumped inlet)."""

    type: Literal["flux"]
    value: Property = quantity("m/s", ..., "Volume flux g entering per unit area (negative leaves)")


Boundary = one_of(PressureBoundary, FluxBoundary)


class KozenyCarman(Parameters):
    """Permeability from porosity: k = k0 (phi/phi0)^3 ((1 - phi0)/(1 - phi))^2."""

    porosity: Property = quantity(
        "dimensionless", ..., "Porosity phi (a number, or an expression naming a field)", ge=0
    )
    reference_porosity: float = quantity(
        "dimensionless", ..., "Porosity phi0 at which k = permeability", gt=0, lt=1
    )


class ProvidedFields(Parameters):
    """Names of the fields the instance provides (rename them to run several instances)."""

    pressure: FieldName = Field("pressure", description="Solved pore pressure p")
    velocity: FieldName = Field("darcy_velocity", description="Derived Darcy velocity q")
    permeability: FieldName = Field("permeability", description="Derived permeability k")


class Darcy(Physics):
    """Darcy flow of a pore fluid, with storage, gravity and Biot coupling to a displacement.

    Provides ``pressure`` (Pa), ``darcy_velocity`` (m/s, derived) and ``permeability`` (m^2,
    derived); requires the ``displacement`` (m) when ``biot_coefficient`` is set, and the fields
    its expressions name (a porosity for Kozeny-Carman).
    """

    name = "darcy"
    spd = True

    class Parameters(Parameters):
        degree: int = Field(1, ge=1, le=3, description="Lagrange degree of the pressure")
        permeability: Property = quantity(
            "m^2",
            ...,
            "Intrinsic permeability k (k0 with kozeny_carman)",
            gt=0,
        )
        kozeny_carman: KozenyCarman | None = Field(
            None, description="Permeability from a porosity (None: permeability as given)"
        )
        viscosity: Property = quantity("Pa*s", 1e-3, "Dynamic viscosity mu of the fluid", gt=0)
        storage: Property = quantity(
            "1/Pa", 0.0, "Storage coefficient S = 1/M (0: incompressible constituents)", ge=0
        )
        biot_coefficient: Property | None = quantity(
            "dimensionless", None, "Biot coefficient alpha (None: no coupling to the solid)", ge=0
        )
        displacement: FieldName = Field(
            "displacement", description="Displacement field (m) whose div u the flow reads"
        )
        fluid_density: Property = quantity("kg/m^3", 1000.0, "Fluid density rho_f", gt=0)
        gravity: list[Property] = quantity(
            "m/s^2", [], "Gravitational acceleration [g_x, g_y(, g_z)] (empty: none)"
        )
        source: Property = quantity("1/s", 0.0, "Fluid volume injected per volume and second Q")
        coordinates: Literal["cartesian", "axisymmetric"] = Field(
            "cartesian",
            description="axisymmetric: x = r >= 0 (the axis at x = 0), y = z; integrals over the "
            "full revolution",
        )
        initial: Property = quantity("Pa", 0.0, "Initial pressure")
        boundaries: dict[str, Boundary] = Field(
            default_factory=dict,
            description="Condition per named boundary; boundaries not listed are impermeable",
        )
        fields: ProvidedFields = Field(default_factory=ProvidedFields, description="Field names")

        @field_validator("biot_coefficient")
        @classmethod
        def _at_most_one(cls, value: Property | None) -> Property | None:
            if isinstance(value, Value) and value.value > 1:
                raise ValueError(f"a Biot coefficient is at most 1, got {value.value:g}")
            return value

    # Contracts ------------------------------------------------------------------------------
    @property
    def provides(self) -> list[FieldSpec]:
        names, degree = self.params.fields, self.params.degree
        flux_space = ("DG", degree - 1)
        return [
            FieldSpec(names.pressure, "scalar", "Pa", ("Lagrange", degree), description="p"),
            FieldSpec(
                names.velocity,
                "vector",
                "m/s",
                flux_space,
                derived=True,
                description="Darcy velocity q = -(k/mu) (grad p - rho_f g)",
            ),
            FieldSpec(
                names.permeability,
                "scalar",
                "m^2",
                ("DG", 0),
                derived=True,
                description="Permeability k",
            ),
        ]

    @property
    def requires(self) -> list[FieldSpec]:
        if not self._coupled:
            return []
        name = self.params.displacement
        return [FieldSpec(name, "vector", "m", description="eps_v = div u of the fluid content")]

    @property
    def _coupled(self) -> bool:
        return self.params.biot_coefficient is not None

    # Coordinates ----------------------------------------------------------------------------
    def _axisymmetric(self, ctx: Context) -> bool:
        if self.params.coordinates == "cartesian":
            return False
        if ctx.gdim > 2:
            raise BadValue(
                f"axisymmetric coordinates need a 1D or 2D mesh (r, or r and z), got {ctx.gdim}D",
                token="coordinates",
                fix="use cartesian coordinates on 3D meshes",
            )
        return True

    def _weight(self, ctx: Context) -> ufl.core.expr.Expr | float:
        """Integration weight: 2 pi r in axisymmetric (the full revolution), else 1."""
        return 2 * math.pi * ctx.x[0] if self._axisymmetric(ctx) else 1.0

    def _units(self, ctx: Context, base: str) -> str:
        """Units of an integral: per metre of depth (height) where the mesh lacks dimensions
        the weight does not supply."""
        if not self._axisymmetric(ctx):
            return ctx.per_depth(base)
        return base if ctx.gdim == 2 else f"{base}/m"

    def _volumetric_strain(self, ctx: Context) -> ufl.core.expr.Expr:
        """eps_v = div u, plus the hoop strain u_r/r in axisymmetric (du_r/dr on the axis,
        where u_r = 0: derived fields are evaluated at vertices)."""
        u = ctx.field(self.params.displacement)
        if not self._axisymmetric(ctx):
            return ufl.div(u)
        r, tiny = ctx.x[0], 1e-12 * ctx.size() ** (1 / ctx.gdim)
        off_axis = ufl.conditional(ufl.gt(r, tiny), 1, 0)
        hoop = off_axis * u[0] / ufl.max_value(r, tiny) + (1 - off_axis) * u[0].dx(0)
        return ufl.div(u) + hoop

    # Constitutive parts ---------------------------------------------------------------------
    def _permeability(self, ctx: Context) -> ufl.core.expr.Expr:
        k = ctx.coefficient(self.params.permeability)
        law = self.params.kozeny_carman
        if law is None:
            return k
        # Pores a mineral has closed (a porosity field a little below 0) pass nothing: a
        # negative phi^3 would turn the flow up the pressure gradient.
        phi = ufl.max_value(ctx.coefficient(law.porosity), 0)
        phi0 = law.reference_porosity
        return k * (phi / phi0) ** 3 * ((1 - phi0) / (1 - phi)) ** 2

    def _gravity(self, ctx: Context) -> ufl.core.expr.Expr | None:
        """rho_f g, or None without gravity."""
        g = self.params.gravity
        if not g:
            return None
        if len(g) != ctx.gdim:
            raise BadValue(
                f"gravity needs {ctx.gdim} components on a {ctx.gdim}D mesh, got {len(g)}",
                value=g[0],
                token="gravity",
            )
        rho = ctx.coefficient(self.params.fluid_density)
        return rho * ufl.as_vector([ctx.coefficient(component) for component in g])

    def _driving(self, ctx: Context) -> ufl.core.expr.Expr:
        """grad p - rho_f g: what drives the flow."""
        gradient = ufl.grad(ctx.field(self.params.fields.pressure))
        weight = self._gravity(ctx)
        return gradient if weight is None else gradient - weight

    def _velocity(self, ctx: Context) -> ufl.core.expr.Expr:
        """q = -(k/mu) (grad p - rho_f g)."""
        mobility = self._permeability(ctx) / ctx.coefficient(self.params.viscosity)
        return -mobility * self._driving(ctx)

    def _inflows(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        """Prescribed volume flux entering through each flux boundary."""
        return {
            name: ctx.coefficient(bc.value)
            for name, bc in self.params.boundaries.items()
            if isinstance(bc, FluxBoundary)
        }

    def _fluid_content(self, ctx: Context) -> ufl.core.expr.Expr:
        """zeta = S p + alpha div u (per volume of medium)."""
        p = self.params
        zeta = ctx.coefficient(p.storage) * ctx.field(p.fields.pressure)
        if self._coupled:
            zeta += ctx.coefficient(p.biot_coefficient) * self._volumetric_strain(ctx)
        return zeta

    # The plug-in interface ------------------------------------------------------------------
    def residual(self, ctx: Context) -> ufl.Form:
        v, W = ctx.test(self.params.fields.pressure), self._weight(ctx)
        form = -ufl.inner(self._velocity(ctx), ufl.grad(v)) * W * ctx.dx()
        form -= ctx.coefficient(self.params.source) * v * W * ctx.dx()
        for boundary, inflow in self._inflows(ctx).items():
            form -= inflow * v * W * ctx.ds(boundary)
        return form

    def storage(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        """The fluid content zeta, whose rate the framework discretises; none when nothing is
        stored (S = 0 without coupling: the pressure is then steady at every step)."""
        storage = self.params.storage
        if not self._coupled and isinstance(storage, Value) and storage.value == 0:
            return {}
        return {self.params.fields.pressure: self._fluid_content(ctx) * self._weight(ctx)}

    def dirichlet(self, ctx: Context) -> list[Dirichlet]:
        name = self.params.fields.pressure
        return [
            Dirichlet(name, boundary, ctx.coefficient(bc.value))
            for boundary, bc in self.params.boundaries.items()
            if isinstance(bc, PressureBoundary)
        ]

    def initial(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        return {self.params.fields.pressure: ctx.coefficient(self.params.initial)}

    def derived(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        names = self.params.fields
        return {
            names.velocity: self._velocity(ctx),
            names.permeability: self._permeability(ctx),
        }

    def quantities(self, ctx: Context) -> dict[str, Quantity]:
        """Fluid volume leaving through each boundary, injected by sources and stored, and the
        pressure extremes.

        On pressure boundaries (and point sets held at a pressure) the flow is the reaction of
        the discrete equations, elsewhere the prescribed flux (zero where impermeable), so
        d(stored)/dt = injected - sum of the flows to round-off (BDF).
        """
        name = self.params.fields.pressure
        flow, volume = self._units(ctx, "m^3/s"), self._units(ctx, "m^3")
        W = self._weight(ctx)
        inflows = self._inflows(ctx)
        fixed = [b for b, bc in self.params.boundaries.items() if isinstance(bc, PressureBoundary)]
        quantities = {}
        for boundary in dict.fromkeys([*ctx.boundaries, *fixed]):
            description = f"Fluid volume leaving through '{boundary}' per second"
            if boundary in fixed:
                quantities[f"fluid_outflow_{boundary}"] = Quantity.reaction(
                    name, boundary, flow, description, scale=-1.0
                )
            else:  # zero on an impermeable boundary: UFL drops the integral
                leaving = -inflows.get(boundary, 0 * ctx.field(name))
                quantities[f"fluid_outflow_{boundary}"] = Quantity.integral(
                    leaving * W * ctx.ds(boundary), flow, description
                )
        return quantities | {
            "fluid_injected": Quantity.integral(
                ctx.coefficient(self.params.source) * W * ctx.dx(), flow, "Sources integrated"
            ),
            "fluid_stored": Quantity.integral(
                self._fluid_content(ctx) * W * ctx.dx(), volume, "Fluid content zeta integrated"
            ),
            "max_pressure": Quantity.maximum(name, "Pa", "Highest pore pressure"),
            "min_pressure": Quantity.minimum(name, "Pa", "Lowest pore pressure"),
        }
