"""Benchmark: the DFN 1C discharge (cases/battery_discharge.toml, Chen2020 from SOC 1 to 2.5 V)
as a whole process, import, build, solve and write, against PyBaMM's DFN doing the same
(benchmarks/plain_pybamm_dfn.py: default options, mesh and IDAKLU solver).

Both write their quantities to a CSV and no field files (``output.xdmf = false``). The JIT
cache is a fresh folder (``XDG_CACHE_HOME``) unless ``--shared-cache`` (the user's): either
gives the same times since app/jit_cache.py loads a cached form by its path (FFCx 0.11 listed
its flat cache folder for every cached form, 46 ms each at 54,000 entries; measured at 73,000
entries: 3.4-3.5 CPU-s a run with either folder, 9.3 with the shared one before). One
untimed run of each warms the caches; then the two alternate for ``--repeats`` rounds
(paired: slow drifts of a shared machine hit both alike). Reports median wall time, median CPU
time (user + system of the process: on a loaded machine the wall time waits for the CPU, the
CPU time does not), peak resident memory, the ratios ScaleBridge / PyBaMM, and how far the two
answers are apart (capacity, and voltage RMS at our output times). Goal (issue 12): at most 0.8x
PyBaMM's wall time, with peak memory below PyBaMM's.

    .venv/bin/python benchmarks/battery_pybamm.py                  # 5 rounds
    .venv/bin/python benchmarks/battery_pybamm.py --tiny --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from timed_run import ROOT, timed

BIN = Path(sys.executable).parent
CASE = ROOT / "cases" / "battery_discharge.toml"
# --tiny: two minutes of the discharge on a small mesh (the test's size)
TINY_SCALEBRIDGE = [
    'protocol.steps=["Discharge at 1C for 2 minutes"]',
    'mesh.layers=[{ name = "negative", thickness = "L_n", cells = 8 },'
    ' { name = "separator", thickness = "L_s", cells = 4 },'
    ' { name = "positive", thickness = "L_p", cells = 8 }]',
    "mesh.radial_cells=6",
]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(command: list[str]) -> dict[str, float]:
    before = cpu_seconds()
    run = timed(command)
    memory = max(run.peak_rss_mb, default=float("nan"))
    return {"wall_s": run.wall_s, "cpu_s": cpu_seconds() - before, "peak_mb": memory}


def commands(folder: Path, tiny: bool) -> dict[str, list[str]]:
    settings = ["output.xdmf=false", *(TINY_SCALEBRIDGE if tiny else [])]
    ours = [str(BIN / "scalebridge"), "run", str(CASE), "-o", str(folder / "scalebridge")]
    ours += ["--overwrite", "-q", *(a for s in settings for a in ("--set", s))]
    peer = [sys.executable, str(ROOT / "benchmarks" / "plain_pybamm_dfn.py")]
    peer += ["--out", str(folder / "pybamm.csv"), *(["--end", "120"] if tiny else [])]
    return {"scalebridge": ours, "pybamm": peer}


def agreement(folder: Path) -> dict[str, float]:
    """Capacity difference (relative) and voltage RMS [V] at our output times (a minute apart),
    PyBaMM's voltage interpolated there from its solver's dense steps: interpolating our rows
    onto PyBaMM's times instead measured the chord across the knee (9 mV)."""
    peer = np.genfromtxt(folder / "pybamm.csv", delimiter=",", names=True)
    ours = np.genfromtxt(folder / "scalebridge" / "quantities.csv", delimiter=",", names=True)
    common = ours["time_s"] <= peer["time_s"][-1]
    voltage = np.interp(ours["time_s"][common], peer["time_s"], peer["voltage_V"])
    rms = float(np.sqrt(np.mean((voltage - ours["voltage_V"][common]) ** 2)))
    capacity = ours["discharge_capacity_Ah"][-1] / peer["discharge_capacity_Ah"][-1] - 1
    return {"capacity_relative": float(capacity), "voltage_rms_V": rms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument("--tiny", action="store_true", help="two minutes on a small mesh")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--shared-cache", action="store_true", help="the user's JIT cache")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scalebridge_battery_") as scratch:
        folder = Path(scratch)
        if not args.shared_cache:
            os.environ["XDG_CACHE_HOME"] = str(folder / "cache")  # inherited by both sides
        runs = commands(folder, args.tiny)
        for command in runs.values():  # warm the caches
            timed(command)
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, command in runs.items():
                samples[name].append(measured(command))
        record: dict = {"repeats": args.repeats, "tiny": args.tiny, **agreement(folder)}
        record["shared_cache"] = args.shared_cache
    for name, rounds in samples.items():
        for key in ("wall_s", "cpu_s", "peak_mb"):
            record[f"{name}_{key}"] = statistics.median(r[key] for r in rounds)
    for key in ("wall_s", "cpu_s", "peak_mb"):
        record[f"ratio_{key}"] = record[f"scalebridge_{key}"] / record[f"pybamm_{key}"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "battery_pybamm.json").write_text(json.dumps(record, indent=2) + "\n")
    for key, value in record.items():
        print(f"{key:28s} {value:.4g}" if isinstance(value, float) else f"{key:28s} {value}")


if __name__ == "__main__":
    main()
