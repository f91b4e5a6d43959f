"""Mass transport: diffusion, advection, migration and reaction of dissolved species.

Each species ``X`` named in the case is a concentration field ``c`` (mol/m^3, per unit pore
volume) obeying a conservation law in a porous medium of porosity ``eps``::

    d(eps c)/dt + div N = S                                      in the domain (or a region)
    N = -D_eff grad c  +  q c  -  z D_eff c F/(R T) grad phi      flux (mol/(m^2 s))
    D_eff = max(eps, eps_floor)^b D    (Bruggeman b = 1.5, Archie b = m = 2, or D_eff = D)
    S = source(c, ...) + X_source + (1 - t+) s_I/(n F)           volumetric sources

with ``eps_floor`` (``porosity_floor``, default 0) the diffusive path a pore space that fills
up (a clogging mineral) keeps, ``q`` the Darcy (superficial) velocity of a vector field named
by ``velocity``, ``z`` the charge number (Nernst-Planck migration in the potential field named
by ``potential``) and ``S`` per unit total volume: the case's ``source`` (an expression that
may use the species itself, "-2e-3*c" or Fisher's "u*(1 - u)": the unknown enters, so Newton
stays consistent), an optional
field ``X_source`` that another plug-in provides (reaction kinetics), and for the salt of a
binary electrolyte the share ``(1 - t+)/(n F)`` of an electrode reaction current ``s_I`` (A/m^3,
the field named by ``current_source``: ``a j`` of a battery model), which gives the DFN
electrolyte equation ``eps dc/dt = div(eps^b D grad c) + (1 - t+) a j/F``. Several providers
add up (``sources = ["X_anode", "X_cathode"]``, ``current_source = ["a_j_n", "a_j_p"]``), each
integrated over the region its field lives on (one electrode reaction per electrode).

Boundaries (per species; those not listed have no flux, N . n = 0)::

    c = c_b                                  "concentration"
    -N . n = g                               "flux" (mol/(m^2 s) entering)
    N . n = k_m (c - c_inf)                  "mass_transfer" (a Robin condition)
    -N . n = (1 - t+) i/(n F)                "current" (i in A/m^2 entering through an electrode)
    N . n = (q . n) c                        "outflow" (advection leaves, no diffusive flux)

Coordinates (per instance): ``cartesian``; ``axisymmetric`` (r = x, integrals carry 2 pi r: the
full revolution; on a 1D mesh a cylinder per unit length); ``spherical`` (integrals carry
4 pi r^2; on a 1D mesh r = x, on a pseudo-2D (x, r) mesh r is the coordinate ``radial_axis``
and transport acts along r only, x being a parameter: a particle at every x, as a battery DFN
needs). The weak form is the flux form weighted by the coordinate system's measure W::

    int [eps W dc/dt w - W N . grad w - W S w] dx + int W (N . n) w ds = 0

Péclet limits: a Galerkin solution oscillates where the cell Péclet number |q| h/(2 D_eff)
exceeds 1; refine, or set ``stabilization = "supg"`` (streamline upwinding built from the strong
steady residual, migration drift included). The time derivative is not part of that residual
(the framework owns time), so transient runs carry an O(tau dc/dt) error that vanishes at
steady state.

Positivity: with degree 1 the sources are integrated at the nodes (lumped), so a consumption
reaction cannot drive c negative in an unresolved reaction layer; the capacity term keeps the
framework's consistent mass matrix, so steps dt < h^2/(6 D_eff) after a jump may undershoot.
The stored amount eps c is handed to the framework as a storage, so a porosity that changes in
time (a pore space filling with mineral, solved in the same group) conserves the amount exactly.

Outputs per species: the flux ``X_flux`` (derived, without stabilisation), the amount (with
porosity; per region too), the flow leaving through each boundary, the source integral and the
extremes (see :meth:`MassTransport.quantities`). Field names are the species names, so two
instances must name different species.

A case uses it as::

    [physics.electrolyte]
    type = "mass_transport"
    porosity = { anode = 0.25, separator = 0.47, cathode = 0.335 }

    [physics.electrolyte.species.c_e]
    diffusivity = "8.794e-11*(c_e/1000)**2 - 3.972e-10*(c_e/1000) + 4.862e-10"
    transference = 0.2594
    current_source = "a_j"                  # A/m^3, from electrode kinetics
    initial = "1000 mol/m^3"

    [physics.tracer]
    type = "mass_transport"
    velocity = "velocity"                   # provided by a Darcy flow plug-in
    stabilization = "supg"
    species.dye.diffusivity = "1e-9 m^2/s"
    species.dye.source = "-1e-4*dye"
    species.dye.boundaries.inlet = { type = "concentration", value = "1 mol/m^3" }
    species.dye.boundaries.outlet = { type = "outflow" }
"""

