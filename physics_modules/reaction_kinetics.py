"""Reaction kinetics: reaction networks, precipitation and dissolution, mineral volume fractions.

Reactions are written as equations over named species, ``"Ca + CO3 -> calcite"`` (irreversible)
or ``"2 A + B <-> C"`` (reversible). Each has a net rate r (mol per m^3 of bulk volume per s);
a species X with net stoichiometric coefficient nu_X gains sum_r nu_X r::

    transported X (a mass transport plug-in solves it):   provides X_source = sum_r nu_X r
    immobile X, concentration per pore volume (mol/m^3):   d(eps X)/dt = sum_r nu_X r
    mineral M (molar_volume V_m), volume fraction phi_M:   (1/V_m) d(phi_M)/dt = sum_r nu_M r
    porosity (derived) eps = eps_0 - sum_M phi_M

Rate laws (k is Arrhenius-scaled: k(T) = k exp(-E_a/R (1/T - 1/T_ref)), T the ``temperature``
parameter if given, else the ``temperature`` field if provided, else 298.15 K)::

    mass_action   r = eps (k prod_reactants c^o - k_b prod_products c^o)    k_b = k/K if K given
    expression    r = (case expression)                                    per fluid volume (x eps)
    saturation    r_precipitation = k A sgn(Omega - 1) |Omega - 1|^n       one mineral; A per bulk
    tst           r = k A (1 - Q/K)                                         Q/K of the equation

Orders o are the stoichiometric coefficients unless ``orders`` says otherwise; minerals have
activity 1 (order 0). Q is the reaction quotient (products over reactants, minerals left out) and
K the equilibrium constant of the equation as written; Omega = IAP/K_sp is the mineral's
saturation ratio (Q/K for a dissolution as written, K/Q for a precipitation). ``volume``
says whether a rate is per unit of pore fluid (multiplied by eps; default of mass_action and
expression) or of bulk volume (default of the mineral laws, whose surface area A is per bulk).

Exhaustion: a reaction stops cleanly when what it consumes runs out. Mass-action terms vanish
with their reactants by themselves; every other consumed amount (minerals, species of the other
laws) multiplies its direction by min(1, c/threshold), and a direction producing a mineral by
min(1, (eps - eps_min)/porosity_cutoff). With an implicit time step no amount goes negative and
the pore space never fills beyond eps_min (with bdf1; bdf2 may undershoot slightly where an
amount runs out abruptly); a rate per fluid volume is eps r with eps taken as 0 where it is not
positive, so no state with the pores overfilled solves a step. Rates are integrated at the nodes
(``lumped``), as mass transport integrates its sources at degree 1, so every element balance
closes exactly.

Solved species live in cellwise-constant spaces (DG0): each cell is a well-mixed reactor, a
local ODE, and a one-cell mesh is a batch reactor. Derived fields: ``X_source`` per transported
species, ``<reaction>_rate`` per reaction, the porosity (name in ``fields``, when there are
minerals). Expressions may name species, other fields and this instance's porosity.

Clocks are cellwise times (seconds, DG0) with their own rate, d(theta)/dt = rate: a tissue
age (rate 1, initial age by region), an induction clock that runs only while a solution is
supersaturated (``rate = "1 if sigma > 1 else 0"``). Rate expressions read them by name, so a
law may switch on after a lag (``"... if theta > 12*86400 else 0"``). Unlike an immobile
species a clock is not an amount: it is not stored in the pore space.

Conversions are degrees of conversion alpha (of cure, DG0, dimensionless) with their own rate
laws, d(alpha)/dt = f(alpha, T): autocatalytic Kamal-Sourour, the piecewise law of Hercules
3501-6, optional diffusion control through DiBenedetto's Tg(alpha) (reaction_conversions.py has
the equations). Each provides ``<name>_rate`` (1/s); ``fields.heat_source`` names the heat they
release, sum heat_release d(alpha)/dt (W/m^3), for heat's ``heat_sources``. A case may give
conversions without species or reactions (``lumped = false`` integrates the rates as heat does).

A case uses it as::

    [physics.chemistry]
    type = "reaction_kinetics"
    porosity = 0.4                                     # eps_0: pore space without the minerals
    species.Ca = { transported = true, composition = { Ca = 1 } }
    species.CO3 = { transported = true, composition = { C = 1, O = 3 } }

    [physics.chemistry.species.calcite]
    initial = 0.05
    molar_volume = "36.9 cm^3/mol"
    composition = { Ca = 1, C = 1, O = 3 }

    [physics.chemistry.clocks.wet]                     # time since the rock was wetted
    initial = "1 day"                                  # rate = 1: runs with time

    [physics.chemistry.reactions.growth]
    equation = "calcite <-> Ca + CO3"
    law = "saturation"
    rate_constant = "1e-6 mol/(m^2*s)"
    equilibrium_constant = 3.3e-3                      # (mol/m^3)^2: K_sp
    surface_area = "1e3*(calcite/0.05)**(2/3) + 10"   # m^2 per m^3 of bulk
    activation_energy = "23.5 kJ/mol"
"""

