"""Derived fields that read derived fields of other plug-ins: built in dependency order, so a
chain of any depth reaches a solver as one expression of solved fields; cycles are refused."""

import pytest
import ufl
from pydantic import Field

from app import registry
from app.contracts import FieldSpec, Parameters, Physics, Quantity
from app.errors import CaseError
from app.simulation import Simulation


class Projected(Physics):
    """Solves u = factor * (the field it reads, or x): (u - factor * g) v dx = 0."""

    name = "projected"

    class Parameters(Parameters):
        field: str
        reads: str | None = Field(None, description="Field g (None: the coordinate x)")
        factor: float = 1.0

    @property
    def provides(self):
        return [FieldSpec(self.params.field, "scalar", "dimensionless")]

    @property
    def requires(self):
        reads = self.params.reads
        return [FieldSpec(reads, "scalar", "dimensionless")] if reads else []

    def residual(self, ctx):
        p = self.params
        u, v = ctx.field(p.field), ctx.test(p.field)
        source = ctx.field(p.reads) if p.reads else ctx.x[0]
        return (u - p.factor * source) * v * ctx.dx()

    def quantities(self, ctx):
        return {"mean": Quantity.integral(ctx.field(self.params.field) * ctx.dx(), "dimensionless")}


class Scaled(Physics):
    """Solves nothing: derives ``field = factor * reads``."""

    name = "scaled"

    class Parameters(Parameters):
        field: str
        reads: str
        factor: float = 1.0

    @property
    def provides(self):
        return [FieldSpec(self.params.field, "scalar", "dimensionless", ("DG", 1), derived=True)]

    @property
    def requires(self):
        return [FieldSpec(self.params.reads, "scalar", "dimensionless")]

    def derived(self, ctx):
        return {self.params.field: self.params.factor * ctx.field(self.params.reads)}


@pytest.fixture(autouse=True)
def chain_plugins(monkeypatch):
    found = registry.Plugins({"projected": Projected, "scaled": Scaled}, {})
    monkeypatch.setattr(registry, "discover", lambda: found)


def chain_case(**links: tuple[str, str, float]) -> dict:
    """u = x solved, w = c solved, and derived links {instance: (field, reads, factor)}."""
    physics = {
        name: {"type": "scaled", "field": field, "reads": reads, "factor": factor}
        for name, (field, reads, factor) in links.items()
    }
    physics["base"] = {"type": "projected", "field": "u"}
    physics["sink"] = {"type": "projected", "field": "w", "reads": "c"}
    return {"mesh": {"type": "interval", "cells": [4]}, "physics": physics}


def test_a_chain_of_three_derived_fields_reaches_the_solver():
    """c = 5 b, b = 3 a, a = 2 u, u = x (listed last link first): w = c = 30 x, mean 15. Two
    rebuilding passes left c reading a's stored value (zero before any output): w = 0."""
    case = chain_case(third=("c", "b", 5.0), second=("b", "a", 3.0), first=("a", "u", 2.0))
    sim = Simulation.from_case(case)
    result = sim.run()
    assert result.quantities["sink_mean"][-1] == pytest.approx(15.0, rel=1e-12)
    # c's expression reads the solved u alone, no stored derived field.
    read = ufl.algorithms.extract_coefficients(sim.groups[0].derived["c"])
    assert read == [sim.store["u"].function]


def test_derived_fields_reading_each_other_are_refused():
    case = chain_case(third=("c", "b", 5.0), second=("b", "a", 3.0), first=("a", "c", 2.0))
    with pytest.raises(CaseError) as error:
        Simulation.from_case(case).build()
    message = str(error.value)
    assert message.startswith("physics.")
    assert "derived fields read each other in a cycle" in message
    for field, instance in (("a", "first"), ("b", "second"), ("c", "third")):
        assert f"'{field}' (physics.{instance})" in message
