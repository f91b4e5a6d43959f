"""The benchmark case benchmarks/heat_3d.toml written by hand in plain DOLFINx 0.11.

This is the reference ScaleBridge is timed against (benchmarks/run.py): what a competent DOLFINx
user would write for the same problem, solving the identical discrete system and doing the same
output work as ``scalebridge run benchmarks/heat_3d.toml``:

* unit cube, ``create_box`` with N x N x N cells split into tetrahedra, P1 temperature;
* implicit Euler, 10 steps of 60 s:
      a = (rho c/dt) u v dx + k grad u . grad v dx + h u v ds(right)
      L = (rho c/dt) u_n v dx + f v dx + h T_amb v ds(right),    f = 1e5 (1 + x)
  with T = 293.15 K on left (x = 0), insulated elsewhere, T(0) = 293.15 K;
* A assembled once, one KSP (CG + GAMG, rtol 1e-8, previous solution as initial guess) reused;
  per step: assemble b, lift, set the boundary values, solve;
* at t = 0 and at the end: the heat flux -k grad T (DG0 vector) is interpolated, temperature
  and heat flux are written to one XDMF file, and the same quantities as ScaleBridge's
  quantities.csv are evaluated (heat flow through left and right, heat generated, stored
  energy, max/min temperature).

Prints one JSON object on stdout: wall time, phase times, dofs, CG iterations, max temperature.

    python benchmarks/plain_heat_3d.py                 # 99^3 cells, 1,000,000 dofs
    python benchmarks/plain_heat_3d.py --cells 20 -o /tmp/plain
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

# The case's data (benchmarks/heat_3d.toml), in SI units.
K, RHO, CP = 1.5, 1000.0, 1000.0
H, T_AMB, T_LEFT, T_INIT, T_REF = 50.0, 293.15, 293.15, 293.15, 293.15
DT, STEPS = 60.0, 10
RTOL = 1e-8
LEFT, RIGHT = 1, 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=99, help="cells per direction (99)")
    parser.add_argument(
        "-o", "--output", type=Path, help="output folder (default: a temporary one, deleted)"
    )
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    phases: dict[str, float] = {"import": time.perf_counter() - _started}
    cpu_phases: dict[str, float] = {"import": time.process_time()}
    clock, cpu_clock = time.perf_counter(), time.process_time()

    def lap(name: str) -> None:
        nonlocal clock, cpu_clock
        now, cpu_now = time.perf_counter(), time.process_time()
        phases[name] = phases.get(name, 0.0) + now - clock
        cpu_phases[name] = cpu_phases.get(name, 0.0) + cpu_now - cpu_clock
        clock, cpu_clock = now, cpu_now

    # Mesh and boundary facets: left (x = 0) and right (x = 1), as ScaleBridge names them.
    n = args.cells
    msh = mesh.create_box(comm, [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], [n, n, n])
    lap("create_box")
    fdim = msh.topology.dim - 1
    msh.topology.create_connectivity(fdim, msh.topology.dim)
    left = mesh.locate_entities_boundary(msh, fdim, lambda x: np.isclose(x[0], 0.0))
    right = mesh.locate_entities_boundary(msh, fdim, lambda x: np.isclose(x[0], 1.0))
    facets = np.concatenate([left, right])
    order = np.argsort(facets)
    values = np.concatenate([np.full_like(left, LEFT), np.full_like(right, RIGHT)])
    tags = mesh.meshtags(msh, fdim, facets[order], values[order])
    lap("facets")

    # Spaces, data, forms.
    V = fem.functionspace(msh, ("Lagrange", 1))
    T = fem.Function(V, name="temperature")
    T_n = fem.Function(V, name="temperature_n")
    T.x.array[:] = T_INIT
    T_n.x.array[:] = T_INIT
    Q = fem.functionspace(msh, ("DG", 0, (msh.geometry.dim,)))
    flux = fem.Function(Q, name="heat_flux")
    lap("spaces")

    def constant(value: float) -> fem.Constant:
        return fem.Constant(msh, PETSc.ScalarType(value))

    k, rho, cp, h, t_amb, dt = map(constant, (K, RHO, CP, H, T_AMB, DT))
    x = ufl.SpatialCoordinate(msh)
    f = 1e5 * (1 + x[0])
    ds = ufl.Measure("ds", domain=msh, subdomain_data=tags)
    dx = ufl.dx(domain=msh)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = fem.form(
        rho * cp / dt * u * v * dx
        + k * ufl.inner(ufl.grad(u), ufl.grad(v)) * dx
        + h * u * v * ds(RIGHT)
    )
    L = fem.form(rho * cp / dt * T_n * v * dx + f * v * dx + h * t_amb * v * ds(RIGHT))
    # The heat leaving through the fixed-temperature side is the reaction of the discrete
    # equations: minus the residual summed over that side's degrees of freedom.
    residual = fem.form(
        rho * cp / dt * (T - T_n) * v * dx
        + k * ufl.inner(ufl.grad(T), ufl.grad(v)) * dx
        - f * v * dx
        + h * (T - t_amb) * v * ds(RIGHT)
    )
    quantities = {
        "heat_flow_right_W": fem.form(h * (T - t_amb) * ds(RIGHT)),
        "heat_generated_W": fem.form(f * dx),
        "stored_energy_J": fem.form(rho * cp * (T - T_REF) * dx),
    }
    flux_expr = fem.Expression(-k * ufl.grad(T), Q.element.interpolation_points)
    dofs = fem.locate_dofs_topological(V, fdim, left)
    bc = fem.dirichletbc(PETSc.ScalarType(T_LEFT), dofs, V)
    lap("forms_bc")

    # Operator assembled once; CG + GAMG with the previous solution as the initial guess.
    A = fem_petsc.assemble_matrix(a, bcs=[bc])
    A.assemble()
    b = fem_petsc.create_vector(V)
    ksp = PETSc.KSP().create(comm)
    ksp.setOperators(A)
    ksp.setType("cg")
    ksp.getPC().setType("gamg")
    ksp.setTolerances(rtol=RTOL)
    ksp.setInitialGuessNonzero(True)
    ksp.setFromOptions()
    lap("assemble_matrix")

    # Output: XDMF time series and the quantities at t = 0 and at the end.
    if args.output is None:
        folder = Path(
            comm.bcast(tempfile.mkdtemp(prefix="plain_heat_3d_") if comm.rank == 0 else None)
        )
    else:
        folder = args.output
    folder.mkdir(parents=True, exist_ok=True)
    xdmf = io.XDMFFile(comm, str(folder / "fields.xdmf"), "w")
    xdmf.write_mesh(msh)
    lap("write_mesh")
    rows = []
    owned = V.dofmap.index_map.size_local

    left_owned = dofs[dofs < owned]

    def record(t: float) -> None:
        flux.interpolate(flux_expr)
        reaction = fem.assemble_vector(residual)
        reaction.scatter_reverse(la.InsertMode.add)
        row = {"time_s": t}
        row["heat_flow_left_W"] = -comm.allreduce(reaction.array[left_owned].sum(), op=MPI.SUM)
        for name, form in quantities.items():
            row[name] = comm.allreduce(fem.assemble_scalar(form), op=MPI.SUM)
        row["max_temperature_K"] = comm.allreduce(T.x.array[:owned].max(), op=MPI.MAX)
        row["min_temperature_K"] = comm.allreduce(T.x.array[:owned].min(), op=MPI.MIN)
        rows.append(row)
        xdmf.write_function(T, t)
        xdmf.write_function(flux, t)

    record(0.0)
    lap("output")

    iterations, t = [], 0.0
    for step in range(1, STEPS + 1):
        t = step * DT
        with b.localForm() as local:
            local.set(0.0)
        fem_petsc.assemble_vector(b, L)
        fem_petsc.apply_lifting(b, [a], bcs=[[bc]])
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        fem_petsc.set_bc(b, [bc])
        lap("assemble_rhs")
        ksp.solve(b, T.x.petsc_vec)  # T holds u_n: the initial guess
        T.x.scatter_forward()
        if ksp.getConvergedReason() <= 0:
            raise RuntimeError(f"KSP failed at step {step}: reason {ksp.getConvergedReason()}")
        iterations.append(ksp.getIterationNumber())
        lap("solve" if step > 1 else "solve_first (with GAMG setup)")
        if step == STEPS:
            record(t)  # before the history shifts: the reaction needs this step's residual
        T_n.x.array[:] = T.x.array
    xdmf.close()
    lap("output")

    if args.output is None and comm.rank == 0:
        shutil.rmtree(folder, ignore_errors=True)
    if comm.rank == 0:
        result = {
            "variant": "plain",
            "cells": n,
            "dofs": V.dofmap.index_map.size_global,
            "steps": STEPS,
            "cg_iterations": sum(iterations),
            "iterations_per_step": iterations,
            "max_temperature_K": rows[-1]["max_temperature_K"],
            "quantities": rows,
            "wall_time_s": time.perf_counter() - _started,
            "phases_s": {name: round(value, 4) for name, value in phases.items()},
            "phases_cpu_s": {name: round(value, 4) for name, value in cpu_phases.items()},
            "output": str(folder) if args.output else None,
        }
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
