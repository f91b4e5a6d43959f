"""The parameters of electrostatics: boundary conditions by type, field names, modes."""

from typing import Literal

from pydantic import Field

from app.contracts import (
    FieldName,
    FieldNames,
    Parameters,
    PerDimension,
    Property,
    extent,
    one_of,
    quantity,
)


class PotentialBoundary(Parameters):
    """Prescribed potential (an electrode held at a voltage)."""

    type: Literal["potential"]
    value: Property = quantity("V", ..., "Potential phi_b")


class CurrentBoundary(Parameters):
    """Prescribed normal current density into the domain (conduction)."""

    type: Literal["current"]
    value: Property = quantity("A/m^2", ..., "Current density entering the domain")


class SurfaceChargeBoundary(Parameters):
    """Prescribed surface charge density (dielectric): the jump of D . n to a field-free outside."""

    type: Literal["surface_charge"]
    value: Property = quantity("C/m^2", ..., "Surface charge density on the boundary")


class TotalCurrentBoundary(Parameters):
    """An equipotential electrode fed with a total current; its potential is solved for."""

    type: Literal["total_current"]
    value: Property = quantity(
        "A", ..., "Total current into the domain (2D: per m of depth, 1D: per m^2; may vary in t)"
    )


class TotalChargeBoundary(Parameters):
    """An equipotential conductor carrying a total charge; its potential is solved for."""

    type: Literal["total_charge"]
    value: Property = quantity(
        "C", ..., "Total charge on the conductor (2D: per m of depth, 1D: per m^2; may vary in t)"
    )


class TerminalBoundary(Parameters):
    """A terminal: an equipotential electrode driven at a set current or held at a set
    voltage; a protocol switches between the two inside one run (a cell's CC-CV cycle)."""

    type: Literal["terminal"]
    current: Property = quantity(
        "A", 0.0, "Current leaving through the terminal while current-driven (may vary in t)"
    )
    voltage: Property = quantity(
        "V", 0.0, "Potential held while voltage-driven; the terminal's initial potential too"
    )
    control: Literal["current", "voltage"] | None = Field(
        None,
        description="What drives the terminal until a protocol step sets the current or the "
        "voltage (default: the voltage when only it is given, else the current)",
    )
    cross_section: PerDimension = extent(
        1.0, "What the current through the boundary is multiplied by to give the terminal's"
    )

    @property
    def initial_control(self) -> str:
        if self.control is not None:
            return self.control
        given = self.given("current", "voltage")
        return "voltage" if given == {"voltage"} else "current"


class FloatingBoundary(Parameters):
    """An isolated conductor: equipotential at an unknown potential, no net current or charge."""

    type: Literal["floating"]


Boundary = one_of(
    PotentialBoundary,
    CurrentBoundary,
    SurfaceChargeBoundary,
    TotalCurrentBoundary,
    TotalChargeBoundary,
    FloatingBoundary,
    TerminalBoundary,
)
Equipotential = TotalCurrentBoundary | TotalChargeBoundary | FloatingBoundary | TerminalBoundary

# What each mode reads: its parameters and its boundary types.
MODE_PARAMETERS = {
    "dielectric": {"permittivity", "charge_density"},
    "conduction": {
        "conductivity",
        "transport_factor",
        "current_source",
        "diffusion_potential",
        "joule_heating",
    },
}
BOUNDARY_TYPES = {
    "dielectric": ("potential", "surface_charge", "total_charge", "floating"),
    "conduction": ("potential", "current", "total_current", "floating", "terminal"),
}


class DiffusionPotential(Parameters):
    """The diffusion term of a concentrated electrolyte: i = -sigma (grad phi - k grad ln c)."""

    concentration: str = Field(description="Name of the concentration field c")
    coefficient: Property = quantity("V", ..., "k = chi R T / F (may use temperature)")


class FieldNames(Parameters):
    """Global names of the fields of one instance (rename them to run several instances)."""

    potential: FieldName = Field("potential", description="Solved potential")
    electric_field: FieldName = Field("electric_field", description="Derived E = -grad phi")
    current_density: FieldName = Field("current_density", description="Derived i (conduction)")
    heat_source: FieldName = Field("heat_source", description="Derived Joule heat i . E")
    charge_density: FieldNames = Field(
        ["charge_density"], description="Charge densities read, if provided (they add up)"
    )
    current_source: FieldNames = Field(
        ["current_source"], description="Current sources read, if provided (they add up)"
    )
    terminal_current: FieldName = Field("terminal_current", description="A terminal's current")
