"""Battery cases at 5C and 10C: the electrolyte runs out before the voltage cut-off.

At these rates Chen2020's salt empties near the positive collector within a minute, where the
exchange current sqrt(c_e ...) and the conductivity vanish: no step past that point has a
solution (the runs ended in NaN). Every battery case marks its salt ``stop_at_zero``, so the
run ends with the event 'c_e at its lower bound 0' on the step where the lowest concentration
reaches 1e-4 of its initial value (app/bound_stops.py), its rows complete up to there.

The time of that point is checked against PyBaMM's DFN (26.10, Chen2020 from SOC 1, IDAKLU at
rtol 1e-8, the same current), whose lowest c_e reaches 0.1 mol/m^3 at (points per domain)

    rate   30 points   60 points   120 points
    5C     36.40 s     35.94 s     35.80 s
    10C    10.98 s     10.65 s     10.52 s

PyBaMM itself then runs on (its c_e stays within -1e-6 of zero) to 2.5 V at 62.2 s and 15.1 s.
The case's 20 cells per layer carry a discretisation error of the size of PyBaMM's between 30
and 120 points (1.7 % at 5C, 4.4 % at 10C): the tolerances below.
"""

import math
import shutil

import numpy as np
import pytest

from app.bound_stops import STOP_MARGIN
from app.simulation import Simulation
from tests.battery import CASE, SMALL_MESH, every_step
from tests.conftest import (
    CASES,
    assert_same_by_units,
    read_quantities,
    runs_on_ranks,
    scalebridge,
)

EVENT = "c_e at its lower bound 0"
C_E_INIT = 1000.0  # Chen2020's initial salt concentration [mol/m^3]
THRESHOLD = STOP_MARGIN * C_E_INIT
#: C-rate -> PyBaMM's time of min c_e = 0.1 mol/m^3 at 120 points [s]
PYBAMM = {"5C": 35.80, "10C": 10.52}
#: C-rate -> relative tolerance of the time on the shipped mesh (measured 2.5 %, 3.8 %) and on
#: the small meshes (8 + 4 + 8 by 6 cells, measured at 10C: 5.3-5.7 %)
SHIPPED = {"5C": 0.03, "10C": 0.05}
SMALL_MESHES = {"5C": 0.05, "10C": 0.08}
#: small meshes of every battery case (SMALL_MESH's cells)
PSEUDO_2D = {
    "mesh.layers": [
        {"name": "negative", "thickness": "L_n", "cells": 8},
        {"name": "separator", "thickness": "L_s", "cells": 4},
        {"name": "positive", "thickness": "L_p", "cells": 8},
    ],
    "mesh.radial_cells": 6,
}
CELL_2D = {
    "mesh.parameters.negative_cells": 8,
    "mesh.parameters.separator_cells": 4,
    "mesh.parameters.positive_cells": 8,
    "mesh.parameters.radial_cells": 6,
    "mesh.parameters.height_cells": 2,
}
SMALL = {
    "battery_cycling": PSEUDO_2D,
    "battery_discharge_rve": PSEUDO_2D,
    "battery_cell_2d": CELL_2D,
    "battery_cell_2d_thermal": CELL_2D,
}

#: the RVE case's surrogate costs 30 s a run, and 10C adds nothing 5C does not test for it
RVE_AT_10C = ("battery_discharge_rve", "10C")


def discharge(case, rate: str, mesh: dict | None = None):
    """The case discharged at ``rate`` until 2.5 V, a row at every step, in memory."""
    overrides = {
        "protocol.steps": [f"Discharge at {rate} until 2.5 V"],
        "output.interval": None,
        "output.xdmf": False,
    }
    return Simulation.from_case(case, overrides=overrides | (mesh or {})).run(progress=False)


def assert_stopped_where_the_salt_ran_out(result) -> None:
    """The event ended the run, every value is finite, and the last row is the first with the
    lowest salt concentration at the threshold (to the event's time tolerance)."""
    assert result.event == EVENT
    for name, values in result.quantities.items():
        assert np.all(np.isfinite(values)), name
    lowest = result.quantities["electrolyte_min_c_e_mol_per_m3"]
    assert lowest[-1] == pytest.approx(THRESHOLD, rel=1e-3)
    assert np.all(lowest[:-1] > THRESHOLD)
    assert result.quantities["voltage_V"][-1] > 2.5  # not the cut-off: the salt ended it


