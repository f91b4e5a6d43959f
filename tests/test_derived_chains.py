"""Derived fields that read derived fields: every consumer gets the whole chain as UFL.

A derived field's stored value is evaluated at output times only, so an equation that read it
would see a stale value (zero before the first output). The framework hands each consumer the
provider's expression instead, rebuilt until no expression reads a stored derived value: a
chain of any depth, across instances or within one, is current inside the solve; a cycle is a
case error.
"""

import pytest

from app.errors import CaseError
from app.simulation import Simulation


def heated(fields_by_instance: dict[str, dict]) -> dict:
    """A bar heated by the derived field q, insulated but at its left end, held at 0; the
    prescribed instances provide the chain that leads to q."""
    physics = {
        name: {"type": "prescribed", "fields": fields}
        for name, fields in fields_by_instance.items()
    }
    physics["heat"] = {
        "source": "q",
        "boundaries": {"left": {"type": "temperature", "value": 0.0}},
    }
    return {
        "mesh": {"type": "interval", "cells": [10]},
        "physics": physics,
        "output": {"xdmf": False},
    }


@pytest.mark.parametrize(
    "chain",
    [
        {  # three instances, declared downstream first
            "third": {"q": {"units": "W/m^3", "value": "2*b"}},
            "second": {"b": {"value": "3*a"}},
            "first": {"a": {"value": "1 + 0*x"}},
        },
        {"one": {"a": {"value": "1 + 0*x"}, "b": {"value": "3*a"}, "q": {"value": "2*b"}}},
    ],
    ids=["across instances", "within one instance"],
)
def test_a_chain_of_derived_fields_reaches_the_solve(chain):
    """q = 2 b = 6 a = 6: the heat generated is 6 W per m^2 of the bar's section, and the
    steady temperature at the insulated end q L^2/(2 k) = 3."""
    q = Simulation.from_case(heated(chain)).run().quantities
    assert q["heat_generated_W_per_m2"][-1] == pytest.approx(6.0, rel=1e-12)
    assert q["max_temperature_K"][-1] == pytest.approx(3.0, rel=1e-12)


def test_derived_fields_in_a_cycle_are_a_case_error():
    chain = {"p": {"a": {"value": "b + 1"}, "b": {"value": "a"}, "q": {"value": "a"}}}
    with pytest.raises(
        CaseError, match=r"in a cycle: 'a' \(physics.p\) -> 'b' \(physics.p\) -> 'a'"
    ):
        Simulation.from_case(heated(chain)).build()
