"""app/block_assembly.py: a block system's residual and Jacobian assembled in one loop are
DOLFINx's, entry for entry, with the lifting run only while a fixed dof's iterate differs from
its value; on 1 and 2 ranks.

Run as a script (under mpirun) it checks the same on every rank and prints "same".
"""

# ruff: noqa: I001  (app is imported before dolfinx: it loads dolfinx_solver first)

import sys
from pathlib import Path

import app  # noqa: F401
import numpy as np
import ufl
from dolfinx import fem, mesh
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI
from petsc4py import PETSc

from app.block_assembly import BlockAssembly


def _problems() -> tuple:
    """The same nonlinear two-field system (both fields fixed on part of the boundary, a
    coupling block of two spaces) as DOLFINx's blocked problem and with BlockAssembly."""
    domain = mesh.create_unit_square(MPI.COMM_WORLD, 6, 5)
    U = fem.functionspace(domain, ("Lagrange", 2))
    V = fem.functionspace(domain, ("Lagrange", 1))
    u, v = fem.Function(U, name="u"), fem.Function(V, name="v")
    p, q = ufl.TestFunction(U), ufl.TestFunction(V)
    x = ufl.SpatialCoordinate(domain)
    k = fem.Constant(domain, 0.7)
    F = [
        (1 + u**2) * ufl.inner(ufl.grad(u), ufl.grad(p)) * ufl.dx
        + v * p * ufl.dx
        - x[0] * p * ufl.dx
        + k * u * p * ufl.ds,
        ufl.inner(ufl.grad(v), ufl.grad(q)) * ufl.dx + u**2 * v * q * ufl.dx - q * ufl.dx,
    ]
    J = [[ufl.derivative(Fi, w) for w in (u, v)] for Fi in F]
    g = fem.Function(U)
    g.interpolate(lambda y: 1.0 + y[1] ** 2)
    left = fem.locate_dofs_geometrical(U, lambda y: np.isclose(y[0], 0.0))
    right = fem.locate_dofs_geometrical(V, lambda y: np.isclose(y[0], 1.0))
    bcs = [fem.dirichletbc(g, left), fem.dirichletbc(PETSc.ScalarType(-0.5), right, V)]
    made = []
    for prefix in ("dolfinx_", "blocks_"):
        problem = fem_petsc.NonlinearProblem(
            F, [u, v], J=J, bcs=bcs, kind="mpi", petsc_options_prefix=prefix
        )
        made.append(problem)
    assembly = BlockAssembly(made[1], [u, v], bcs)
    return made[0], made[1], assembly, bcs


def _evaluate(problem, x: PETSc.Vec) -> tuple[np.ndarray, PETSc.Mat]:
    snes = problem.solver
    b, (residual, args, kargs) = snes.getFunction()
    J, P, (jacobian, jargs, jkargs) = snes.getJacobian()
    residual(snes, x, b, *(args or ()), **(kargs or {}))
    jacobian(snes, x, J, P, *(jargs or ()), **(jkargs or {}))
    return b.getArray().copy(), J


def check_same_as_dolfinx() -> None:
    reference, blocked, assembly, bcs = _problems()
    x = reference.x.duplicate()
    x.setAttr("_blocks", reference.b.getAttr("_blocks"))
    rng = np.random.default_rng(MPI.COMM_WORLD.rank)
    x.setArray(rng.uniform(-1, 1, x.getLocalSize()))
    x.ghostUpdate(PETSc.InsertMode.INSERT, PETSc.ScatterMode.FORWARD)
    for meets_fixed_values in (False, True):
        if meets_fixed_values:  # x takes the fixed values, as after Newton's first step
            fixed = fem.bcs_by_block(fem.extract_function_spaces(reference.J, 0), bcs)
            fem_petsc.set_bc(x, fixed)
            x.ghostUpdate(PETSc.InsertMode.INSERT, PETSc.ScatterMode.FORWARD)
        liftings = assembly.liftings
        expected, expected_jacobian = _evaluate(reference, x)
        residual, jacobian = _evaluate(blocked, x)
        assert np.array_equal(residual, expected), np.abs(residual - expected).max()
        difference = jacobian.copy()
        difference.axpy(-1.0, expected_jacobian)
        assert difference.norm(PETSc.NormType.INFINITY) == 0.0
        assert jacobian.norm() > 0
        lifted = assembly.liftings - liftings
        assert lifted == (0 if meets_fixed_values else 1), (meets_fixed_values, lifted)


def test_residual_and_jacobian_are_dolfinx_s():
    check_same_as_dolfinx()


def test_residual_and_jacobian_are_dolfinx_s_on_2_ranks():
    from tests.conftest import mpi_python

    process = mpi_python(Path(__file__), ranks=2)
    assert process.returncode == 0, process.stdout + process.stderr
    assert process.stdout.count("same") == 2


if __name__ == "__main__":
    check_same_as_dolfinx()
    print("same", flush=True)
    sys.exit(0)