from typing import Any

import ufl
from pydantic import Field, model_validator

from app.contracts import (
    GAS_CONSTANT,
    STANDARD_TEMPERATURE,
    BadValue,
    Context,
    FieldSpec,
    Parameters,
    Physics,
    Property,
    Quantity,
    quantity,
)
from physics_modules.reaction_conversions import (
    Conversion,
    clashing_conversion,
    conversion_fields,
    conversion_quantities,
    released_heat,
)
from physics_modules.reaction_network import (
    RESERVED,
    Clock,
    Equation,
    FieldNames,
    Reaction,
    Species,
    checked_reaction,
    parse_equation,
)

__all__ = ["Equation", "ReactionKinetics", "parse_equation"]


def _derived(name: str, description: str, units: str, space: tuple[str, int]) -> FieldSpec:
    return FieldSpec(name, "scalar", units, space, derived=True, description=description)


class ReactionKinetics(Physics):
    """Reaction networks with mass-action, expression and mineral (saturation, TST) rate laws.

    Solves immobile species and mineral volume fractions (DG0, local ODEs); provides
    ``<X>_source`` (mol/(m^3 s)) for transported species, ``<reaction>_rate`` and the porosity;
    requires the transported species' concentrations and optionally ``temperature``.
    """

    name = "reaction_kinetics"

    class Parameters(Parameters):
        species: dict[str, Species] = Field(
            default_factory=dict, description="Species by name (= field name)"
        )
        reactions: dict[str, Reaction] = Field(default_factory=dict, description="By name")
        conversions: dict[str, Conversion] = Field(
            default_factory=dict, description="Degrees of conversion (cure) by name (= field)"
        )
        clocks: dict[str, Clock] = Field(
            default_factory=dict, description="Cellwise clocks (s) by name: d(theta)/dt = rate"
        )
        porosity: Property = quantity(
            "dimensionless", 1.0, "eps_0: pore space without this instance's minerals", gt=0
        )
        minimum_porosity: float = Field(0.0, ge=0, description="eps_min: precipitation stops")
        porosity_cutoff: float = Field(
            1e-3, gt=0, description="Precipitation slows to 0 over eps_min < eps < eps_min + this"
        )
        temperature: Property | None = quantity(
            "K", None, "T (default: the temperature field, if any, else 298.15 K)", gt=0
        )
        lumped: bool = Field(True, description="Integrate rates at the nodes (as transport)")
        fields: FieldNames = Field(default_factory=FieldNames, description="Field names")

        @model_validator(mode="after")
        def _consistent(self) -> "ReactionKinetics.Parameters":
            species, used = self.species, set()
            derived = {f"{name}_rate" for name in self.reactions} | {self.fields.porosity}
            derived |= {f"{name}_source" for name in species}
            for name in species:
                if not name.isidentifier() or name in RESERVED or name in derived:
                    raise ValueError(
                        f"species {name!r}: use a name, not x, y, z, t, pi or a field's"
                    )
            for key, reaction in self.reactions.items():
                used |= checked_reaction(f"reactions.{key}", reaction, species)
            unused = sorted(set(species) - used)
            if unused:
                raise ValueError(f"species {', '.join(unused)} take part in no reaction")
            return self

        @model_validator(mode="after")
        def _clock_names(self) -> "ReactionKinetics.Parameters":
            taken = {*self.species, self.fields.porosity, *RESERVED}
            taken |= {f"{name}_rate" for name in self.reactions}
            taken |= {f"{name}_source" for name in self.species}
            for name in self.clocks:
                if not name.isidentifier() or name in taken:
                    raise ValueError(
                        f"clocks.{name}: use a name that is no species, field, x, y, z, t or pi"
                    )
            return self

        @model_validator(mode="after")
        def _conversion_names(self) -> "ReactionKinetics.Parameters":
            if not self.reactions and not self.conversions:
                raise ValueError("give reactions (with their species) or conversions")
            taken = {*self.species, *self.reactions, *self.clocks, *vars(self.fields).values()}
            taken |= {f"{name}_{suffix}" for name in self.species for suffix in ("rate", "source")}
            if (name := clashing_conversion(self.conversions, taken, RESERVED)) is not None:
                raise ValueError(
                    f"conversions.{name}: use a name that is no species, reaction, clock, "
                    "field, x, y, z, t or pi"
                )
            return self

    # Contracts ------------------------------------------------------------------------------
    def _minerals(self) -> dict[str, float]:
        return {n: s.molar_volume for n, s in self.params.species.items() if s.molar_volume}

    def _solved(self) -> list[str]:
        return [n for n, s in self.params.species.items() if not s.transported]

    @property
    def provides(self) -> list[FieldSpec]:
        p = self.params
        rates = dict(units="mol/(m^3*s)", space=("DG", 0) if self._solved() else ("Lagrange", 1))
        specs = []
        for name, species in p.species.items():
            if species.transported:
                specs.append(_derived(f"{name}_source", f"Reaction source of {name}", **rates))
            else:
                mineral = bool(species.molar_volume)
                units = "dimensionless" if mineral else "mol/m^3"
                what = f"{'Volume fraction' if mineral else 'Concentration'} of {name}"
                specs.append(FieldSpec(name, "scalar", units, ("DG", 0), description=what))
        for name, r in p.reactions.items():
            specs.append(_derived(f"{name}_rate", f"Net rate of '{r.equation}'", **rates))
        if self._minerals():
            what = "eps_0 - mineral volume fractions"
            specs.append(_derived(p.fields.porosity, what, "dimensionless", ("DG", 0)))
        specs += [
            FieldSpec(name, "scalar", "s", ("DG", 0), description=f"Clock {name}")
            for name in p.clocks
        ]
        return specs + conversion_fields(p.conversions, p.fields.heat_source)

    @property
    def requires(self) -> list[FieldSpec]:
        p = self.params
        specs = [
            FieldSpec(name, "scalar", "mol/m^3", description=f"Concentration of {name}")
            for name, species in p.species.items()
            if species.transported
        ]
        heated = any(r.activation_energy for r in p.reactions.values()) or bool(p.conversions)
        if heated and p.temperature is None:
            what = "Temperature of the Arrhenius factors"
            specs.append(
                FieldSpec(p.fields.temperature, "scalar", "K", optional=True, description=what)
            )
        return specs

    # Rates ----------------------------------------------------------------------------------
    def _porosity(self, ctx: Context) -> Any:
        eps = ctx.coefficient(self.params.porosity)
        for name in self._minerals():
            eps = eps - ctx.field(name)
        return eps

    def _value(self, ctx: Context, value: Any) -> Any:
        """A parameter as UFL; expressions may name this instance's porosity."""
        if not self._minerals():
            return ctx.coefficient(value)
        return ctx.coefficient(value, {self.params.fields.porosity: self._porosity(ctx)})

    def _temperature(self, ctx: Context) -> Any:
        name = self.params.fields.temperature
        if self.params.temperature is not None:
            return self._value(ctx, self.params.temperature)
        return ctx.field(name) if ctx.has(name) else STANDARD_TEMPERATURE

    def _level(self, ctx: Context, name: str, order: float = 1.0) -> Any:
        """A species as rates read it: a transported one's undershoot (a transport artefact)
        as zero; a solved one as it is, so that a Newton iterate below zero finds its way back
        (the converged value of an implicit step is not negative)."""
        c = ctx.field(name)
        if self.params.species[name].transported or order != int(order):
            return ufl.max_value(c, 0.0)
        return c

    def _limit(self, ctx: Context, consumed: dict, produced: dict, skip: set[str]) -> Any:
        """Factor of a direction: the exhaustion of what it consumes (except ``skip``) and,
        if it produces a mineral, of the pore space."""
        p, factor = self.params, 1.0
        for name in set(consumed) - skip:
            level = self._level(ctx, name) / p.species[name].threshold
            factor = factor * ufl.min_value(1.0, level)
        if set(produced) & set(self._minerals()):
            room = (self._porosity(ctx) - p.minimum_porosity) / p.porosity_cutoff
            factor = factor * ufl.min_value(1.0, room)
        return factor

    def _product(self, ctx: Context, side: dict[str, float], orders: dict[str, float]) -> Any:
        value = 1.0
        for name, nu in side.items():
            order = orders.get(name, nu)
            if not self.params.species[name].molar_volume and order != 0:
                c = self._level(ctx, name, order)
                value = value * (c if order == 1 else c**order)
        return value

    def _mass_action(self, ctx: Context, k: Any, consumed: dict, produced: dict, orders: dict):
        """k prod c^o of one direction; only zero-order amounts (minerals) need a limit, the
        rest vanish with their reactants."""
        vanishing = {n for n in consumed if orders.get(n, 1) != 0} - set(self._minerals())
        limit = self._limit(ctx, consumed, produced, vanishing)
        return k * self._product(ctx, consumed, orders) * limit

    def _rate(self, ctx: Context, reaction: Reaction) -> Any:
        """Net rate of a reaction per bulk volume, with the exhaustion factors."""
        eq = parse_equation(reaction.equation)
        k = None
        if reaction.rate_constant is not None:
            k = self._value(ctx, reaction.rate_constant)
        if reaction.activation_energy:
            inverse = 1 / self._temperature(ctx) - 1 / reaction.reference_temperature
            arrhenius = ufl.exp(-reaction.activation_energy / GAS_CONSTANT * inverse)
        else:
            arrhenius = 1.0
        if reaction.law == "mass_action":
            rate = self._mass_action(ctx, k, eq.reactants, eq.products, reaction.orders)
            if eq.reversible:
                if reaction.reverse_rate_constant is not None:
                    kb = self._value(ctx, reaction.reverse_rate_constant)
                else:
                    kb = k / self._value(ctx, reaction.equilibrium_constant)
                orders = reaction.reverse_orders
                rate -= self._mass_action(ctx, kb, eq.products, eq.reactants, orders)
            rate *= arrhenius
        else:
            if reaction.law == "expression":
                raw = self._value(ctx, reaction.rate) * arrhenius
            else:
                area = self._value(ctx, reaction.surface_area)
                K = self._value(ctx, reaction.equilibrium_constant)
                # Q = products/reactants; the side with the mineral (activity 1) is never
                # divided by, so Omega stays finite when a dissolved species runs out.
                products = self._product(ctx, eq.products, {})
                reactants = self._product(ctx, eq.reactants, {})
                if reaction.law == "tst":
                    raw = k * arrhenius * area * (1 - products / (K * reactants))
                else:  # the mineral's saturation ratio and its precipitation rate
                    dissolution = bool(set(eq.reactants) & set(self._minerals()))
                    omega = products / (K * reactants) if dissolution else K * reactants / products
                    n = reaction.exponent
                    excess = omega - 1 if n == 1 else ufl.sign(omega - 1) * abs(omega - 1) ** n
                    raw = (-1 if dissolution else 1) * k * arrhenius * area * excess
            forward = self._limit(ctx, eq.reactants, eq.products, set())
            backward = self._limit(ctx, eq.products, eq.reactants, set())
            rate = ufl.max_value(raw, 0) * forward + ufl.min_value(raw, 0) * backward
        volume = reaction.volume or (
            "fluid" if reaction.law in ("mass_action", "expression") else "bulk"
        )
        if volume == "bulk":
            return rate
        # A rate per fluid volume has no fluid to act in where the minerals fill the pores:
        # times a negative porosity it reversed, a root of the step's equations with the
        # minerals beyond the pore space and the species below zero, which Newton found.
        return rate * ufl.max_value(self._porosity(ctx), 0.0)

    def _rates(self, ctx: Context) -> dict[str, Any]:
        return {name: self._rate(ctx, r) for name, r in self.params.reactions.items()}

    def _production(self, rates: dict[str, Any], species: str) -> Any:
        total = 0.0
        for name, reaction in self.params.reactions.items():
            nu = parse_equation(reaction.equation).net.get(species, 0.0)
            if nu:
                total = total + (rates[name] if nu == 1 else nu * rates[name])
        return total

    def _conversion_rates(self, ctx: Context) -> dict[str, Any]:
        T = self._temperature(ctx)
        return {name: c.rate(ctx.field(name), T) for name, c in self.params.conversions.items()}

    def _measure(self, ctx: Context) -> Any:
        """Cell measure of the rates: nodal quadrature when lumped (as transport's sources)."""
        dx = ctx.dx()
        if self.params.lumped:
            return dx.reconstruct(metadata={"quadrature_rule": "vertex", "quadrature_degree": 1})
        return dx

    # The plug-in interface ------------------------------------------------------------------
    def residual(self, ctx: Context) -> ufl.Form | None:
        solved, clocks = self._solved(), self.params.clocks
        if not solved and not clocks and not self.params.conversions:
            return None
        timed = [*clocks, *self.params.conversions]
        if timed and not ctx.transient:  # rate = 0 would pick an end state, not a history
            raise BadValue(
                f"'{timed[0]}' advances in time (a clock or a degree of conversion), and a "
                "steady run has no history for it",
                token=timed[0],
                fix="step in time: set time.scheme (bdf1, bdf2 or cn), time.end and time.dt",
            )
        rates, dx, form = self._rates(ctx), self._measure(ctx), None
        for name in solved:
            term = -self._production(rates, name) * ctx.test(name) * dx
            form = term if form is None else form + term
        for name, clock in clocks.items():
            term = -self._value(ctx, clock.rate) * ctx.test(name) * dx
            form = term if form is None else form + term
        for name, rate in self._conversion_rates(ctx).items():
            term = -rate * ctx.test(name) * dx
            form = term if form is None else form + term
        return form

    def capacity(self, ctx: Context) -> dict[str, Any]:
        minerals = {name: 1.0 / volume for name, volume in self._minerals().items()}
        return minerals | dict.fromkeys([*self.params.clocks, *self.params.conversions], 1.0)

    def storage(self, ctx: Context) -> dict[str, Any]:
        minerals, eps = self._minerals(), self._porosity(ctx)
        return {name: eps * ctx.field(name) for name in self._solved() if name not in minerals}

    def initial(self, ctx: Context) -> dict[str, Any]:
        species, clocks = self.params.species, self.params.clocks
        initial = {name: ctx.coefficient(species[name].initial) for name in self._solved()}
        initial |= {name: ctx.coefficient(clock.initial) for name, clock in clocks.items()}
        conversions = self.params.conversions
        return initial | {name: ctx.coefficient(c.initial) for name, c in conversions.items()}

    def derived(self, ctx: Context) -> dict[str, Any]:
        rates = self._rates(ctx)
        derived = {f"{name}_rate": rate for name, rate in rates.items()}
        for name, species in self.params.species.items():
            if species.transported:
                derived[f"{name}_source"] = self._production(rates, name)
        if self._minerals():
            derived[self.params.fields.porosity] = self._porosity(ctx)
        conversions, heat = self.params.conversions, self.params.fields.heat_source
        rates = self._conversion_rates(ctx)
        derived |= {f"{name}_rate": rate for name, rate in rates.items()}
        if conversions and heat is not None:
            derived[heat] = released_heat(ctx, conversions, rates)
        return derived

    def _amount(self, ctx: Context, name: str) -> Any:
        """Amount of a species per bulk volume (mol/m^3)."""
        volume = self._minerals().get(name)
        c = ctx.field(name)
        return c / volume if volume else self._porosity(ctx) * c

    def quantities(self, ctx: Context) -> dict[str, Quantity]:
        """Per solved species its amount and extremes; per reaction its integrated rate; the
        total of each element named in compositions (transported species counted with this
        instance's porosity); the smallest porosity; the extremes of each clock; per
        conversion its extremes and mean, and the heat the conversions release."""
        p, dx = self.params, ctx.dx()
        amount, rate = ctx.per_depth("mol"), ctx.per_depth("mol/s")
        quantities, rates = {}, self._rates(ctx)
        for name in self._solved():
            units = "dimensionless" if name in self._minerals() else "mol/m^3"
            quantities[f"amount_{name}"] = Quantity.integral(
                self._amount(ctx, name) * dx, amount, f"Amount of {name}"
            )
            quantities[f"min_{name}"] = Quantity.minimum(name, units, f"Lowest {name}")
            quantities[f"max_{name}"] = Quantity.maximum(name, units, f"Highest {name}")
        for name in p.reactions:
            quantities[f"rate_{name}"] = Quantity.integral(
                rates[name] * self._measure(ctx), rate, f"Reaction '{name}' integrated"
            )
        elements = sorted({e for s in p.species.values() for e in s.composition})
        for element in elements:
            total = sum(
                s.composition[element] * self._amount(ctx, name)
                for name, s in p.species.items()
                if element in s.composition
            )
            quantities[f"total_{element}"] = Quantity.integral(
                total * dx, amount, f"Element {element} in all species"
            )
        if self._minerals():
            quantities["min_porosity"] = Quantity.minimum(
                p.fields.porosity, "dimensionless", "Lowest porosity"
            )
        for name in p.clocks:
            quantities[f"min_{name}"] = Quantity.minimum(name, "s", f"Lowest {name}")
            quantities[f"max_{name}"] = Quantity.maximum(name, "s", f"Highest {name}")
        rates = self._conversion_rates(ctx)
        conversions = conversion_quantities(ctx, p.conversions, rates, self._measure(ctx))
        return quantities | conversions
