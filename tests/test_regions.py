"""Fields on regions: a species living on a region's submesh, coupled to heat on the whole mesh.

The species solves -c'' + m^2 c = 0 on the core [0, 1] of a bar [0, 2], c(0) = 1, with no flux
through the interface at x = 1 (the region's own boundary). It heats the core with q c; heat
solves -T'' = q c in the core and -T'' = 0 outside, T(0) = T(2) = 0. With c = cosh(m(1-x))/cosh m,
T = -q c/m^2 + A x + q/m^2 in the core and A (x - 2) outside, A = q (1/cosh m - 1)/(2 m^2)
(continuity of T and of T' at x = 1, where c' = 0).
"""

import json
import math

import numpy as np
import pytest

from app.errors import CaseError
from app.simulation import Simulation
from tests.conftest import ROOT, mpi_python
from tests.region_plugin import (
    coupled_case,
    exact_species,
    exact_temperature,
    surface_case,
    use_plugin,
)


@pytest.fixture(autouse=True)
def region_plugin(monkeypatch):
    use_plugin(monkeypatch)


def nodal(function) -> tuple[np.ndarray, np.ndarray]:
    x = function.function_space.tabulate_dof_coordinates()[:, 0]
    return x, function.x.array


def test_species_lives_on_the_region_only():
    sim = Simulation.from_case(coupled_case())
    result = sim.run()
    c = result.fields["c"]
    x, values = nodal(c)
    assert c.function_space.mesh is not sim.mesh_data.mesh
    assert x.max() == pytest.approx(1.0) and x.min() == pytest.approx(0.0)
    # P2 on 20 core cells: nodal error of the cosh profile
    assert np.abs(values - exact_species(x, 1.0)).max() < 1e-5


def test_monolithic_coupling_across_the_region_boundary():
    """One Newton system over T (whole bar) and c (core): T matches the closed form, and the
    heat generated in the core leaves through the two fixed ends."""
    q = 3.0
    sim = Simulation.from_case(coupled_case(heating=q))
    assert len(sim.physics) == 2
    result = sim.run()
    x, T = nodal(result.fields["temperature"])
    assert np.abs(T - exact_temperature(x, 1.0, q)).max() < 1e-5
    quantities = {k: v[-1] for k, v in result.quantities.items()}
    generated = q * math.tanh(1.0)  # integral of q c over the core
    assert quantities["heat_generated_W_per_m2"] == pytest.approx(generated, rel=1e-6)
    leaving = quantities["heat_flow_left_W_per_m2"] + quantities["heat_flow_right_W_per_m2"]
    assert leaving == pytest.approx(quantities["heat_generated_W_per_m2"], rel=1e-10)
    # the species' supply at x = 0 balances its decay in the core: integral of m^2 c
    inflow = quantities["species_inflow_mol_per_m2_s"]
    assert inflow == pytest.approx(quantities["species_amount_mol_per_m2"], rel=1e-10)


def test_transient_region_field_matches_a_run_on_the_region_alone():
    """The species on the core of the bar (submesh, BDF2) evolves exactly as on a mesh that is
    only the core: history, capacity and boundary data all live on the region."""
    bar = coupled_case(steady=False, heating=0.0)
    del bar["physics"]["heat"]
    bar["physics"]["species"]["initial"] = "x*(1 - x)"
    core = {**bar, "mesh": {"type": "interval", "length": [1.0], "cells": [20]}}
    core["physics"] = {"species": {**bar["physics"]["species"], "region": "domain"}}
    on_bar, alone = (Simulation.from_case(case).run() for case in (bar, core))
    for column, values in alone.quantities.items():
        np.testing.assert_allclose(on_bar.quantities[column], values, rtol=1e-12, atol=1e-14)
    x_bar, c_bar = nodal(on_bar.fields["c"])
    x_alone, c_alone = nodal(alone.fields["c"])
    order_bar, order_alone = np.lexsort((c_bar, x_bar)), np.lexsort((c_alone, x_alone))
    np.testing.assert_allclose(c_bar[order_bar], c_alone[order_alone], rtol=1e-12)
    amount = on_bar.quantities["species_amount_mol_per_m2"]
    assert amount[-1] > amount[1] > amount[0] > 0


