"""Time loop and solvers: operator reuse, output times, step rejection and retry, presets."""

import json

import numpy as np
import pytest

from app.errors import CaseError, SolverError
from app.simulation import Simulation
from tests.conftest import scalebridge


def linear_case(scheme: str, dt: float = 0.1, **time) -> dict:
    return {
        "mesh": {"type": "rectangle", "cells": [12, 12]},
        "physics": {
            "heat": {
                "conductivity": {"domain": 2.0},
                "source": "10*sin(pi*x)",
                "initial": 0.0,
                "boundaries": {
                    "left": {"type": "temperature", "value": "sin(t)"},
                    "right": {"type": "convection", "h": 5.0, "ambient": 1.0},
                },
            }
        },
        "time": {"scheme": scheme, "end": 1.0, "dt": dt, **time},
    }


@pytest.mark.parametrize(("scheme", "assemblies"), [("bdf1", 1), ("bdf2", 2)])
def test_linear_operator_is_assembled_once_and_reused(scheme, assemblies):
    sim = Simulation.from_case(linear_case(scheme))
    result = sim.run()
    solver = sim.groups[0].solver
    assert "linear" in sim.describe_solvers()
    assert result.steps == 10
    # BDF2 starts with a BDF1 step: one assembly for each set of coefficients, then reuse.
    assert solver.matrix_assemblies == assemblies


def test_operator_is_reassembled_when_dt_changes():
    """An output time at 0.25 shortens one step to 0.05, which shifts the grid so the last step
    (0.95 -> 1.0) is 0.05 too: the operator is rebuilt at each change of dt, and only then
    (0.1, 0.05, 0.1, 0.05: four assemblies for eleven steps)."""
    sim = Simulation.from_case(linear_case("bdf1") | {"output": {"times": [0.25]}})
    result = sim.run()
    assert result.steps == 11
    assert 0.25 in result.quantities["time_s"]
    assert sim.groups[0].solver.matrix_assemblies == 4


def test_output_times_are_hit_exactly_whatever_dt():
    case = linear_case("bdf2", dt=0.3) | {"output": {"interval": 0.25, "times": [0.1]}}
    result = Simulation.from_case(case).run()
    assert result.quantities["time_s"].tolist() == pytest.approx([0, 0.1, 0.25, 0.5, 0.75, 1.0])


def test_reused_operator_gives_the_same_answer_as_rebuilding(monkeypatch):
    reused = Simulation.from_case(linear_case("bdf2")).run()
    from app import solvers

    monkeypatch.setattr(solvers.LinearSolver, "_matrix_is_stale", lambda self: True)
    rebuilt = Simulation.from_case(linear_case("bdf2")).run()
    for name, values in reused.quantities.items():
        assert values == pytest.approx(rebuilt.quantities[name], rel=1e-12, abs=1e-12), name


HARD = {
    "mesh": {"type": "rectangle", "cells": [8, 8]},
    "physics": {
        "heat": {
            "conductivity": "exp(temperature/50)",
            "initial": 0.0,
            "boundaries": {
                "left": {"type": "flux", "value": 2e3},
                "right": {"type": "temperature", "value": 0.0},
            },
        }
    },
    "time": {"scheme": "bdf1", "end": 1.0, "dt": 0.5},
    "solver": {"newton": {"max_iterations": 4}},
    "output": {"interval": 0.5},
}


def test_failed_newton_steps_are_retried_with_smaller_dt():
    case = HARD | {"time": HARD["time"] | {"adaptive": {"dt_max": 0.5}}}
    result = Simulation.from_case(case).run()
    assert result.rejected > 0
    assert result.quantities["time_s"].tolist() == [0.0, 0.5, 1.0]
    for values in result.quantities.values():
        assert np.isfinite(values).all()
    # The retried run agrees with a run that never needed a retry (small fixed steps).
    careful = HARD | {"time": HARD["time"] | {"dt": 0.005}, "solver": {}}
    reference = Simulation.from_case(careful).run()
    assert result.quantities["max_temperature_K"][-1] == pytest.approx(
        reference.quantities["max_temperature_K"][-1], rel=0.05
    )


def test_fixed_dt_failure_is_reported_with_the_fix():
    with pytest.raises(SolverError, match=r"failed at t = 0.5 s \(Newton DIVERGED_.*time.adaptive"):
        Simulation.from_case(HARD).run()


def test_failed_run_exits_1_and_its_folder_says_failed(tmp_path):
    case = tmp_path / "hard.toml"
    case.write_text(
        """
[mesh]
type = "rectangle"
cells = [8, 8]
[physics.heat]
conductivity = "exp(temperature/50)"
initial = 0.0
boundaries.left = { type = "flux", value = 2e3 }
boundaries.right = { type = "temperature", value = 0.0 }
[time]
scheme = "bdf1"
end = 1.0
dt = 0.5
[solver.newton]
max_iterations = 4
"""
    )
    out = tmp_path / "out"
    process = scalebridge("run", case, "-o", out, "-q")
    assert process.returncode == 1
    assert "Traceback" not in process.stderr
    assert "DIVERGED" in process.stderr
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["status"] == "failed"
    assert "DIVERGED" in provenance["error"]


