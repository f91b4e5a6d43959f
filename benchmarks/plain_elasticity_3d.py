"""The benchmark case benchmarks/elasticity_3d.toml written by hand in plain DOLFINx 0.11.

The reference ``benchmarks/elasticity_3d.py --plain`` times ScaleBridge against: what a competent
DOLFINx user would write for the cantilever, with PETSc's default GAMG settings:

* a 4 x 1 x 1 m box, ``create_box`` with 4N x N x N cells split into tetrahedra, P1 displacement
  (``--refine L``: the box of 4N x N x N / 2^L cells refined uniformly L times by DOLFINx, the
  mesh of benchmarks/elasticity_3d_gmg.toml, so both solve the identical discrete problem);
* linear isotropic elasticity, E = 210 GPa, nu = 0.3, gravity rho g = 7850 * 9.81 N/m^3 along -z,
  the left face (x = 0) fixed;
* CG + GAMG (rtol 1e-8) with the six rigid-body modes as near-nullspace and block size 3;
* the reaction of the support (the residual summed over its z dofs), which balances the weight,
  and the strain energy (half the loads' work), to compare solutions of the same mesh.

Prints one JSON object on stdout: wall time, phase times, dofs, CG iterations, the reaction.

    python benchmarks/plain_elasticity_3d.py --cells 44           # 176 x 44 x 44, 1.08M dofs
    python benchmarks/plain_elasticity_3d.py --cells 44 --refine 2   # 44 x 11 x 11 refined twice
"""

import time

_started = time.perf_counter()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

# The PyPI wheel needs this before dolfinx/petsc4py; other installs do not have it.
with contextlib.suppress(ImportError):
    import dolfinx_solver  # noqa: F401

import numpy as np  # noqa: E402
import ufl  # noqa: E402
from dolfinx import fem, la, mesh  # noqa: E402
from dolfinx.fem import petsc as fem_petsc  # noqa: E402
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

E, NU, WEIGHT_DENSITY, LENGTH = 210e9, 0.3, 7850 * 9.81, 4.0
RTOL = 1e-8


def rigid_body_modes(space: fem.FunctionSpace) -> PETSc.NullSpace:
    """The three translations and three rotations, orthonormalised."""
    x = space.tabulate_dof_coordinates()
    size = space.dofmap.index_map.size_local
    modes = [la.vector(space.dofmap.index_map, bs=3) for _ in range(6)]
    for axis in range(3):
        modes[axis].array.reshape(-1, 3)[:size, axis] = 1.0
    for mode, (i, j) in zip(modes[3:], ((0, 1), (1, 2), (2, 0)), strict=True):
        values = mode.array.reshape(-1, 3)
        values[:size, i] = -x[:size, j]
        values[:size, j] = x[:size, i]
    la.orthonormalize(modes)
    comm = space.mesh.comm
    vectors = [PETSc.Vec().createWithArray(m.array[: 3 * size], comm=comm) for m in modes]
    for vector in vectors:
        vector.setBlockSize(3)
    return PETSc.NullSpace().create(vectors=vectors, comm=comm)


@dataclass
class Cantilever:
    """The assembled problem: operator (block size 3, rigid-body near-nullspace), right-hand
    side, space, solution, the residual form and the fixed dofs."""

    A: PETSc.Mat
    b: PETSc.Vec
    V: fem.FunctionSpace
    displacement: fem.Function
    residual: fem.Form
    dofs: np.ndarray


