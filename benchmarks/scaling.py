"""Scaling run: the heat benchmark on 1 and 2 ranks, phase by phase, and an Amdahl projection.

Runs ``scalebridge run benchmarks/heat_3d.toml`` through ``benchmarks/phases_scalebridge.py``
(timers around ScaleBridge's functions) on each number of ranks of ``--ranks``, ``--repeats``
times, alternating, and takes the median of each phase (the slowest rank's time):

* ``start-up``: interpreter start and imports, before ``main``;
* ``case``: reading and checking the case file (``Simulation.from_case``);
* ``mesh``: building (or reading from the cache) the mesh with its names (``build_mesh``);
* ``set-up``: fields, forms, compilation, solvers (``Simulation.build`` without the mesh, and
  ``Simulation.compile``);
* ``steps``: the time steps (``Simulation.step``);
* ``output``: quantities and field output (``Session.record``);
* ``rest``: the whole process's wall time less the above (MPI start, exit).

For each phase it states the measured speed-up S on the largest rank count p and the serial
fraction f that Amdahl's law gives for it, ``S = 1 / (f + (1 - f)/p)``; it projects each phase's
time on 8, 64 and 512 ranks as ``t_1 (f + (1 - f)/P) (1 + h(P))`` where ``h(P)`` is the ghost
(halo) layer of a rank's block relative to its own cells, ``6 (P/cells)^(1/3)`` for cubic blocks
of a box (the communication volume of the partition: each ghost is work and a message entry),
and names the phase that dominates. benchmarks/SCALING.md interprets a run of it.

    .venv/bin/python benchmarks/scaling.py                     # 1M unknowns, 1 and 2 ranks
    .venv/bin/python benchmarks/scaling.py --cells 40 --repeats 1      # a quick check
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from timed_run import ROOT, timed

HERE = Path(__file__).resolve().parent
CASE = HERE / "heat_3d.toml"
PHASES = HERE / "phases_scalebridge.py"
OUT = HERE / "out"
PROJECTED = (8, 64, 512)
# The phase timers read (names of phases_scalebridge.TIMED; tests/test_benchmarks.py checks them).
TIMERS = {
    "case": "app.simulation.Simulation.from_case",
    "mesh": "app.meshing.build_mesh",
    "build": "app.simulation.Simulation.build",
    "compile": "app.simulation.Simulation.compile",
    "steps": "app.simulation.Simulation.step",
    "output": "app.runner.Session.record",
}


def run(cells: int, ranks: int, folder: Path, extra: list[str]) -> dict[str, float]:
    """One run on ``ranks`` ranks: each phase's time on its slowest rank, and the whole
    process's wall time."""
    timers = folder.with_suffix(".json")
    arguments = ["run", str(CASE), "--set", f"mesh.cells=[{cells},{cells},{cells}]"]
    arguments += ["-o", str(folder), "--overwrite", "-q", *extra]
    # One timer file per rank (MPICH sets PMI_RANK).
    script = 'timers="$1.${PMI_RANK:-0}"; shift; exec "$@" --json "$timers" '
    command = ["sh", "-c", script + shlex.join(arguments), "sh", str(timers)]
    command += [sys.executable, str(PHASES)]
    wall = timed(command, ranks).wall_s
    records = [json.loads(timers.with_name(f"{timers.name}.{r}").read_text()) for r in range(ranks)]
    phases = {"start-up": max(record["before_main_s"] for record in records)}
    for key, name in TIMERS.items():
        seconds = [record["functions"].get(name, {}).get("s") for record in records]
        if None in seconds:  # a timer that never ran would read as 0 s
            raise RuntimeError(f"no time recorded for {name} (renamed, or never called)")
        phases[key] = max(seconds)
    phases["set-up"] = phases.pop("build") - phases["mesh"] + phases.pop("compile")
    phases["rest"] = wall - sum(phases.values())
    return phases | {"whole process": wall}


def amdahl_fraction(speed_up: float, ranks: int) -> float:
    """The serial fraction f of ``speed_up = 1 / (f + (1 - f)/ranks)``, clipped to [0, 1]."""
    fraction = (ranks / speed_up - 1) / (ranks - 1)
    return min(max(fraction, 0.0), 1.0)