@pytest.mark.parametrize("preset", ["cg_gamg", "gmres_gamg", "gmres_ilu"])
def test_iterative_presets_match_the_direct_solve(preset):
    direct = Simulation.from_case(linear_case("bdf2")).run()
    case = linear_case("bdf2") | {"solver": {"preset": preset, "rtol": 1e-12}}
    sim = Simulation.from_case(case)
    iterative = sim.run()
    assert preset in sim.describe_solvers()
    assert iterative.quantities["linear_iterations"][1:].min() > 1
    for name in ("max_temperature_K", "stored_energy_J_per_m", "heat_flow_right_W_per_m"):
        assert iterative.quantities[name] == pytest.approx(direct.quantities[name], rel=1e-8)


def test_raw_petsc_options_override_the_preset():
    case = linear_case("bdf1") | {"solver": {"preset": "cg_gamg", "petsc": {"ksp_type": "bcgs"}}}
    sim = Simulation.from_case(case)
    sim.run()
    assert sim.groups[0].solver.problem.solver.getType() == "bcgs"


def test_auto_preset_picks_multigrid_for_large_spd_problems():
    case = linear_case("bdf1") | {"mesh": {"type": "rectangle", "cells": [330, 330]}}
    sim = Simulation.from_case(case)
    sim.build()
    assert "solver cg_gamg" in sim.describe_solvers()
    small = Simulation.from_case(linear_case("bdf1"))
    small.build()
    assert "solver direct" in small.describe_solvers()


def insulated_pulse(breakpoints: list[float]) -> dict:
    """An insulated square heated by a source that switches off at t = 0.5."""
    return {
        "mesh": {"type": "rectangle", "cells": [6, 6]},
        "physics": {"heat": {"source": "1 if t <= 0.5 else 0", "initial": 0, "reference": 0}},
        "time": {"scheme": "bdf2", "end": 1.0, "dt": 0.1, "breakpoints": breakpoints},
    }


def test_breakpoint_restarts_bdf2_at_a_jump_in_the_forcing():
    energy = Simulation.from_case(insulated_pulse([0.5])).run().quantities["stored_energy_J_per_m"]
    times = np.linspace(0, 1, 11)
    # Insulated: the energy is exactly the heat put in (1 W/m^3 * 1 m^2 for 0.5 s) once the
    # source stops, and stays there.
    assert energy[times > 0.49] == pytest.approx(0.5, rel=1e-10)
    # Without the restart BDF2 extrapolates the heating trend past the switch-off.
    carried = Simulation.from_case(insulated_pulse([])).run().quantities["stored_energy_J_per_m"]
    assert carried[-1] > 0.5 * (1 + 1e-3)


def test_steady_field_that_no_boundary_fixes_is_refused():
    """Steady heat with insulated sides only: any constant can be added to T, so the direct
    solver meets a null pivot. The run fails and says which condition is missing, instead of
    returning one arbitrary temperature (MUMPS alone returned T = 0 and 'completed')."""
    heat = {"source": "1e3*(x - 0.5)"}  # heats one half, cools the other: a solution exists
    case = {"mesh": {"type": "interval", "cells": [8]}, "physics": {"heat": heat}}
    with pytest.raises(SolverError, match=r"linear .*singular operator .* not fixed by any bound"):
        Simulation.from_case(case).run()
    heat["conductivity"] = "1 + temperature**2/1e4"
    with pytest.raises(SolverError, match=r"Newton .*singular operator"):
        Simulation.from_case(case).run()
    heat["boundaries"] = {"right": {"type": "convection", "h": 10.0, "ambient": 300.0}}
    result = Simulation.from_case(case).run()  # a convection side fixes it
    assert result.quantities["heat_flow_right_W_per_m2"][-1] == pytest.approx(0.0, abs=1e-9)


def test_a_fixed_step_far_off_the_runs_scale_is_refused_before_the_run():
    with pytest.raises(CaseError) as refused:
        Simulation.from_case(linear_case("bdf1", dt=1e-9))  # 1e9 steps: it stepped for days
    assert str(refused.value) == (
        "time.dt: 1e+09 steps of 1e-09 s from 0 s to 1 s are more than time.max_steps = "
        "100000. Fix: give a time step on the run's scale, set [time.adaptive] to let it "
        "grow, or raise time.max_steps when the run needs that many"
    )


def test_a_step_size_that_never_grows_again_ends_at_max_steps():
    # Every Newton solve of the nonlinear conduction takes more iterations than "easy": the
    # controller keeps the 1e-4 s step, 10,000 steps for the run
    case = HARD | {"time": HARD["time"] | {"dt": 1e-4, "max_steps": 40}}
    case["time"]["adaptive"] = {"easy_iterations": 1}
    with pytest.raises(SolverError) as stopped:
        Simulation.from_case(case).run()
    assert str(stopped.value) == (
        "the run tried time.max_steps = 40 steps (0 of them rejected) and reached t = 0.004 s "
        "of 1 s, with steps of 0.0001 s at the end; raise time.max_steps if the run needs that "
        "many, else find what keeps the steps short (time.adaptive settings, the run log)"
    )
