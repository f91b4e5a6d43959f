"""Benchmark: ScaleBridge against the same problem written by hand in plain DOLFINx.

Two cases (``--case``), each a case file and a plain script solving the identical discrete problem:

* ``heat_3d`` (default): ``scalebridge run benchmarks/heat_3d.toml`` (a 1M-dof transient heat
  case, linear, one field) against ``python benchmarks/plain_heat_3d.py``;
* ``reaction_front``: ``scalebridge run benchmarks/reaction_front.toml`` (a 2D precipitation
  front: A in P1, B and P in DG0, one monolithic Newton solve per step, 64k dofs) against
  ``python benchmarks/plain_reaction_front.py``.

Both variants run as separate processes and their whole-process wall times are compared. Each
variant is first run once to warm the JIT cache (not timed), then the two alternate for
``--repeats`` rounds so that slow drifts of the machine hit both alike. Checks that both reach
the same final result number (heat: the maximum temperature; reaction front: the amount of B,
and the same Newton iterations in every step, which ScaleBridge's warm-up run reports by writing
its quantities after every step), prints a table (best and median time, the ratio ScaleBridge/plain)
and writes benchmarks/out/<case>.json (``--out`` picks another folder).

    make bench                                          # both cases, full size
    .venv/bin/python benchmarks/run.py --cells 20       # a quick check (9,261 dofs)
    .venv/bin/python benchmarks/run.py --case reaction_front --cells 10 --repeats 1
    .venv/bin/python benchmarks/run.py --repeats 5
    .venv/bin/python benchmarks/run.py --phases         # plus ScaleBridge's time per function
    .venv/bin/python benchmarks/run.py --profile        # plus one cProfile'd run of each

Goal (issue 19): ScaleBridge at most 0.75x the plain script's whole-process time (median ratio).
``--mesh-cache`` times a series of runs of one case: ScaleBridge reads the mesh its warm-up run
cached, the plain script builds its mesh every time (the record says which was measured).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timed_run import ROOT, timed

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
GOAL = 0.75


@dataclass(frozen=True)
class Case:
    """A benchmark: the ScaleBridge case, the plain script and what must agree."""

    toml: Path
    plain: Path
    column: str  # quantities.csv column compared at the end time
    key: str  # the same number in the plain script's JSON
    label: str  # its name in the printed summary
    cells: int  # default of --cells
    mesh_cells: Callable[[int], str]  # mesh.cells of the case for --cells n
    agreement: float  # relative difference allowed between the two
    iterations: str  # "cg" (linear iterations) or "newton": the count compared
    every_step: str | None = None  # output.interval of ScaleBridge's warm-up: total iterations
    zero: float = 1e-300  # quantities below this size count as 0 in the differences


CASES = {
    "heat_3d": Case(
        HERE / "heat_3d.toml",
        HERE / "plain_heat_3d.py",
        "max_temperature_K",
        "max_temperature_K",
        "max temperature [K]",
        99,
        lambda n: f"[{n},{n},{n}]",
        1e-6,
        "cg",
    ),
    "reaction_front": Case(
        HERE / "reaction_front.toml",
        HERE / "plain_reaction_front.py",
        "chemistry_amount_B_mol_per_m",
        "amount_B_mol_per_m",
        "amount of B [mol/m]",
        40,
        lambda n: f"[{8 * n},{n}]",
        1e-8,
        "newton",
        every_step="2.5e-3",  # = time.dt
        zero=1e-12,  # concentrations of 1e-34 (round-off) are zero
    ),
}
COLUMNS = {"cg": "linear_iterations", "newton": "newton_iterations"}


def scalebridge_command() -> list[str]:
    """The console script next to this interpreter, else the CLI module."""
    script = Path(sys.executable).parent / "scalebridge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def run_scalebridge(
    case: Case,
    folder: Path,
    cells: int | None,
    prefix: list[str] | None = None,
    every_step: bool = False,
    ranks: int = 1,
    mesh_cache: Path | None = None,
) -> dict:
    if prefix is None:
        command = scalebridge_command()
    else:  # under cProfile: run the CLI module with this interpreter
        command = [sys.executable, *prefix, "-m", "app.cli"]
    command += ["run", str(case.toml), "-o", str(folder), "--overwrite", "-q"]
    if cells is not None:
        command += ["--set", f"mesh.cells={case.mesh_cells(cells)}"]
    if every_step:
        command += ["--set", f"output.interval={case.every_step}"]
    if mesh_cache is not None:
        command += ["--set", f'mesh.cache="{mesh_cache}"']
    process = timed(command, ranks)
    with (folder / "quantities.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    provenance = json.loads((folder / "provenance.json").read_text())
    if provenance.get("status") != "completed":
        raise RuntimeError(f"scalebridge run not completed: {provenance}")
    last = rows[-1]
    log = (folder / "run.log").read_text() if (folder / "run.log").exists() else ""
    completed = re.search(r"run completed: .* in ([0-9.]+) s", log)
    kind = case.iterations
    result = {
        "wall_s": process.wall_s,
        "cpu_s": process.cpu_s,
        # Simulation.run's own clock: mesh, set-up, time loop and output (not imports, exit)
        "internal_s": float(completed.group(1)) if completed else provenance["wall_time_s"],
        "provenance_wall_time_s": provenance["wall_time_s"],
        "peak_rss_mb": process.peak_rss_mb,
        "load_before": process.load_before,
        "mesh_from_cache": "from the mesh cache" in log,
        case.key: float(last[case.column]),
        f"last_step_{kind}_iterations": int(float(last[COLUMNS[kind]])),
        "quantities": {key: float(value) for key, value in last.items()},
    }
    if every_step:  # a row per step (after the initial one): the iterations of every step
        per_step = [int(float(row[COLUMNS[kind]])) for row in rows[1:]]
        result |= {f"{kind}_iterations": sum(per_step), "iterations_per_step": per_step}
    return result


def run_plain(
    case: Case, folder: Path, cells: int | None, prefix: list[str] | None = None, ranks: int = 1
) -> dict:
    command = [sys.executable, *(prefix or []), str(case.plain), "-o", str(folder)]
    if cells is not None:
        command += ["--cells", str(cells)]
    process = timed(command, ranks)
    report = json.loads(process.stdout[process.stdout.index("{") :])
    kind = case.iterations
    return {
        "wall_s": process.wall_s,
        "cpu_s": process.cpu_s,
        "internal_s": report["wall_time_s"],  # from the script's first line to its end
        case.key: report[case.key],
        f"{kind}_iterations": report[f"{kind}_iterations"],
        f"last_step_{kind}_iterations": report["iterations_per_step"][-1],
        "iterations_per_step": report["iterations_per_step"],
        "dofs": report["dofs"],
        "phases_s": report["phases_s"],
        "quantities": report["quantities"][-1],
        "peak_rss_mb": process.peak_rss_mb,
        "load_before": process.load_before,
    }


def quantity_differences(sb: dict, plain: dict, zero: float = 1e-300) -> dict[str, float]:
    """Relative differences of the quantities both report at the end time (values below
    ``zero`` in size count as 0)."""
    result = {}
    for name, value in plain["quantities"].items():
        if name in sb["quantities"] and name != "time_s":
            other = sb["quantities"][name]
            scale = max(abs(value), abs(other), zero)
            result[name] = abs(other - value) / scale
    return result


def _peak_per_rank(runs: list[dict[str, Any]]) -> float | None:
    """The median over runs of the largest rank's peak resident memory (MB)."""
    peaks = [max(run["peak_rss_mb"]) for run in runs if run["peak_rss_mb"]]
    return statistics.median(peaks) if peaks else None


