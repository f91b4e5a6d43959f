"""Derived fields cost memory and interpolations only when something reads them (app/fields.py,
DeferredFunction): a run that writes no field file allocates none of those nobody reads, and
every reader (a quantity, a field file, the result) still gets the right values.

The body: a plate pulled along x in plane stress (left edge held in x, bottom edge in y, a
traction on the right edge), whose stress is uniform: sigma_xx = T, every other component 0, so
von Mises = T and the stored energy density T^2/(2E) everywhere.
"""

import numpy as np
import pytest

from app import run_reader
from app.simulation import Simulation
from tests.conftest import assert_same_quantities, runs_on_ranks

TRACTION, E = 2.5e6, 70e9
UNREAD = ("strain", "stress", "strain_energy_density", "out_of_plane_stress")

PLATE_TOML = f"""
title = "A plate pulled along x (plane stress)"
[mesh]
type = "rectangle"
length = [2.0, 1.0]
cells = [8, 4]
[physics.mechanics]
youngs_modulus = {E}
poisson_ratio = 0.3
formulation = "plane_stress"
boundaries.left = {{ type = "displacement", x = 0 }}
boundaries.bottom = {{ type = "displacement", y = 0 }}
boundaries.right = {{ type = "traction", value = [{TRACTION}, 0] }}
[output]
xdmf = false
"""


def plate(xdmf: bool) -> dict:
    return {
        "mesh": {"type": "rectangle", "length": [2.0, 1.0], "cells": [8, 4]},
        "physics": {
            "mechanics": {
                "youngs_modulus": E,
                "poisson_ratio": 0.3,
                "formulation": "plane_stress",
                "boundaries": {
                    "left": {"type": "displacement", "x": 0},
                    "bottom": {"type": "displacement", "y": 0},
                    "right": {"type": "traction", "value": [TRACTION, 0]},
                },
            }
        },
        "output": {"xdmf": xdmf},
    }


def test_a_run_without_field_files_allocates_only_the_derived_fields_it_reads(tmp_path):
    """No field file: the stress, strain, energy density and sigma_zz are never allocated (nor
    compiled); von Mises is, for the max_von_mises quantity, which matches the closed form; the
    quantities equal those of a run writing every field."""
    sim = Simulation.from_case(plate(xdmf=False))
    quiet = sim.run(tmp_path / "quiet")
    assert [name for name in UNREAD if not sim.store[name].unused] == []
    assert not sim.store["von_mises"].unused
    assert quiet.quantities["max_von_mises_Pa"][-1] == pytest.approx(TRACTION, rel=1e-10)

    written = Simulation.from_case(plate(xdmf=True))
    loud = written.run(tmp_path / "loud")
    assert [name for name in UNREAD if written.store[name].unused] == []
    assert quiet.quantities.keys() == loud.quantities.keys()
    for name, values in loud.quantities.items():
        assert quiet.quantities[name] == pytest.approx(values, rel=1e-12, abs=1e-9)


def test_a_derived_field_nothing_read_is_evaluated_when_the_result_is_asked_for_it():
    sim = Simulation.from_case(plate(xdmf=False))
    result = sim.run()
    assert sim.store["stress"].unused
    stress = result.fields["stress"].x.array.reshape(-1, 2, 2)  # looked up: evaluated now
    assert not sim.store["stress"].unused
    assert stress[:, 0, 0] == pytest.approx(TRACTION, rel=1e-10)
    assert np.abs(stress[:, 1, :]).max() < 1e-8 * TRACTION
    energy = result.fields["strain_energy_density"].x.array
    assert energy == pytest.approx(TRACTION**2 / (2 * E), rel=1e-10)
    assert set(result.fields) == set(sim.store.names())


def test_the_field_file_still_holds_every_requested_derived_field(tmp_path):
    Simulation.from_case(plate(xdmf=True)).run(tmp_path / "run")
    fields = run_reader.open_run(tmp_path / "run").fields
    assert {"displacement", "von_mises", *UNREAD} <= set(fields)
    for name in ("stress", "von_mises"):  # cellwise constants: cell data
        values = run_reader.read_snapshot(fields[name], -1).cell_data[name]
        first = np.asarray(values).reshape(len(values), -1)[:, 0]  # sigma_xx, von Mises
        assert first == pytest.approx(TRACTION, rel=1e-10)


def test_heat_flux_is_not_allocated_without_a_reader():
    """Every plug-in gains: heat's derived flux, read by no quantity, file or probe."""
    case = {
        "mesh": {"type": "interval", "length": [1.0], "cells": [8]},
        "physics": {
            "heat": {
                "source": 1000.0,
                "initial": 0.0,
                "boundaries": {"left": {"type": "temperature", "value": 0.0}},
            }
        },
        "output": {"xdmf": False},
    }
    sim = Simulation.from_case(case)
    result = sim.run()
    assert sim.store["heat_flux"].unused
    # q = -k dT/dx = -(source * (1 - x)) with k = 1 by default: -1000 (1 - x) at the cell means
    flux = result.fields["heat_flux"].x.array
    assert flux.min() < 0 and not sim.store["heat_flux"].unused


@pytest.mark.mpi
def test_two_ranks_give_the_same_quantities_without_field_files(tmp_path):
    path = tmp_path / "plate.toml"
    path.write_text(PLATE_TOML)
    serial, parallel = runs_on_ranks(path, tmp_path)
    # a zero reaction is round-off: within 1e-14 of the forces of the plate
    assert_same_quantities(serial, parallel, rtol=1e-10, floor=1e-4 * TRACTION)
    assert serial["max_von_mises_Pa"][-1] == pytest.approx(TRACTION, rel=1e-10)
