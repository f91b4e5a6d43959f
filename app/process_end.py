"""Ending the ``scalebridge`` process once a command has finished, without the interpreter's
teardown.

After ``main`` returns, CPython frees every module, UFL expression, form and PETSc object one by
one: 0.19-0.25 s for a battery discharge on a quiet machine (0.5-0.95 s against 0.03-0.09 s
with this module at a load of 7-12), a tenth of a short run.
Nothing in that teardown writes a result: by then the run has closed its field files (VTX,
XDMF/HDF5), its CSV tables and its checkpoints (app/runner.py). What must still happen is done
here, in the order the interpreter would do it:

1. the Python ``atexit`` functions (``logging.shutdown`` flushes and closes the run's log, and
   any library's hooks), then Python's buffered streams,
2. PETSc's finalisation (``-log_view``, ``-options_left`` and friends print there),
3. MPI's finalisation,
4. the C library's ``exit``: its own ``atexit`` functions and buffered streams (PETSc prints
   through them). MPICH finishes its part of the process manager's protocol there: a rank
   that skipped it (``os._exit``) made ``mpirun`` kill the other ranks' processes that were
   still ending (a wrapper such as GNU time writing its report).

Only the console script ends this way (``app.cli.console``); the Python API
(``Simulation.run()`` in a notebook or a test) returns as any library call does, and so does a
command watched by a profiler, tracer or debugger (``python -m cProfile -o run.prof -m app.cli
run ...`` writes its file after the command).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import sys
import threading
from typing import NoReturn


def end_process(code: int) -> NoReturn:
    """Exit with ``code`` after the steps of the module docstring. With another non-daemon thread
    still running (a study's worker, a library's pool), the interpreter's own exit, which waits
    for it, ends the process instead."""
    main_thread = threading.main_thread()
    if _observed() or any(not t.daemon for t in threading.enumerate() if t is not main_thread):
        sys.exit(code)
    atexit._run_exitfuncs()  # what Py_Finalize runs first (atexit has no public name for it)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed, or a pipe gone
            stream.flush()
    _finalize_petsc()
    _finalize_mpi()
    ctypes.CDLL(None).exit(code)


def _observed() -> bool:
    """A profiler, tracer, debugger or coverage tool watches the process: it writes its report
    as the interpreter ends."""
    monitoring = getattr(sys, "monitoring", None)  # Python 3.12's tools (cProfile among them)
    tools = monitoring is not None and any(monitoring.get_tool(i) for i in range(6))
    return sys.gettrace() is not None or sys.getprofile() is not None or tools


def _finalize_petsc() -> None:
    petsc = sys.modules.get("petsc4py.PETSc")  # a command that never imported PETSc skips it
    if petsc is not None and petsc.Sys.isInitialized() and not petsc.Sys.isFinalized():
        petsc._finalize()


def _finalize_mpi() -> None:
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        mpi.Finalize()
