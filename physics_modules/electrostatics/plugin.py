"""The electrostatics plug-in (the equations: see the package docstring)."""

from typing import Literal

import ufl
from pydantic import Field, model_validator

from app.contracts import (
    VACUUM_PERMITTIVITY,
    Context,
    Dirichlet,
    FieldSpec,
    Parameters,
    Physics,
    Property,
    Quantity,
    quantity,
)

from .parameters import (
    BOUNDARY_TYPES,
    MODE_PARAMETERS,
    Boundary,
    CurrentBoundary,
    DiffusionPotential,
    Equipotential,
    FieldNames,
    FloatingBoundary,
    PotentialBoundary,
    SurfaceChargeBoundary,
    TerminalBoundary,
)

NITSCHE_PENALTY = 10.0  # gamma / degree^2; large enough for coercivity on shape-regular meshes


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
        initial: Property = quantity(
            "V", 0.0, "Initial guess of the potential (solved before the first output)"
        )
        permittivity: Property = quantity(
            "F/m", VACUUM_PERMITTIVITY, "Permittivity eps (dielectric)", gt=0
        )
        charge_density: Property = quantity("C/m^3", 0.0, "Charge density rho (dielectric)")
        conductivity: Property = quantity("S/m", 1.0, "Conductivity sigma (conduction)", gt=0)
        transport_factor: Property = quantity(
            "dimensionless",
            1.0,
            "Factor f of the effective conductivity f sigma (conduction): a porous medium's "
            "eps/tau, e.g. a surrogate per region, times sigma(c) of its electrolyte",
            gt=0,
        )
        current_source: Property = quantity(
            "A/m^3", 0.0, "Volumetric current source s, div i = s (conduction)"
        )
        diffusion_potential: DiffusionPotential | None = Field(
            None, description="Diffusion term of a concentrated electrolyte (conduction)"
        )
        joule_heating: bool = Field(
            False, description="Provide the Joule heat i . E as heat_source (conduction)"
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
            terminals = [n for n, bc in self.boundaries.items() if bc.type == "terminal"]
            if len(terminals) > 1:
                raise ValueError(
                    f"boundaries {', '.join(terminals)}: a case has one terminal (its current "
                    "and voltage are the case's); make the others total_current boundaries"
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
        if self._terminal() is not None:
            text = "Current leaving through the terminal"
            specs.append(
                FieldSpec(names.terminal_current, "scalar", "A", ("Real", 0), description=text)
            )
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

    def _terminal(self) -> str | None:
        """The boundary that is the terminal, if any."""
        found = (n for n, bc in self.params.boundaries.items() if isinstance(bc, TerminalBoundary))
        return next(found, None)

    # Forms ----------------------------------------------------------------------------------
    def _material(self, ctx: Context) -> ufl.core.expr.Expr:
        """Permittivity, or conductivity (times the transport factor if given)."""
        p = self.params
        if not self.conduction:
            return ctx.coefficient(p.permittivity)
        if p.given("transport_factor"):
            return ctx.coefficient(p.transport_factor) * ctx.coefficient(p.conductivity)
        return ctx.coefficient(p.conductivity)

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
                if isinstance(bc, TerminalBoundary):
                    form += self._terminal_rows(ctx, bc, penalty)
                elif not isinstance(bc, FloatingBoundary):  # the total, spread evenly
                    form -= ctx.coefficient(bc.value) / ctx.size(boundary) * w * ds
        return form

    def _terminal_rows(
        self, ctx: Context, bc: TerminalBoundary, penalty: ufl.core.expr.Expr
    ) -> ufl.Form:
        """The terminal's equations: the current I it delivers leaves through it (in the row of
        its potential U, with the inflow); the control holds I or U at its setting, each
        weighed by its mode's indicator (both rows in A per cross-section and boundary size)."""
        names, boundary = self.params.fields, self._terminal()
        potential, current = (ctx.field(n) for n in self._terminal_unknowns())
        section = ctx.coefficient(bc.cross_section) * ctx.size(boundary)
        settings = {"current": bc.current, "voltage": bc.voltage}
        mode = ctx.control_modes(settings, bc.initial_control)
        held = mode["current"] * (current - ctx.coefficient(bc.current)) / section
        held += mode["voltage"] * penalty * (potential - ctx.coefficient(bc.voltage))
        ds = ctx.ds(boundary)
        form = current / section * ctx.test(self._equipotentials()[boundary]) * ds
        return form + held * ctx.test(names.terminal_current) * ds

    def _terminal_unknowns(self) -> tuple[str, str]:
        """The terminal's potential and current (field names)."""
        return self._equipotentials()[self._terminal()], self.params.fields.terminal_current

    def initial(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        """The potential's guess; a terminal starts at its voltage and, while current-driven,
        at its current."""
        values = {self.params.fields.potential: ctx.coefficient(self.params.initial)}
        terminal = self._terminal()
        if terminal is None:
            return values
        bc = self.params.boundaries[terminal]
        potential, current = self._terminal_unknowns()
        values[potential] = ctx.coefficient(bc.voltage)
        if bc.initial_control == "current":
            values[current] = ctx.coefficient(bc.current)
        return values

    def _terminal_quantities(self, ctx: Context) -> dict[str, Quantity]:
        """The terminal's current and voltage, as quantities of the case: columns without the
        instance's name (its running integral, a discharge capacity, is the case's to declare
        in ``[output.quantities]``)."""
        if self._terminal() is None:
            return {}
        potential, current = self._terminal_unknowns()
        return {
            "current": Quantity.maximum(current, "A", "Current leaving the terminal", "case"),
            "voltage": Quantity.maximum(potential, "V", "Potential of the terminal", "case"),
        }

    def dirichlet(self, ctx: Context) -> list[Dirichlet]:
        name = self.params.fields.potential
        return [
            Dirichlet(name, boundary, ctx.coefficient(bc.value))
            for boundary, bc in self.params.boundaries.items()
            if isinstance(bc, PotentialBoundary)
        ]

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
        quantities |= self._terminal_quantities(ctx)
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