def cantilever(
    comm: MPI.Comm, n: int, lap: Callable[[str], None], refinements: int = 0
) -> Cantilever:
    """The cantilever with 4n x n x n cells, assembled (``lap`` is called after each phase);
    with ``refinements``, a box of 2^refinements times fewer cells a side refined to them."""
    m = n >> refinements
    msh = mesh.create_box(comm, [[0.0, 0.0, 0.0], [LENGTH, 1.0, 1.0]], [4 * m, m, m])
    for _ in range(refinements):
        msh.topology.create_entities(1)
        msh = mesh.refine(msh)[0]
    fdim = msh.topology.dim - 1
    msh.topology.create_connectivity(fdim, msh.topology.dim)
    left = mesh.locate_entities_boundary(msh, fdim, lambda x: np.isclose(x[0], 0.0))
    lap("create_box")

    V = fem.functionspace(msh, ("Lagrange", 1, (3,)))
    mu = fem.Constant(msh, PETSc.ScalarType(E / (2 * (1 + NU))))
    lmbda = fem.Constant(msh, PETSc.ScalarType(E * NU / ((1 + NU) * (1 - 2 * NU))))
    gravity = fem.Constant(msh, PETSc.ScalarType((0.0, 0.0, -WEIGHT_DENSITY)))

    def sigma(w):
        strain = ufl.sym(ufl.grad(w))
        return 2 * mu * strain + lmbda * ufl.tr(strain) * ufl.Identity(3)

    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = fem.form(ufl.inner(sigma(u), ufl.grad(v)) * ufl.dx)
    L = fem.form(ufl.inner(gravity, v) * ufl.dx)
    dofs = fem.locate_dofs_topological(V, fdim, left)
    bc = fem.dirichletbc(np.zeros(3, dtype=PETSc.ScalarType), dofs, V)
    displacement = fem.Function(V, name="displacement")
    residual = fem.form(
        ufl.inner(sigma(displacement), ufl.grad(v)) * ufl.dx - ufl.inner(gravity, v) * ufl.dx
    )
    lap("forms_bc")

    A = fem_petsc.assemble_matrix(a, bcs=[bc])
    A.assemble()
    A.setNearNullSpace(rigid_body_modes(V))
    b = fem_petsc.assemble_vector(L)
    fem_petsc.apply_lifting(b, [a], bcs=[[bc]])
    b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    fem_petsc.set_bc(b, [bc])
    lap("assemble")
    return Cantilever(A, b, V, displacement, residual, dofs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=44, help="N: 4N x N x N cells (44)")
    parser.add_argument(
        "--refine", type=int, default=0, help="L: a box of N / 2^L cells a side refined L times"
    )
    args = parser.parse_args()
    if args.cells % 2**args.refine:
        parser.error(f"--cells {args.cells} is not divisible by 2^{args.refine}")
    comm = MPI.COMM_WORLD
    phases: dict[str, float] = {"import": time.perf_counter() - _started}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases[name] = now - clock
        clock = now

    system = cantilever(comm, args.cells, lap, args.refine)
    A, b, V, displacement = system.A, system.b, system.V, system.displacement
    residual, dofs = system.residual, system.dofs

    ksp = PETSc.KSP().create(comm)
    ksp.setOperators(A)
    ksp.setType("cg")
    ksp.getPC().setType("gamg")
    ksp.setTolerances(rtol=RTOL)
    ksp.setFromOptions()
    ksp.solve(b, displacement.x.petsc_vec)
    displacement.x.scatter_forward()
    if ksp.getConvergedReason() <= 0:
        raise RuntimeError(f"CG did not converge: {ksp.getConvergedReason()}")
    lap("solve (GAMG set-up and CG)")

    # The support's vertical reaction: the residual summed over its z dofs (owned ones).
    r = fem_petsc.assemble_vector(residual)
    r.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    owned = dofs[dofs < V.dofmap.index_map.size_local]
    reaction = comm.allreduce(float(r.array[3 * owned + 2].sum()), op=MPI.SUM)
    # The work of the loads over 2 (the fixed dofs hold 0 in b): the strain energy at the solution
    energy = 0.5 * b.dot(displacement.x.petsc_vec)
    lap("reaction")
    if comm.rank == 0:
        result = {
            "wall_time_s": time.perf_counter() - _started,
            "phases_s": phases,
            "dofs": 3 * V.dofmap.index_map.size_global,
            "cg_iterations": ksp.getIterationNumber(),
            "reaction_left_z_N": reaction,
            "strain_energy_J": energy,
        }
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
