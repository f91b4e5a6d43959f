"""Parameters of reaction_kinetics: species, reactions and their rate laws."""

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from app.contracts import FieldName, Parameters, Property, parse_property, quantity, unit_rule

from .conversion import Conversion
from .equations import RESERVED, Equation, parse_equation

#: Per law: the keys it needs, and the keys it may use besides the common ones.
LAW_KEYS = {
    "mass_action": (
        {"rate_constant"},
        {"reverse_rate_constant", "equilibrium_constant", "orders", "reverse_orders"},
    ),
    "expression": ({"rate"}, set()),
    "saturation": ({"rate_constant", "equilibrium_constant"}, {"surface_area", "exponent"}),
    "tst": ({"rate_constant", "equilibrium_constant"}, {"surface_area"}),
}
#: A value whose units are only known from other parameters (parsed by the instance).
Raw = Property | float | str | dict[str, Any] | None


def _property(raw: Any, units: str, where: str) -> Property:
    try:
        return parse_property(raw, units)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _concentration_power(order: float, per_second: bool) -> str:
    """Units of (mol/m^3)^order [/s]."""
    text = {0: "1", 1: "mol/m^3"}.get(order, f"(mol/m^3)**{order:g}")
    if per_second:
        return {0: "1/s", 1: "mol/(m^3*s)"}.get(order, f"{text}/s")
    return "dimensionless" if order == 0 else text


class Species(Parameters):
    """One species; its name is its field's name."""

    transported: bool = Field(False, description="Solved by transport (provides X_source)")
    initial: Raw = unit_rule(
        "mol/m^3; dimensionless (a volume fraction) for a mineral", 0.0, "Initial value"
    )
    molar_volume: float | None = quantity("m^3/mol", None, "V_m: a mineral (volume fraction)", gt=0)
    threshold: float = Field(1e-9, gt=0, description="Consuming reactions slow to 0 below it")
    composition: dict[str, float] = Field(default_factory=dict, description="{ Ca = 1, C = 1 }")

    @model_validator(mode="after")
    def _parse_initial(self) -> "Species":
        if self.transported and (self.given("initial") or self.molar_volume is not None):
            raise ValueError("a transported species takes its initial value from the transport")
        units = "dimensionless" if self.molar_volume else "mol/m^3"
        object.__setattr__(self, "initial", _property(self.initial, units, "initial"))
        return self


class Reaction(Parameters):
    """One reaction: its equation and rate law."""

    equation: str = Field(description="'A + 2 B -> C' or 'A <-> B + C'")
    law: Literal["mass_action", "expression", "saturation", "tst"] = "mass_action"
    rate_constant: Raw = unit_rule(
        "mass_action: (mol/m^3)^(1-n)/s, n the forward order (1/s for n = 1, m^3/(mol*s) for "
        "n = 2); saturation, tst: mol/(m^2*s)",
        None,
        "k",
    )
    reverse_rate_constant: Raw = unit_rule(
        "(mol/m^3)^(1-n)/s, n the reverse order", None, "k_b of a reversible mass-action law"
    )
    equilibrium_constant: Raw = unit_rule(
        "(mol/m^3)^(n_p - n_r), n_p and n_r the orders of products and reactants",
        None,
        "K of the equation as written",
    )
    orders: dict[str, float] = Field(default_factory=dict, description="Forward orders")
    reverse_orders: dict[str, float] = Field(default_factory=dict, description="Reverse orders")
    rate: Property | None = quantity("mol/(m^3*s)", None, "Rate expression (law = expression)")
    surface_area: Property = quantity("m^2/m^3", 1.0, "Reactive surface area A per bulk", ge=0)
    exponent: float = Field(1.0, gt=0, description="n of (Omega - 1)^n (saturation)")
    activation_energy: float = quantity("J/mol", 0.0, "Arrhenius activation energy E_a", ge=0)
    reference_temperature: float = quantity("K", 298.15, "Temperature of the given k", gt=0)
    volume: Literal["fluid", "bulk"] | None = Field(
        None, description="Per 'fluid' or 'bulk' volume"
    )

    @field_validator("equation")
    @classmethod
    def _readable(cls, text: str) -> str:
        parse_equation(text)
        return text

    @model_validator(mode="after")
    def _fits_law(self) -> "Reaction":
        eq, given = parse_equation(self.equation), self.given()
        needs, extra = LAW_KEYS[self.law]
        allowed = needs | extra | {"equation", "law", "activation_energy", "volume"}
        allowed |= {"reference_temperature"}
        if not eq.reversible:
            if self.law in ("saturation", "tst"):
                raise ValueError(
                    f"law = '{self.law}' runs both ways: write the equation with '<->'"
                )
            allowed -= {"reverse_rate_constant", "equilibrium_constant", "reverse_orders"}
        missing, unused = sorted(needs - given), sorted(given - allowed)
        if missing or unused:
            what = f"needs {', '.join(missing)}" if missing else f"does not use {', '.join(unused)}"
            raise ValueError(f"law = '{self.law}' {what} (with this equation)")
        both = {"reverse_rate_constant", "equilibrium_constant"} & given
        if self.law == "mass_action" and eq.reversible and len(both) != 1:
            raise ValueError(
                "reversible mass action: give reverse_rate_constant or equilibrium_constant"
            )
        for key, side in (("orders", eq.reactants), ("reverse_orders", eq.products)):
            if set(getattr(self, key)) - set(side):
                raise ValueError(f"{key}: name species of that side of the equation")
        return self


