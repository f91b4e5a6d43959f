"""A global value (one real dof) read on a mesh other than its own (app/traces.py).

A species c on a [0, 2] x [0, 1] rectangle is consumed by a reaction whose rate follows a lumped
temperature T in Arrhenius' law, and the reaction heats T: dc/dt = -k(T) c, rho c_p V dT/dt =
Q int k(T) c dx - h A (T - T_inf). Uniform in y, so the integral over the rectangle (height 1)
equals the one over its top edge: T lumped on the top line (its mesh; c reaches it as its
trace c_top and T reaches the rectangle as its copy temperature_parent) is the same problem as
T lumped on the rectangle itself. Both are one Newton system with a dense column (every dof of
c reads T) and a dense row (T reads every dof of c).
"""

import math

import numpy as np
import pytest
import tomli_w

from app.simulation import Simulation
from tests.conftest import assert_same_quantities, runs_on_ranks
from tests.test_plasticity import march

RATE, ACTIVATION, HEAT = 0.5, 3000.0, 40.0  # 1/s at 300 K, K (E/R), J/mol


def reacting_case(lumped_on: str | None, cells: int = 8, end: float = 1.0) -> dict:
    rate = f"{RATE}*exp({ACTIVATION}*(1/300 - 1/temperature))"
    heat = {
        "type": "heat",
        "volumetric_heat_capacity": 2.0,
        "initial": 300.0,
        "heat_sources": [],
        "source": f"{HEAT}*{rate}*c",
        "lumped": {"volume": 2.0, "cooling_area": 1.0, "h": 0.5, "ambient": 300.0},
    }
    if lumped_on is not None:
        heat["domain"] = lumped_on
    return {
        "mesh": {
            "type": "rectangle",
            "length": [2.0, 1.0],
            "cells": [cells, 4],
            "cell": "quadrilateral",
        },
        "physics": {
            "bulk": {
                "type": "mass_transport",
                "species": {
                    "c": {"diffusivity": 0.1, "initial": "1 + 0.5*x", "source": f"-{rate}*c"}
                },
            },
            "heat": heat,
        },
        "time": {"scheme": "bdf2", "dt": 0.1, "end": end},
        "solver": {"newton": {"rtol": 1e-13, "atol": 1e-14}},
        "output": {"interval": 0.5},
    }


@pytest.fixture(scope="module")
def both():
    runs = {}
    for where in ("top", None):
        sim = Simulation.from_case(reacting_case(where))
        reports, quantities = march(sim, 1.0, 0.1)
        runs[where] = (sim, reports, quantities)
    return runs


def test_the_copy_on_the_parent_is_the_value_of_the_boundary(both):
    sim, _, _ = both["top"]
    copy = sim.store["temperature_parent"]
    assert copy.is_global and copy.space.mesh is sim.domains.parent
    assert sim.store["temperature"].space.mesh.name == "top"
    assert copy.function.x.array[0] == pytest.approx(sim.store["temperature"].function.x.array[0])
    assert copy.function.x.array[0] > 300.5  # heated: the reaction saw a rising temperature


def test_a_global_value_on_the_boundary_is_the_same_problem_as_on_the_parent(both):
    """Same temperature and amount of c at every step to round-off, though one T lives on
    the top line and the other on the rectangle."""
    _, _, boundary = both["top"]
    _, _, parent = both[None]
    np.testing.assert_allclose(boundary["temperature_K"], parent["temperature_K"], rtol=1e-12)
    np.testing.assert_allclose(
        boundary["bulk_amount_c_mol_per_m"], parent["bulk_amount_c_mol_per_m"], rtol=1e-11
    )
    # the reaction, heating, ran faster than at 300 K: c (3 at the start) fell below 3 e^-kt
    assert boundary["bulk_amount_c_mol_per_m"][-1] < 3.0 * math.exp(-RATE * 1.0)


def test_newton_keeps_its_quadratic_convergence_through_the_copy(both):
    """The dense column and row are in the Jacobian: as many iterations as with T on the
    parent, and r_k+1 / r_k^2 stays bounded while the residual falls by orders of magnitude
    (a missing coupling block would leave a linear rate, r_k+1 / r_k about constant)."""
    _, on_boundary, _ = both["top"]
    _, on_parent, _ = both[None]
    assert [r.iterations for r in on_boundary] == [r.iterations for r in on_parent]
    assert max(r.iterations for r in on_boundary) <= 4
    for report in on_boundary:
        norms = [r for r in report.residual_norms if r > 1e-12 * report.residual_norms[0]]
        assert len(norms) >= 3, report.residual_norms
        orders = [
            math.log(c / b) / math.log(b / a)
            for a, b, c in zip(norms, norms[1:], norms[2:], strict=False)
        ]
        assert orders[-1] > 1.8, report.residual_norms


def test_a_global_value_of_one_boundary_reaches_another(both):
    """T on the top line, read by a film on the bottom line: the trace of the parent's copy."""
    case = reacting_case("top", end=0.2)
    case["physics"]["film"] = {
        "type": "mass_transport",
        "domain": "bottom",
        "species": {"s": {"diffusivity": 0.1, "source": "temperature - 300"}},
    }
    sim = Simulation.from_case(case)
    march(sim, 0.2, 0.1)
    copy = sim.store["temperature_bottom"]
    assert copy.space.mesh.name == "bottom"
    assert copy.function.x.array[0] == pytest.approx(
        sim.store["temperature"].function.x.array[0], rel=1e-13
    )


def test_the_copy_on_two_ranks(tmp_path):
    path = tmp_path / "reacting.toml"
    path.write_text(tomli_w.dumps(reacting_case("top", cells=12, end=0.5)))
    serial, parallel = runs_on_ranks(path, tmp_path)
    assert_same_quantities(serial, parallel, rtol=1e-10, floor=1e-12)