import math
from typing import Any, Literal

import ufl
from pydantic import Field, field_validator, model_validator

from app.contracts import (
    FARADAY,
    GAS_CONSTANT,
    BadValue,
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

EXPONENTS = {"bruggeman": 1.5, "archie": 2.0}  # default exponent b of D_eff = eps^b D
RESERVED = {"x", "y", "z", "t", "pi"}  # names expressions already use


class ConcentrationBoundary(Parameters):
    """Prescribed concentration (a Dirichlet condition)."""

    type: Literal["concentration"]
    value: Property = quantity("mol/m^3", ..., "Boundary concentration c_b")


class FluxBoundary(Parameters):
    """Prescribed molar flux into the domain."""

    type: Literal["flux"]
    value: Property = quantity("mol/(m^2*s)", ..., "Molar flux g entering (negative leaves)")


class MassTransferBoundary(Parameters):
    """Film mass transfer to a bulk concentration (a Robin condition)."""

    type: Literal["mass_transfer"]
    coefficient: Property = quantity("m/s", ..., "Mass-transfer coefficient k_m", ge=0)
    ambient: Property = quantity("mol/m^3", ..., "Bulk concentration c_inf outside")


class CurrentBoundary(Parameters):
    """An electrode reaction producing the species: flux (1 - t+) i/(n F) into the domain."""

    type: Literal["current"]
    value: Property = quantity("A/m^2", ..., "Current density i entering through the electrode")


class OutflowBoundary(Parameters):
    """Free outflow: advection carries the species out, the diffusive flux is zero."""

    type: Literal["outflow"]


Boundary = one_of(
    ConcentrationBoundary, FluxBoundary, MassTransferBoundary, CurrentBoundary, OutflowBoundary
)


class Species(Parameters):
    """One transported species; its name is the name of its concentration field."""

    diffusivity: Property = quantity(
        "m^2/s",
        ...,
        "Free diffusivity D (may use fields, the species itself included; a surrogate may give "
        "a tensor)",
        ge=0,
        tensor=True,
    )
    charge: int = Field(0, description="Charge number z (migration needs `potential`)")
    source: Property = quantity(
        "mol/(m^3*s)", 0.0, "Volumetric source per total volume (may use the species itself)"
    )
    initial: Property = quantity("mol/m^3", 0.0, "Initial concentration")
    region: str | None = Field(None, description="Cell region the species lives on (None: all)")
    transference: float = Field(
        0.0, ge=0, lt=1, description="Transference number t+: reaction currents count (1 - t+)"
    )
    electrons: float = Field(
        1.0, description="Electrons n per species produced by the electrode reaction"
    )
    current_source: FieldNames = Field(
        [], description="Fields (A/m^3) of electrode reaction currents producing the species"
    )
    sources: FieldNames | None = Field(
        None, description="Source fields (mol/(m^3*s)) other plug-ins provide (default: X_source)"
    )
    boundaries: dict[str, Boundary] = Field(
        default_factory=dict,
        description="Condition per named boundary; boundaries not listed have no flux",
    )

    @field_validator("electrons")
    @classmethod
    def _nonzero(cls, electrons: float) -> float:
        if electrons == 0:
            raise ValueError("electrons must not be zero")
        return electrons

    @property
    def share(self) -> float:
        """Species produced per charge of a reaction current: (1 - t+)/(n F)."""
        return (1 - self.transference) / (self.electrons * FARADAY)

    def provided(self, name: str) -> list[str]:
        """Fields of the sources other plug-ins provide for the species ``name``."""
        return [f"{name}_source"] if self.sources is None else self.sources


class MassTransport(Physics):
    """Transport of dissolved species: diffusion, advection, migration, reactions.

    Provides each species concentration (mol/m^3) and its flux ``<species>_flux`` (mol/(m^2 s),
    derived); optionally requires ``<species>_source`` (mol/(m^3 s)) from other plug-ins, and
    requires the fields named by ``velocity`` (m/s), ``potential`` (V) and ``current_source``.
    """

    name = "mass_transport"

    class Parameters(Parameters):
        degree: int = Field(1, ge=1, le=3, description="Lagrange degree of the concentrations")
        coordinates: Literal["cartesian", "axisymmetric", "spherical"] = Field(
            "cartesian", description="Coordinate system (axisymmetric/spherical: r = x)"
        )
        radial_axis: int | None = Field(
            None, ge=0, le=1, description="Spherical: axis of r (1 on a pseudo-2D (x, r) mesh)"
        )
        porosity: Property = quantity(
            "dimensionless", 1.0, "Porosity eps: capacity and effective diffusivity", gt=0
        )
        effective_diffusivity: Literal["bruggeman", "archie", "none"] = Field(
            "bruggeman", description="D_eff = eps^b D (Bruggeman b = 1.5, Archie b = 2) or D"
        )
        exponent: float | None = Field(
            None, gt=0, description="Exponent b of D_eff = eps^b D (default 1.5 or 2)"
        )
        porosity_floor: float = Field(
            0.0, ge=0, lt=1, description="eps_floor of D_eff = max(eps, eps_floor)^b D"
        )
        velocity: str | None = Field(
            None, description="Vector field (m/s) of the Darcy velocity q advecting the species"
        )
        potential: str | None = Field(
            None, description="Field (V) of the electric potential driving charged species"
        )
        temperature: Property = quantity(
            "K", 298.15, "Temperature T of migration (may name a field)", gt=0
        )
        stabilization: Literal["none", "supg"] = Field(
            "none", description="Streamline-upwind stabilisation of advection (and migration)"
        )
        lumped_sources: bool = Field(
            True, description="Integrate sources at the nodes (degree 1): keeps c >= 0"
        )
        species: dict[str, Species] = Field(description="Species by name (= field name)")

        @model_validator(mode="after")
        def _consistent(self) -> "MassTransport.Parameters":
            names = list(self.species)
            if not names:
                raise ValueError("name at least one species: species.<name> = { ... }")
            for name in names:
                if not name.isidentifier() or name in RESERVED:
                    raise ValueError(
                        f"species name {name!r}: use letters, digits and underscores, and not "
                        f"{', '.join(sorted(RESERVED))} (expressions use those names)"
                    )
            derived = {f"{name}_{suffix}": name for name in names for suffix in ("flux", "source")}
            read = [("velocity", self.velocity), ("potential", self.potential)]
            for n, s in self.species.items():
                read += [(f"species.{n}.current_source", f) for f in s.current_source]
                read += [(f"species.{n}.sources", f) for f in s.sources or []]
            for name in names:
                if name in derived:
                    raise ValueError(
                        f"species '{name}' clashes with the field '{name}' of species "
                        f"'{derived[name]}'; rename it"
                    )
                clash = [key for key, field in read if field == name]
                if clash:
                    raise ValueError(f"species '{name}' is also the field {clash[0]} reads")
            charged = [name for name, s in self.species.items() if s.charge != 0]
            if charged and self.potential is None:
                raise ValueError(
                    f"species {', '.join(charged)} carry a charge: migration needs the potential "
                    'field, e.g. potential = "potential"'
                )
            if self.potential is not None and not charged:
                raise ValueError("potential is only read for charged species (charge != 0)")
            outflow = [
                f"{name}.{b}"
                for name, s in self.species.items()
                for b, bc in s.boundaries.items()
                if isinstance(bc, OutflowBoundary)
            ]
            if self.velocity is None and (outflow or self.stabilization != "none"):
                what = f"outflow boundary {outflow[0]}" if outflow else "stabilization"
                raise ValueError(f'{what} needs advection: set velocity = "<vector field>"')
            if self.radial_axis is not None and self.coordinates != "spherical":
                raise ValueError('radial_axis is only read with coordinates = "spherical"')
            if self.effective_diffusivity == "none" and self.given("exponent", "porosity_floor"):
                raise ValueError(
                    "exponent and porosity_floor are only read with effective_diffusivity "
                    "bruggeman/archie"
                )
            return self

    # Contracts ------------------------------------------------------------------------------
    @property
    def provides(self) -> list[FieldSpec]:
        degree, specs = self.params.degree, []
        for name, species in self.params.species.items():
            space, region = ("Lagrange", degree), species.region
            specs += [
                FieldSpec(
                    name, "scalar", "mol/m^3", space, region, description=f"Concentration of {name}"
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
    def _axis(self, ctx: Context) -> int:
        """The radial axis (axisymmetric and spherical), checked against the mesh."""
        p = self.params
        axis = p.radial_axis or 0
        if p.coordinates != "cartesian" and ctx.gdim > 2:
            raise BadValue(
                f"{p.coordinates} coordinates need a 1D or 2D mesh, got {ctx.gdim}D",
                token="coordinates",
                fix="use cartesian coordinates on 3D meshes",
            )
        if axis >= ctx.gdim:
            raise BadValue(
                f"radial_axis = {axis}, but the mesh is {ctx.gdim}D", token="radial_axis"
            )
        return axis

    def _weight(self, ctx: Context) -> Any:
        """Measure of the coordinate system: 1, 2 pi r or 4 pi r^2."""
        coordinates = self.params.coordinates
        if coordinates == "cartesian":
            return 1
        r = ctx.x[self._axis(ctx)]
        return 2 * math.pi * r if coordinates == "axisymmetric" else 4 * math.pi * r**2

    def _radial_only(self, ctx: Context) -> bool:
        """Spherical on a pseudo-2D mesh: transport along the radial axis only."""
        return self.params.coordinates == "spherical" and ctx.gdim == 2

    def _along(self, ctx: Context, vector: Any) -> Any:
        """A vector as transport sees it (its radial part on a pseudo-2D mesh)."""
        if not self._radial_only(ctx):
            return vector
        axis = self._axis(ctx)
        return vector[axis] * ufl.unit_vector(axis, ctx.gdim)

    def _units(self, ctx: Context, base: str) -> str:
        """Units of an integral of the coordinate system's measure (base: mol or mol/s)."""
        coordinates = self.params.coordinates
        if coordinates == "cartesian":
            return ctx.per_depth(base)
        if coordinates == "axisymmetric":
            return base if ctx.gdim == 2 else f"{base}/m"
        return base if ctx.gdim == 1 else base.replace("mol", "mol*m")

    # Constitutive parts ---------------------------------------------------------------------
    def _porosity(self, ctx: Context) -> Any:
        return ctx.coefficient(self.params.porosity)

    def _diffusivity(self, ctx: Context, name: str) -> Any:
        """Effective diffusivity D_eff = max(eps, eps_floor)^b D."""
        p = self.params
        D = ctx.coefficient(p.species[name].diffusivity)
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
            drift = self._along(ctx, ctx.field(p.velocity))
        if species.charge != 0:
            mobility = self._diffusivity(ctx, name) * FARADAY / GAS_CONSTANT
            gradient = self._along(ctx, ufl.grad(ctx.field(p.potential)))
            migration = -species.charge * mobility / ctx.coefficient(p.temperature) * gradient
            drift = migration if drift is None else drift + migration
        return drift

    def _flux(self, ctx: Context, name: str) -> Any:
        """Molar flux N = -D_eff grad c + (q + migration drift) c."""
        c = ctx.field(name)
        flux = -self._diffusivity(ctx, name) * self._along(ctx, ufl.grad(c))
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
        if lumped and not self._radial_only(ctx):
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
                    velocity = self._along(ctx, ctx.field(self.params.velocity))
                    outflows[boundary] = ufl.dot(velocity, ctx.n) * c
        return outflows

    def _supg(self, ctx: Context, name: str) -> Any:
        """SUPG term: tau (strong steady residual, times W) (drift . grad w)."""
        drift = self._drift(ctx, name)
        w, W = ctx.test(name), self._weight(ctx)
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
        W, form = self._weight(ctx), None
        for name, species in self.params.species.items():
            w = ctx.test(name)
            dx = ctx.dx(species.region)
            term = -ufl.inner(self._flux(ctx, name), ufl.grad(w)) * W * dx
            for source, region in self._sources(ctx, name):
                term -= source * w * W * self._source_measure(ctx, region)
            for boundary, outflow in self._outflows(ctx, name).items():
                term += outflow * w * W * ctx.ds(boundary)
            if self.params.stabilization == "supg":
                term += self._supg(ctx, name)
            form = term if form is None else form + term
        return form

    def storage(self, ctx: Context) -> dict[str, Any]:
        pore_space = self._porosity(ctx) * self._weight(ctx)
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
        amount, rate = self._units(ctx, "mol"), self._units(ctx, "mol/s")
        W, quantities = self._weight(ctx), _Columns()
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
                    flow = Quantity.integral(outflow * W * ctx.ds(boundary), rate, description)
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
