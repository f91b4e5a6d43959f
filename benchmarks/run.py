"""Benchmark: ScaleBridge against the same problem written by hand in plain DOLFINx.

Runs ``scalebridge run benchmarks/heat_3d.toml`` (a 1M-dof transient heat case) and
``python benchmarks/plain_heat_3d.py`` (the identical discrete problem, hand-written) as separate
processes and compares their whole-process wall times. Each variant is first run once to warm the
JIT cache (not timed), then the two alternate for ``--repeats`` rounds so that slow drifts of the
machine hit both alike. Checks that both reach the same final maximum temperature, prints a
table (best and median time, the ratio ScaleBridge/plain) and writes benchmarks/out/heat_3d.json.

    make bench                                          # full size: 99^3 cells, 1,000,000 dofs
    .venv/bin/python benchmarks/run.py --cells 20       # a quick check (9,261 dofs)
    .venv/bin/python benchmarks/run.py --repeats 5
    .venv/bin/python benchmarks/run.py --phases         # plus ScaleBridge's time per function
    .venv/bin/python benchmarks/run.py --profile        # plus one cProfile'd run of each

Goal: ScaleBridge's overhead below 5 % (median ratio < 1.05).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASE = HERE / "heat_3d.toml"
PLAIN = HERE / "plain_heat_3d.py"
OUT = HERE / "out"
GOAL = 1.05
AGREEMENT = 1e-6  # relative difference allowed between the final max temperatures


def scalebridge_command() -> list[str]:
    """The console script next to this interpreter, else the CLI module."""
    script = Path(sys.executable).parent / "scalebridge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def run_scalebridge(folder: Path, cells: int | None, prefix: list[str] | None = None) -> dict:
    if prefix is None:
        command = scalebridge_command()
    else:  # under cProfile: run the CLI module with this interpreter
        command = [sys.executable, *prefix, "-m", "app.cli"]
    command += ["run", str(CASE), "-o", str(folder), "--overwrite", "-q"]
    if cells is not None:
        command += ["--set", f"mesh.cells=[{cells},{cells},{cells}]"]
    wall = _timed(command)
    with (folder / "quantities.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    provenance = json.loads((folder / "provenance.json").read_text())
    if provenance.get("status") != "completed":
        raise RuntimeError(f"scalebridge run not completed: {provenance}")
    last = rows[-1]
    log = (folder / "run.log").read_text() if (folder / "run.log").exists() else ""
    completed = re.search(r"run completed: .* in ([0-9.]+) s", log)
    return {
        "wall_s": wall,
        # Simulation.run's own clock: mesh, set-up, time loop and output (not imports, exit)
        "internal_s": float(completed.group(1)) if completed else provenance["wall_time_s"],
        "provenance_wall_time_s": provenance["wall_time_s"],
        "max_temperature_K": float(last["max_temperature_K"]),
        "last_step_cg_iterations": int(float(last["linear_iterations"])),
        "quantities": {key: float(value) for key, value in last.items()},
    }


def run_plain(folder: Path, cells: int | None, prefix: list[str] | None = None) -> dict:
    command = [sys.executable, *(prefix or []), str(PLAIN), "-o", str(folder)]
    if cells is not None:
        command += ["--cells", str(cells)]
    stdout: list[str] = []
    wall = _timed(command, stdout)
    report = json.loads(stdout[0])
    return {
        "wall_s": wall,
        "internal_s": report["wall_time_s"],  # from the script's first line to its end
        "max_temperature_K": report["max_temperature_K"],
        "cg_iterations": report["cg_iterations"],
        "last_step_cg_iterations": report["iterations_per_step"][-1],
        "dofs": report["dofs"],
        "phases_s": report["phases_s"],
        "quantities": report["quantities"][-1],
    }


def _timed(command: list[str], stdout: list[str] | None = None) -> float:
    """Whole-process wall time of a command run from the repository root."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"failed ({done.returncode}): {' '.join(command)}")
    if stdout is not None:
        stdout.append(done.stdout)
    return wall


def quantity_differences(sb: dict, plain: dict) -> dict[str, float]:
    """Relative differences of the quantities both report at the end time."""
    result = {}
    for name, value in plain["quantities"].items():
        if name in sb["quantities"] and name != "time_s":
            other = sb["quantities"][name]
            scale = max(abs(value), abs(other), 1e-300)
            result[name] = abs(other - value) / scale
    return result


def summary(times: list[float]) -> dict[str, float]:
    return {"best_s": min(times), "median_s": statistics.median(times), "all_s": times}


