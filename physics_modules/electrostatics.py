"""Electrostatics: the electric potential in dielectrics and in conductors.

One equation, two readings. With a material coefficient ``a`` and the flux ``G``::

    G = a (grad phi - k grad ln c)        (k = 0 unless a diffusion potential is given)
    -div G = f                            in the domain

* ``mode = "dielectric"``: ``a`` is the permittivity eps, ``f`` the charge density rho and
  ``D = -G = -eps grad phi`` the electric displacement (Gauss's law div D = rho).
* ``mode = "conduction"``: ``a`` is the conductivity sigma, ``f`` a volumetric current source
  s (current injected per volume, e.g. by an electrode reaction) and ``i = -G`` the current
  density, so that div i = s. With ``diffusion_potential`` the current of a concentrated
  electrolyte carries the diffusion term of the concentration field c::

      i = -sigma (grad phi - k grad ln c),     k = chi R T / F  [V]

  and ``joule_heating = true`` provides the heat ``i . E`` (E = -grad phi; sigma |grad phi|^2
  without the diffusion term) to a heat plug-in of the same case, coupled inside Newton.

Boundaries (named; those not listed are insulated, G . n = 0)::

    phi = phi_b                                   "potential" (may depend on t)
    G . n = g                                     "current" (A/m^2 into the domain) or
                                                  "surface_charge" (C/m^2, dielectric)
    phi = U on the boundary, int G . n = I        "total_current" (A) / "total_charge" (C)
    phi = U on the boundary, int G . n = 0        "floating" (an isolated conductor)

The potential U of an equipotential boundary is one more unknown, a global (real) field named
``<potential>_<boundary>`` (``potential_right``). The boundary's equipotential condition is
imposed by Nitsche's method and its net flow by one equation per boundary::

    F_phi += [-(G . n) v - a (grad v . n)(phi - U) + gamma a/h (phi - U) v] ds
    F_U   += [(G . n - gamma a/h (phi - U)) - I/|boundary|] w ds

The bracket in F_U is the consistent normal flux, so its integral is exactly I for the discrete
solution; the symmetric Nitsche terms keep the operator symmetric. Like any potential, phi needs
a reference: a "potential" boundary, or a coupling that fixes its level (electrode kinetics).

Quantities: per boundary the current leaving the domain through it (conduction; the sign
convention of every boundary flow of the built-ins: what leaves is positive, while prescribed
boundary currents are given as what enters) or the charge on it (dielectric): the reaction on
potential boundaries (and point or edge sets held at a potential), the prescribed value on
current/charge boundaries and the consistent flux on equipotential ones (exact for the discrete
solution, so balances close to round-off); the potential of each equipotential boundary; the
electrical power int i . E (conduction) or the stored energy 1/2 int D . E (dielectric).

A case uses it as::

    [physics.electrostatics]
    mode = "conduction"
    conductivity = "5.96e7/(1 + 0.0039*(temperature - 293.15))"
    joule_heating = true
    boundaries.left = { type = "potential", value = "5 mV" }
    boundaries.right = { type = "total_current", value = "-2 A" }

Several instances (a battery's solid and electrolyte potentials) rename their fields:
``fields = { potential = "phi_e", current_density = "i_e", current_source = "a_j" }``. A list
of sources adds them up, each integrated over the region it lives on (one electrode reaction
per electrode): ``current_source = ["a_j_negative", "a_j_positive"]``.
"""

from typing import Literal

import ufl
from pydantic import Field, model_validator

from app.contracts import (
    VACUUM_PERMITTIVITY,
    Context,
    Dirichlet,
    FieldName,
    FieldNames,
    FieldSpec,
    Parameters,
    Physics,
    Property,
    Quantity,
    one_of,
    quantity,
)

NITSCHE_PENALTY = 10.0  # gamma / degree^2; large enough for coercivity on shape-regular meshes


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
)
Equipotential = TotalCurrentBoundary | TotalChargeBoundary | FloatingBoundary

