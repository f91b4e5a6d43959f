"""Reaction equations: ``"2 A + B -> C"`` read into stoichiometric coefficients."""

import re
from functools import cache
from typing import NamedTuple

RESERVED = {"x", "y", "z", "t", "pi"}
FORM = (
    "write a reaction as '2 A + B -> C' (irreversible) or 'A + B <-> C' (reversible): species "
    "names (letters, digits, underscores; no charges) joined by '+', each after an optional "
    "positive coefficient"
)
_TERM = re.compile(r"(?:(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)\s*\*?\s*)?([A-Za-z_]\w*)")


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
