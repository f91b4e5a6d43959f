"""One quadrature per group, and no identically zero terms (app/forms.py).

- Balances close on curved (order 2) cells with linear fields: the charges of a two-dielectric
  coaxial cable cancel (1 and 2 ranks), heat entering an annulus leaves it, both to round-off;
  the capacitance and the heat flow against their closed forms.
- Residual, Jacobian and integral quantities of a group share one degree, 2p + geometry + 2
  for nonlinear equations, whatever UFL would estimate for exp/sqrt/powers of the fields;
  ``[solver] quadrature_degree`` overrides it; vertex quadrature a plug-in asks for stays.
- A parameter given as 0 leaves no term in the forms, unless a protocol sets it later.
"""

import math

import pytest
import ufl
from ufl.algorithms.analysis import extract_constants

from app.errors import CaseError
from app.simulation import Simulation
from tests.conftest import CASES, assert_same_quantities, runs_on_ranks

EPS0 = 8.8541878128e-12
ANNULUS = str(CASES.parent / "meshes" / "annulus.py")


def coax_capacitance() -> float:
    """C' of cases/coaxial_two_dielectrics.toml: two layers in series."""
    a, c, b = 0.5e-3, 1.0e-3, 1.75e-3
    return 2 * math.pi / (math.log(c / a) / (2.25 * EPS0) + math.log(b / c) / (4 * EPS0))


@pytest.mark.parametrize("degree", [1, 2])
def test_two_dielectric_coax_charges_cancel_on_curved_cells(degree):
    """P1 on order-2 cells was the failing combination (3e-6 before); P2 as a control."""
    overrides = {"physics.electrostatics.degree": degree}
    sim = Simulation.from_case(CASES / "coaxial_two_dielectrics.toml", overrides=overrides)
    q = {name: values[-1] for name, values in sim.run().quantities.items()}
    inner, outer = q["charge_inner_C_per_m"], q["charge_outer_C_per_m"]
    assert abs(inner + outer) < 1e-10 * inner
    assert inner / 100.0 == pytest.approx(coax_capacitance(), rel=5e-3)
    assert sim.mesh_data.mesh.geometry.cmaps[0].degree == 2


@pytest.mark.mpi
def test_two_dielectric_coax_on_two_ranks(tmp_path):
    serial, parallel = runs_on_ranks(CASES / "coaxial_two_dielectrics.toml", tmp_path)
    assert_same_quantities(serial, parallel)
    inner, outer = parallel["charge_inner_C_per_m"][-1], parallel["charge_outer_C_per_m"][-1]
    assert abs(inner + outer) < 1e-10 * inner


def annulus_heat(**solver) -> dict:
    """Steady conduction through an annulus 1 cm < r < 3 cm (order 2 cells, P1): 400 K inside,
    convection to 300 K outside."""
    return {
        "mesh": {
            "type": "gmsh",
            "file": ANNULUS,
            "order": 2,
            "parameters": {"inner_radius": 0.01, "outer_radius": 0.03},
        },
        "physics": {
            "heat": {
                "conductivity": 2.0,
                "boundaries": {
                    "inner": {"type": "temperature", "value": 400.0},
                    "outer": {"type": "convection", "h": 50.0, "ambient": 300.0},
                },
            }
        },
        "solver": solver,
    }


def test_annulus_heat_in_equals_heat_out_on_curved_cells():
    """The reaction at the fixed temperature (what enters) against the convection integral
    (what leaves): 8e-7 apart before; Q' = 2 pi k dT / (ln(b/a) + k/(h b)) to 0.2 %."""
    q = Simulation.from_case(annulus_heat()).run().quantities
    entering = -q["heat_flow_inner_W_per_m"][-1]
    leaving = q["heat_flow_outer_W_per_m"][-1]
    assert leaving == pytest.approx(entering, rel=1e-12)
    exact = 2 * math.pi * 2.0 * 100.0 / (math.log(3.0) + 2.0 / (50.0 * 0.03))
    assert leaving == pytest.approx(exact, rel=2e-3)


def degrees(form: ufl.Form) -> set:
    """The quadrature degree each integral asks for (None: left to UFL's estimate)."""
    return {integral.metadata().get("quadrature_degree") for integral in form.integrals()}


def group_degrees(sim: Simulation) -> set:
    """Every degree in the residual, the Jacobian and the integral quantities of a run."""
    sim.build()
    system = sim.groups[0].system
    forms = [*system.residuals, *(J for row in system.jacobian for J in row if J is not None)]
    forms += [q.form for q in sim.quantities.values() if q.form is not None and not q.form.empty()]
    return set().union(*map(degrees, forms))


