"""Butler-Volmer kinetics: the interfacial reaction of a porous electrode.

At every point of an electrode the reaction current density j (A/m^2 of interface, positive
anodic) follows from the overpotential between the solid and the electrolyte::

    eta = phi_s - phi_e - U(theta, T)          U(theta, T) = U_ref(theta) + (T - T_ref) dU/dT
    j   = i0 [exp(alpha_a F eta/(R T)) - exp(-alpha_c F eta/(R T))]     kinetics = "butler_volmer"
    j   = i0 (alpha_a + alpha_c) F eta/(R T)                            kinetics = "linear"

with the exchange current density i0 and the open-circuit potential U expressions of the fields
(electrolyte and particle-surface concentrations, temperature) and of the surface stoichiometry
theta (``stoichiometry``, e.g. ``"c_s/33133"``, which the expressions name by the field name in
``fields.stoichiometry``). The plug-in solves nothing: it derives, as UFL the coupled Newton
solve differentiates exactly,

    volumetric current             a j                           (A/m^3)
    solid current source          -a j    div i_s = -a j         (electrostatics of phi_s)
    electrolyte current source    +a j    div i_e = +a j         (electrostatics of phi_e)
    molar source                  (1 - t+) a j/(n F)             (mass transport: <X>_source)
    reaction heat                  a j (eta + T dU/dT)          (heat: heat_source)

with a the specific interfacial area (1/m). Charge is conserved by construction: what leaves the
solid enters the electrolyte. The temperature is the ``temperature`` parameter when the case
gives one, else the ``temperature`` field when a plug-in provides it, else 298.15 K. The molar
source and the heat are only provided when ``fields`` names them; the other field names are
renamed there to run several electrodes.

A case uses it as (the graphite electrode of the Chen2020 cell)::

    [physics.negative]
    type = "butler_volmer"
    specific_area = "3.84e5 1/m"
    stoichiometry = "c_s_n/33133"
    exchange_current_density = "6.48e-7*sqrt(c_e*c_s_n*(33133 - c_s_n))"
    open_circuit_potential = '''(1.9793*exp(-39.3631*theta_n) + 0.2482
        - 0.0909*tanh(29.8538*(theta_n - 0.1234)) - 0.04478*tanh(14.9159*(theta_n - 0.2769))
        - 0.0205*tanh(30.4444*(theta_n - 0.6103)))'''

    [physics.negative.fields]
    stoichiometry = "theta_n"
    electrolyte_current_source = "a_j_e"      # electrostatics of phi_e: fields.current_source
    solid_current_source = "a_j_s"
"""

from typing import Any, Literal

import ufl
from pydantic import Field, model_validator

from app.contracts import (
    FARADAY,
    GAS_CONSTANT,
    STANDARD_TEMPERATURE,
    Context,
    FieldName,
    FieldSpec,
    Formula,
    Parameters,
    Physics,
    Property,
    Quantity,
    quantity,
)


class FieldNames(Parameters):
    """Global names of the fields the instance reads and derives."""

    solid_potential: FieldName = Field("phi_s", description="Solid (electrode) potential read")
    electrolyte_potential: FieldName = Field("phi_e", description="Electrolyte potential read")
    temperature: FieldName = Field("temperature", description="Temperature read, if provided")
    stoichiometry: FieldName = Field("stoichiometry", description="Derived surface stoichiometry")
    overpotential: FieldName = Field("overpotential", description="Derived eta")
    current_density: FieldName = Field("interfacial_current", description="Derived j (A/m^2)")
    volumetric_current: FieldName = Field("volumetric_current", description="Derived a j (A/m^3)")
    solid_current_source: FieldName = Field("solid_current_source", description="Derived -a j")
    electrolyte_current_source: FieldName = Field(
        "electrolyte_current_source", description="Derived +a j"
    )
    molar_source: FieldName | None = Field(None, description="Derived (1 - t+) a j/(n F), if named")
    heat_source: FieldName | None = Field(None, description="Derived reaction heat, if named")


