"""Particle stress: the diffusion-induced stress of a species in spherical particles.

A concentration c(r) in a sphere of radius R (``mass_transport`` with ``coordinates =
"spherical"``: r = x on a 1D mesh, or one axis of a pseudo-2D (x, r) mesh, a particle at every
x) swells it by its partial molar volume Omega. With Young's modulus E and Poisson's ratio nu
the stresses of a free particle are (Cheng & Verbrugge 2009; VALIDATION.md A11, PyBaMM's
particle mechanics)::

    sigma_r(r) = 2 Omega E / (9 (1 - nu)) [cbar(R) - cbar(r)]
    sigma_t(r) =   Omega E / (9 (1 - nu)) [2 cbar(R) + cbar(r) - 3 c(r)]
    cbar(r)    = (3 / r^3) int_0^r c rho^2 d rho        (the mean inside r; cbar(0) = c(0))

so at the surface sigma_r(R) = 0 and sigma_t(R) = Omega E (cbar(R) - c(R)) / (3 (1 - nu)), and
at the centre sigma_r(0) = sigma_t(0) = 2 Omega E (cbar(R) - c(0)) / (9 (1 - nu)).

The radial moments are two running integrals of c along r, solved with the other fields (both
linear, symmetric positive definite), with derivatives along r only::

    inside:   dm/dr =  3 r^2 c / R^3,  m = 0 at the centre    m(r) = cbar(r) r^3 / R^3
    outside:  dn/dr = -3 r^2 c / R^3,  n = 0 at the surface   n(r) = cbar(R) - m(r)

each in its least-squares (Ritz) form int m' v' dx = int (3 r^2 c / R^3) v' dx. In one dimension
the Ritz projection of a function onto continuous P1 is its interpolant, so m and n equal the
running integrals of the discrete c at every node (on the columns of a pseudo-2D mesh too: the
integrals are linear in x within a cell), and m + n = cbar(R) along each particle. R is the
largest r of the mesh (1 on a pseudo-2D mesh, whose r is normalised).

Fields, named after the concentration ``c``: ``c_inside`` and ``c_outside`` (m and n, solved),
``c_average`` (cbar(R), the particle mean), ``c_radial_stress`` and ``c_hoop_stress`` (Pa, at
every r). Quantities: the surface hoop stress and the centre stress (the radial stress is zero
at the surface and equals the hoop stress at the centre) averaged over their boundary: the
value of the one particle of a 1D mesh, the mean over x of a pseudo-2D mesh.

A case places an instance on the particles' region::

    [physics.stress_n]
    type = "particle_stress"
    domain = "negative"
    concentration = "c_s_n"
    partial_molar_volume = "Omega_n"
    young_modulus = "young_n"
    poisson_ratio = "poisson_n"
    surface = "top"                     # the pseudo-2D mesh's r = 1; "right" on a 1D mesh
    centre = "bottom"                   # its r = 0; "left" on a 1D mesh
"""

from typing import Any

import ufl
from pydantic import Field

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
    quantity,
)