def _median_cpu(runs: list[dict[str, Any]]) -> float | None:
    """The median over runs of the CPU time of all ranks (s), None where it was not measured."""
    times = [run["cpu_s"] for run in runs if run["cpu_s"] is not None]
    return statistics.median(times) if times else None


def summary(times: list[float]) -> dict[str, float]:
    return {"best_s": min(times), "median_s": statistics.median(times), "all_s": times}


def run_phases(case: Case, work: Path, cells: int | None, out: Path) -> dict[str, Any]:
    """One run of ScaleBridge with timers around its main functions (phases_scalebridge.py)."""
    path = out / f"{case.toml.stem}_scalebridge_phases.json"
    command = [sys.executable, str(HERE / "phases_scalebridge.py"), "--json", str(path)]
    command += ["run", str(case.toml), "-o", str(work / "phases"), "--overwrite", "-q"]
    if cells is not None:
        command += ["--set", f"mesh.cells={case.mesh_cells(cells)}"]
    wall = timed(command).wall_s
    return json.loads(path.read_text()) | {"process_wall_s": wall}


def profile(case: Case, work: Path, cells: int | None, out: Path) -> dict[str, str]:
    """One cProfile'd run of each variant; the .prof files go to the output folder."""
    files = {}
    for name, runner in (("scalebridge", run_scalebridge), ("plain", run_plain)):
        path = out / f"{case.toml.stem}_{name}.prof"
        runner(case, work / f"prof_{name}", cells, ["-m", "cProfile", "-o", str(path)])
        files[name] = str(path)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--case", choices=list(CASES), default="heat_3d", help="the benchmark (default heat_3d)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (default 3)")
    parser.add_argument(
        "--cells",
        type=int,
        help="mesh size: heat_3d cells per direction (99 -> 1M dofs), "
        "reaction_front cells across the strip, 8x along (40 -> 64k dofs)",
    )
    parser.add_argument("--profile", action="store_true", help="also one cProfile'd run of each")
    parser.add_argument(
        "--phases", action="store_true", help="also one run of ScaleBridge with per-function timers"
    )
    parser.add_argument("--ranks", type=int, default=1, help="MPI ranks of both (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the run folders (in /tmp)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the JSON records")
    parser.add_argument(
        "--mesh-cache",
        action="store_true",
        help="ScaleBridge reads its mesh from a mesh cache its warm-up run wrote (a series of "
        "runs of one case); the plain script builds its mesh every time",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    case = CASES[args.case]
    args.out.mkdir(exist_ok=True, parents=True)
    work = Path(tempfile.mkdtemp(prefix="scalebridge_bench_"))
    runs: dict[str, list[dict[str, Any]]] = {"scalebridge": [], "plain": []}
    cache = work / "mesh_cache" if args.mesh_cache else None
    runners = {
        "scalebridge": lambda *a, **k: run_scalebridge(*a, **k, mesh_cache=cache),
        "plain": run_plain,
    }
    try:
        print("warm-up (JIT cache, not timed) ...", flush=True)
        warm = {
            "scalebridge": run_scalebridge(
                case,
                work / "scalebridge",
                args.cells,
                every_step=case.every_step is not None,
                ranks=args.ranks,
                mesh_cache=cache,
            ),
            "plain": run_plain(case, work / "plain", args.cells, ranks=args.ranks),
        }
        for round_ in range(1, args.repeats + 1):
            for name, runner in runners.items():
                result = runner(case, work / name, args.cells, ranks=args.ranks)
                runs[name].append(result)
                cpu = f", CPU {result['cpu_s']:.2f} s" if result["cpu_s"] is not None else ""
                print(f"  round {round_}: {name:<12} {result['wall_s']:8.2f} s{cpu}", flush=True)
        profiles = profile(case, work, args.cells, args.out) if args.profile else {}
        split = run_phases(case, work, args.cells, args.out) if args.phases else {}
    finally:
        if args.keep:
            print(f"run folders kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    sb = summary([r["wall_s"] for r in runs["scalebridge"]])
    plain = summary([r["wall_s"] for r in runs["plain"]])
    ratio = {
        "best": sb["best_s"] / plain["best_s"],
        "median": sb["median_s"] / plain["median_s"],
    }
    cpu = {name: _median_cpu(runs[name]) for name in runners}
    if all(value is not None for value in cpu.values()):
        ratio["cpu_median"] = cpu["scalebridge"] / cpu["plain"]
    key, kind = case.key, case.iterations
    v_sb = runs["scalebridge"][-1][key]
    v_plain = runs["plain"][-1][key]
    difference = max(
        abs(a[key] - b[key]) / abs(b[key]) for a in runs["scalebridge"] for b in runs["plain"]
    )
    iterations = {
        "scalebridge": warm["scalebridge"].get(f"{kind}_iterations"),
        "plain": runs["plain"][-1][f"{kind}_iterations"],
    }
    same_steps = case.every_step is None or (  # else the iterations of every step must agree
        warm["scalebridge"]["iterations_per_step"] == runs["plain"][-1]["iterations_per_step"]
    )
    agree = difference <= case.agreement and same_steps
    others = quantity_differences(runs["scalebridge"][-1], runs["plain"][-1], case.zero)
    dofs = runs["plain"][-1]["dofs"]
    internal = {name: statistics.median(r["internal_s"] for r in runs[name]) for name in runners}

    print()
    print(f"{case.toml.relative_to(ROOT)}: {dofs:,} dofs, {args.repeats} timed rounds")
    print(f"{'variant':<14}{'best [s]':>10}{'median [s]':>12}{'own clock [s]':>16}")
    for name, stats in (("scalebridge", sb), ("plain", plain)):
        print(
            f"{name:<14}{stats['best_s']:>10.2f}{stats['median_s']:>12.2f}{internal[name]:>16.2f}"
        )
    print(f"{'ratio sb/plain':<14}{ratio['best']:>10.3f}{ratio['median']:>12.3f}")
    if "cpu_median" in ratio:
        print(
            f"CPU time (user + system, medians): scalebridge {cpu['scalebridge']:.2f} s, plain "
            f"{cpu['plain']:.2f} s, ratio {ratio['cpu_median']:.3f}"
        )
    if args.mesh_cache:
        print("scalebridge read its mesh from the cache its warm-up wrote; plain built its own")
    verdict = "within" if ratio["median"] <= GOAL else "ABOVE"
    print(f"median ratio {ratio['median']:.3f}: {verdict} the goal of {GOAL}x")
    print(
        f"{case.label}: scalebridge {v_sb:.10g}, plain {v_plain:.10g}, "
        f"relative difference {difference:.1e} "
        f"({'agree' if difference <= case.agreement else 'DISAGREE'})"
    )
    print(
        "other quantities at the end, relative difference: "
        + ", ".join(f"{name} {value:.1e}" for name, value in others.items())
    )
    label = {"cg": "CG", "newton": "Newton"}[kind]
    last = f"last_step_{kind}_iterations"
    totals = f"plain total {iterations['plain']}"
    if iterations["scalebridge"] is not None:
        totals = (
            f"totals: scalebridge {iterations['scalebridge']} (warm-up), plain "
            f"{iterations['plain']}; {'equal' if same_steps else 'UNEQUAL'} step by step"
        )
    print(
        f"{label} iterations of the last step: scalebridge {runs['scalebridge'][-1][last]}, "
        f"plain {runs['plain'][-1][last]} ({totals})"
    )
    phases = runs["plain"][-1]["phases_s"]
    print("plain phases [s]: " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()))
    print(
        f"own clock: scalebridge = Simulation.run (mesh to end, run.log), plain = script start "
        f"to end; process start-up, imports, case loading and exit: scalebridge "
        f"{sb['median_s'] - internal['scalebridge']:.2f} s, plain "
        f"{plain['median_s'] - internal['plain']:.2f} s (medians)"
    )
    if split:
        print(
            f"scalebridge split (one extra run, {split['process_wall_s']:.2f} s; timers nest): "
            f"start-up and imports {split['before_main_s']:.2f} s"
        )
        for name, row in list(split["functions"].items())[:25]:
            print(f"  {name:<50}{row['s']:8.2f} s  x{row['calls']}")
    for name, path in profiles.items():
        print(f"profile of {name}: {path}  (python -m pstats {path})")
    memory = {name: _peak_per_rank(runs[name]) for name in runners}
    if all(memory.values()):
        print(
            "peak resident memory per rank [MB] (median of the largest rank): scalebridge "
            f"{memory['scalebridge']:.0f}, plain {memory['plain']:.0f}, ratio "
            f"{memory['scalebridge'] / memory['plain']:.3f}"
        )

    record = {
        "case": str(case.toml.relative_to(ROOT)),
        "cells": args.cells or case.cells,
        "dofs": dofs,
        "repeats": args.repeats,
        "scalebridge": sb | {"runs": runs["scalebridge"]},
        "plain": plain | {"runs": runs["plain"]},
        "warm_up_s": {name: result["wall_s"] for name, result in warm.items()},
        "ratio": ratio,
        "goal_ratio": GOAL,
        "ranks": args.ranks,
        "peak_rss_mb_per_rank": memory,
        "cpu_median_s": cpu,
        "mesh_cache": args.mesh_cache,
        key: {"scalebridge": v_sb, "plain": v_plain},
        "relative_difference": difference,
        "quantity_differences": others,
        "agree": agree,
        "profiles": profiles,
        "scalebridge_phases": split,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if case.every_step is not None:
        record[f"total_{kind}_iterations"] = iterations
    path = args.out / f"{case.toml.stem}{f'_np{args.ranks}' if args.ranks > 1 else ''}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"written: {path}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