def electrolyte(**species) -> dict:
    """Salt in a porous electrolyte with a concentration-dependent diffusivity and a source
    that UFL would integrate at degree 11 (sqrt, exp and a power of c)."""
    return {
        "mesh": {"type": "rectangle", "cells": [4, 4]},
        "physics": {
            "mass_transport": {
                "porosity": 0.3,
                "lumped_sources": False,
                "species": {
                    "c": {
                        "diffusivity": "1e-9*(1 + 0.5*(c/1000)**2)",
                        "source": "-1e-3*sqrt(c)*exp(-c/2000)",
                        "initial": 1000.0,
                        "boundaries": {"left": {"type": "concentration", "value": 1000.0}},
                    }
                    | species
                },
            }
        },
        "time": {"scheme": "bdf1", "end": 1.0, "dt": 1.0},
    }


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (CASES / "coaxial_two_dielectrics.toml", {4}),  # 2*1 + det J of order-2 triangles
        (CASES / "coaxial_capacitor.toml", {6}),  # P2: 2*2 + 2
        (CASES / "porous_electrode.toml", {2}),  # P1 on intervals, linear
        (electrolyte(), {4}),  # nonlinear: 2*1 + 2
    ],
)
def test_one_degree_for_every_form_of_a_group(case, expected):
    assert group_degrees(Simulation.from_case(case)) == expected


def test_the_case_sets_the_degree():
    sim = Simulation.from_case(annulus_heat(quadrature_degree=3))
    assert group_degrees(sim) == {3}
    q = sim.run().quantities
    assert q["heat_flow_outer_W_per_m"][-1] == pytest.approx(
        -q["heat_flow_inner_W_per_m"][-1], rel=1e-12
    )


@pytest.mark.parametrize("value", [-1, 31, 2.5])
def test_bad_quadrature_degree(value):
    with pytest.raises(CaseError, match=r"^solver\.quadrature_degree"):
        Simulation.from_case(annulus_heat(quadrature_degree=value))


def test_lumped_sources_keep_their_vertex_quadrature():
    """mass_transport asks for vertex quadrature of its sources; only the rest gets the
    group's degree, and the amount balance closes to round-off."""
    case = electrolyte()
    case["physics"]["mass_transport"]["lumped_sources"] = True
    case["solver"] = {"newton": {"rtol": 1e-14, "atol": 1e-16}}  # closes to Newton's tolerance
    sim = Simulation.from_case(case)
    sim.build()
    residual = sim.groups[0].system.residuals[0]
    rules = {i.metadata().get("quadrature_rule", "default") for i in residual.integrals()}
    assert rules == {"vertex", "default"} and degrees(residual) == {1, 4}
    q = sim.run().quantities
    change = q["amount_c_mol_per_m"][-1] - q["amount_c_mol_per_m"][0]
    net = q["generated_c_mol_per_s_per_m"][-1] - q["outflow_c_left_mol_per_s_per_m"][-1]
    assert change == pytest.approx(net * 1.0, rel=1e-10)


def zero_constants(form: ufl.Form) -> list:
    return [c for c in extract_constants(form) if float(c.value) == 0.0]


def test_a_zero_parameter_leaves_no_term():
    """heat's default source (0) and an ambient of 0 K: neither is in the residual, and the
    heat generated is zero without a form to compile."""
    case = annulus_heat()
    case["physics"]["heat"]["boundaries"]["outer"]["ambient"] = 0.0
    sim = Simulation.from_case(case)
    sim.build()
    residual = sim.groups[0].system.residuals[0]
    assert zero_constants(residual) == []
    assert sim.quantities["heat_generated_W_per_m"].form.empty()
    case["physics"]["heat"]["source"] = 5.0
    sim = Simulation.from_case(case)
    sim.build()
    assert not sim.quantities["heat_generated_W_per_m"].form.empty()


def test_a_zero_the_protocol_sets_stays():
    """A heater at 0 W/m^2 that the protocol switches on is not identically zero: the energy
    stored after 100 s at 1 kW/m^2 on a 0.1 m edge of an insulated plate is 10 kJ/m."""
    case = {
        "mesh": {"type": "rectangle", "length": [0.1, 0.02], "cells": [10, 2]},
        "physics": {
            "heat": {
                "density": 1000.0,
                "specific_heat": 1000.0,
                "initial": 300.0,
                "reference": 300.0,
                "boundaries": {"bottom": {"type": "flux", "value": 0.0}},
            }
        },
        "time": {"scheme": "bdf1", "dt": 10.0, "end": 1000.0},
        "protocol": {
            "steps": ["Heat at 1000 W/m^2 for 100 s"],
            "controls": {"Heat": {"target": "physics.heat.boundaries.bottom.value"}},
        },
    }
    sim = Simulation.from_case(case)
    sim.build()
    assert zero_constants(sim.groups[0].system.residuals[0])  # the heater, still in the form
    q = sim.run().quantities
    assert q["stored_energy_J_per_m"][-1] == pytest.approx(1000.0 * 0.1 * 100.0, rel=1e-9)


def test_a_zero_divisor_is_named():
    """A parameter of 0 that the equations divide by is a case error at its path (UFL would
    refuse the 1/0 left after the zero is folded in)."""
    reaction = {"equation": "A <-> B", "rate_constant": 1.0, "equilibrium_constant": 0.0}
    case = {
        "mesh": {"type": "interval", "cells": [4]},
        "physics": {
            "chemistry": {
                "type": "reaction_kinetics",
                "species": {"A": {"initial": 1.0}, "B": {"initial": 0.0}},
                "reactions": {"r": reaction},
            }
        },
        "time": {"scheme": "bdf1", "end": 1.0, "dt": 0.5},
    }
    path = r"^physics\.chemistry\.reactions\.r\.equilibrium_constant: 0 here makes the equations"
    with pytest.raises(CaseError, match=path):
        Simulation.from_case(case).build()
