"""The mass-transport plug-in: species' weak forms, boundary conditions and outputs."""

from typing import Any

import ufl

from app.contracts import (
    FARADAY,
    GAS_CONSTANT,
    BadValue,
    Context,
    Dirichlet,
    FieldSpec,
    Physics,
    Quantity,
)

from .coordinates import Coordinates
from .parameters import (
    EXPONENTS,
    ConcentrationBoundary,
    CurrentBoundary,
    FluxBoundary,
    MassTransferBoundary,
    MassTransportParameters,
    OutflowBoundary,
)


class MassTransport(Physics):
    """Transport of dissolved species: diffusion, advection, migration, reactions.

    Provides each species concentration (mol/m^3) and its flux ``<species>_flux`` (mol/(m^2 s),
    derived); optionally requires ``<species>_source`` (mol/(m^3 s)) from other plug-ins, and
    requires the fields named by ``velocity`` (m/s), ``potential`` (V) and ``current_source``.
    """

    name = "mass_transport"
    Parameters = MassTransportParameters

    # Contracts ------------------------------------------------------------------------------
    @property
    def provides(self) -> list[FieldSpec]:
        degree, specs = self.params.degree, []
        for name, species in self.params.species.items():
            space, region = ("Lagrange", degree), species.region
            specs += [
                FieldSpec(
                    name,
                    "scalar",
                    "mol/m^3",
                    space,
                    region,
                    description=f"Concentration of {name}",
                    **self._stop_at_zero(species),
                ),
                FieldSpec(
                    f"{name}_flux",
                    "vector",
                    "mol/(m^2*s)",
                    ("DG", degree - 1),
                    region,
                    derived=True,
                    description=f"Molar flux N of {name}",
                ),
            ]
        return specs

    @staticmethod
    def _stop_at_zero(species: Any) -> dict[str, Any]:
        """The bounds of a species that ends the run when it runs out (app/bound_stops.py)."""
        return {"bounds": (0.0, None), "at_bounds": "stop"} if species.stop_at_zero else {}

    @property
    def requires(self) -> list[FieldSpec]:
        p = self.params
        specs = [
            FieldSpec(
                source, "scalar", "mol/(m^3*s)", optional=True, description=f"Source of {name}"
            )
            for name, species in p.species.items()
            for source in species.provided(name)
        ]
        if p.velocity is not None:
            specs.append(FieldSpec(p.velocity, "vector", "m/s", description="Darcy velocity q"))
        if p.potential is not None:
            specs.append(FieldSpec(p.potential, "scalar", "V", description="Electric potential"))
        currents = {current for s in p.species.values() for current in s.current_source}
        specs += [
            FieldSpec(name, "scalar", "A/m^3", description="Electrode reaction current a j")
            for name in sorted(currents)
        ]
        return specs

    # Geometry -------------------------------------------------------------------------------
    def _coordinates(self, ctx: Context) -> Coordinates:
        return Coordinates(self.params, ctx)

    def _boundary_measure(self, ctx: Context, name: str, boundary: str) -> Any:
        """A boundary of a species that lives on a region: its part on the region."""
        return ctx.ds(boundary, self.params.species[name].region)

    # Constitutive parts ---------------------------------------------------------------------
    def _porosity(self, ctx: Context) -> Any:
        return ctx.coefficient(self.params.porosity)

    def _diffusivity(self, ctx: Context, name: str) -> Any:
        """Effective diffusivity D_eff = f max(eps, eps_floor)^b D."""
        p = self.params
        D = ctx.coefficient(p.species[name].diffusivity)
        if p.given("transport_factor"):
            D = ctx.coefficient(p.transport_factor) * D
        if p.effective_diffusivity == "none":
            return D
        exponent = p.exponent if p.exponent is not None else EXPONENTS[p.effective_diffusivity]
        porosity = self._porosity(ctx)
        if p.porosity_floor > 0:
            porosity = ufl.max_value(porosity, p.porosity_floor)
        return porosity**exponent * D

    def _drift(self, ctx: Context, name: str) -> Any:
        """Velocity carrying the species: q plus the migration drift -z D_eff F/(RT) grad phi
        (None when neither applies)."""
        p, species = self.params, self.params.species[name]
        drift = None
        if p.velocity is not None:
            drift = self._coordinates(ctx).along(ctx.field(p.velocity))
        if species.charge != 0:
            mobility = self._diffusivity(ctx, name) * FARADAY / GAS_CONSTANT
            gradient = self._coordinates(ctx).gradient(ctx.field(p.potential))
            migration = -species.charge * mobility / ctx.coefficient(p.temperature) * gradient
            drift = migration if drift is None else drift + migration
        return drift

    def _flux(self, ctx: Context, name: str) -> Any:
        """Molar flux N = -D_eff grad c + (q + migration drift) c."""
        c = ctx.field(name)
        flux = -self._diffusivity(ctx, name) * self._coordinates(ctx).gradient(c)
        drift = self._drift(ctx, name)
        return flux if drift is None else flux + drift * c

    def _sources(self, ctx: Context, name: str) -> list[tuple[Any, str | None]]:
        """Volumetric sources S per total volume, each with the region it is integrated over:
        the case's over the species' domain, a provided one where it lives (one electrode's
        reaction, say)."""
        species = self.params.species[name]
        fields = [(s, 1.0) for s in species.provided(name) if ctx.has(s)]
        fields += [(s, species.share) for s in species.current_source]
        return [(ctx.coefficient(species.source), species.region)] + [
            (scale * ctx.field(s), ctx.region_of(s) or species.region) for s, scale in fields
        ]

    def _source_measure(self, ctx: Context, region: str | None) -> Any:
        """Cell measure of the sources: nodal quadrature (lumping) for degree 1, except on a
        pseudo-2D mesh, where x has no diffusion to make lumping along x consistent."""
        dx = ctx.dx(region)
        lumped = self.params.degree == 1 and self.params.lumped_sources
        if lumped and not self._coordinates(ctx).radial_only:
            # reconstruct keeps the region (calling the measure would reset it to everywhere)
            return dx.reconstruct(metadata={"quadrature_rule": "vertex", "quadrature_degree": 1})
        return dx

    def _outflows(self, ctx: Context, name: str) -> dict[str, Any]:
        """Molar flux leaving through each boundary with a natural condition."""
        c, species = ctx.field(name), self.params.species[name]
        outflows = {}
        for boundary, bc in species.boundaries.items():
            match bc:
                case FluxBoundary():
                    outflows[boundary] = -ctx.coefficient(bc.value)
                case MassTransferBoundary():
                    k = ctx.coefficient(bc.coefficient)
                    outflows[boundary] = k * (c - ctx.coefficient(bc.ambient))
                case CurrentBoundary():
                    outflows[boundary] = -species.share * ctx.coefficient(bc.value)
                case OutflowBoundary():
                    velocity = self._coordinates(ctx).along(ctx.field(self.params.velocity))
                    outflows[boundary] = ufl.dot(velocity, ctx.n) * c
        return outflows

    def _supg(self, ctx: Context, name: str) -> Any:
        """SUPG term: tau (strong steady residual, times W) (drift . grad w)."""
        drift = self._drift(ctx, name)
        w, W = ctx.test(name), self._coordinates(ctx).weight()
        flux, D = self._flux(ctx, name), self._diffusivity(ctx, name)
        if ufl.shape(D):  # an anisotropic diffusivity: its mean principal value sets tau
            D = ufl.tr(D) / ctx.gdim
        h = ufl.CellDiameter(ctx.mesh) / self.params.degree
        speed2 = ufl.dot(drift, drift)
        tau = 1 / ufl.sqrt(4 * speed2 / h**2 + 9 * (4 * D / h**2) ** 2 + 1e-300)
        # W * (1/W) div(W N) = W div N + grad W . N: regular on the axis
        strong = W * ufl.div(flux)
        if not isinstance(W, int):
            strong += ufl.dot(ufl.grad(W), flux)
        streamline = tau * ufl.dot(drift, ufl.grad(w))
        form = streamline * strong * ctx.dx(self.params.species[name].region)
        for source, region in self._sources(ctx, name):
            form -= streamline * W * source * ctx.dx(region)
        return form

    # The plug-in interface ------------------------------------------------------------------
    def residual(self, ctx: Context) -> ufl.Form:
        coordinates, form = self._coordinates(ctx), None
        W, W_s = coordinates.weight(), coordinates.surface_weight()
        for name, species in self.params.species.items():
            w = ctx.test(name)
            dx = ctx.dx(species.region)
            term = -ufl.inner(self._flux(ctx, name), coordinates.gradient(w)) * W * dx
            for source, region in self._sources(ctx, name):
                term -= source * w * W * self._source_measure(ctx, region)
            for boundary, outflow in self._outflows(ctx, name).items():
                term += outflow * w * W_s * self._boundary_measure(ctx, name, boundary)
            if self.params.stabilization == "supg":
                term += self._supg(ctx, name)
            form = term if form is None else form + term
        return form

    def storage(self, ctx: Context) -> dict[str, Any]:
        pore_space = self._porosity(ctx) * self._coordinates(ctx).weight()
        return {name: pore_space * ctx.field(name) for name in self.params.species}

    def dirichlet(self, ctx: Context) -> list[Dirichlet]:
        return [
            Dirichlet(name, boundary, ctx.coefficient(bc.value))
            for name, species in self.params.species.items()
            for boundary, bc in species.boundaries.items()
            if isinstance(bc, ConcentrationBoundary)
        ]

    def initial(self, ctx: Context) -> dict[str, Any]:
        return {
            name: ctx.coefficient(species.initial) for name, species in self.params.species.items()
        }

    def derived(self, ctx: Context) -> dict[str, Any]:
        return {f"{name}_flux": self._flux(ctx, name) for name in self.params.species}

    def quantities(self, ctx: Context) -> dict[str, Quantity]:
        """Per species: amount (per region too), flow leaving through each boundary, source
        integral and extremes.

        Flows are the prescribed fluxes on natural boundaries and the reactions of the discrete
        equations on fixed-concentration boundaries, so that d(amount)/dt equals
        generated - sum of outflows to round-off (BDF; under Crank-Nicolson by the trapezoidal
        rule, every flow being the flow at the row's time). Amounts and flows carry the coordinate
        system's measure: per unit depth (2D) or area (1D) in cartesian coordinates, the full
        revolution (axisymmetric), the full sphere (spherical; integrated over x on a pseudo-2D
        mesh).
        """
        coordinates, quantities = self._coordinates(ctx), _Columns()
        amount, rate = coordinates.units("mol"), coordinates.units("mol/s")
        W, W_s = coordinates.weight(), coordinates.surface_weight()
        stored = self._porosity(ctx) * W
        for name, species in self.params.species.items():
            c, region = ctx.field(name), species.region
            quantities[f"amount_{name}"] = Quantity.integral(
                stored * c * ctx.dx(region), amount, f"Amount of {name}"
            )
            if region is None and len(ctx.regions) > 1:
                for part in ctx.regions:
                    quantities[f"amount_{name}_{part}"] = Quantity.integral(
                        stored * c * ctx.dx(part), amount, f"Amount of {name} in '{part}'"
                    )
            outflows = self._outflows(ctx, name)
            conditions = species.boundaries.items()
            fixed = [b for b, bc in conditions if isinstance(bc, ConcentrationBoundary)]
            for boundary in dict.fromkeys([*ctx.boundaries, *fixed]):  # points, edges too
                description = f"{name} leaving through '{boundary}'"
                if boundary in fixed:
                    flow = Quantity.reaction(name, boundary, rate, description, scale=-1.0)
                else:  # zero on a boundary without flux: UFL drops the integral
                    outflow = outflows.get(boundary, 0 * c)
                    measure = self._boundary_measure(ctx, name, boundary)
                    flow = Quantity.integral(outflow * W_s * measure, rate, description)
                quantities[f"outflow_{name}_{boundary}"] = flow
            generated = sum(
                source * W * self._source_measure(ctx, where)
                for source, where in self._sources(ctx, name)
            )
            quantities[f"generated_{name}"] = Quantity.integral(
                generated, rate, f"Volumetric sources of {name} integrated"
            )
            quantities[f"max_{name}"] = Quantity.maximum(name, "mol/m^3", f"Highest {name}")
            quantities[f"min_{name}"] = Quantity.minimum(name, "mol/m^3", f"Lowest {name}")
        return dict(quantities)


class _Columns(dict):
    """Quantities by name, refusing a name twice (species "c_a" vs species "c" in region "a")."""

    def __setitem__(self, key: str, value: Quantity) -> None:
        if key in self:
            raise BadValue(f"two outputs are named '{key}'; rename a species", token=key)
        super().__setitem__(key, value)
