"""transport_factor of mass_transport and electrostatics: the effective transport f x (bulk
property), with f per region (a microstructure's eps/tau; a surrogate in the battery case,
tests/test_battery_rve.py).

Two layers in series on [0, 2] ('domain' below x = 1, 'b' above), held at 1 and 0 at the ends:
the steady flux is the drop over the sum of the layers' resistances, 1/(1/(f_1 k) + 1/(f_2 k)),
which P1 elements reproduce to round-off (the solution is linear in each layer, with a node at
the interface).
"""

import pytest
from scipy.optimize import brentq

from app.errors import CaseError
from app.simulation import Simulation

MESH = {"type": "interval", "length": [2.0], "cells": [40], "regions": {"b": "x > 1"}}
FACTORS = {"domain": 0.5, "b": 2.0}


def series(bulk: float, factors: dict[str, float]) -> float:
    """Flux through the two unit-length layers with a unit drop."""
    return 1 / sum(1 / (f * bulk) for f in factors.values())


def diffusion(**medium) -> dict:
    species = {
        "diffusivity": 3.0,
        "boundaries": {
            "left": {"type": "concentration", "value": 1.0},
            "right": {"type": "concentration", "value": 0.0},
        },
    }
    physics = {"type": "mass_transport", "species": {"A": species}} | medium
    return {"title": "layers", "mesh": MESH, "physics": {"transport": physics}}


def conduction(**medium) -> dict:
    physics = {
        "type": "electrostatics",
        "mode": "conduction",
        "conductivity": "3 S/m",
        "boundaries": {
            "left": {"type": "potential", "value": 1.0},
            "right": {"type": "potential", "value": 0.0},
        },
    } | medium
    return {"title": "layers", "mesh": MESH, "physics": {"conduction": physics}}


def last(case: dict, column: str) -> float:
    return Simulation.from_case(case).run().quantities[column][-1]


@pytest.mark.parametrize(
    ("medium", "law"),
    [
        ({"effective_diffusivity": "none"}, 1.0),
        ({"porosity": 0.25}, 0.25**1.5),  # Bruggeman's eps^1.5 times the factor
    ],
)
def test_the_factor_scales_the_diffusivity_per_region(medium, law):
    case = diffusion(transport_factor=FACTORS, **medium)
    inflow = -last(case, "transport_outflow_A_left_mol_per_s_per_m2")
    assert inflow == pytest.approx(series(3.0 * law, FACTORS), rel=1e-12)
    assert inflow != pytest.approx(series(3.0 * law, {"domain": 1, "b": 1}), rel=1e-3)


def test_the_factor_scales_the_conductivity_per_region():
    current = last(conduction(transport_factor=FACTORS), "conduction_current_right_A_per_m2")
    assert current == pytest.approx(series(3.0, FACTORS), rel=1e-12)


def test_the_factor_multiplies_an_expression_of_the_solution():
    """sigma(phi) = 3 (1 + phi): with f per layer the current is the drop of
    int f sigma dphi, 3 f (1 + phi)^2 / 2, in series: the same resistances with the mean
    bulk conductivity of each layer's potential range, solved by Newton."""
    case = conduction(transport_factor=FACTORS, conductivity="3*(1 + potential)", degree=2)
    current = last(case, "conduction_current_right_A_per_m2")

    # the interface potential u: f_1 int_u^1 3(1 + p) dp = f_2 int_0^u 3(1 + p) dp
    def kirchhoff(low: float, high: float) -> float:
        return 3 * ((1 + high) ** 2 - (1 + low) ** 2) / 2

    u = brentq(lambda u: 0.5 * kirchhoff(u, 1) - 2.0 * kirchhoff(0, u), 0, 1)
    assert current == pytest.approx(2.0 * kirchhoff(0, u), rel=1e-6)


def test_a_factor_is_refused_in_dielectric_mode():
    case = conduction(transport_factor=0.5)
    physics = case["physics"]["conduction"]
    physics["mode"] = "dielectric"
    physics.pop("conductivity")
    physics["boundaries"] = {"left": {"type": "potential", "value": 1.0}}
    with pytest.raises(CaseError, match='transport_factor: only used in mode = "conduction"'):
        Simulation.from_case(case)