def halo(ranks: int, cells: int) -> float:
    """Ghost cells of a rank's cubic block relative to its own cells (0 on one rank)."""
    return 0.0 if ranks == 1 else 6 * (ranks / cells) ** (1 / 3)


def project(measured: dict[int, dict[str, float]], cells: int) -> dict[str, Any]:
    """Serial fraction of every phase and its projected time on ``PROJECTED`` ranks."""
    lowest, highest = min(measured), max(measured)
    phases = [name for name in measured[lowest] if name != "whole process"]
    table: dict[str, Any] = {}
    for name in phases:
        one, many = measured[lowest][name], measured[highest][name]
        speed_up = one / many if many > 0 else float(highest)
        fraction = amdahl_fraction(speed_up, highest)
        table[name] = {
            "s": {str(p): measured[p][name] for p in measured},
            "speed_up": speed_up,
            "serial_fraction": fraction,
            "projected_s": {
                str(p): one * (fraction + (1 - fraction) / p) * (1 + halo(p, cells))
                for p in PROJECTED
            },
        }
    totals = {str(p): sum(row["projected_s"][str(p)] for row in table.values()) for p in PROJECTED}
    dominant = {
        str(p): max(table, key=lambda name: table[name]["projected_s"][str(p)]) for p in PROJECTED
    }
    return {"phases": table, "projected_whole_s": totals, "dominant": dominant}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=99, help="cells per direction (99: 1M dofs)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="rank counts")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (default 3)")
    parser.add_argument("--cache", action="store_true", help="read the mesh from a mesh cache")
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the JSON record")
    args = parser.parse_args(argv)
    if len(args.ranks) < 2 or min(args.ranks) != 1:
        parser.error("--ranks needs 1 and at least one other rank count")
    args.out.mkdir(exist_ok=True, parents=True)
    work = Path(tempfile.mkdtemp(prefix="scalebridge_scaling_"))
    extra = ["--set", f'mesh.cache="{work / "meshes"}"'] if args.cache else []
    runs: dict[int, list[dict[str, float]]] = {ranks: [] for ranks in args.ranks}
    try:
        for ranks in args.ranks:  # warm the JIT cache (and the mesh cache), not timed
            run(4 if not args.cache else args.cells, ranks, work / f"warm{ranks}", extra)
        for round_ in range(1, args.repeats + 1):
            for ranks in args.ranks:
                runs[ranks].append(run(args.cells, ranks, work / f"np{ranks}", extra))
                whole = runs[ranks][-1]["whole process"]
                print(f"  round {round_}: {ranks} rank(s) {whole:8.2f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    measured = {
        ranks: {name: statistics.median(r[name] for r in rows) for name in rows[0]}
        for ranks, rows in runs.items()
    }
    total_cells = 6 * args.cells**3
    report = project(measured, total_cells)
    highest = max(args.ranks)
    print()
    print(f"{CASE.relative_to(ROOT)}, {args.cells}^3 x 6 cells, medians of {args.repeats}")
    header = "".join(f"{f'{p} rank(s) [s]':>15}" for p in args.ranks)
    print(f"{'phase':<15}{header}{'speed-up':>10}{'serial f':>10}")
    for name, row in report["phases"].items():
        times = "".join(f"{row['s'][str(p)]:>15.2f}" for p in args.ranks)
        print(f"{name:<15}{times}{row['speed_up']:>10.2f}{row['serial_fraction']:>10.3f}")
    whole = "".join(f"{measured[p]['whole process']:>15.2f}" for p in args.ranks)
    speed_up = measured[1]["whole process"] / measured[highest]["whole process"]
    print(f"{'whole process':<15}{whole}{speed_up:>10.2f}")
    for p in PROJECTED:
        print(
            f"projected on {p:>3} ranks: {report['projected_whole_s'][str(p)]:7.2f} s, "
            f"dominated by {report['dominant'][str(p)]}"
        )
    record = {
        "case": str(CASE.relative_to(ROOT)),
        "cells": args.cells,
        "repeats": args.repeats,
        "mesh_cache": args.cache,
        "runs": {str(p): rows for p, rows in runs.items()},
        "medians": {str(p): row for p, row in measured.items()},
        "whole_process_speed_up": speed_up,
        **report,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    name = "scaling_cached" if args.cache else "scaling"
    path = args.out / f"{name}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
