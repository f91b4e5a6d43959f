"""GAMG on more than one rank squares its graph by an explicit transpose and a product
(app/solver_options.py, PARALLEL_GAMG): the graph's sparsity is the same, so the preconditioner
and every iterate must be those of PETSc's default product, on 2 ranks; one rank keeps PETSc's
options as they are."""

import json

from tests.conftest import mpi_python

SCRIPT = """
import json
import app
import numpy as np
import ufl
from dolfinx import fem, mesh
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI
from petsc4py import PETSc

from app.solver_options import PARALLEL_GAMG

comm = MPI.COMM_WORLD
msh = mesh.create_box(comm, [[0, 0, 0], [1, 1, 1]], [12, 12, 12])
V = fem.functionspace(msh, ("Lagrange", 1))
u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
x = ufl.SpatialCoordinate(msh)
a = fem.form(u * v * ufl.dx + ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx)
L = fem.form((1 + x[0] * x[1]) * v * ufl.dx)
A = fem_petsc.assemble_matrix(a)
A.assemble()
b = fem_petsc.assemble_vector(L)
b.ghostUpdate(PETSc.InsertMode.ADD, PETSc.ScatterMode.REVERSE)
solutions, iterations, used = [], [], True
for prefix, extra in (("default_", {}), ("parallel_", PARALLEL_GAMG)):
    options = PETSc.Options()
    for key, value in {"ksp_type": "cg", "pc_type": "gamg", "ksp_rtol": 1e-10, **extra}.items():
        options[prefix + key] = value
    ksp = PETSc.KSP().create(comm)
    ksp.setOptionsPrefix(prefix)
    ksp.setOperators(A)
    ksp.setFromOptions()
    solution = b.duplicate()
    ksp.solve(b, solution)
    assert ksp.getConvergedReason() > 0
    used &= all(options.used(prefix + key) for key in extra)
    iterations.append(ksp.getIterationNumber())
    solutions.append(solution.array.copy())
same = bool(comm.allreduce(np.array_equal(*solutions), op=MPI.LAND))
if comm.rank == 0:
    print(json.dumps({"iterations": iterations, "same": same, "used": used}))
"""


def test_the_parallel_square_graph_gives_the_same_solve(tmp_path):
    script = tmp_path / "gamg.py"
    script.write_text(SCRIPT)
    process = mpi_python(script, ranks=2)
    assert process.returncode == 0, process.stderr
    record = json.loads(process.stdout.strip().splitlines()[-1])
    assert record["used"], "PETSc did not read the square graph's algorithm"
    assert record["same"], record
    assert record["iterations"][0] == record["iterations"][1] > 0


def test_one_rank_keeps_petsc_defaults():
    from types import SimpleNamespace

    from mpi4py import MPI

    from app.solve_system import petsc_options

    space = SimpleNamespace(mesh=SimpleNamespace(comm=MPI.COMM_SELF))
    system = SimpleNamespace(unknowns=[SimpleNamespace(function_space=space)])
    assert petsc_options("cg_gamg", 1e-8, system) == {
        "ksp_type": "cg",
        "pc_type": "gamg",
        "ksp_rtol": 1e-8,
    }
