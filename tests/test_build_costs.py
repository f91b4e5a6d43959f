"""What building and stepping a run does not repeat (issue 12's speed target): no Jacobian block
differentiated for a residual that does not read its unknown, no block differentiated twice,
no rate system built for a run that never solves it, no second sparsity pattern for the rates of
a field whose step operator has one, no lifting by columns without fixed values, and no SciPy
module imported that the run does not use. Each keeps the answers: the
residual is the same to the bit, the blocks are the group's own."""

import subprocess
import sys

import numpy as np
import pytest
import ufl
from dolfinx import fem
from dolfinx.fem import petsc as fem_petsc

from app import solve_system
from app.simulation import Simulation
from tests.battery import CASE, SMALL_MESH
from tests.conftest import ROOT

SHORT = ['protocol.steps=["Discharge at 1C for 1 minutes"]', "output.xdmf=false"]


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    """The DFN on the small mesh after a minute of discharge: one group of nine fields."""
    simulation = Simulation.from_case(CASE, overrides=[*SMALL_MESH, *SHORT])
    simulation.run(tmp_path_factory.mktemp("battery") / "run")
    return simulation


def test_jacobian_differentiates_only_the_unknowns_a_residual_reads(battery, monkeypatch):
    group = battery.groups[0]
    residuals, unknowns = group.system.residuals, group.system.unknowns
    calls = []
    expand = ufl.algorithms.expand_derivatives

    def counted(form):
        calls.append(form)
        return expand(form)

    monkeypatch.setattr(ufl.algorithms, "expand_derivatives", counted)
    jacobian = solve_system.jacobian_blocks(residuals, unknowns)
    read = [[u in set(F.coefficients()) for u in unknowns] for F in residuals]
    assert len(calls) == sum(map(sum, read)) < len(residuals) * len(unknowns)
    for row, reads in zip(jacobian, read, strict=True):
        assert all(block is None for block, r in zip(row, reads, strict=True) if not r)
    # the blocks skipped are those a full differentiation finds empty
    for i, F in enumerate(residuals):
        for j, u in enumerate(unknowns):
            if not read[i][j]:
                du = ufl.TrialFunction(u.function_space)
                assert expand(ufl.derivative(F, u, du)).empty()


def test_initial_solve_reuses_the_groups_jacobian_blocks(battery):
    group = battery.groups[0]
    initial = group._initial_solver.system
    rows = [group.system.unknowns.index(u) for u in initial.unknowns]
    assert 0 < len(rows) < len(group.system.unknowns)
    for i, row in zip(rows, initial.jacobian, strict=True):
        for j, block in zip(rows, row, strict=True):
            assert block is group.system.jacobian[i][j]


def test_rates_are_not_differentiated_in_a_run_that_never_solves_them(battery):
    rates = battery.groups[0].rates
    assert rates is not None and rates.residuals
    assert "system" not in vars(rates)  # a cached property, computed on first use
    assert len(rates.system.unknowns) == len(rates.residuals)


def test_residual_lifted_by_fixed_columns_only_is_dolfinx_residual(battery):
    problem = battery.groups[0].solver.problem
    snes = problem.solver
    _, (assemble, args, kargs) = snes.getFunction()
    lifting = kargs["jacobian"]
    fixed = fem.bcs_by_block(fem.extract_function_spaces(problem.J, 1), kargs["bcs"])
    assert any(fixed) and not all(fixed)
    for row, full_row in zip(lifting, problem.J, strict=True):
        for j, (block, full) in enumerate(zip(row, full_row, strict=True)):
            assert block is (full if fixed[j] else None)
    # at a state off the fixed values (a first Newton iterate) the residual is the same
    x = problem.x.copy()
    x.setRandom()
    ours, theirs = problem.b.duplicate(), problem.b.duplicate()
    assemble(snes, x.copy(), ours, *args, **kargs)
    assemble(snes, x.copy(), theirs, *args, **(kargs | {"jacobian": problem.J}))
    assert np.array_equal(ours.array, theirs.array)
    assert np.abs(ours.array).max() > 0


def test_a_run_imports_no_scipy_spatial_or_optimize():
    script = (
        "import sys; import app.cli, app.simulation; "
        "print(sorted(m for m in ('scipy.spatial', 'scipy.optimize') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_rates_share_the_step_operators_sparsity_pattern(monkeypatch):
    """A heated bar (P1, k = 2, rho c_p = 1, source s = 1000, uniform initial temperature held
    at its left end) reports the heat through that end at t = 0: the reaction of the
    semi-discrete equations, M w = F on the free nodes (K u0 = 0), R = (M w - F) at the end,
    computed here by hand. One sparsity pattern is built for the run: the capacity matrix of
    the rates shares the step operator's (it built its own before)."""
    built = []
    create_matrix = fem_petsc.create_matrix

    def counted(*args, **kwargs):
        built.append(args[0])
        return create_matrix(*args, **kwargs)

    monkeypatch.setattr(fem_petsc, "create_matrix", counted)
    cells, source = 8, 1000.0
    heat = {"conductivity": 2.0, "density": 1.0, "specific_heat": 1.0, "source": source}
    heat |= {"initial": 300.0, "boundaries": {"left": {"type": "temperature", "value": 300.0}}}
    case = {
        "mesh": {"type": "interval", "length": [1.0], "cells": [cells]},
        "physics": {"heat": heat},
        "time": {"scheme": "bdf1", "end": 1.0, "dt": 1.0},
        "output": {"xdmf": False},
    }
    flow = Simulation.from_case(case).run().quantities["heat_flow_left_W_per_m2"]
    assert len(built) == 1
    h = 1.0 / cells
    mass, load = np.zeros((cells + 1, cells + 1)), np.zeros(cells + 1)
    for cell in range(cells):
        mass[cell : cell + 2, cell : cell + 2] += h / 6 * np.array([[2, 1], [1, 2]])
        load[cell : cell + 2] += source * h / 2
    rate = np.zeros(cells + 1)
    rate[1:] = np.linalg.solve(mass[1:, 1:], load[1:])
    assert flow[0] == pytest.approx(-(mass[0] @ rate - load[0]), rel=1e-12)