def run_phases(work: Path, cells: int | None) -> dict[str, Any]:
    """One run of ScaleBridge with timers around its main functions (phases_scalebridge.py)."""
    path = OUT / "heat_3d_scalebridge_phases.json"
    command = [sys.executable, str(HERE / "phases_scalebridge.py"), "--json", str(path)]
    command += ["run", str(CASE), "-o", str(work / "phases"), "--overwrite", "-q"]
    if cells is not None:
        command += ["--set", f"mesh.cells=[{cells},{cells},{cells}]"]
    wall = _timed(command)
    return json.loads(path.read_text()) | {"process_wall_s": wall}


def profile(work: Path, cells: int | None) -> dict[str, str]:
    """One cProfile'd run of each variant; the .prof files go to benchmarks/out/."""
    files = {}
    for name, runner in (("scalebridge", run_scalebridge), ("plain", run_plain)):
        path = OUT / f"heat_3d_{name}.prof"
        runner(work / f"prof_{name}", cells, ["-m", "cProfile", "-o", str(path)])
        files[name] = str(path)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (default 3)")
    parser.add_argument(
        "--cells", type=int, help="cells per direction (default: the case's, 99 -> 1M dofs)"
    )
    parser.add_argument("--profile", action="store_true", help="also one cProfile'd run of each")
    parser.add_argument(
        "--phases", action="store_true", help="also one run of ScaleBridge with per-function timers"
    )
    parser.add_argument("--keep", action="store_true", help="keep the run folders (in /tmp)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="scalebridge_bench_"))
    runs: dict[str, list[dict[str, Any]]] = {"scalebridge": [], "plain": []}
    runners = {"scalebridge": run_scalebridge, "plain": run_plain}
    try:
        print("warm-up (JIT cache, not timed) ...", flush=True)
        warm = {name: runner(work / name, args.cells) for name, runner in runners.items()}
        for round_ in range(1, args.repeats + 1):
            for name, runner in runners.items():
                result = runner(work / name, args.cells)
                runs[name].append(result)
                print(f"  round {round_}: {name:<12} {result['wall_s']:8.2f} s", flush=True)
        profiles = profile(work, args.cells) if args.profile else {}
        split = run_phases(work, args.cells) if args.phases else {}
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
    t_sb = runs["scalebridge"][-1]["max_temperature_K"]
    t_plain = runs["plain"][-1]["max_temperature_K"]
    difference = max(
        abs(a["max_temperature_K"] - b["max_temperature_K"]) / abs(b["max_temperature_K"])
        for a in runs["scalebridge"]
        for b in runs["plain"]
    )
    agree = difference <= AGREEMENT
    others = quantity_differences(runs["scalebridge"][-1], runs["plain"][-1])
    dofs = runs["plain"][-1]["dofs"]
    internal = {name: statistics.median(r["internal_s"] for r in runs[name]) for name in runners}

    print()
    print(f"{CASE.relative_to(ROOT)}: {dofs:,} dofs, {args.repeats} timed rounds")
    print(f"{'variant':<14}{'best [s]':>10}{'median [s]':>12}{'own clock [s]':>16}")
    for name, stats in (("scalebridge", sb), ("plain", plain)):
        print(
            f"{name:<14}{stats['best_s']:>10.2f}{stats['median_s']:>12.2f}{internal[name]:>16.2f}"
        )
    print(f"{'ratio sb/plain':<14}{ratio['best']:>10.3f}{ratio['median']:>12.3f}")
    verdict = "within" if ratio["median"] < GOAL else "ABOVE"
    print(f"overhead {100 * (ratio['median'] - 1):+.1f} % (median): {verdict} the 5 % goal")
    print(
        f"max temperature: scalebridge {t_sb:.10g} K, plain {t_plain:.10g} K, "
        f"relative difference {difference:.1e} ({'agree' if agree else 'DISAGREE'})"
    )
    print(
        "other quantities at the end, relative difference: "
        + ", ".join(f"{name} {value:.1e}" for name, value in others.items())
    )
    print(
        "CG iterations of the last step: scalebridge "
        f"{runs['scalebridge'][-1]['last_step_cg_iterations']}, plain "
        f"{runs['plain'][-1]['last_step_cg_iterations']} (plain total "
        f"{runs['plain'][-1]['cg_iterations']})"
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

    record = {
        "case": str(CASE.relative_to(ROOT)),
        "cells": args.cells or 99,
        "dofs": dofs,
        "repeats": args.repeats,
        "scalebridge": sb | {"runs": runs["scalebridge"]},
        "plain": plain | {"runs": runs["plain"]},
        "warm_up_s": {name: result["wall_s"] for name, result in warm.items()},
        "ratio": ratio,
        "goal_ratio": GOAL,
        "max_temperature_K": {"scalebridge": t_sb, "plain": t_plain},
        "relative_difference": difference,
        "quantity_differences": others,
        "agree": agree,
        "profiles": profiles,
        "scalebridge_phases": split,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (OUT / "heat_3d.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"written: {(OUT / 'heat_3d.json').relative_to(ROOT)}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
