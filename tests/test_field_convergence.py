"""Newton judged field by field in each field's units (app/newton.py, solver.newton.field_rtol),
PETSc's relative tests taken unit by unit without it, and the linear predictor of Newton's
initial guess (solver.newton.predictor)."""

import itertools

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI

from app.newton import install_field_convergence, install_unit_convergence
from app.simulation import Simulation
from tests.battery import CASE, SMALL_MESH, discharge
from tests.conftest import scalebridge


def _two_scales(field_rtol, by_unit=False):
    """u^3 = 1 in rows of size 1e8 and w^3 = 8 in rows of size 1e-8 (two equations in
    different units, as a potential's and a concentration's rows are): u starts close, w far."""
    domain = mesh.create_unit_interval(MPI.COMM_SELF, 1)
    space = fem.functionspace(domain, ("DG", 0))
    u, w = fem.Function(space), fem.Function(space)
    u.x.array[:] = 1 + 1e-3
    w.x.array[:] = 0.5
    du, dw = ufl.TestFunction(space), ufl.TestFunction(space)
    residuals = [1e8 * (u**3 - 1) * du * ufl.dx, 1e-8 * (w**3 - 8) * dw * ufl.dx]
    problem = fem_petsc.NonlinearProblem(
        residuals,
        [u, w],
        kind="mpi",
        petsc_options_prefix=f"two_scales_{field_rtol}_{by_unit}_",
        petsc_options={
            "snes_type": "newtonls",
            "snes_linesearch_type": "basic",
            "snes_rtol": 1e-8,
            "snes_atol": 1e-50,
            "snes_max_it": 50,
            "ksp_type": "preonly",
            "pc_type": "lu",
        },
    )
    if field_rtol is not None:
        install_field_convergence(problem, [u, w], ["V", "mol/m^3"], field_rtol)
    if by_unit:
        install_unit_convergence(problem, [u, w], ["V", "mol/m^3"])
    problem.solve()
    assert problem.solver.getConvergedReason() > 0
    return float(u.x.array[0]), float(w.x.array[0]), problem


def test_a_small_field_is_not_judged_against_a_large_one():
    """PETSc's norm of the whole residual stops once the large rows are converged, leaving
    the small field unconverged; judged in its own units it converges too."""
    _, w_norm, _ = _two_scales(None)
    assert abs(w_norm - 2) > 1e-3  # what field_rtol is for
    u, w, problem = _two_scales(1e-10)
    assert u == pytest.approx(1, rel=1e-12)
    assert w == pytest.approx(2, rel=1e-9)
    largest, scales = problem.field_convergence.corrections(problem.solver)
    assert np.all(largest <= 1e-10 * scales)
    assert scales == pytest.approx([1, 2], rel=1e-9)  # each field's largest value


def test_without_field_rtol_each_unit_is_judged_against_its_own_first_residual():
    """PETSc's relative tests taken unit by unit: w's rows, 1e16 smaller than u's, converge to
    rtol of their own first residual (1e-8 of w^3 - 8 at w = 0.5)."""
    u, w, _ = _two_scales(None, by_unit=True)
    assert u == pytest.approx(1, rel=1e-12)
    assert w == pytest.approx(2, rel=1e-8)


def test_a_steady_tracer_gets_the_darcy_velocity_it_is_coupled_to():
    """Steady darcy + tracer in one Newton solve on a 2D strip: q = 1e-4 m/s, D = 1e-4 m^2/s
    (Peclet 1): c = (e - e^x)/(e - 1) within 1e-3 (measured 3e-4, two Newton iterations).
    The first residual holds the pressure's Dirichlet rows in Pa (1e4); judged over the whole
    vector, the tracer's rows after one iteration (1e-6, the advection still missing) passed
    rtol = 1e-9, and c came out as pure diffusion, 1 - x."""
    darcy = {"permeability": 1e-11, "viscosity": 1e-3}
    darcy["boundaries"] = {
        "left": {"type": "pressure", "value": 1e4},
        "right": {"type": "pressure", "value": 0.0},
    }
    dye = {"diffusivity": 1e-4}
    dye["boundaries"] = {
        "left": {"type": "concentration", "value": 1.0},
        "right": {"type": "concentration", "value": 0.0},
    }
    tracer = {"type": "mass_transport", "velocity": "darcy_velocity"}
    tracer |= {"effective_diffusivity": "none", "species": {"dye": dye}}
    mesh = {"type": "rectangle", "length": [1.0, 0.1], "cells": [20, 2]}
    case = {"mesh": mesh, "physics": {"darcy": darcy, "tracer": tracer}}
    result = Simulation.from_case(case).run()
    c = result.fields["dye"]
    x = c.function_space.tabulate_dof_coordinates()[:, 0]
    exact = (np.e - np.exp(x)) / (np.e - 1)
    error = MPI.COMM_WORLD.allreduce(np.abs(c.x.array - exact).max(initial=0.0), op=MPI.MAX)
    assert error < 1e-3
    assert result.quantities["newton_iterations"][-1] >= 2


