"""GAMG settings for 3D elasticity, measured: set-up and iteration time of each variant.

Assembles the cantilever of benchmarks/elasticity_3d.toml with the plain script's code
(benchmarks/plain_elasticity_3d.py: P1 tetrahedra, block size 3, the six rigid-body modes as
near-nullspace) once per size, then solves it with CG (rtol 1e-8) and each GAMG variant in
turn, in alternating rounds: the CPU time of this rank (what a shared machine inflates least)
in ``PCSetUp`` (aggregation, prolongators, Galerkin products, eigenvalue estimates), in the CG
iterations, their sum (time to solution) and the iteration count (a variant that does not
converge is reported so). The solution of every converged variant must agree with the first
variant's to the solver tolerance. Prints a table per size and writes
benchmarks/out/gamg_variants.json.

    .venv/bin/python benchmarks/gamg_variants.py                       # n = 22, 32, 44
    .venv/bin/python benchmarks/gamg_variants.py --sizes 22 --rounds 3
    .venv/bin/python benchmarks/gamg_variants.py --variants default "threshold 0.01"
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# The PyPI wheel needs this before dolfinx/petsc4py; other installs do not have it.
with contextlib.suppress(ImportError):
    import dolfinx_solver  # noqa: F401

from mpi4py import MPI
from petsc4py import PETSc
from plain_elasticity_3d import RTOL, Cantilever, cantilever

OUT = Path(__file__).resolve().parent / "out"
AGREEMENT = 1e-6  # relative difference of solutions allowed (CG stops at rtol 1e-8)

# the single settings that paid off at 141k unknowns, together
TUNED = {"pc_gamg_threshold": 0.01, "pc_gamg_coarse_eq_limit": 1000, "pc_gamg_esteig_ksp_max_it": 5}
# name -> the PETSc options on top of CG + GAMG
VARIANTS: dict[str, dict[str, object]] = {
    "default": {},
    "threshold 0.01": {"pc_gamg_threshold": 0.01},
    "threshold 0.05": {"pc_gamg_threshold": 0.05},
    "unsmoothed": {"pc_gamg_agg_nsmooths": 0},
    "no aggressive": {"pc_gamg_aggressive_coarsening": 0},
    "aggressive 2": {"pc_gamg_aggressive_coarsening": 2},
    "aggressive, no square": {"pc_gamg_aggressive_square_graph": False},
    "sor smoother": {"mg_levels_ksp_type": "richardson", "mg_levels_pc_type": "sor"},
    "jacobi smoother": {
        "mg_levels_ksp_type": "richardson",
        "mg_levels_pc_type": "jacobi",
        "mg_levels_ksp_richardson_self_scale": True,
    },
    "chebyshev 1 it": {"mg_levels_ksp_max_it": 1},
    "chebyshev 3 its": {"mg_levels_ksp_max_it": 3},
    "coarse eq 1000": {"pc_gamg_coarse_eq_limit": 1000},
    "coarse eq 5000": {"pc_gamg_coarse_eq_limit": 5000},
    "esteig 5 its": {"pc_gamg_esteig_ksp_max_it": 5},
    "sa esteig off": {"pc_gamg_use_sa_esteig": False},
    "coarse eq 20000": {"pc_gamg_coarse_eq_limit": 20000},
    "t0.01 coarse 1000": {"pc_gamg_threshold": 0.01, "pc_gamg_coarse_eq_limit": 1000},
    "t0.01 coarse 1000 esteig 5": TUNED,
    "tuned + no square": TUNED | {"pc_gamg_aggressive_square_graph": False},
    "tuned + chebyshev 1 it": TUNED | {"mg_levels_ksp_max_it": 1},
    "tuned + cheb 1 + no square": TUNED
    | {"mg_levels_ksp_max_it": 1, "pc_gamg_aggressive_square_graph": False},
    "tuned + sor": TUNED | {"mg_levels_ksp_type": "richardson", "mg_levels_pc_type": "sor"},
    "unsmoothed, chebyshev 4": {
        "pc_gamg_agg_nsmooths": 0,
        "mg_levels_ksp_max_it": 4,
        "pc_gamg_coarse_eq_limit": 1000,
    },
}


def solve(system: Cantilever, options: dict[str, object], prefix: str) -> dict[str, Any]:
    """One solve from zero with CG + GAMG and ``options``: set-up and iteration times, the
    iteration count, the number of multigrid levels and the solution."""
    database = PETSc.Options()
    for key, value in options.items():
        database[prefix + key] = value
    comm = system.A.getComm()
    ksp = PETSc.KSP().create(comm)
    ksp.setOptionsPrefix(prefix)
    ksp.setOperators(system.A)
    ksp.setType("cg")
    ksp.getPC().setType("gamg")
    ksp.setTolerances(rtol=RTOL)
    ksp.setFromOptions()
    x = system.A.createVecRight()
    comm.tompi4py().Barrier()
    started = time.process_time()
    ksp.setUp()
    set_up = time.process_time() - started
    ksp.solve(system.b, x)
    total = time.process_time() - started
    iterations, levels = ksp.getIterationNumber(), ksp.getPC().getMGLevels()
    converged = ksp.getConvergedReason() > 0
    ksp.destroy()
    for key in options:
        database.delValue(prefix + key)
    return {
        "setup_s": set_up,
        "iterations_s": total - set_up,
        "solution_s": total,
        "iterations": iterations,
        "converged": converged,
        "levels": levels,
        "x": x,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[22, 32, 44], help="n values")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds (medians)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the JSON record")
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD
    rows = []
    for n in args.sizes:
        system = cantilever(comm, n, lambda _: None)
        dofs = system.A.getSize()[0]
        runs: dict[str, list[dict]] = {name: [] for name in args.variants}
        for round_ in range(args.rounds):
            for index, name in enumerate(args.variants):
                runs[name].append(solve(system, VARIANTS[name], f"v{index}r{round_}_"))
        reference = runs[args.variants[0]][0]["x"]
        for name in args.variants:
            x = runs[name][0]["x"]
            difference = (x - reference).norm() / reference.norm()
            row = {
                "n": n,
                "dofs": dofs,
                "variant": name,
                "options": VARIANTS[name],
                "iterations": runs[name][0]["iterations"],
                "converged": runs[name][0]["converged"],
                "levels": runs[name][0]["levels"],
                "difference": difference,
            }
            for key in ("setup_s", "iterations_s", "solution_s"):
                row[key] = statistics.median(run[key] for run in runs[name])
            rows.append(row)
            if row["converged"] and difference > AGREEMENT:
                raise RuntimeError(f"{name}: solution differs by {difference:.1e} at n = {n}")
        if comm.rank == 0:
            print(f"\n{dofs:,} unknowns (n = {n}), CG rtol {RTOL}, medians of {args.rounds}")
            print(f"{'variant':<24}{'its':>5}{'levels':>7}{'set-up':>9}{'CG':>8}{'total':>8}")
            for row in rows[-len(args.variants) :]:
                if not row["converged"]:
                    print(f"{row['variant']:<24} did not converge in {row['iterations']} its")
                    continue
                print(
                    f"{row['variant']:<24}{row['iterations']:>5}{row['levels']:>7}"
                    f"{row['setup_s']:>9.2f}{row['iterations_s']:>8.2f}{row['solution_s']:>8.2f}"
                )
    if comm.rank == 0:
        args.out.mkdir(exist_ok=True, parents=True)
        record = {"ranks": comm.size, "rounds": args.rounds, "rows": rows}
        (args.out / "gamg_variants.json").write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
