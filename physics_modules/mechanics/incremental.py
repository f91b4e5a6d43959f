"""Incremental (rate-form) elasticity: stress built up with the stiffness of each moment.

For a stiffness that changes with the state (a resin's modulus with its degree of cure, a
tissue's with its mineral fraction), the total form sigma = C(field) : (eps - eps*) would
restiffen stress already carried: a bar held at a fixed strain while it stiffens would carry
more stress without moving. The rate form integrates the stress instead::

    sigma_{n+1} = sigma_n + C(field_{n+1}) : (eps_{n+1} - eps_n - (eps*_{n+1} - eps*_n))

so stress built at a low modulus stays locked in, and only later strain increments see the
new modulus. The stress and the mechanical strain eps - eps* are internal variables. The case
chooses the form (``stress_form = "incremental"``); with a constant C both give the same answer.
"""

from collections.abc import Callable
from typing import Any

import ufl

from app.contracts import Context, InternalVariable, Quantity


class IncrementalElasticity:
    """The rate form of the plug-in's elastic law.

    Args:
        increment: The stress of a strain increment with the current stiffness (per region) in
            a context.
    """

    def __init__(self, increment: Callable[[Context, Any], Any]):
        self._increment = increment

    @property
    def internal_variables(self) -> list[InternalVariable]:
        return [
            InternalVariable(
                "accumulated_stress", "Pa", (3, 3), description="sigma, by increments"
            ),
            InternalVariable(
                "mechanical_strain",
                "dimensionless",
                (3, 3),
                description="eps - eps* at the last step",
            ),
        ]

    def stress(self, ctx: Context, strain: Any) -> Any:
        """The stress the residual uses: the accepted stress plus the increment."""
        change = strain - ctx.previous("mechanical_strain")
        return ctx.previous("accumulated_stress") + self._increment(ctx, change)

    def update(self, ctx: Context, strain: Any) -> dict[str, Any]:
        return {"accumulated_stress": self.stress(ctx, strain), "mechanical_strain": strain}

    def latest(self, ctx: Context, strain: Any) -> tuple[Any, Any]:
        """Stress after the latest solve, and half its contraction with the strain (the strain
        energy density when the stiffness never changed)."""
        stress = ctx.field("accumulated_stress")
        return stress, ufl.inner(stress, strain) / 2

    def quantities(self, ctx: Context, weight: Any, units: dict[str, str]) -> dict[str, Quantity]:
        return {}