def test_the_linear_predictor_saves_newton_iterations_and_changes_nothing(tmp_path):
    """On a 2C discharge's first 10 minutes: fewer iterations per step from the extrapolated
    guess, the same voltage (both converged to field_rtol)."""
    settings = [*SMALL_MESH, 'protocol.steps=["Discharge at 2C for 10 minutes"]']
    guessed = discharge(tmp_path / "linear", *settings)
    plain = discharge(tmp_path / "none", *settings, "solver.newton.predictor=none")
    iterations = {
        name: q["newton_iterations"][1:].mean()
        for name, q in [("linear", guessed), ("none", plain)]
    }
    assert iterations["linear"] < iterations["none"] - 0.5, iterations
    voltage = np.interp(guessed["time_s"], plain["time_s"], plain["voltage_V"])
    assert np.abs(voltage - guessed["voltage_V"]).max() < 5e-5


def test_field_rtol_needs_one_monolithic_vector(tmp_path):
    run = scalebridge(
        "run",
        CASE,
        *[a for s in [*SMALL_MESH, "solver.preset=fieldsplit"] for a in ("--set", s)],
        "-o",
        tmp_path / "run",
        "-q",
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert "solver.newton.field_rtol" in run.stderr
    assert "fieldsplit" in run.stderr


def test_a_jacobian_diagonal_from_another_time_step_does_not_pass_a_first_guess():
    """(u - u_old)/dt = 1 from u_old = 1000: after a step of 1e-8 s (an event located) the
    stored diagonal is 1e8; judged by it, the next 60 s step's first guess u_old would look
    converged (1/1e8 <= 1e-9 * 1000). A changed dt makes the diagonal stale: Newton iterates."""
    domain = mesh.create_unit_interval(MPI.COMM_SELF, 1)
    space = fem.functionspace(domain, ("DG", 0))
    u, u_old = fem.Function(space), fem.Function(space)
    dt = fem.Constant(domain, 1e-8)
    v = ufl.TestFunction(space)
    problem = fem_petsc.NonlinearProblem(
        ((u - u_old) / dt - 1) * v * ufl.dx,
        u,
        petsc_options_prefix="stale_diagonal_",
        petsc_options={
            "snes_type": "newtonls",
            "snes_linesearch_type": "basic",
            "ksp_type": "preonly",
            "pc_type": "lu",
        },
    )
    install_field_convergence(problem, [u], ["mol/m^3"], 1e-9)
    u_old.x.array[:] = u.x.array[:] = 1000.0
    problem.solve()
    assert u.x.array[0] == pytest.approx(1000 + 1e-8, abs=1e-12)
    u_old.x.array[:] = u.x.array
    dt.value = 60.0
    problem.solve()
    assert problem.solver.getIterationNumber() >= 1
    assert u.x.array[0] == pytest.approx(1060 + 1e-8, rel=1e-12)


def test_field_maxima_are_each_ranges_largest_value_and_zero_when_empty():
    from app.newton import field_maxima

    rng = np.random.default_rng(7)
    for _ in range(200):
        sizes = rng.integers(0, 4, size=rng.integers(1, 7))  # empty fields at either end too
        offsets = np.cumsum([0, *sizes])
        values = np.abs(rng.normal(size=offsets[-1]))
        expected = [values[a:b].max(initial=0.0) for a, b in itertools.pairwise(offsets)]
        assert np.array_equal(field_maxima(values, offsets), expected)
