"""Benchmarks of the multiscale layer (app.multiscale); each prints a table and writes
benchmarks/out/multiscale_<case>.json.

* ``convergence``: the square array of cylinders (volume fraction 0.3, contrast 10) under
  periodic conditions against Rayleigh-Perrins (1.65203), for cell sizes h and degrees 1, 2
  (P2 on curved, order-2 cells), with the minimal and kinematic values that bracket it.
* ``batch``: the same batch of RVE solves (porous elliptic cells, ``--count`` states) on
  1 rank and on 2 ranks split into two groups of one (``COMM_WORLD.Split``), as separate
  processes alternating ``--repeats`` times (paired timing); the speed-up is the ratio of the
  medians.
* ``front``: cases/mineralisation_front.toml with ``--cells`` cells over ``--steps`` steps,
  with the surrogate refreshed, frozen at its initial design, and the FE2 reference (an RVE for
  every cell and step): the largest relative deviation of the quantities from FE2 and the RVE
  solves and wall time of each.

    .venv/bin/python benchmarks/multiscale.py --case convergence
    .venv/bin/python benchmarks/multiscale.py --case batch --count 16 --repeats 3
    .venv/bin/python benchmarks/multiscale.py --case front --cells 80 --steps 40
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
BIN = Path(sys.executable).parent


def rayleigh_perrins(fraction: float, contrast: float) -> float:
    t = (1 + contrast) / (1 - contrast)
    f4, f8 = fraction**4, fraction**8
    return 1 - 2 * fraction / (
        t + fraction - 0.305827 * f4 * t / (t * t - 1.402958 * f8) - 0.013362 * f8
    )


def convergence(args) -> dict:
    import numpy as np
    from mpi4py import MPI

    from app.multiscale.materials import Conduction
    from app.multiscale.microstructure import Microstructure
    from app.multiscale.rve import CellProblem

    micro = Microstructure(
        "meshes/rve_inclusion.py", "b", ROOT, {"shape": "circle"}, ["volume_fraction"]
    )
    reference = rayleigh_perrins(0.3, 10.0)
    rows = []
    for degree in (1, 2):
        for size in (0.1, 0.05, 0.025, 0.0125):
            started = time.perf_counter()
            domain, tags, regions = micro.mesh(np.array([0.3]), size, degree, MPI.COMM_WORLD)
            problem = CellProblem(
                domain, tags, regions, Conduction({"matrix": 1.0, "inclusion": 10.0}), degree
            )
            values = {
                c: float(problem.solve(c)[0, 0]) for c in ("minimal", "periodic", "kinematic")
            }
            dofs = problem.space.dofmap.index_map.size_global
            rows.append(
                {
                    "degree": degree,
                    "h": size,
                    "dofs": dofs,
                    **values,
                    "error": values["periodic"] - reference,
                    "seconds": time.perf_counter() - started,
                }
            )
            print(
                f"P{degree} h={size:<7} dofs={dofs:>7}  minimal {values['minimal']:.6f}  periodic "
                f"{values['periodic']:.6f}  kinematic {values['kinematic']:.6f}  periodic - RP "
                f"{rows[-1]['error']:+.2e}  {rows[-1]['seconds']:.2f} s",
                flush=True,
            )
    return {"rayleigh_perrins": reference, "rows": rows}


def batch_worker(args) -> None:
    """Under mpirun: solve the batch on groups of one rank; rank 0 prints the wall time."""
    from types import SimpleNamespace

    import numpy as np
    from mpi4py import MPI

    from app.multiscale.batch import RVEPool, homogenise, material_of
    from app.multiscale.microstructure import Microstructure

    fixed = {"shape": "ellipse", "aspect_ratio": 2.0, "angle": 30.0, "porous": True}
    micro = Microstructure("meshes/rve_inclusion.py", "b", ROOT, fixed, ["volume_fraction"])
    material = material_of("conductivity", np.array([1.0]), np.array([0.0]))
    settings = SimpleNamespace(mesh_size=args.size, degree=2, boundary="periodic")
    pool = RVEPool(MPI.COMM_WORLD, 1)
    states = np.linspace(0.02, 0.3, args.count)[:, None]
    pool.map(lambda s, comm: homogenise(micro, material, s, settings, comm), states[:2])  # JIT
    MPI.COMM_WORLD.Barrier()
    started, cpu = time.perf_counter(), time.process_time()
    results = pool.map(lambda s, comm: homogenise(micro, material, s, settings, comm), states)
    cpu = time.process_time() - cpu
    MPI.COMM_WORLD.Barrier()
    seconds = time.perf_counter() - started
    # the CPU time each rank spent: the split's balance, whatever else loads the machine
    work = MPI.COMM_WORLD.gather(cpu, root=0)
    if MPI.COMM_WORLD.rank == 0:
        k_xx = [float(r.tensor[0, 0]) for r in results]
        print(json.dumps({"seconds": seconds, "work": work, "k_xx": k_xx}))


def batch(args) -> dict:
    times = {1: [], 2: []}
    answers = {}
    for _ in range(args.repeats):
        for ranks in (1, 2):
            command = [
                str(BIN / "mpirun"),
                "-n",
                str(ranks),
                sys.executable,
                __file__,
                "--case",
                "batch-worker",
                "--count",
                str(args.count),
                "--size",
                str(args.size),
            ]
            process = subprocess.run(
                command,
                capture_output=True,
                text=True,
                cwd=ROOT,
                check=True,
                env={"OMP_NUM_THREADS": "1", "PATH": str(BIN)},
            )
            record = json.loads(process.stdout.strip().splitlines()[-1])
            times[ranks].append(record["seconds"])
            answers[ranks] = record["k_xx"]
            work = ", ".join(f"{w:.2f}" for w in record["work"])
            print(
                f"{ranks} rank(s): {record['seconds']:.2f} s (CPU time per rank: {work} s)",
                flush=True,
            )
    speedup = statistics.median(times[1]) / statistics.median(times[2])
    same = max(abs(a - b) for a, b in zip(answers[1], answers[2], strict=True))
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(
        f"median 1 rank {one:.2f} s, 2 ranks {two:.2f} s: speed-up {speedup:.2f}; largest "
        f"difference of k_xx {same:.1e}"
    )
    return {"times": times, "speedup": speedup, "difference": same, "count": args.count}


def front(args) -> dict:
    import numpy as np

    from app import Simulation

    case = ROOT / "cases" / "mineralisation_front.toml"
    base = {"mesh.cells": [args.cells], "time.dt": 0.2 / args.steps}
    variants = {
        "refreshed": {},
        "frozen": {"surrogates.mineral.refresh": False},
        "fe2": {"surrogates.mineral.mode": "direct"},
    }
    runs = {}
    for name, overrides in variants.items():
        started = time.perf_counter()
        quantities = Simulation.from_case(case, overrides=base | overrides).run().quantities
        runs[name] = (quantities, time.perf_counter() - started)
    fe2 = runs["fe2"][0]
    columns = [
        c
        for c in fe2
        if c.startswith(
            (
                "transport_amount",
                "transport_outflow_A_left",
                "transport_generated",
                "chemistry_amount",
            )
        )
    ]
    table = {}
    for name, (quantities, seconds) in runs.items():
        deviation = max(
            float(np.max(np.abs(quantities[c] - fe2[c])) / np.max(np.abs(fe2[c]))) for c in columns
        )
        solves = int(quantities["surrogate_mineral_rve_solves"][-1])
        table[name] = {"deviation": deviation, "rve_solves": solves, "seconds": seconds}
        print(
            f"{name:>9}: deviation from FE2 {deviation:.2e}, RVE solves {solves}, {seconds:.1f} s"
        )
    share = table["refreshed"]["rve_solves"] / table["fe2"]["rve_solves"]
    print(f"refreshed surrogate: {100 * share:.1f} % of FE2's RVE solves")
    return {"cells": args.cells, "steps": args.steps, "runs": table, "share": share}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--case", choices=["convergence", "batch", "front", "batch-worker"], default="convergence"
    )
    parser.add_argument("--count", type=int, default=16, help="RVEs in the batch")
    parser.add_argument("--size", type=float, default=0.05, help="RVE cell size of the batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cells", type=int, default=80)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the record")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import app  # noqa: F401  (MPI before dolfinx with the PyPI wheel)

    if args.case == "batch-worker":
        batch_worker(args)
        return
    result = {"convergence": convergence, "batch": batch, "front": front}[args.case](args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"multiscale_{args.case}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