class FieldNames(Parameters):
    """Global names of the fields this instance derives or reads."""

    porosity: FieldName = Field("porosity", description="Derived porosity (with minerals)")
    temperature: FieldName = Field("temperature", description="Temperature read, if provided")
    heat_source: FieldName | None = Field(
        None, description="Derived heat of the conversions (W/m^3), if named"
    )


class KineticsParameters(Parameters):
    """Parameters of a reaction_kinetics instance."""

    species: dict[str, Species] = Field(
        default_factory=dict, description="Species by name (= field name)"
    )
    reactions: dict[str, Reaction] = Field(default_factory=dict, description="Reactions by name")
    conversions: dict[str, Conversion] = Field(
        default_factory=dict, description="Degrees of conversion (cure) by name (= field name)"
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
    def _something_reacts(self) -> "KineticsParameters":
        if not self.reactions and not self.conversions:
            raise ValueError("give reactions (with their species) or conversions")
        return self

    @model_validator(mode="after")
    def _conversion_names(self) -> "KineticsParameters":
        taken = set(self.species) | {f"{name}_rate" for name in self.reactions}
        taken |= {self.fields.porosity, self.fields.temperature, self.fields.heat_source}
        for name in self.conversions:
            clash = {name, f"{name}_rate"} & (taken | set(self.reactions))
            if not name.isidentifier() or name in RESERVED or clash:
                raise ValueError(
                    f"conversions.{name}: use a name that is not x, y, z, t, pi, a species, a "
                    "reaction or a field name of this instance"
                )
        return self

    @model_validator(mode="after")
    def _consistent(self) -> "KineticsParameters":
        species, used = self.species, set()
        derived = {f"{name}_rate" for name in self.reactions} | {self.fields.porosity}
        derived |= {f"{name}_source" for name in species}
        for name in species:
            if not name.isidentifier() or name in RESERVED or name in derived:
                raise ValueError(f"species {name!r}: use a name, not x, y, z, t, pi or a field's")
        for key, reaction in self.reactions.items():
            where = f"reactions.{key}"
            eq = parse_equation(reaction.equation)
            for name in [*eq.reactants, *eq.products]:
                if name not in species:
                    raise ValueError(f"{where}.equation: species '{name}' is not declared")
            used |= {name for name, nu in eq.net.items() if nu != 0}
            minerals = [n for n in {**eq.reactants, **eq.products} if species[n].molar_volume]
            if reaction.law == "saturation" and len(minerals) != 1:
                raise ValueError(
                    f"{where}: law = 'saturation' needs 1 mineral, not {len(minerals)}"
                )
            for key2 in ("orders", "reverse_orders"):
                if set(getattr(reaction, key2)) & set(minerals):
                    raise ValueError(f"{where}.{key2}: minerals have activity 1, no order")
            self._balanced(where, eq)
            self._parse_constants(where, reaction, eq)
        unused = sorted(set(species) - used)
        if unused:
            raise ValueError(f"species {', '.join(unused)} take part in no reaction")
        return self

    def _balanced(self, where: str, eq: Equation) -> None:
        """Element balance, where every species of the equation has a composition."""
        if not all(self.species[name].composition for name in eq.net):
            return
        elements = {e for name in eq.net for e in self.species[name].composition}
        for element in sorted(elements):
            change = sum(
                nu * self.species[n].composition.get(element, 0.0) for n, nu in eq.net.items()
            )
            if abs(change) > 1e-12:
                raise ValueError(f"{where}.equation: element {element} does not balance")

    def _order(self, side: dict[str, float], orders: dict[str, float]) -> float:
        return sum(orders.get(n, nu) for n, nu in side.items() if not self.species[n].molar_volume)

    def _parse_constants(self, where: str, reaction: Reaction, eq: Equation) -> None:
        """Rate and equilibrium constants in the SI units their law and orders imply."""
        forward = self._order(eq.reactants, reaction.orders)
        reverse = self._order(eq.products, reaction.reverse_orders)
        units = {"rate_constant": "mol/(m^2*s)", "equilibrium_constant": reverse - forward}
        if reaction.law == "mass_action":
            units = {"rate_constant": 1 - forward, "reverse_rate_constant": 1 - reverse}
            units["equilibrium_constant"] = reverse - forward
        for key, unit in units.items():
            unit = (
                unit
                if isinstance(unit, str)
                else _concentration_power(unit, key != "equilibrium_constant")
            )
            if getattr(reaction, key) is not None:
                value = _property(getattr(reaction, key), unit, f"{where}.{key} (in {unit})")
                object.__setattr__(reaction, key, value)
