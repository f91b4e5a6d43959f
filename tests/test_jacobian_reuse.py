"""Modified Newton: the factorised Jacobian kept across iterations and steps
(app/jacobian_reuse.py, solver.newton.jacobian_reuse)."""

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI

from app.jacobian_reuse import install_jacobian_reuse
from app.newton import install_field_convergence
from app.simulation import Simulation
from tests.battery import CASE, SMALL_MESH
from tests.conftest import CASES, scalebridge


def _cube_root_solver(rtol):
    """u^3 = g in one DG0 dof, judged by the field test with a kept Jacobian."""
    domain = mesh.create_unit_interval(MPI.COMM_SELF, 1)
    space = fem.functionspace(domain, ("DG", 0))
    u, g = fem.Function(space), fem.Function(space)  # g a function: the Jacobian's data only
    g.x.array[:] = 8.0
    v = ufl.TestFunction(space)
    problem = fem_petsc.NonlinearProblem(
        (u**3 - g) * v * ufl.dx,
        u,
        petsc_options_prefix="cube_root_",
        petsc_options={
            "snes_type": "newtonls",
            "snes_linesearch_type": "basic",
            "snes_max_it": 50,
            "ksp_type": "preonly",
            "pc_type": "lu",
        },
    )
    test = install_field_convergence(problem, [u], ["1"], rtol)
    return u, g, problem, install_jacobian_reuse(problem, test, None)


def _solve(problem, reuse, guess, u):
    def newton():
        problem.solve()
        return problem.solver.getConvergedReason(), None

    u.x.array[:] = guess
    reason, _ = reuse.solve(newton, lambda: None)
    reuse.end_solve(reason > 0)
    return reason


def test_a_kept_jacobian_is_used_while_it_contracts_and_assembled_again_when_it_does_not():
    """g = 8, then 8.01 from the last root (the kept Jacobian 3u^2 = 12 is nearly exact: no
    assembly), then g = 1000 from the same guess (the kept Jacobian is 25 times too small: the
    first correction overshoots, the contraction is poor, Jacobians are assembled again). Every
    root to the field tolerance, as full Newton finds it."""
    rtol = 1e-10
    u, g, problem, reuse = _cube_root_solver(rtol)
    assert _solve(problem, reuse, 1.0, u) > 0
    assert u.x.array[0] == pytest.approx(2.0, rel=3 * rtol)
    first = reuse.assemblies
    g.x.array[:] = 8.01
    assert _solve(problem, reuse, 2.0, u) > 0
    assert reuse.assemblies == first  # only back-substitutions with the kept factor
    assert reuse.kept_iterations >= 2  # never "one iteration and done"
    assert u.x.array[0] == pytest.approx(8.01 ** (1 / 3), rel=3 * rtol)
    g.x.array[:] = 1000.0
    assert _solve(problem, reuse, 2.0, u) > 0
    assert reuse.assemblies > first
    assert u.x.array[0] == pytest.approx(10.0, rel=3 * rtol)


def test_a_slow_contraction_is_not_taken_as_converged():
    """A kept Jacobian 1.15 times the true one contracts by 0.13 per iteration: each
    correction is then 0.87 of the remaining error; the test corrected by 1/(1 - rate)
    stops only where the error itself is below the tolerance."""
    rtol = 1e-8
    u, g, problem, reuse = _cube_root_solver(rtol)
    g.x.array[:] = 1.0
    assert _solve(problem, reuse, 1.15**0.5, u) > 0  # Jacobian kept from u^2 = 1.15
    g.x.array[:] = 1.0
    assert _solve(problem, reuse, 1.0 + 2e-3, u) > 0
    assert reuse.rate > 0.05  # the kept Jacobian contracted slowly
    assert abs(u.x.array[0] - 1.0) <= rtol


def _heated_plate(reuse):
    """The heated plate under a ten times stronger heater, its conductivity growing
    exponentially as it warms (from 45 to 1200 W/(m K)), judged field by field: (the
    simulation, its result)."""
    settings = [
        'physics.heat.conductivity="45*exp((temperature - 293.15)/50)"',
        "physics.heat.boundaries.heater.value=4e5",
        "solver.newton.field_rtol=1e-10",
        f"solver.newton.jacobian_reuse={'true' if reuse else 'false'}",
        "time.end=10 min",
        "output.xdmf=false",
    ]
    simulation = Simulation.from_case(CASES / "heated_plate.toml", overrides=settings)
    return simulation, simulation.run()


def test_kept_jacobians_that_contract_poorly_are_assembled_again_to_the_same_answer():
    """While the plate heats, a Jacobian kept from the last step contracts poorly: it is
    given up, and every step converges to the full Newton answer."""
    simulation, reused = _heated_plate(True)
    _, full = _heated_plate(False)
    assert reused.steps == full.steps
    np.testing.assert_array_equal(reused.quantities["time_s"], full.quantities["time_s"])
    for column in ("max_temperature_K", "stored_energy_J_per_m"):
        scale = np.abs(full.quantities[column]).max()
        difference = np.abs(reused.quantities[column] - full.quantities[column]).max()
        assert difference <= 1e-9 * scale, column
    assert simulation.groups[0].solver.jacobian_reuse.poor_contractions > 0


def test_the_discharge_factorises_less_than_once_a_step_and_keeps_its_voltage():
    """The 1C discharge (small mesh) with and without the kept Jacobian: the same steps, the
    same voltage within Newton's tolerance, fewer factorisations than steps."""
    runs = {}
    for reuse in (True, False):
        settings = [*SMALL_MESH, f"solver.newton.jacobian_reuse={str(reuse).lower()}"]
        simulation = Simulation.from_case(CASE, overrides=[*settings, "output.xdmf=false"])
        runs[reuse] = (simulation, simulation.run())
    (simulation, reused), (_, full) = runs[True], runs[False]
    assert reused.steps == full.steps
    times = reused.quantities["time_s"]
    np.testing.assert_allclose(times, full.quantities["time_s"], rtol=0, atol=1e-4)
    difference = np.abs(reused.quantities["voltage_V"] - full.quantities["voltage_V"]).max()
    assert difference < 1e-6  # 1 uV, against 0.5 mV of discretisation error allowed
    # full Newton factorises at every iteration, at least once a step; the steps sized by the
    # voltage's error change size often (alpha/dt by more than a quarter: assembled again)
    assert simulation.groups[0].solver.jacobian_reuse.assemblies < reused.steps


def test_a_kept_jacobian_needs_the_field_test(tmp_path):
    """Bad input: one message naming the option and the fix, exit 2."""
    run = scalebridge(
        "run",
        CASES / "heated_plate.toml",
        "--set",
        "solver.newton.jacobian_reuse=true",
        "-o",
        tmp_path / "run",
        "-q",
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert "solver.newton.jacobian_reuse" in run.stderr
    assert "set solver.newton.field_rtol" in run.stderr
