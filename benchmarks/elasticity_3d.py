"""Benchmark: 3D elasticity with CG + GAMG at three refinements, up to about one million unknowns.

Runs ``scalebridge run benchmarks/elasticity_3d.toml --set mesh.cells=[4n,n,n]`` (a cantilever
sagging under gravity, P1 tetrahedra) for n = 22, 32, 44 (0.14M, 0.42M and 1.08M unknowns), each
in its own process, through ``benchmarks/phases_scalebridge.py``: the same command line with
wall-clock timers around ScaleBridge's functions, so the solve time can be told apart from mesh
generation and set-up. A tiny run first warms the JIT cache (not reported).

Per refinement it reports the unknowns, CG iterations (the ``linear_iterations`` column of
quantities.csv), the time of the linear solve (``LinearSolver.solve``: matrix assembly, GAMG set-up
and CG), of the matrix assembly alone, of the whole run and of the process. It checks that the
iteration counts stay within 30 % of each other (multigrid with the rigid-body near-nullspace is
nearly mesh independent) and that the support carries the weight, and writes
benchmarks/out/elasticity_3d.json (``_plain_preset`` and ``_np<ranks>`` mark the variants;
``--out`` picks another folder). The timers it reads are named in ``TIMERS``. With ``--plain``
it also runs benchmarks/plain_elasticity_3d.py (the same problem by hand, PETSc's default GAMG)
at each size, right after ScaleBridge, and reports the ratio of the whole-process times and both
iteration counts.

With ``--gmg`` it runs benchmarks/elasticity_3d_gmg.toml instead (CG + geometric multigrid on the
meshes of ``mesh.refine``): the mesh of size n is a box of n / 2^L cells a side refined L times
(L from :func:`levels`: the coarsest box at least 8 cells thick), and the plain script builds the
same mesh the same way (``--refine L``), so both solve the identical discrete problem; their
strain energies are compared.

    .venv/bin/python benchmarks/elasticity_3d.py
    .venv/bin/python benchmarks/elasticity_3d.py --sizes 8 12 16        # a quick check
    .venv/bin/python benchmarks/elasticity_3d.py --ranks 2
    .venv/bin/python benchmarks/elasticity_3d.py --plain-preset   # PETSc's GAMG settings
    .venv/bin/python benchmarks/elasticity_3d.py --plain          # against the plain script
    .venv/bin/python benchmarks/elasticity_3d.py --plain --repeats 3   # medians of 3 pairs
    .venv/bin/python benchmarks/elasticity_3d.py --gmg --plain --sizes 22 32   # multigrid
    .venv/bin/python benchmarks/elasticity_3d.py --gmg --petsc '{mg_levels_ksp_max_it = 1}'
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from timed_run import ROOT, timed

HERE = Path(__file__).resolve().parent
CASE = HERE / "elasticity_3d.toml"
GMG_CASE = HERE / "elasticity_3d_gmg.toml"
PHASES = HERE / "phases_scalebridge.py"
PLAIN = HERE / "plain_elasticity_3d.py"
OUT = HERE / "out"
SPREAD = 1.3  # largest / smallest iteration count allowed
# The phase timers read (names of phases_scalebridge.TIMED; tests/test_benchmarks.py checks them).
TIMERS = {
    "solve_s": "app.solvers.LinearSolver.solve",
    "assemble_matrix_s": "dolfinx.fem.petsc.assemble_matrix",
    "run_s": "app.simulation.Simulation.run",
}
TIMES = (
    "solve_s",
    "assemble_matrix_s",
    "run_s",
    "process_s",
    "plain_process_s",
    "cpu_s",
    "plain_cpu_s",
)
WEIGHT = 7850 * 9.81 * 4.0  # N: rho g V of the 4 m^3 block
# PETSc's own values of the options the preset sets (app/solver_options.py), as a TOML table
PETSC_GAMG = (
    "{pc_gamg_threshold = -1, pc_gamg_coarse_eq_limit = 50, pc_gamg_esteig_ksp_max_it = 10, "
    "mg_levels_ksp_max_it = 2}"
)


def levels(n: int) -> int:
    """Refinements of the geometric-multigrid mesh of size n: as many as keep the coarse box
    at least 8 cells thick (at least one)."""
    if n % 2:
        raise ValueError(f"size {n} is odd: no coarse box refines to it")
    count = 1
    while n % 2 ** (count + 1) == 0 and n >> (count + 1) >= 8:
        count += 1
    return count


def run(n: int, folder: Path, ranks: int, extra: list[str], gmg: bool = False) -> dict[str, Any]:
    """One ``scalebridge run`` of the case with [4n, n, n] cells; its figures."""
    timers = folder.with_suffix(".json")
    if gmg:
        m = n >> levels(n)
        arguments = ["run", str(GMG_CASE), "--set", f"mesh.cells=[{4 * m},{m},{m}]"]
        arguments += ["--set", f"mesh.refine={levels(n)}"]
    else:
        arguments = ["run", str(CASE), "--set", f"mesh.cells=[{4 * n},{n},{n}]"]
    arguments += ["-o", str(folder), "--overwrite", "-q", *extra]
    # One timer file per rank (MPICH sets PMI_RANK); rank 0's is read.
    script = 'timers="$1.${PMI_RANK:-0}"; shift; exec "$@" --json "$timers" '
    command = ["sh", "-c", script + shlex.join(arguments), "sh", str(timers)]
    command += [sys.executable, str(PHASES)]
    process = timed(command, ranks)
    timers = timers.with_name(timers.name + ".0")
    with (folder / "quantities.csv").open() as stream:
        last = list(csv.DictReader(stream))[-1]
    log = (folder / "run.log").read_text()
    functions = json.loads(timers.read_text())["functions"]
    missing = [name for name in TIMERS.values() if name not in functions]
    if missing:  # a timer that never ran would read as 0 s
        raise RuntimeError(f"no time recorded for {missing} (renamed, or never called)")
    return {
        "n": n,
        "cells": [4 * n, n, n],
        "dofs": int(re.search(r"\((\d+) dofs;", log).group(1)),
        "cg_iterations": int(float(last["linear_iterations"])),
        **{key: functions[name]["s"] for key, name in TIMERS.items()},
        "process_s": process.wall_s,
        "cpu_s": process.cpu_s,
        "peak_rss_mb": process.peak_rss_mb,
        "load_before": process.load_before,
        "reaction_left_z_N": float(last["reaction_left_z_N"]),
        "max_von_mises_Pa": float(last["max_von_mises_Pa"]),
        "strain_energy_J": float(last["strain_energy_J"]),
    }


def run_plain(n: int, ranks: int, gmg: bool = False) -> dict[str, Any]:
    """One run of the plain script with [4n, n, n] cells: its figures, prefixed plain_."""
    command = [sys.executable, str(PLAIN), "--cells", str(n)]
    command += ["--refine", str(levels(n))] if gmg else []
    process = timed(command, ranks)
    report = json.loads(process.stdout[process.stdout.index("{") :])
    return {
        "plain_process_s": process.wall_s,
        "plain_cpu_s": process.cpu_s,
        "plain_peak_rss_mb": process.peak_rss_mb,
        "plain_load_before": process.load_before,
        "plain_cg_iterations": report["cg_iterations"],
        "plain_reaction_left_z_N": report["reaction_left_z_N"],
        "plain_strain_energy_J": report["strain_energy_J"],
        "plain_phases_s": report["phases_s"],
    }


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One size's figures over its repeated runs: the median of each time and of each rank's
    peak memory, the last run's counts and results (the same in every run), and every run."""
    row = dict(runs[-1])
    for key in TIMES:
        if row.get(key) is not None:
            row[key] = statistics.median(run[key] for run in runs)
    for key in ("peak_rss_mb", "plain_peak_rss_mb"):
        if key in row:
            per_rank = zip(*(run[key] for run in runs), strict=True)
            row[key] = [statistics.median(values) for values in per_rank]
    return row | {"runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[22, 32, 44], help="n values")
    parser.add_argument("--ranks", type=int, default=1, help="MPI ranks (default 1)")
    parser.add_argument(
        "--plain-preset",
        action="store_true",
        help="PETSc's GAMG settings instead of the preset's for elasticity (RIGID_BODY_GAMG)",
    )
    parser.add_argument(
        "--plain", action="store_true", help="also time benchmarks/plain_elasticity_3d.py"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each size (paired with --plain): medians"
    )
    parser.add_argument(
        "--gmg",
        action="store_true",
        help="geometric multigrid on a refined coarse box (benchmarks/elasticity_3d_gmg.toml)",
    )
    parser.add_argument(
        "--petsc",
        help="solver.petsc of the runs, a TOML table (smoother variants: "
        "'{mg_levels_ksp_max_it = 1}')",
    )
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the JSON record")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.gmg and (args.plain_preset or any(n % 2 for n in args.sizes)):
        parser.error("--gmg takes even sizes (a coarse box refined) and no --plain-preset")
    extra = ["--set", f"solver.petsc={PETSC_GAMG}"] if args.plain_preset else []
    if args.petsc:
        if args.plain_preset:
            parser.error("--petsc and --plain-preset both set solver.petsc")
        extra = ["--set", f"solver.petsc={args.petsc}"]
    name = "elasticity_3d" + ("_plain_preset" if args.plain_preset else "")
    name += "_gmg" if args.gmg else ""
    name += f"_np{args.ranks}" if args.ranks > 1 else ""
    args.out.mkdir(exist_ok=True, parents=True)
    work = Path(tempfile.mkdtemp(prefix="scalebridge_elasticity_"))
    try:
        run(4, work / "warm", args.ranks, extra, args.gmg)  # JIT cache
        rows = []
        for n in args.sizes:
            runs = []
            for _ in range(args.repeats):  # alternating, so drifts of the machine hit both
                runs.append(run(n, work / f"n{n}", args.ranks, extra, args.gmg))
                if args.plain:
                    runs[-1] |= run_plain(n, args.ranks, args.gmg)
            row = median_row(runs)
            rows.append(row)
            print(
                f"  n = {n:3d}: {row['dofs']:>9,} dofs, {row['cg_iterations']:3d} CG its, "
                f"solve {row['solve_s']:7.2f} s",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    iterations = [row["cg_iterations"] for row in rows]
    spread = max(iterations) / min(iterations)
    keys = ("reaction_left_z_N", "plain_reaction_left_z_N")
    reactions = [row[key] for row in rows for key in keys if key in row]
    balanced = all(abs(reaction / WEIGHT - 1) < 1e-5 for reaction in reactions)
    print()
    case = GMG_CASE if args.gmg else CASE
    method = "geometric multigrid" if args.gmg else "GAMG, rigid-body near-nullspace"
    print(f"{case.relative_to(ROOT)} on {args.ranks} rank(s), CG + {method}")
    header = f"{'dofs':>11}{'CG its':>8}{'solve [s]':>11}{'assembly [s]':>14}{'run [s]':>9}"
    print(header + f"{'process [s]':>13}")
    for row in rows:
        print(
            f"{row['dofs']:>11,}{row['cg_iterations']:>8}{row['solve_s']:>11.2f}"
            f"{row['assemble_matrix_s']:>14.2f}{row['run_s']:>9.2f}{row['process_s']:>13.2f}"
        )
    print(
        f"iterations: largest/smallest = {spread:.2f} (goal <= {SPREAD}); weight balanced: "
        f"{balanced}"
    )
    for row in rows if args.plain else []:
        print(
            f"n = {row['n']}: plain {row['plain_process_s']:.2f} s, {row['plain_cg_iterations']} "
            f"CG its; scalebridge/plain {row['process_s'] / row['plain_process_s']:.3f}"
        )
        if row["cpu_s"] and row["plain_cpu_s"]:
            print(
                f"  CPU: scalebridge {row['cpu_s']:.2f} s, plain {row['plain_cpu_s']:.2f} s, "
                f"ratio {row['cpu_s'] / row['plain_cpu_s']:.3f}; strain energy "
                f"{row['strain_energy_J']:.10g} J against {row['plain_strain_energy_J']:.10g} J"
            )
        if row["peak_rss_mb"] and row["plain_peak_rss_mb"]:
            largest, plain_largest = max(row["peak_rss_mb"]), max(row["plain_peak_rss_mb"])
            print(
                f"  peak memory of the largest rank: scalebridge {largest:.0f} MB, plain "
                f"{plain_largest:.0f} MB, ratio {largest / plain_largest:.3f}"
            )
    record = {
        "case": str(case.relative_to(ROOT)),
        "ranks": args.ranks,
        "solver": "cg_gmg (rtol 1e-8)"
        if args.gmg
        else "cg_gamg (rtol 1e-8), near-nullspace: 6 rigid-body modes",
        "gamg": PETSC_GAMG if args.plain_preset else "the preset (app/solver_options.py)",
        "petsc": args.petsc,
        "rows": rows,
        "iteration_spread": spread,
        "goal_spread": SPREAD,
        "iterations_ok": spread <= SPREAD,
        "weight_balanced": balanced,
    }
    (args.out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    return 0 if spread <= SPREAD and balanced else 1


if __name__ == "__main__":
    sys.exit(main())