# What each mode reads: its parameters and its boundary types.
MODE_PARAMETERS = {
    "dielectric": {"permittivity", "charge_density"},
    "conduction": {"conductivity", "current_source", "diffusion_potential", "joule_heating"},
}
BOUNDARY_TYPES = {
    "dielectric": ("potential", "surface_charge", "total_charge", "floating"),
    "conduction": ("potential", "current", "total_current", "floating"),
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


class Electrostatics(Physics):
    """Electric potential in dielectrics (Gauss's law) or conductors (charge conservation).

    Provides ``potential`` (V), ``electric_field`` (V/m, derived), in conduction mode
    ``current_density`` (A/m^2, derived) and with Joule heating ``heat_source`` (W/m^3,
    derived); one global potential ``<potential>_<boundary>`` per equipotential boundary.
    Optionally requires ``charge_density`` (C/m^3) or ``current_source`` (A/m^3).
    """

    name = "electrostatics"
    spd = True

    class Parameters(Parameters):
        mode: Literal["dielectric", "conduction"] = Field(
            "dielectric", description="Dielectric (Gauss's law) or conduction (steady current)"
        )
        degree: int = Field(1, ge=1, le=3, description="Lagrange degree of the potential")
        permittivity: Property = quantity(
            "F/m", VACUUM_PERMITTIVITY, "Permittivity eps (dielectric)", gt=0
        )
        charge_density: Property = quantity("C/m^3", 0.0, "Charge density rho (dielectric)")
        conductivity: Property = quantity("S/m", 1.0, "Conductivity sigma (conduction)", gt=0)
        current_source: Property = quantity(
            "A/m^3", 0.0, "Volumetric current source s, div i = s (conduction)"
        )
        diffusion_potential: DiffusionPotential | None = Field(
            None, description="Diffusion term of a concentrated electrolyte (conduction)"
        )
        joule_heating: bool = Field(
            False, description="Provide the Joule heat i . E as heat_source (conduction)"
        )
        initial: Property = quantity(
            "V",
            0.0,
            "Initial potential: where the solve before the first output starts from (a "
            "nonlinear coupling, such as electrode kinetics, needs a good guess)",
        )
        boundaries: dict[str, Boundary] = Field(
            default_factory=dict,
            description="Condition per named boundary; boundaries not listed are insulated",
        )
        fields: FieldNames = Field(default_factory=FieldNames, description="Field names")

        @model_validator(mode="after")
        def _fits_mode(self) -> "Electrostatics.Parameters":
            (other,) = set(MODE_PARAMETERS) - {self.mode}
            misplaced = sorted(self.given(*MODE_PARAMETERS[other]))
            if misplaced:
                raise ValueError(
                    f'{", ".join(misplaced)}: only used in mode = "{other}", but mode is '
                    f'"{self.mode}"'
                )
            accepted = BOUNDARY_TYPES[self.mode]
            for name, bc in self.boundaries.items():
                if bc.type not in accepted:
                    raise ValueError(
                        f"boundary '{name}': type '{bc.type}' belongs to mode = \"{other}\"; "
                        f"{self.mode} mode accepts {', '.join(map(repr, accepted))}"
                    )
            return self

    # Contracts ------------------------------------------------------------------------------
    @property
    def conduction(self) -> bool:
        return self.params.mode == "conduction"

    @property
    def provides(self) -> list[FieldSpec]:
        names, degree = self.params.fields, self.params.degree
        specs = [
            FieldSpec(
                names.potential, "scalar", "V", ("Lagrange", degree), description="Potential phi"
            )
        ]
        specs += [
            FieldSpec(unknown, "scalar", "V", ("Real", 0), description=f"Potential of '{name}'")
            for name, unknown in self._equipotentials().items()
        ]
        specs.append(
            FieldSpec(
                names.electric_field,
                "vector",
                "V/m",
                ("DG", degree - 1),
                derived=True,
                description="Electric field E = -grad phi",
            )
        )
        if self.conduction:
            specs.append(
                FieldSpec(
                    names.current_density,
                    "vector",
                    "A/m^2",
                    ("DG", degree - 1),
                    derived=True,
                    description="Current density i",
                )
            )
        if self.params.joule_heating:
            specs.append(
                FieldSpec(
                    names.heat_source,
                    "scalar",
                    "W/m^3",
                    ("DG", 2 * degree - 2),
                    derived=True,
                    description="Joule heat i . E",
                )
            )
        return specs

    @property
    def requires(self) -> list[FieldSpec]:
        if self.conduction:
            units, description = "A/m^3", "Volumetric current source s, e.g. a j"
        else:
            units, description = "C/m^3", "Charge density rho"
        specs = [
            FieldSpec(name, "scalar", units, optional=True, description=description)
            for name in self._provided_sources()
        ]
        diffusion = self.params.diffusion_potential
        if diffusion is not None:
            specs.append(
                FieldSpec(
                    diffusion.concentration,
                    "scalar",
                    "mol/m^3",
                    description="Concentration c of the diffusion potential",
                )
            )
        return specs

    def _equipotentials(self) -> dict[str, str]:
        """Global unknown (field name) of each equipotential boundary, by boundary name."""
        potential = self.params.fields.potential
        return {
            name: f"{potential}_{name}"
            for name, bc in self.params.boundaries.items()
            if isinstance(bc, Equipotential)
        }

    # Forms ----------------------------------------------------------------------------------
    def _material(self, ctx: Context) -> ufl.core.expr.Expr:
        """Permittivity or conductivity."""
        p = self.params
        return ctx.coefficient(p.conductivity if self.conduction else p.permittivity)

    def _flux(self, ctx: Context) -> ufl.core.expr.Expr:
        """G = a (grad phi - k grad ln c): minus the current density or the displacement."""
        gradient = ufl.grad(ctx.field(self.params.fields.potential))
        diffusion = self.params.diffusion_potential
        if diffusion is not None:
            c = ctx.field(diffusion.concentration)
            gradient -= ctx.coefficient(diffusion.coefficient) * ufl.grad(ufl.ln(c))
        return self._material(ctx) * gradient

    def _provided_sources(self) -> list[str]:
        """Fields of the volumetric source other plug-ins may provide (they add up)."""
        names = self.params.fields
        return names.current_source if self.conduction else names.charge_density

    def _source(self, ctx: Context, v: ufl.core.expr.Expr) -> ufl.Form:
        """Volumetric source f against v: the case's value plus every provided field, each
        over the region it lives on (a reaction in one electrode)."""
        p = self.params
        source = ctx.coefficient(p.current_source if self.conduction else p.charge_density)
        form = source * v * ctx.dx()
        for name in self._provided_sources():
            if ctx.has(name):
                form += ctx.field(name) * v * ctx.dx(ctx.region_of(name))
        return form

    def _nitsche(self, ctx: Context, boundary: str) -> tuple[ufl.core.expr.Expr, ...]:
        """Mismatch phi - U, penalty gamma a/h and consistent inflow G . n - penalty (phi - U)
        on an equipotential boundary (the inflow integrates exactly to its total)."""
        unknown = ctx.field(self._equipotentials()[boundary])
        gap = ctx.field(self.params.fields.potential) - unknown
        h = ufl.CellDiameter(ctx.mesh)
        penalty = NITSCHE_PENALTY * self.params.degree**2 * self._material(ctx) / h
        inflow = ufl.dot(self._flux(ctx), ctx.n) - penalty * gap
        return gap, penalty, inflow

    def residual(self, ctx: Context) -> ufl.Form:
        name = self.params.fields.potential
        v = ctx.test(name)
        flux = self._flux(ctx)
        form = ufl.inner(flux, ufl.grad(v)) * ctx.dx() - self._source(ctx, v)
        for boundary, bc in self.params.boundaries.items():
            if isinstance(bc, CurrentBoundary | SurfaceChargeBoundary):
                form -= ctx.coefficient(bc.value) * v * ctx.ds(boundary)
            elif isinstance(bc, Equipotential):
                gap, penalty, inflow = self._nitsche(ctx, boundary)
                symmetry = self._material(ctx) * ufl.dot(ufl.grad(v), ctx.n) * gap
                ds = ctx.ds(boundary)
                form += (-ufl.dot(flux, ctx.n) * v - symmetry + penalty * gap * v) * ds
                w = ctx.test(self._equipotentials()[boundary])
                form += inflow * w * ds
                if not isinstance(bc, FloatingBoundary):  # the total, spread evenly
                    form -= ctx.coefficient(bc.value) / ctx.size(boundary) * w * ds
        return form

    def dirichlet(self, ctx: Context) -> list[Dirichlet]:
        name = self.params.fields.potential
        return [
            Dirichlet(name, boundary, ctx.coefficient(bc.value))
            for boundary, bc in self.params.boundaries.items()
            if isinstance(bc, PotentialBoundary)
        ]

    def initial(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        return {self.params.fields.potential: ctx.coefficient(self.params.initial)}

    def derived(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        names = self.params.fields
        field = -ufl.grad(ctx.field(names.potential))
        derived = {names.electric_field: field}
        if self.conduction:
            current = -self._flux(ctx)
            derived[names.current_density] = current
            if self.params.joule_heating:
                derived[names.heat_source] = ufl.dot(current, field)
        return derived

    # Outputs --------------------------------------------------------------------------------
    def quantities(self, ctx: Context) -> dict[str, Quantity]:
        """Current leaving through (conduction) or charge on (dielectric) each boundary,
        potentials of the equipotential boundaries, electrical power or stored energy,
        potential extremes."""
        names = self.params.fields
        phi = ctx.field(names.potential)
        flow, units = ("current", "A") if self.conduction else ("charge", "C")
        per_depth = ctx.per_depth(units)
        # What enters through a boundary is the reaction or the inflow G . n; a current leaves.
        sign = -1.0 if self.conduction else 1.0
        boundaries = self.params.boundaries
        fixed = [b for b, bc in boundaries.items() if isinstance(bc, PotentialBoundary)]
        quantities = {}
        for name in dict.fromkeys([*ctx.boundaries, *fixed]):  # fixed points and edges too
            bc = boundaries.get(name)
            description = (
                f"Current leaving through '{name}'" if self.conduction else f"Charge on '{name}'"
            )
            if name in fixed:
                value = Quantity.reaction(names.potential, name, per_depth, description, scale=sign)
            elif isinstance(bc, Equipotential):
                inflow = self._nitsche(ctx, name)[2]
                value = Quantity.integral(sign * inflow * ctx.ds(name), per_depth, description)
            else:  # zero on an insulated boundary: UFL drops the integral
                given = 0 * phi if bc is None else ctx.coefficient(bc.value)
                value = Quantity.integral(sign * given * ctx.ds(name), per_depth, description)
            quantities[f"{flow}_{name}"] = value
        for name, unknown in self._equipotentials().items():
            quantities[unknown] = Quantity.maximum(unknown, "V", f"Potential of '{name}'")
        work = ufl.dot(self._flux(ctx), ufl.grad(phi)) * ctx.dx()  # i . E, or D . E
        if self.conduction:
            quantities["power"] = Quantity.integral(
                work, ctx.per_depth("W"), "Electrical power dissipated, int i . E"
            )
        else:
            quantities["energy"] = Quantity.integral(
                0.5 * work, ctx.per_depth("J"), "Electrostatic energy, 1/2 int D . E"
            )
        return quantities | {
            "max_potential": Quantity.maximum(names.potential, "V", "Highest potential"),
            "min_potential": Quantity.minimum(names.potential, "V", "Lowest potential"),
        }
