"""Newton keeps its AMG preconditioner across iterations and steps while the Krylov iterations
stay near those of a fresh set-up (app/solvers.py, PreconditionerReuse)."""

from __future__ import annotations

import numpy as np
from petsc4py import PETSc

from app.simulation import Simulation
from tests.conftest import assert_same_quantities, runs_on_ranks

# Conduction with a conductivity that grows with temperature (a Newton solve every step),
# solved with GMRES + GAMG; the source heats the block by tens of kelvin.
NONLINEAR_HEAT = {
    "mesh": {"type": "rectangle", "cells": [24, 24]},
    "physics": {
        "heat": {
            "conductivity": "1.5*(1 + 0.02*(temperature - 293.15))",
            "density": 1000.0,
            "specific_heat": 1000.0,
            "source": "2e5*(1 + x)",
            "initial": 293.15,
            "boundaries": {"left": {"type": "temperature", "value": 293.15}},
        }
    },
    "time": {"scheme": "bdf1", "end": 600.0, "dt": 60.0},
    "solver": {"preset": "gmres_gamg", "rtol": 1e-10, "newton": {"rtol": 1e-10}},
}


def _run(reuse: bool) -> tuple[dict[str, np.ndarray], int]:
    case = {**NONLINEAR_HEAT, "solver": {**NONLINEAR_HEAT["solver"]}}
    case["solver"]["newton"] = {**case["solver"]["newton"], "reuse_preconditioner": reuse}
    PETSc.Log.begin()
    setups = PETSc.Log.Event("PCSetUp").getPerfInfo()["count"]
    result = Simulation.from_case(case).run()
    return result.quantities, PETSc.Log.Event("PCSetUp").getPerfInfo()["count"] - setups


def test_reused_preconditioner_gives_the_same_solution_with_fewer_set_ups():
    reused, reused_setups = _run(True)
    fresh, fresh_setups = _run(False)
    assert fresh["newton_iterations"].sum() >= 2 * len(fresh["newton_iterations"]) - 2
    assert reused_setups < fresh_setups / 2, (reused_setups, fresh_setups)
    solution = {k: list(v) for k, v in reused.items() if not k.endswith("iterations")}
    reference = {k: list(v) for k, v in fresh.items() if not k.endswith("iterations")}
    assert_same_quantities(solution, reference, rtol=1e-8)
    assert np.array_equal(reused["newton_iterations"], fresh["newton_iterations"])


def test_reused_preconditioner_on_two_ranks(tmp_path):
    case = tmp_path / "case.toml"
    case.write_text(
        """
[mesh]
type = "rectangle"
cells = [24, 24]

[physics.heat]
conductivity = "1.5*(1 + 0.02*(temperature - 293.15))"
density = 1000.0
specific_heat = 1000.0
source = "2e5*(1 + x)"
initial = 293.15
boundaries.left = { type = "temperature", value = 293.15 }

[time]
scheme = "bdf1"
end = 600.0
dt = 60.0

[solver]
preset = "gmres_gamg"
rtol = 1e-10
newton.rtol = 1e-10
"""
    )
    serial, parallel = runs_on_ranks(case, tmp_path)
    iterations = [name for name in serial if name.endswith("iterations")]
    for name in iterations:
        serial.pop(name), parallel.pop(name)
    assert_same_quantities(serial, parallel, rtol=1e-8)
