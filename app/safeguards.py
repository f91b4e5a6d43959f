"""Safeguards of a run: stop requests by signal, room on the output disk, writes that fail.

Exit codes of ``scalebridge run`` and ``scalebridge restart`` (README, "Restarts")::

    0  completed                      2  bad input, an unusable output folder, a refused restart
    1  the solve failed or diverged   3  stopped by SIGTERM/SIGINT, with a checkpoint
    4  output failed mid-run (disk full, quota, read-only): stopped, the last checkpoint intact
    128 + N  a second signal N: stopped at once, without a checkpoint (143: SIGTERM, 130: SIGINT)

Every rank must agree on when to stop: a signal may reach only some ranks (a user's ``kill``,
a scheduler that signals one node), and a wall clock or a failed write is seen by one rank.
So each rank only notes what it saw, and the ranks combine their notes in one reduction before
every step (:meth:`StopRequests.agreed`) or after every write (:func:`collective`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from mpi4py import MPI

from app.errors import TERMINAL_CODES, OutputFailed

log = logging.getLogger("scalebridge")

SIGNALS = (signal.SIGTERM, signal.SIGINT)

#: How long a rank whose write failed waits for the others to report theirs (agreed_problems)
STUCK_AFTER_S = 60.0


class StopRequests:
    """SIGTERM and SIGINT ask the run to stop: the first after the current step, with a
    checkpoint; a second at once (exit code 128 + N), without one.

    Used as a context manager around a run (the command line's ``run`` and ``restart``); the
    previous handlers come back afterwards. Outside the main thread signals cannot be caught
    and nothing is installed.

    Args:
        abort: Called with the signal's name before a second signal ends the process (it
            records the stop in the run's provenance).
    """

    def __init__(self, abort: Callable[[str], None] | None = None):
        self.received: int | None = None
        self.abort = abort
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def _handle(self, number: int, frame: Any) -> None:
        name = signal.Signals(number).name
        if self.received is None:
            self.received = number
            log.warning(
                "%s received: stopping after this step with a checkpoint (send it again to stop "
                "at once, without one)",
                name,
            )
            return
        print(f"scalebridge: {name} again: stopping at once, without a checkpoint",
              file=sys.stderr, flush=True)  # fmt: skip
        if self.abort is not None:
            with contextlib.suppress(Exception):  # leaving at once matters more than the record
                self.abort(name)
        os._exit(128 + number)


def agreed(comm: Any, *notes: int) -> list[int]:
    """The largest of each note over the ranks, on every rank (one reduction): a flag set on
    any rank, or the signal any rank received."""
    local = np.array([int(note) for note in notes], dtype=np.int64)
    total = np.zeros_like(local)
    comm.Allreduce(local, total, op=MPI.MAX)
    return [int(value) for value in total]


def free_bytes(folder: Path) -> int:
    """Bytes available to this user on the file system of ``folder``."""
    return shutil.disk_usage(folder).free


def disk_state(folder: Path) -> str:
    """What the disk of ``folder`` has free, for a message about a write that failed (ADIOS2's
    own messages do not say that the disk is full)."""
    try:
        return f"the disk of '{folder}' has {size_text(free_bytes(folder))} free"
    except OSError as exc:
        return f"cannot read the free space of '{folder}': {exc.strerror}"


def size_text(count: float) -> str:
    """A byte count for people: '1.2 MB'."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.3g} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1000
    return f"{count:.3g} TB"


def room(comm: Any, folder: Path, needed: int, what: str) -> None:
    """Stop before writing ``needed`` bytes of ``what`` that the disk cannot take (collective;
    rank 0 asks the file system, which is what every rank writes to).

    Raises:
        OutputFailed: Less is free than needed.
    """
    problem = None
    if comm.rank == 0:
        try:
            free = free_bytes(folder)
        except OSError as exc:
            problem = f"cannot read the free space of '{folder}': {exc.strerror}"
        else:
            if free < needed:
                problem = (
                    f"{what} needs {size_text(needed)} and the disk of '{folder}' has "
                    f"{size_text(free)} free"
                )
    problem = comm.bcast(problem, root=0)
    if problem:
        raise OutputFailed(problem)


def collective(
    comm: Any,
    action: Callable[[], None],
    what: str,
    errors: tuple = (OSError,),
    folder: Path | None = None,
):
    """Run an output action on every rank; when it fails on any rank (``errors``: a full disk,
    a quota, a read-only folder), every rank raises the same :class:`OutputFailed`, saying what
    the disk of ``folder`` has free (HDF5's and ADIOS2's own messages do not say it is full)."""
    problem = None
    try:
        action()
    except errors as exc:
        problem = _describe(exc)
    problems = agreed_problems(comm, problem, f"writing {what} failed")
    if problems:
        disk = f" ({disk_state(folder)})" if folder is not None else ""
        raise OutputFailed(f"writing {what} failed{disk}: {problems[0]}")


def agreed_problems(comm: Any, problem: str | None, what: str) -> list[str]:
    """Every rank's problem with a write (collective; empty when none had one).

    A rank whose write failed waits at most :data:`STUCK_AFTER_S` for the others: a write that
    failed on one rank can leave the others inside the writer's own collective (ADIOS2's
    aggregation waits for the failed rank's part), where they never reach this agreement. Then
    this rank says what failed and aborts every rank with the exit code of a failed output,
    rather than the run hanging.
    """
    if comm.size == 1:
        return [problem] if problem else []
    flags = np.zeros(comm.size, dtype=np.int8)
    request = comm.Iallgather(np.array([problem is not None], dtype=np.int8), flags)
    if problem is None:
        request.Wait()
    else:
        deadline = time.monotonic() + STUCK_AFTER_S
        while not request.Test():
            if time.monotonic() > deadline:
                print(
                    f"scalebridge: error: {what} on rank {comm.rank}: {problem.rstrip('.')}; the "
                    f"other ranks did not come back from the write in {STUCK_AFTER_S:g} s, so the "
                    "run is ended on every rank (the last checkpoint is intact: scalebridge "
                    "restart)",
                    file=sys.stderr,
                    flush=True,
                )
                comm.Abort(OutputFailed.exit_code)
            time.sleep(0.01)
    if not flags.any():
        return []
    return [found for found in comm.allgather(problem) if found]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        where = f" ('{exc.filename}')" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    text = TERMINAL_CODES.sub("", str(exc)).strip()  # ADIOS2 colours its messages
    return text.splitlines()[0] if text else type(exc).__name__


def writable(folder: Path) -> str | None:
    """Why files cannot be created in ``folder``, or None (a file is created and removed)."""
    probe = folder / f".scalebridge-write-test-{os.getpid()}"
    try:
        with probe.open("w") as stream:
            stream.write("x")
        probe.unlink()
    except OSError as exc:
        return f"cannot write in '{folder}': {exc.strerror}"
    return None