class ButlerVolmer(Physics):
    """Butler-Volmer (or linearised) electrode kinetics between a solid and an electrolyte.

    Requires the solid and electrolyte potentials (V), optionally ``temperature``; derives the
    overpotential, j, a j, the current sources of both potentials, and when named the molar
    source of the electrolyte species and the reaction heat.
    """

    name = "butler_volmer"

    class Parameters(Parameters):
        kinetics: Literal["butler_volmer", "linear"] = Field(
            "butler_volmer", description="Exponential law, or its linearisation at eta = 0"
        )
        specific_area: Property = quantity("1/m", 1.0, "Interfacial area per volume a", ge=0)
        exchange_current_density: Property = quantity(
            "A/m^2", ..., "i0 (may use concentrations, stoichiometry, temperature)", ge=0
        )
        open_circuit_potential: Property = quantity(
            "V", 0.0, "U_ref at the reference temperature (may use the stoichiometry)"
        )
        stoichiometry: Property | None = quantity(
            "dimensionless", None, "Surface stoichiometry theta, e.g. c_s/c_max"
        )
        entropic_coefficient: Property | None = quantity("V/K", None, "dU/dT (default 0)")
        reference_temperature: float = quantity("K", 298.15, "T_ref of U_ref", gt=0)
        anodic_transfer: float = Field(0.5, gt=0, description="alpha_a")
        cathodic_transfer: float = Field(0.5, gt=0, description="alpha_c")
        temperature: Property | None = quantity(
            "K", None, "T (default: the temperature field, if any, else 298.15 K)", gt=0
        )
        transference: float = Field(0.0, ge=0, lt=1, description="t+ of the molar source")
        electrons: float = Field(1.0, description="n: species produced per n electrons")
        fields: FieldNames = Field(default_factory=FieldNames, description="Field names")

        @model_validator(mode="after")
        def _consistent(self) -> "ButlerVolmer.Parameters":
            theta = self.fields.stoichiometry
            if isinstance(self.stoichiometry, Formula) and theta in self.stoichiometry.names:
                raise ValueError(f"stoichiometry: defines '{theta}', so it cannot use it")
            if self.electrons == 0:
                raise ValueError("electrons must not be zero")
            return self

    # Contracts ------------------------------------------------------------------------------
    @property
    def provides(self) -> list[FieldSpec]:
        names = self.params.fields
        table = [
            (names.overpotential, "V", "Overpotential eta"),
            (names.current_density, "A/m^2", "Interfacial current density j"),
            (names.volumetric_current, "A/m^3", "Volumetric reaction current a j"),
            (names.solid_current_source, "A/m^3", "Current source of the solid, -a j"),
            (names.electrolyte_current_source, "A/m^3", "Current source of the electrolyte"),
        ]
        if self.params.stoichiometry is not None:
            table.append((names.stoichiometry, "dimensionless", "Surface stoichiometry"))
        if names.molar_source is not None:
            table.append((names.molar_source, "mol/(m^3*s)", "Molar source (1 - t+) a j/(n F)"))
        if names.heat_source is not None:
            table.append((names.heat_source, "W/m^3", "Reaction heat a j (eta + T dU/dT)"))
        return [
            FieldSpec(name, "scalar", units, derived=True, description=text)
            for name, units, text in table
        ]

    @property
    def requires(self) -> list[FieldSpec]:
        names = self.params.fields
        specs = [
            FieldSpec(names.solid_potential, "scalar", "V", description="Solid potential"),
            FieldSpec(names.electrolyte_potential, "scalar", "V", description="Electrolyte"),
        ]
        if self.params.temperature is None:
            specs.append(
                FieldSpec(names.temperature, "scalar", "K", optional=True, description="T")
            )
        return specs

    # Kinetics -------------------------------------------------------------------------------
    def _value(self, ctx: Context, value: Any) -> Any:
        """A parameter as UFL; expressions may name the stoichiometry this instance derives."""
        p = self.params
        if p.stoichiometry is None:
            return ctx.coefficient(value)
        return ctx.coefficient(value, {p.fields.stoichiometry: ctx.coefficient(p.stoichiometry)})

    def _temperature(self, ctx: Context) -> Any:
        name = self.params.fields.temperature
        if self.params.temperature is not None:
            return self._value(ctx, self.params.temperature)
        return ctx.field(name) if ctx.has(name) else STANDARD_TEMPERATURE

    def _entropic(self, ctx: Context) -> Any:
        return self._value(ctx, self.params.entropic_coefficient)

    def _overpotential(self, ctx: Context) -> Any:
        p, names = self.params, self.params.fields
        ocp = self._value(ctx, p.open_circuit_potential)
        if p.entropic_coefficient is not None:
            ocp = ocp + (self._temperature(ctx) - p.reference_temperature) * self._entropic(ctx)
        return ctx.field(names.solid_potential) - ctx.field(names.electrolyte_potential) - ocp

    def _current_density(self, ctx: Context, eta: Any) -> Any:
        p = self.params
        i0 = self._value(ctx, p.exchange_current_density)
        f = FARADAY / (GAS_CONSTANT * self._temperature(ctx))
        a, c = p.anodic_transfer, p.cathodic_transfer
        if p.kinetics == "linear":
            return i0 * (a + c) * f * eta
        if a == c:  # one exponential evaluation fewer, and exactly odd in eta
            return 2 * i0 * ufl.sinh(a * f * eta)
        return i0 * (ufl.exp(a * f * eta) - ufl.exp(-c * f * eta))

    def _heat(self, ctx: Context, volumetric: Any, eta: Any) -> Any:
        """Irreversible a j eta plus, with an entropic coefficient, reversible a j T dU/dT."""
        heat = eta
        if self.params.entropic_coefficient is not None:
            heat = heat + self._temperature(ctx) * self._entropic(ctx)
        return volumetric * heat

    def derived(self, ctx: Context) -> dict[str, Any]:
        p, names = self.params, self.params.fields
        eta = self._overpotential(ctx)
        j = self._current_density(ctx, eta)
        aj = self._value(ctx, p.specific_area) * j
        derived = {
            names.overpotential: eta,
            names.current_density: j,
            names.volumetric_current: aj,
            names.solid_current_source: -aj,
            names.electrolyte_current_source: aj,
        }
        if p.stoichiometry is not None:
            derived[names.stoichiometry] = self._value(ctx, p.stoichiometry)
        if names.molar_source is not None:
            derived[names.molar_source] = (1 - p.transference) * aj / (p.electrons * FARADAY)
        if names.heat_source is not None:
            derived[names.heat_source] = self._heat(ctx, aj, eta)
        return derived

    def quantities(self, ctx: Context) -> dict[str, Quantity]:
        """Total reaction current int a j (anodic positive), reaction heat, overpotential
        extremes, and the surface stoichiometry's extremes (a case stops a run on them where
        a particle surface fills or empties before the voltage reaches its cut-off)."""
        derived = self.derived(ctx)
        names = self.params.fields
        aj, eta = derived[names.volumetric_current], derived[names.overpotential]
        # The framework integrates these at the degree of the potentials' equations, so the
        # total equals the current they exchange to round-off.
        dx = ctx.dx()
        quantities = {
            "total_current": Quantity.integral(
                aj * dx, ctx.per_depth("A"), "Reaction current int a j (anodic > 0)"
            ),
            "reaction_heat": Quantity.integral(
                self._heat(ctx, aj, eta) * dx, ctx.per_depth("W"), "Reaction heat"
            ),
            "max_overpotential": Quantity.maximum(names.overpotential, "V", "Highest eta"),
            "min_overpotential": Quantity.minimum(names.overpotential, "V", "Lowest eta"),
        }
        if self.params.stoichiometry is not None:
            theta = names.stoichiometry
            highest, lowest = "Highest surface stoichiometry", "Lowest surface stoichiometry"
            quantities["max_stoichiometry"] = Quantity.maximum(theta, "dimensionless", highest)
            quantities["min_stoichiometry"] = Quantity.minimum(theta, "dimensionless", lowest)
        return quantities
