"""The reaction equations and parameter models of ``reaction_kinetics``.

The parser of equations such as ``"2 A + B <-> C"`` (:func:`parse_equation`) and the models of
a species, a reaction (its law, constants and orders) and a clock, validated when a case
loads. The plug-in itself (physics_modules/reaction_kinetics.py) turns them into rates.
"""

import re
from functools import cache
from typing import Any, Literal, NamedTuple

from pydantic import Field, field_validator, model_validator

from app.contracts import FieldName, Parameters, Property, parse_property, quantity, unit_rule

RESERVED = {"x", "y", "z", "t", "pi"}
FORM = (
    "write a reaction as '2 A + B -> C' (irreversible) or 'A + B <-> C' (reversible): species "
    "names (letters, digits, underscores; no charges) joined by '+', each after an optional "
    "positive coefficient"
)
_TERM = re.compile(r"(?:(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)\s*\*?\s*)?([A-Za-z_]\w*)")


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


class Equation(NamedTuple):
    """A parsed reaction equation: coefficients of the reactants and products."""

    reactants: dict[str, float]
    products: dict[str, float]
    reversible: bool

    @property
    def net(self) -> dict[str, float]:
        """Net stoichiometric coefficient of every species (products positive)."""
        net = {name: -nu for name, nu in self.reactants.items()}
        for name, nu in self.products.items():
            net[name] = net.get(name, 0.0) + nu
        return net


@cache  # parsed once per reaction, not at every use
def parse_equation(text: str) -> Equation:
    """Read ``"2 A + B <-> C"``; ValueError with what is wrong and the accepted form."""
    arrows = re.findall(r"<->|->", text)
    if len(arrows) != 1:
        found = "no arrow" if not arrows else f"{len(arrows)} arrows"
        raise ValueError(f"cannot read {text!r}: {found}; {FORM}")
    sides = []
    for side in text.split(arrows[0]):
        terms: dict[str, float] = {}
        for term in side.split("+"):
            match = _TERM.fullmatch(term.strip())
            if match is None:
                what = f"'{term.strip()}' is not a species" if term.strip() else "a term is empty"
                raise ValueError(f"cannot read {text!r}: {what}; {FORM}")
            coefficient = float(match.group(1) or 1.0)
            if coefficient <= 0:
                raise ValueError(f"cannot read {text!r}: coefficients must be positive; {FORM}")
            terms[match.group(2)] = terms.get(match.group(2), 0.0) + coefficient
        sides.append(terms)
    return Equation(sides[0], sides[1], arrows[0] == "<->")


def parse_value(raw: Any, units: str, where: str) -> Property:
    """A value whose unit is only known from other parameters, with its place in messages."""
    try:
        return parse_property(raw, units)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def concentration_power(order: float, per_second: bool) -> str:
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
        object.__setattr__(self, "initial", parse_value(self.initial, units, "initial"))
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


def checked_reaction(where: str, reaction: Reaction, species: dict[str, Species]) -> set[str]:
    """Check a reaction against the declared species, parse its constants in the SI units its
    law and orders imply, and return the species it changes."""
    eq = parse_equation(reaction.equation)
    for name in [*eq.reactants, *eq.products]:
        if name not in species:
            raise ValueError(f"{where}.equation: species '{name}' is not declared")
    minerals = [n for n in {**eq.reactants, **eq.products} if species[n].molar_volume]
    if reaction.law == "saturation" and len(minerals) != 1:
        raise ValueError(f"{where}: law = 'saturation' needs 1 mineral, not {len(minerals)}")
    for key in ("orders", "reverse_orders"):
        if set(getattr(reaction, key)) & set(minerals):
            raise ValueError(f"{where}.{key}: minerals have activity 1, no order")
    _check_balance(where, eq, species)
    _parse_constants(where, reaction, eq, species)
    return {name for name, nu in eq.net.items() if nu != 0}


def _check_balance(where: str, eq: Equation, species: dict[str, Species]) -> None:
    """Element balance, where every species of the equation has a composition."""
    if not all(species[name].composition for name in eq.net):
        return
    elements = {e for name in eq.net for e in species[name].composition}
    for element in sorted(elements):
        change = sum(nu * species[n].composition.get(element, 0.0) for n, nu in eq.net.items())
        if abs(change) > 1e-12:
            raise ValueError(f"{where}.equation: element {element} does not balance")


def _parse_constants(
    where: str, reaction: Reaction, eq: Equation, species: dict[str, Species]
) -> None:
    def order(side: dict[str, float], orders: dict[str, float]) -> float:
        return sum(orders.get(n, nu) for n, nu in side.items() if not species[n].molar_volume)

    forward = order(eq.reactants, reaction.orders)
    reverse = order(eq.products, reaction.reverse_orders)
    units = {"rate_constant": "mol/(m^2*s)", "equilibrium_constant": reverse - forward}
    if reaction.law == "mass_action":
        units = {"rate_constant": 1 - forward, "reverse_rate_constant": 1 - reverse}
        units["equilibrium_constant"] = reverse - forward
    for key, unit in units.items():
        if not isinstance(unit, str):
            unit = concentration_power(unit, key != "equilibrium_constant")
        if getattr(reaction, key) is not None:
            value = parse_value(getattr(reaction, key), unit, f"{where}.{key} (in {unit})")
            object.__setattr__(reaction, key, value)


class Clock(Parameters):
    """A cellwise clock theta (s): d(theta)/dt = rate."""

    rate: Property = quantity(
        "dimensionless", 1.0, "d(theta)/dt: 1 runs with time, 0 stops it (may use fields)"
    )
    initial: Property = quantity("s", 0.0, "theta at the start (an age; a table by region)")


class FieldNames(Parameters):
    """Global names of the fields this instance derives or reads."""

    porosity: FieldName = Field("porosity", description="Derived porosity (with minerals)")
    temperature: FieldName = Field("temperature", description="Temperature read, if provided")
    heat_source: FieldName | None = Field(
        None, description="Derived heat of the conversions (W/m^3), if named"
    )
