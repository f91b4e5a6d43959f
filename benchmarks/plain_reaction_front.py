"""The benchmark case benchmarks/reaction_front.toml written by hand in plain DOLFINx 0.11.

This is the reference ScaleBridge is timed against (benchmarks/run.py --case reaction_front):
what a competent DOLFINx user would write for the same problem, solving the identical discrete
system and doing the same output work as ``scalebridge run benchmarks/reaction_front.toml``:

* the strip [0, 2] x [0, 0.25], ``create_rectangle`` with 8N x N cells split into triangles;
  A in P1, B and P in DG0 (cellwise reactors);
* implicit Euler, 60 steps of 2.5e-3, one monolithic Newton solve per step over (A, B, P):
      F_A = (A - A_n)/dt w dx + D grad A . grad w dx + r w dx_v
      F_B = (B - B_n)/dt q dx + r q dx_v
      F_P = (P - P_n)/dt s dx - r s dx_v,          r = k max(A, 0) B
  (porosity 1, D = 1, k = 1e4; dx_v: the vertex quadrature rule, i.e. lumped sources) with
  A = 1 on left (x = 0), no flux elsewhere, A(0) = 0, B(0) = 2, P(0) = 0; Jacobian blocks from
  ``ufl.derivative``; SNES newtonls (basic line search, rtol 1e-9, atol 1e-10) with MUMPS LU
  on one block matrix (kind="mpi"), the previous step's values as the initial guess;
* at t = 0 and every 0.05: A, B, P are written to one XDMF file and the same quantities as
  ScaleBridge's quantities.csv are evaluated (amounts, extremes, the source and reaction
  integrals, the flow of A entering through the left side as the reaction of the discrete
  equations), under ScaleBridge's column names.

Prints one JSON object on stdout: wall time, phase times, dofs, Newton iterations, amount of B.

    python benchmarks/plain_reaction_front.py                 # 320 x 40 cells, 64,361 dofs
    python benchmarks/plain_reaction_front.py --cells 10 -o /tmp/plain
"""

import time

_started = time.perf_counter()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

# The PyPI wheel needs this before dolfinx/petsc4py; other installs do not have it.
with contextlib.suppress(ImportError):
    import dolfinx_solver  # noqa: F401

import numpy as np  # noqa: E402
import ufl  # noqa: E402
from dolfinx import fem, io, la, mesh  # noqa: E402
from dolfinx.fem import petsc as fem_petsc  # noqa: E402
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

