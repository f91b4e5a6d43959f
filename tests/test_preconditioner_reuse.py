"""Newton keeps its AMG preconditioner across iterations and steps while the Krylov iterations
stay near those of a fresh set-up (app/solvers.py, PreconditionerReuse)."""

from __future__ import annotations

import numpy as np
import pytest
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


@pytest.mark.parametrize("dt", [60.0, 600.0])  # 600 s: kept solves fail and are redone
def test_reused_preconditioner_on_two_ranks(tmp_path, dt):
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
end = END
dt = DT

[solver]
preset = "gmres_gamg"
rtol = 1e-10
newton.rtol = 1e-10
""".replace("END", str(max(600.0, 3 * dt))).replace("DT", str(dt))
    )
    serial, parallel = runs_on_ranks(case, tmp_path)
    iterations = [name for name in serial if name.endswith("iterations")]
    for name in iterations:
        serial.pop(name), parallel.pop(name)
    assert_same_quantities(serial, parallel, rtol=1e-8)


def test_a_kept_preconditioner_that_stops_working_is_set_up_again_within_the_newton_solve():
    # Steps of 600 s heat the block by hundreds of kelvin, so k more than doubles within a
    # Newton solve: GMRES with the AMG of the first iterate ran to its limit of 10,000
    # iterations and the step failed, where a fresh set-up converges in about a dozen.
    case = {**NONLINEAR_HEAT, "time": {"scheme": "bdf1", "end": 1800.0, "dt": 600.0}}
    runs = {}
    for reuse in (True, False):
        solver = {**case["solver"], "newton": {"rtol": 1e-10, "reuse_preconditioner": reuse}}
        runs[reuse] = Simulation.from_case({**case, "solver": solver}).run().quantities
    reused, fresh = runs[True], runs[False]
    assert fresh["max_temperature_K"][-1] > 700  # the conductivity grew by a factor > 9
    assert np.array_equal(reused["newton_iterations"], fresh["newton_iterations"])
    # a capped solve costs at most GROWTH x its reference: within 3x the fresh solves' total
    assert np.all(reused["linear_iterations"] <= 3 * fresh["linear_iterations"])
    solution = {k: list(v) for k, v in reused.items() if not k.endswith("iterations")}
    reference = {k: list(v) for k, v in fresh.items() if not k.endswith("iterations")}
    assert_same_quantities(solution, reference, rtol=1e-8)
