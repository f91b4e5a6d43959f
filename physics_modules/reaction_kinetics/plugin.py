"""The reaction_kinetics plug-in: rates as UFL, the solved amounts, derived fields, quantities."""

from typing import Any

import ufl

from app.contracts import (
    GAS_CONSTANT,
    STANDARD_TEMPERATURE,
    Context,
    FieldSpec,
    Physics,
    Quantity,
)

from .equations import parse_equation
from .parameters import KineticsParameters, Reaction


def _derived(name: str, description: str, units: str, space: tuple[str, int]) -> FieldSpec:
    return FieldSpec(name, "scalar", units, space, derived=True, description=description)


class ReactionKinetics(Physics):
    """Reaction networks with mass-action, expression and mineral (saturation, TST) rate laws,
    and degrees of conversion (cure) with their own rate laws.

    Solves immobile species, mineral volume fractions and conversions (DG0, local ODEs);
    provides ``<X>_source`` (mol/(m^3 s)) for transported species, ``<reaction>_rate``,
    ``<conversion>_rate`` (1/s), the porosity and the conversions' heat; requires the
    transported species' concentrations and optionally ``temperature``.
    """

    name = "reaction_kinetics"
    Parameters = KineticsParameters

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
        for name in p.conversions:
            what = f"Degree of conversion {name}"
            specs.append(FieldSpec(name, "scalar", "dimensionless", ("DG", 0), description=what))
            specs.append(_derived(f"{name}_rate", f"d({name})/dt", "1/s", ("DG", 0)))
        if p.conversions and p.fields.heat_source is not None:
            what = "Heat released by the conversions"
            specs.append(_derived(p.fields.heat_source, what, "W/m^3", ("DG", 0)))
        return specs

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
        return rate * self._porosity(ctx) if volume == "fluid" else rate

    def _rates(self, ctx: Context) -> dict[str, Any]:
        return {name: self._rate(ctx, r) for name, r in self.params.reactions.items()}

    def _conversion_rates(self, ctx: Context) -> dict[str, Any]:
        T = self._temperature(ctx)
        return {name: c.rate(ctx.field(name), T) for name, c in self.params.conversions.items()}

    def _conversion_heat(self, ctx: Context, rates: dict[str, Any]) -> Any:
        """Heat released per unit volume and time: sum of heat_release d(alpha)/dt."""
        conversions = self.params.conversions
        return sum(ctx.coefficient(conversions[n].heat_release) * rates[n] for n in conversions)

    def _production(self, rates: dict[str, Any], species: str) -> Any:
        total = 0.0
        for name, reaction in self.params.reactions.items():
            nu = parse_equation(reaction.equation).net.get(species, 0.0)
            if nu:
                total = total + (rates[name] if nu == 1 else nu * rates[name])
        return total

    def _measure(self, ctx: Context) -> Any:
        """Cell measure of the rates: nodal quadrature when lumped (as transport's sources)."""
        dx = ctx.dx()
        if self.params.lumped:
            return dx.reconstruct(metadata={"quadrature_rule": "vertex", "quadrature_degree": 1})
        return dx

    # The plug-in interface ------------------------------------------------------------------
    def residual(self, ctx: Context) -> ufl.Form | None:
        solved = self._solved()
        if not solved and not self.params.conversions:
            return None
        rates, dx, form = self._rates(ctx), self._measure(ctx), None
        terms = [-self._production(rates, name) * ctx.test(name) * dx for name in solved]
        for name, rate in self._conversion_rates(ctx).items():
            terms.append(-rate * ctx.test(name) * dx)
        for term in terms:
            form = term if form is None else form + term
        return form

    def capacity(self, ctx: Context) -> dict[str, Any]:
        capacities = {name: 1.0 / volume for name, volume in self._minerals().items()}
        return capacities | dict.fromkeys(self.params.conversions, 1.0)

    def storage(self, ctx: Context) -> dict[str, Any]:
        minerals, eps = self._minerals(), self._porosity(ctx)
        return {name: eps * ctx.field(name) for name in self._solved() if name not in minerals}

    def initial(self, ctx: Context) -> dict[str, Any]:
        species, conversions = self.params.species, self.params.conversions
        initial = {name: ctx.coefficient(species[name].initial) for name in self._solved()}
        return initial | {name: ctx.coefficient(c.initial) for name, c in conversions.items()}

    def derived(self, ctx: Context) -> dict[str, Any]:
        rates = self._rates(ctx)
        derived = {f"{name}_rate": rate for name, rate in rates.items()}
        for name, species in self.params.species.items():
            if species.transported:
                derived[f"{name}_source"] = self._production(rates, name)
        if self._minerals():
            derived[self.params.fields.porosity] = self._porosity(ctx)
        conversion_rates = self._conversion_rates(ctx)
        derived |= {f"{name}_rate": rate for name, rate in conversion_rates.items()}
        if self.params.conversions and self.params.fields.heat_source is not None:
            derived[self.params.fields.heat_source] = self._conversion_heat(ctx, conversion_rates)
        return derived

    def _amount(self, ctx: Context, name: str) -> Any:
        """Amount of a species per bulk volume (mol/m^3)."""
        volume = self._minerals().get(name)
        c = ctx.field(name)
        return c / volume if volume else self._porosity(ctx) * c

    def quantities(self, ctx: Context) -> dict[str, Quantity]:
        """Per solved species its amount and extremes; per reaction its integrated rate; the
        total of each element named in compositions (transported species counted with this
        instance's porosity); the smallest porosity; per conversion its extremes and mean, and
        the heat the conversions release."""
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
        return quantities | self._conversion_quantities(ctx)

    def _conversion_quantities(self, ctx: Context) -> dict[str, Quantity]:
        quantities, volume = {}, ctx.size()
        for name in self.params.conversions:
            quantities[f"min_{name}"] = Quantity.minimum(name, "dimensionless", f"Lowest {name}")
            quantities[f"max_{name}"] = Quantity.maximum(name, "dimensionless", f"Highest {name}")
            quantities[f"mean_{name}"] = Quantity.integral(
                ctx.field(name) / volume * ctx.dx(), "dimensionless", f"Mean {name}"
            )
        if self.params.conversions:
            heat = self._conversion_heat(ctx, self._conversion_rates(ctx))
            quantities["conversion_heat"] = Quantity.integral(
                heat * self._measure(ctx), ctx.per_depth("W"), "Heat released by conversions"
            )
        return quantities