# The case's data (benchmarks/reaction_front.toml), in SI units.
LENGTH, WIDTH = 2.0, 0.25
D, K, EPS = 1.0, 1e4, 1.0
A_LEFT, B_INIT = 1.0, 2.0
DT, STEPS, OUTPUT_EVERY = 2.5e-3, 60, 20  # to t = 0.15, outputs every 0.05
NEWTON = {
    "snes_type": "newtonls",
    "snes_linesearch_type": "basic",
    "snes_rtol": 1e-9,
    "snes_atol": 1e-10,
    "snes_max_it": 25,
    "snes_divergence_tolerance": 1e12,
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
    "mat_mumps_icntl_24": 1,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=40, help="cells across, 8x along (40)")
    parser.add_argument(
        "-o", "--output", type=Path, help="output folder (default: a temporary one, deleted)"
    )
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    phases: dict[str, float] = {"import": time.perf_counter() - _started}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - clock
        clock = now

    # Mesh and the left side (x = 0), where A is held.
    n = args.cells
    msh = mesh.create_rectangle(
        comm,
        [[0.0, 0.0], [LENGTH, WIDTH]],
        [8 * n, n],
        cell_type=mesh.CellType.triangle,
        ghost_mode=mesh.GhostMode.shared_facet,
    )
    lap("create_rectangle")
    fdim = msh.topology.dim - 1
    msh.topology.create_connectivity(fdim, msh.topology.dim)
    left = mesh.locate_entities_boundary(msh, fdim, lambda x: np.isclose(x[0], 0.0))
    lap("facets")

    # Spaces: A continuous, B and P cellwise constant; the values of the previous step.
    V = fem.functionspace(msh, ("Lagrange", 1))
    Q = fem.functionspace(msh, ("DG", 0))
    A, B, P = fem.Function(V, name="A"), fem.Function(Q, name="B"), fem.Function(Q, name="P")
    A_n, B_n, P_n = fem.Function(V), fem.Function(Q), fem.Function(Q)
    B.x.array[:] = B_INIT
    B_n.x.array[:] = B_INIT
    unknowns, previous = [A, B, P], [A_n, B_n, P_n]
    lap("spaces")

    def constant(value: float) -> fem.Constant:
        return fem.Constant(msh, PETSc.ScalarType(value))

    eps, diffusivity, k, dt = map(constant, (EPS, D, K, DT))
    dx = ufl.dx(domain=msh)
    dx_v = dx(metadata={"quadrature_rule": "vertex", "quadrature_degree": 1})
    w, q, s = ufl.TestFunctions(ufl.MixedFunctionSpace(V, Q, Q))
    r = eps * k * ufl.max_value(A, 0.0) * B  # per bulk volume (mass action per pore volume)
    F = [
        (eps * A - eps * A_n) / dt * w * dx
        + diffusivity * ufl.inner(ufl.grad(A), ufl.grad(w)) * dx
        - (-r) * w * dx_v,
        (eps * B - eps * B_n) / dt * q * dx - (-r) * q * dx_v,
        (eps * P - eps * P_n) / dt * s * dx - r * s * dx_v,
    ]
    J = []
    for Fi in F:
        row = []
        for u in unknowns:
            du = ufl.TrialFunction(u.function_space)
            Jij = ufl.algorithms.expand_derivatives(ufl.derivative(Fi, u, du))
            row.append(None if Jij.empty() else Jij)
        J.append(row)
    dofs = fem.locate_dofs_topological(V, fdim, left)
    bc = fem.dirichletbc(PETSc.ScalarType(A_LEFT), dofs, V)
    problem = fem_petsc.NonlinearProblem(
        F,
        unknowns,
        J=J,
        bcs=[bc],
        kind="mpi",
        petsc_options_prefix="reaction_front_",
        petsc_options=NEWTON,
    )
    snes = problem.solver
    # The quantities ScaleBridge writes (quantities.csv, with its column names).
    integrals = {
        "transport_amount_A_mol_per_m": fem.form(eps * A * dx),
        "transport_generated_A_mol_per_s_per_m": fem.form(-r * dx_v),
        "chemistry_amount_B_mol_per_m": fem.form(eps * B * dx),
        "chemistry_amount_P_mol_per_m": fem.form(eps * P * dx),
        "chemistry_rate_front_mol_per_s_per_m": fem.form(r * dx_v),
    }
    # A entering through the held side is the reaction of the discrete equations: the residual
    # summed over that side's degrees of freedom.
    residual_A = fem.form(F[0])
    lap("forms_solver")

    # Output: XDMF time series and the quantities at t = 0 and every OUTPUT_EVERY steps.
    if args.output is None:
        folder = Path(
            comm.bcast(tempfile.mkdtemp(prefix="plain_reaction_front_") if comm.rank == 0 else None)
        )
    else:
        folder = args.output
    folder.mkdir(parents=True, exist_ok=True)
    xdmf = io.XDMFFile(comm, str(folder / "fields.xdmf"), "w")
    xdmf.write_mesh(msh)
    lap("write_mesh")
    rows = []
    left_owned = dofs[dofs < V.dofmap.index_map.size_local]

    def extreme(u: fem.Function, op: MPI.Op) -> float:
        values = u.x.array[: u.function_space.dofmap.index_map.size_local]
        return comm.allreduce(values.max() if op == MPI.MAX else values.min(), op=op)

    def record(t: float, iterations: int) -> None:
        row = {"time_s": t, "newton_iterations": iterations}
        reaction = fem.assemble_vector(residual_A)
        reaction.scatter_reverse(la.InsertMode.add)
        outflow = -comm.allreduce(reaction.array[left_owned].sum(), op=MPI.SUM)
        row["transport_outflow_A_left_mol_per_s_per_m"] = outflow
        for name, form in integrals.items():
            row[name] = comm.allreduce(fem.assemble_scalar(form), op=MPI.SUM)
        for u, owner in ((A, "transport"), (B, "chemistry"), (P, "chemistry")):
            units = "mol_per_m3"
            row[f"{owner}_max_{u.name}_{units}"] = extreme(u, MPI.MAX)
            row[f"{owner}_min_{u.name}_{units}"] = extreme(u, MPI.MIN)
        rows.append(row)
        for u in unknowns:
            xdmf.write_function(u, t)

    record(0.0, 0)
    lap("output")

    iterations = []
    for step in range(1, STEPS + 1):
        problem.solve()  # from the previous step's values
        reason = snes.getConvergedReason()
        if reason <= 0:
            raise RuntimeError(f"Newton failed at step {step}: reason {reason}")
        iterations.append(snes.getIterationNumber())
        lap("solve")
        if step % OUTPUT_EVERY == 0:
            record(step * DT, iterations[-1])  # before the history shifts (the reaction)
            lap("output")
        for u, u_n in zip(unknowns, previous, strict=True):
            u_n.x.array[:] = u.x.array
    xdmf.close()
    lap("output")

    if args.output is None and comm.rank == 0:
        shutil.rmtree(folder, ignore_errors=True)
    if comm.rank == 0:
        result = {
            "variant": "plain",
            "cells": [8 * n, n],
            "dofs": V.dofmap.index_map.size_global + 2 * Q.dofmap.index_map.size_global,
            "steps": STEPS,
            "newton_iterations": sum(iterations),
            "iterations_per_step": iterations,
            "amount_B_mol_per_m": rows[-1]["chemistry_amount_B_mol_per_m"],
            "quantities": rows,
            "wall_time_s": time.perf_counter() - _started,
            "phases_s": {name: round(value, 4) for name, value in phases.items()},
            "output": str(folder) if args.output else None,
        }
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
