"""A command timed as a whole process on N MPI ranks: how every benchmark driver measures.

:func:`timed` runs a command from the repository root (under ``mpirun -n N`` for N > 1) and
returns its wall time, its standard output, each rank's peak resident memory (GNU time's
maximum resident set size, one file per rank; empty where /usr/bin/time does not exist), the
CPU time (user + system) of all ranks together (what a loaded machine inflates less than the
wall time: time spent waiting for a core is not counted) and the
machine's one-minute load average just before it started (on a shared machine the times are
upper bounds, and the load says by how much). A
failed command raises with its output shown, so a benchmark never reports the time of a crash.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GNU_TIME = "/usr/bin/time"


@dataclass(frozen=True)
class TimedRun:
    """What one timed process gave: wall time [s], standard output, peak memory per rank [MB],
    the load average before it and the CPU time of all ranks [s] (None without GNU time)."""

    wall_s: float
    stdout: str
    peak_rss_mb: list[float]
    load_before: float
    cpu_s: float | None = None


def timed(command: list[str], ranks: int = 1) -> TimedRun:
    """Run ``command`` on ``ranks`` MPI ranks from the repository root and time it."""
    with tempfile.TemporaryDirectory(prefix="scalebridge_rss_") as rss:
        measured = Path(GNU_TIME).exists()
        if measured:  # one file per rank (MPICH sets PMI_RANK)
            script = f'exec {GNU_TIME} -f "%U %S %M" -o "{rss}/rank_${{PMI_RANK:-0}}" "$@"'
            command = ["sh", "-c", script, "sh", *command]
        if ranks > 1:
            command = [str(Path(sys.executable).parent / "mpirun"), "-n", str(ranks), *command]
        load = os.getloadavg()[0]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            sys.stderr.write(done.stdout + done.stderr)
            raise RuntimeError(f"failed ({done.returncode}): {' '.join(command)}")
        memory, cpu = [], None
        if measured:
            files = sorted(Path(rss).glob("rank_*"), key=lambda p: int(p.name[5:]))
            # the last line: GNU time puts a note on the exit status before it if there is one
            user_system_rss = [p.read_text().split("\n")[-2].split() for p in files]
            memory = [int(rss_kb) / 1024 for _, _, rss_kb in user_system_rss]
            cpu = sum(float(user) + float(system) for user, system, _ in user_system_rss)
    return TimedRun(wall, done.stdout, memory, load, cpu)