@pytest.mark.parametrize("rate", PYBAMM)
def test_discharge_stops_where_pybamm_runs_out_of_salt(rate):
    """cases/battery_discharge.toml as shipped (20 cells per layer; 10C also needs the initial
    solve's larger Newton budget, 39 iterations): the run stops at PyBaMM's time of the same
    concentration, with the lithium in the particles conserved up to there."""
    result = discharge(CASE, rate)
    assert_stopped_where_the_salt_ran_out(result)
    assert result.quantities["time_s"][-1] == pytest.approx(PYBAMM[rate], rel=SHIPPED[rate])
    lithium = result.quantities["cyclable_lithium_mol"]
    np.testing.assert_allclose(lithium, lithium[0], rtol=1e-9)


@pytest.mark.parametrize(
    "name, rate",
    [(name, rate) for name in SMALL for rate in PYBAMM if (name, rate) != RVE_AT_10C],
)
def test_every_battery_case_stops_at_high_rates(name, rate):
    """The other battery cases (small meshes) end with the same event, at PyBaMM's time within
    the small meshes' tolerance (their heat and transport factors move it by less than that)."""
    result = discharge(CASES / f"{name}.toml", rate, SMALL[name])
    assert_stopped_where_the_salt_ran_out(result)
    assert result.quantities["time_s"][-1] == pytest.approx(PYBAMM[rate], rel=SMALL_MESHES[rate])


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["battery_discharge", "battery_cell_2d"])
def test_the_stop_is_the_same_on_two_ranks(tmp_path, name):
    """The 1D and the 2D cell at 5C (small meshes): the same rows up to the same event on 1
    and 2 ranks."""
    mesh = SMALL_MESH
    if name == "battery_cell_2d":  # the copy of the case reads the mesh script by its path
        script = f"mesh.file={CASES.parent / 'meshes' / 'battery_cell_2d.py'}"
        mesh = [script, *(f"{key}={value}" for key, value in CELL_2D.items())]
    settings = [*mesh, 'protocol.steps=["Discharge at 5C until 2.5 V"]']
    args = [arg for setting in settings for arg in ("--set", setting)]
    serial, parallel = runs_on_ranks(every_step(tmp_path, CASES / f"{name}.toml"), tmp_path, *args)
    np.testing.assert_allclose(serial["time_s"], parallel["time_s"], rtol=1e-11, atol=0)
    assert_same_by_units(serial, parallel, rtol=1e-8)
    assert min(serial["electrolyte_min_c_e_mol_per_m3"]) == pytest.approx(THRESHOLD, rel=1e-3)
    for ranks in ("np1", "np2"):
        log = (tmp_path / ranks / "run.log").read_text()
        assert f"the event '{EVENT}' ended the run" in log
    assert math.isfinite(serial["voltage_V"][-1])


def test_a_restarted_run_stops_where_the_unbroken_run_does(tmp_path):
    """The stop's threshold is part of a checkpoint: restarted from a checkpoint written when
    the salt's highest value had risen (discharge piles it up at the negative electrode), the
    run stops on the same step as the unbroken run, not at a threshold measured from there."""
    settings = [
        *SMALL_MESH,
        'protocol.steps=["Discharge at 5C until 2.5 V"]',
        "checkpoint.steps=10",
        "checkpoint.keep=1000",
    ]
    args = [arg for setting in settings for arg in ("--set", setting)]
    case = every_step(tmp_path, CASE)
    unbroken, continued = tmp_path / "unbroken", tmp_path / "continued"
    for folder in (unbroken, continued):
        process = scalebridge("run", case, "-o", folder, "-q", *args)
        assert process.returncode == 0, process.stderr
    checkpoints = sorted((continued / "checkpoints").glob("checkpoint-*"))
    assert len(checkpoints) >= 3
    for later in checkpoints[2:]:  # as if the run had been killed after its second checkpoint
        shutil.rmtree(later)
    again = scalebridge("restart", continued, "-q")
    assert again.returncode == 0, again.stderr
    # the kept Jacobian of modified Newton is not part of a checkpoint: after the restart the
    # iterations differ, and the iterates at the Newton tolerance
    expected, found = (
        {name: values for name, values in read_quantities(run).items() if "iterations" not in name}
        for run in (unbroken, continued)
    )
    np.testing.assert_allclose(found["time_s"], expected["time_s"], rtol=1e-8, atol=0)
    assert_same_by_units(expected, found, rtol=1e-6)
    assert f"the event '{EVENT}' ended the run" in (continued / "run.log").read_text()
