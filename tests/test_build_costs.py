"""What building and stepping a run does not repeat (issue 12's speed target): no Jacobian block
differentiated for a residual that does not read its unknown, no block differentiated twice,
no rate system built for a run that never solves it, no lifting by columns without fixed
values (the residual and Jacobian still DOLFINx's own), and no SciPy module imported that the
run does not use. Each keeps the answers: the residual is the same to the bit, the blocks are
the group's own."""

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


def test_the_battery_residual_and_jacobian_are_dolfinx_own(battery):
    """The DFN's SNES callbacks (app/block_assembly.py: one loop over 35 blocks, the lifting
    skipped while the fixed dofs hold their values) give DOLFINx's residual and Jacobian to the
    bit, at a state off the fixed values (a first Newton iterate) and on them."""
    problem = battery.groups[0].solver.problem
    snes = problem.solver
    _, (residual, args, kargs) = snes.getFunction()
    J, P, (jacobian, jargs, jkargs) = snes.getJacobian()
    bcs = battery.groups[0].solver.system.bcs
    layout = problem.b.getAttr("_blocks")
    x = problem.x.copy()
    x.setAttr("_blocks", layout)
    x.setRandom()
    for on_fixed_values in (False, True):
        if on_fixed_values:
            rows = fem.extract_function_spaces(problem.J, 0)
            fem_petsc.set_bc(x, fem.bcs_by_block(rows, bcs))
        ours, theirs = problem.b.duplicate(), problem.b.duplicate()
        ours.setAttr("_blocks", layout)
        theirs.setAttr("_blocks", layout)
        residual(snes, x.copy(), ours, *(args or ()), **(kargs or {}))
        fem_petsc.assemble_residual(
            snes, x.copy(), theirs, problem.u, problem.F, problem.J, bcs, layout
        )
        assert np.array_equal(ours.array, theirs.array)
        assert np.abs(ours.array).max() > 0
        battery.groups[0].solver.forget_jacobian()  # assembled now, not kept from the run
        jacobian(snes, x.copy(), J, P, *(jargs or ()), **(jkargs or {}))
        ours_matrix = J.copy()
        fem_petsc.assemble_jacobian(snes, x.copy(), J, P, problem.u, problem.J, None, bcs)
        ours_matrix.axpy(-1.0, J)
        assert ours_matrix.norm() == 0.0


def test_a_run_imports_no_scipy_spatial_or_optimize():
    script = (
        "import sys; import app.cli, app.simulation; "
        "print(sorted(m for m in ('scipy.spatial', 'scipy.optimize') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]", result.stderr
