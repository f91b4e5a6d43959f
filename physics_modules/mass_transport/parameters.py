"""The settings of mass transport: species, their boundaries and the transport medium."""

from typing import Literal

from pydantic import Field, field_validator, model_validator

from app.contracts import FARADAY, FieldNames, Parameters, Property, one_of, quantity

EXPONENTS = {"bruggeman": 1.5, "archie": 2.0}  # default exponent b of D_eff = eps^b D
RESERVED = {"x", "y", "z", "t", "pi"}  # names expressions already use


class ConcentrationBoundary(Parameters):
    """Prescribed concentration (a Dirichlet condition)."""

    type: Literal["concentration"]
    value: Property = quantity("mol/m^3", ..., "Boundary concentration c_b", ge=0)


class FluxBoundary(Parameters):
    """Prescribed molar flux into the domain."""

    type: Literal["flux"]
    value: Property = quantity("mol/(m^2*s)", ..., "Molar flux g entering (negative leaves)")


class MassTransferBoundary(Parameters):
    """Film mass transfer to a bulk concentration (a Robin condition)."""

    type: Literal["mass_transfer"]
    coefficient: Property = quantity("m/s", ..., "Mass-transfer coefficient k_m", ge=0)
    ambient: Property = quantity("mol/m^3", ..., "Bulk concentration c_inf outside", ge=0)


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
    initial: Property = quantity("mol/m^3", 0.0, "Initial concentration", ge=0)
    region: str | None = Field(None, description="Cell region the species lives on (None: all)")
    stop_at_zero: bool = Field(
        False,
        description="End the run, as an event, when the species runs out (its lowest value "
        "within 1e-4 of its initial highest): for a salt whose conductivity and exchange "
        "current vanish with it, where no step past that point has a solution",
    )
    transference: float = quantity(
        "dimensionless", 0.0, "Transference number t+ < 1: reaction currents count (1 - t+)", ge=0
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

    @field_validator("transference")
    @classmethod
    def _below_one(cls, transference: float) -> float:
        if not transference < 1:
            raise ValueError(f"a transference number is below 1, got {transference:g}")
        return transference

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


class MassTransportParameters(Parameters):
    """Settings of a mass-transport instance (see the package docstring)."""

    degree: int = Field(1, ge=1, le=3, description="Lagrange degree of the concentrations")
    coordinates: Literal["cartesian", "axisymmetric", "spherical"] = Field(
        "cartesian", description="Coordinate system (axisymmetric/spherical: r = x)"
    )
    radial_axis: int | None = Field(
        None,
        ge=0,
        le=2,
        description="Spherical: axis of r (1 on a pseudo-2D (x, r) mesh, 2 on a pseudo-3D "
        "(x, y, r) mesh)",
    )
    particle_radius: Property | None = quantity(
        "m",
        None,
        "Spherical along radial_axis: the particle radius R (may differ by region); the mesh's "
        "coordinate along the axis is r/R in [0, 1] (default: it is r itself, in m)",
        gt=0,
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
    transport_factor: Property = quantity(
        "dimensionless",
        1.0,
        'Factor f of D_eff = f eps^b D (or f D with effective_diffusivity = "none"): a '
        "microstructure's eps/tau, e.g. a surrogate per region, times D(c) of the species",
        gt=0,
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
    def _species_names(self) -> "MassTransportParameters":
        names = list(self.species)
        if not names:
            raise ValueError("name at least one species: species.<name> = { ... }")
        for name in names:
            if not name.isidentifier() or name in RESERVED:
                raise ValueError(
                    f"species name {name!r}: use letters, digits and underscores, and not "
                    f"{', '.join(sorted(RESERVED))} (expressions use those names)"
                )
        return self

    @model_validator(mode="after")
    def _no_clashing_fields(self) -> "MassTransportParameters":
        names = list(self.species)
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
        return self

    @model_validator(mode="after")
    def _migration_needs_a_potential(self) -> "MassTransportParameters":
        charged = [name for name, s in self.species.items() if s.charge != 0]
        if charged and self.potential is None:
            raise ValueError(
                f"species {', '.join(charged)} carry a charge: migration needs the potential "
                'field, e.g. potential = "potential"'
            )
        if self.potential is not None and not charged:
            raise ValueError("potential is only read for charged species (charge != 0)")
        return self

    @model_validator(mode="after")
    def _advection_needs_a_velocity(self) -> "MassTransportParameters":
        outflow = [
            f"{name}.{b}"
            for name, s in self.species.items()
            for b, bc in s.boundaries.items()
            if isinstance(bc, OutflowBoundary)
        ]
        if self.velocity is None and (outflow or self.stabilization != "none"):
            what = f"outflow boundary {outflow[0]}" if outflow else "stabilization"
            raise ValueError(f'{what} needs advection: set velocity = "<vector field>"')
        return self

    @model_validator(mode="after")
    def _radial_settings_need_spheres(self) -> "MassTransportParameters":
        if self.radial_axis is not None and self.coordinates != "spherical":
            raise ValueError('radial_axis is only read with coordinates = "spherical"')
        if self.particle_radius is not None and self.radial_axis is None:
            raise ValueError(
                "particle_radius scales the radial coordinate of a pseudo-2D (x, r) mesh: it is "
                'read with coordinates = "spherical" and radial_axis'
            )
        if self.particle_radius is not None and self.stabilization != "none":
            raise ValueError("stabilization is not available with particle_radius")
        return self

    @model_validator(mode="after")
    def _exponent_needs_a_law(self) -> "MassTransportParameters":
        if self.effective_diffusivity == "none" and self.given("exponent", "porosity_floor"):
            raise ValueError(
                "exponent and porosity_floor are only read with effective_diffusivity "
                "bruggeman/archie"
            )
        return self
