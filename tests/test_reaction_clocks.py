"""Clocks of reaction_kinetics (cellwise d(theta)/dt = rate) and the porosity floor of
mass_transport's effective diffusivity: two pieces the biomineral cases are made of.

- A clock that runs only under a condition counts the time the condition held; one given an
  age by region keeps it; a reaction switched on by a clock starts after the lag; a clock is
  not an amount and takes no pore space.
- D_eff = max(eps, eps_floor)^b D: the steady flux through a clogged slab is that of the floor.
"""

import pytest

from app.errors import CaseError
from app.simulation import Simulation


def batch(clocks: dict, reactions: dict | None = None, **mesh) -> dict:
    """Cells of one immobile species A and a mineral M (or a species B, with ``reactions``)."""
    species = {"A": {"initial": 1.0}}
    species |= {"B": {}} if reactions else {"M": {"molar_volume": 1e-3, "initial": 0.1}}
    chemistry = {
        "type": "reaction_kinetics",
        "porosity": 0.5,
        "species": species,
        "clocks": clocks,
        "reactions": reactions or {"r": {"equation": "A -> M", "rate_constant": "0 s^-1"}},
    }
    return {
        "mesh": {"type": "interval", "cells": [4]} | mesh,
        "physics": {"chemistry": chemistry},
        "time": {"scheme": "bdf1", "end": 10.0, "dt": 0.5},
        "output": {"xdmf": False},
    }


def test_a_clock_counts_the_time_its_condition_holds():
    q = Simulation.from_case(batch({"theta": {"rate": "1 if t > 4 else 0"}})).run().quantities
    assert q["chemistry_max_theta_s"][-1] == pytest.approx(6.0, rel=1e-12)
    assert q["chemistry_min_theta_s"][-1] == pytest.approx(6.0, rel=1e-12)


def test_an_age_by_region_and_a_reaction_after_a_lag():
    """Cells of 'old' start 100 s old; a first-order reaction (k = 0.1/s) runs once the age
    exceeds 3.25 s (between two steps): young cells react for 14 steps, old ones for all 20
    (implicit Euler, dt = 0.5)."""
    reactions = {
        "r": {"equation": "A -> B", "law": "expression", "rate": "0.1*A if age > 3.25 else 0"}
    }
    regions = {"regions": {"old": "x < 0.5", "young": "x > 0.5"}}
    spec = batch({"age": {"initial": {"old": 100.0, "young": 0.0}}}, reactions, **regions)
    sim = Simulation.from_case(spec)
    q = sim.run().quantities
    assert q["chemistry_max_age_s"][-1] == pytest.approx(110.0, rel=1e-12)
    assert q["chemistry_min_age_s"][-1] == pytest.approx(10.0, rel=1e-12)
    left = 1 / 1.05**20  # A over 20 steps of dt k = 0.05
    assert q["chemistry_min_A_mol_per_m3"][-1] == pytest.approx(left, rel=1e-9)
    assert q["chemistry_max_A_mol_per_m3"][-1] == pytest.approx(1 / 1.05**14, rel=1e-9)


def test_an_old_clock_does_not_loosen_newton_on_the_species():
    """A tissue 5 years old (1.6e8 s) beside a second-order reaction (dA/dt = -k A^2, k dt = 5):
    each implicit Euler step solves k dt A^2 + A - A_n = 0 exactly. Judged on the norm of the
    whole solution, as PETSc does, the age made any update below about 1 look converged, and
    A stopped after a Newton step or two, 20 % off at the end (Newton rtol 1e-9 of the first
    residual leaves 1e-7)."""
    reactions = {"r": {"equation": "A -> B", "law": "expression", "rate": "10*A**2"}}
    spec = batch({"age": {"initial": "5 year"}}, reactions)
    q = Simulation.from_case(spec).run().quantities
    amount = 1.0
    for _ in range(20):
        amount = (-1 + (1 + 4 * 5.0 * amount) ** 0.5) / (2 * 5.0)
    assert q["chemistry_max_A_mol_per_m3"][-1] == pytest.approx(amount, rel=1e-6)


def test_a_clock_takes_no_pore_space():
    spec = batch({"theta": {"initial": 1e6}})
    q = Simulation.from_case(spec).run().quantities
    assert q["chemistry_min_porosity"][-1] == pytest.approx(0.5 - 0.1, rel=1e-12)


@pytest.mark.parametrize("name", ["A", "porosity", "t", "r_rate"])
def test_a_clock_name_must_be_free(name):
    with pytest.raises(CaseError) as error:
        Simulation.from_case(batch({name: {}}))
    assert error.value.path == "physics.chemistry"
    assert f"clocks.{name}: use a name that is no species, field" in str(error.value)


@pytest.mark.parametrize(("porosity", "floor", "effective"), [(0.01, 0.04, 0.04), (0.3, 0.04, 0.3)])
def test_porosity_floor_of_the_effective_diffusivity(porosity, floor, effective):
    """Steady c(0) = 1, c(1) = 0 with Archie's D_eff = max(eps, floor)^2 D: the flow out is
    D_eff, while the amount stored uses eps itself."""
    species = {
        "diffusivity": 2.0,
        "boundaries": {
            "left": {"type": "concentration", "value": 1.0},
            "right": {"type": "concentration", "value": 0.0},
        },
    }
    spec = {
        "mesh": {"type": "interval", "cells": [10]},
        "physics": {
            "mass_transport": {
                "porosity": porosity,
                "effective_diffusivity": "archie",
                "porosity_floor": floor,
                "species": {"c": species},
            }
        },
        "output": {"xdmf": False},
    }
    q = Simulation.from_case(spec).run().quantities
    assert q["outflow_c_right_mol_per_s_per_m2"][-1] == pytest.approx(2 * effective**2, rel=1e-9)
    assert q["amount_c_mol_per_m2"][-1] == pytest.approx(porosity / 2, rel=1e-9)


def test_porosity_floor_needs_a_porosity_law():
    spec = {
        "mesh": {"type": "interval", "cells": [4]},
        "physics": {
            "mass_transport": {
                "effective_diffusivity": "none",
                "porosity_floor": 0.02,
                "species": {"c": {"diffusivity": 1.0}},
            }
        },
    }
    with pytest.raises(CaseError, match="porosity_floor are only read with effective_diff"):
        Simulation.from_case(spec)