class ParticleStress(Physics):
    """Diffusion-induced radial and hoop stress in spherical particles (radial moments of c).

    Requires the concentration (mol/m^3); solves its running radial integrals and derives the
    particle mean, the radial and hoop stresses, and the surface and centre stresses.
    """

    name = "particle_stress"
    dimensions = (1, 2)

    class Parameters(Parameters):
        concentration: FieldName = Field(description="Concentration field c in the particles")
        partial_molar_volume: Property = quantity("m^3/mol", ..., "Omega")
        young_modulus: Property = quantity("Pa", ..., "E", gt=0)
        poisson_ratio: Property = quantity("dimensionless", ..., "nu", ge=0, lt=0.5)
        radial_axis: int | None = Field(
            None, ge=0, le=1, description="Axis of r (default: the last; 1 on a pseudo-2D mesh)"
        )
        surface: str = Field("top", description="Boundary where r = R (a 1D mesh: 'right')")
        centre: str = Field("bottom", description="Boundary where r = 0 (a 1D mesh: 'left')")

    # Contracts ------------------------------------------------------------------------------
    def _name(self, what: str) -> str:
        return f"{self.params.concentration}_{what}"

    @property
    def provides(self) -> list[FieldSpec]:
        table = [
            ("inside", "mol/m^3", None, False, "Amount inside r per particle volume"),
            ("outside", "mol/m^3", None, False, "Amount outside r per particle volume"),
            ("average", "mol/m^3", None, True, "Particle mean cbar(R)"),
            ("radial_stress", "Pa", None, True, "Radial stress sigma_r"),
            ("hoop_stress", "Pa", None, True, "Hoop stress sigma_t"),
        ]
        return [
            FieldSpec(
                self._name(what), "scalar", units, region=region, derived=derived, description=text
            )
            for what, units, region, derived, text in table
        ]

    @property
    def requires(self) -> list[FieldSpec]:
        c = self.params.concentration
        return [FieldSpec(c, "scalar", "mol/m^3", description="Concentration in the particles")]

    # Geometry -------------------------------------------------------------------------------
    def _radius(self, ctx: Context) -> tuple[Any, float]:
        """The radial coordinate and the particle radius R (the largest r of the mesh)."""
        axis = ctx.gdim - 1 if self.params.radial_axis is None else self.params.radial_axis
        if axis >= ctx.gdim:
            problem = f"radial_axis = {axis}, but the mesh is {ctx.gdim}D"
            raise BadValue(problem, token="radial_axis")
        local = ctx.mesh.geometry.x[:, axis].max(initial=0.0)
        return ctx.x[axis], max(ctx.mesh.comm.allgather(float(local)))

    def _along_r(self, ctx: Context, u: Any) -> Any:
        axis = ctx.gdim - 1 if self.params.radial_axis is None else self.params.radial_axis
        return u.dx(axis)

    def _check_domain(self, ctx: Context) -> None:
        c = self.params.concentration
        where = ctx.region_of(c)
        if where != self.domain:
            raise BadValue(
                f"'{c}' lives on {f'region {where!r}' if where else 'the whole mesh'}, but the "
                f"instance on {f'region {self.domain!r}' if self.domain else 'the whole mesh'}",
                token="concentration",
                fix=f'place the instance where its particles are: domain = "{where}"'
                if where
                else "remove the instance's domain",
            )

    # Forms ----------------------------------------------------------------------------------
    def residual(self, ctx: Context) -> ufl.Form:
        self._check_domain(ctx)
        r, radius = self._radius(ctx)
        density = 3 * r**2 * ctx.field(self.params.concentration) / radius**3
        form = None
        for what, sign in (("inside", 1), ("outside", -1)):
            u, v = ctx.field(self._name(what)), ctx.test(self._name(what))
            term = (self._along_r(ctx, u) - sign * density) * self._along_r(ctx, v) * ctx.dx()
            form = term if form is None else form + term
        return form

    def dirichlet(self, ctx: Context) -> list[Dirichlet]:
        p = self.params
        return [
            Dirichlet(self._name("inside"), p.centre, 0.0),
            Dirichlet(self._name("outside"), p.surface, 0.0),
        ]

    def _stress_scale(self, ctx: Context) -> Any:
        """Omega E / (1 - nu)."""
        p = self.params
        volume, young = ctx.coefficient(p.partial_molar_volume), ctx.coefficient(p.young_modulus)
        return volume * young / (1 - ctx.coefficient(p.poisson_ratio))

    def derived(self, ctx: Context) -> dict[str, Any]:
        c = ctx.field(self.params.concentration)
        inside, outside = ctx.field(self._name("inside")), ctx.field(self._name("outside"))
        r, radius = self._radius(ctx)
        average = inside + outside
        # cbar(r) = m R^3 / r^3, whose limit at the centre is c(0)
        mean_inside = ufl.conditional(ufl.gt(r, 0), inside * (radius / r) ** 3, c)
        scale = self._stress_scale(ctx)
        return {
            self._name("average"): average,
            self._name("radial_stress"): 2 * scale / 9 * (average - mean_inside),
            self._name("hoop_stress"): scale / 9 * (2 * average + mean_inside - 3 * c),
        }

    def quantities(self, ctx: Context) -> dict[str, Quantity]:
        """The surface hoop stress and the centre stress, each averaged over its boundary."""
        c = ctx.field(self.params.concentration)
        average = ctx.field(self._name("inside")) + ctx.field(self._name("outside"))
        scale = self._stress_scale(ctx)
        stresses = {
            "surface_hoop_stress": (self.params.surface, scale / 3 * (average - c)),
            "centre_stress": (self.params.centre, 2 * scale / 9 * (average - c)),
        }
        return {
            what: Quantity.integral(
                stress / ctx.size(boundary) * ctx.ds(boundary), "Pa", f"Mean {what}"
            )
            for what, (boundary, stress) in stresses.items()
        }
