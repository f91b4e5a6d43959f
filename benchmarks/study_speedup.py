"""Benchmark: a study on one rank against the same study on two ranks (two groups).

The study (benchmarks/study_speedup.toml) is a Sobol'-sequence sweep of the Danckwerts problem
over D and k. Each layout runs as its own ``mpirun -n N scalebridge study`` process; the two
alternate for ``--repeats`` rounds (paired: slow drifts of a shared machine hit both alike),
after one untimed run that warms the JIT cache. Reports the median whole-command wall time and
the median time of the members' phase (what the study logs as "study finished ... in X s"), the
ratios one rank / two ranks, and checks that both layouts wrote the same table (wall times
aside). ``--no-reuse`` builds every member afresh instead of rerunning the group's simulation.

    .venv/bin/python benchmarks/study_speedup.py                  # 3 rounds, 256 members
    .venv/bin/python benchmarks/study_speedup.py --samples 64 --repeats 1
    .venv/bin/python benchmarks/study_speedup.py --no-reuse --samples 64

Goal: two groups at least 1.7x faster than one rank.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import tomli_w

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
FINISHED = re.compile(r"study finished: .* in ([0-9.]+) s")


def run(study: Path, ranks: int, output: Path) -> tuple[float, float]:
    """Whole-command and members' wall time of one study run on ``ranks`` ranks."""
    command = [str(BIN / "mpirun"), "-n", str(ranks), str(BIN / "scalebridge"), "study"]
    started = time.perf_counter()
    process = subprocess.run(
        [*command, str(study), "-o", str(output), "--overwrite"], capture_output=True, text=True
    )
    total = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"study failed on {ranks} ranks:\n{process.stdout}\n{process.stderr}")
    return total, float(FINISHED.search(process.stdout).group(1))


def table(folder: Path) -> list[list[str]]:
    with (folder / "results.csv").open(newline="") as stream:
        rows = list(csv.reader(stream))
    column = rows[0].index("wall_time_s")
    return [row[:column] + row[column + 1 :] for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=256, help="members")
    parser.add_argument("--repeats", type=int, default=3, help="paired rounds")
    parser.add_argument("--no-reuse", action="store_true", help="build every member afresh")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="folder of the record")
    args = parser.parse_args()
    raw = tomllib.loads((HERE / "study_speedup.toml").read_text())
    raw["case"] = str((HERE / raw["case"]).resolve())
    raw["method"]["samples"] = args.samples
    raw["reuse"] = not args.no_reuse
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        study = work / "speedup.toml"
        study.write_text(tomli_w.dumps(raw))
        run(study, 1, work / "warm")
        times: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
        for _ in range(args.repeats):
            for ranks in (1, 2):
                times[ranks].append(run(study, ranks, work / f"np{ranks}"))
        same = table(work / "np1") == table(work / "np2")
    medians = {
        ranks: [statistics.median(t[i] for t in runs) for i in (0, 1)]
        for ranks, runs in times.items()
    }
    record = {
        "members": args.samples,
        "reuse": not args.no_reuse,
        "repeats": args.repeats,
        "times_s": {str(r): runs for r, runs in times.items()},
        "median_command_s": {str(r): m[0] for r, m in medians.items()},
        "median_members_s": {str(r): m[1] for r, m in medians.items()},
        "speedup_command": medians[1][0] / medians[2][0],
        "speedup_members": medians[1][1] / medians[2][1],
        "same_table": same,
    }
    print(json.dumps(record, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "study_speedup.json").write_text(json.dumps(record, indent=2) + "\n")
    if not same:
        sys.exit("the tables of one and two ranks differ")


if __name__ == "__main__":
    main()
