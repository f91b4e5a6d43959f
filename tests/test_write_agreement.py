"""Ranks agreeing on a write that failed on one of them (app/safeguards.py): the others may be
inside the writer's own collective (ADIOS2's aggregation waiting for the failed rank) and never
come to the agreement; a 2-rank run on a filling disk hung there about once in five."""

import time

from app.errors import OutputFailed
from tests.conftest import mpi_python

SCRIPT = """
import errno, sys, time
import app
from mpi4py import MPI
from app import safeguards
from app.errors import OutputFailed

safeguards.STUCK_AFTER_S = 3.0
comm = MPI.COMM_WORLD
other_sleeps = float(sys.argv[1])

def write():
    if comm.rank == 0:
        raise OSError(errno.ENOSPC, "No space left on device", "fields.bp")
    time.sleep(other_sleeps)  # rank 1 inside a collective of the writer, or only slow

try:
    safeguards.collective(comm, write, "the output at t = 1 s")
except OutputFailed as exc:
    print(f"rank {comm.rank}: {exc}", flush=True)
"""


def test_a_rank_stuck_in_the_write_ends_the_run_instead_of_a_hang(tmp_path):
    script = tmp_path / "stuck.py"
    script.write_text(SCRIPT)
    started = time.monotonic()
    process = mpi_python(script, "600", timeout=120)
    assert time.monotonic() - started < 60  # not the 600 s rank 1 stays in the write
    assert process.returncode == OutputFailed.exit_code, process.stderr
    assert "on rank 0: No space left on device ('fields.bp')" in process.stderr
    assert "the last checkpoint is intact" in process.stderr


def test_a_slow_rank_still_agrees_on_the_failure(tmp_path):
    """Rank 1 ends its write 1 s after rank 0 failed, within the 3 s: both raise the same
    OutputFailed naming rank 0's problem (no abort)."""
    script = tmp_path / "slow.py"
    script.write_text(SCRIPT)
    process = mpi_python(script, "1", timeout=120)
    assert process.returncode == 0, process.stderr
    for rank in (0, 1):
        assert (f"rank {rank}: writing the output at t = 1 s failed: No space left on device "
                "('fields.bp')") in process.stdout  # fmt: skip