def test_integral_outside_the_region_is_refused():
    case = coupled_case()
    case["physics"]["species"]["everywhere"] = True
    with pytest.raises(CaseError) as error:
        Simulation.from_case(case).build()
    message = str(error.value)
    assert "physics.species" in message and "outside the region" in message
    assert "ctx.dx('core')" in message


def test_unknown_region_names_the_case_path():
    case = coupled_case()
    case["physics"]["species"]["region"] = "cor"
    with pytest.raises(CaseError) as error:
        Simulation.from_case(case).build()
    assert "physics.species.region" in str(error.value) and "did you mean 'core'" in str(
        error.value
    )


@pytest.mark.parametrize("steady", ["steady", "transient"])
def test_two_ranks_give_the_same_answer(steady):
    serial = mpi_python(ROOT / "tests" / "region_plugin.py", steady, ranks=1)
    parallel = mpi_python(ROOT / "tests" / "region_plugin.py", steady, ranks=2)
    assert serial.returncode == 0, serial.stderr[-2000:]
    assert parallel.returncode == 0, parallel.stderr[-2000:]
    one, two = (json.loads(run.stdout.strip().splitlines()[-1]) for run in (serial, parallel))
    for name, column in one["quantities"].items():
        np.testing.assert_allclose(two["quantities"][name], column, rtol=1e-9, atol=1e-12)
    for name, values in one["values"].items():
        np.testing.assert_allclose(two["values"][name], values, rtol=1e-9, atol=1e-12)


def test_surface_species_adsorbs_from_the_bulk():
    """A species on the top boundary's submesh exchanges with a well-mixed bulk:
    d(theta)/dt = c - theta/2 = -dc/dt, so theta = (2/3) (1 - exp(-3 t / 2)) on a unit square;
    solute plus adsorbed amount stays 1 (the flux boundary and the surface equation are one
    Newton system)."""
    sim = Simulation.from_case(surface_case())
    result = sim.run()
    theta = result.fields["theta"]
    assert theta.function_space.mesh.topology.dim == 1  # the top side's own mesh
    q = result.quantities
    t = q["time_s"]
    adsorbed, bulk = q["film_adsorbed_mol_per_m"], q["bulk_amount_c_mol_per_m"]
    np.testing.assert_allclose(adsorbed + bulk, 1.0, rtol=1e-10)  # Newton tolerance
    exact = 2 / 3 * (1 - np.exp(-1.5 * t))
    np.testing.assert_allclose(adsorbed, exact, rtol=2e-3, atol=1e-12)
    assert adsorbed[-1] > 0.5


@pytest.mark.parametrize("case", ["surface"])
def test_surface_species_on_two_ranks(case):
    test_two_ranks_give_the_same_answer(case)


def test_heat_placed_on_a_region_matches_a_run_on_the_region_alone():
    """`domain = "core"` puts a whole instance on a region: its temperature lives on the
    region's submesh, and `ctx.dx()` (storage, conduction, quantities) means the region."""
    physics = {
        "heat": {
            "initial": "300 + 10*x",
            "conductivity": 2.0,
            "boundaries": {"left": {"type": "temperature", "value": "300 + 20*t"}},
        }
    }
    time = {"scheme": "bdf2", "end": 0.5, "dt": 0.05}
    bar = {
        "mesh": {"type": "interval", "length": [2.0], "cells": [40], "regions": {"core": "x < 1"}},
        "physics": {"heat": {**physics["heat"], "domain": "core"}},
        "time": time,
    }
    alone = {"mesh": {"type": "interval", "length": [1.0], "cells": [20]}, "physics": physics}
    alone["time"] = time
    on_bar, on_core = (Simulation.from_case(case).run() for case in (bar, alone))
    temperature = on_bar.fields["temperature"]
    assert temperature.function_space.mesh.name == "core"
    for column, values in on_core.quantities.items():
        if column in on_bar.quantities:
            np.testing.assert_allclose(on_bar.quantities[column], values, rtol=1e-12, atol=1e-9)
    assert on_bar.quantities["stored_energy_J_per_m2"][-1] > 0


def test_domain_must_be_a_region():
    case = coupled_case()
    case["physics"]["heat"]["domain"] = "right"
    with pytest.raises(CaseError, match=r"physics\.heat\.domain"):
        Simulation.from_case(case).build()
    case["physics"]["heat"]["domain"] = "cor"
    with pytest.raises(CaseError, match="did you mean 'core'"):
        Simulation.from_case(case).build()
