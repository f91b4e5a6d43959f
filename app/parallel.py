"""Work that one rank does for all: rank 0 runs it, every rank returns its result or raises
its error (the other ranks never wait for a rank 0 that has given up)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.errors import CaseError, ScaleBridgeError


def on_rank_zero[T](comm: Any, work: Callable[[], T], where: str) -> T:
    """Run ``work()`` on rank 0 only; every rank returns its result or fails with it.

    A folder that cannot be written (OSError) becomes a case error at ``where``.
    """
    outcome: Any = None
    failure: BaseException | None = None
    if comm.rank == 0:
        try:
            outcome = work()
        except ScaleBridgeError as exc:
            failure = exc
        except OSError as exc:
            failure = CaseError(where, f"cannot write '{exc.filename}': {exc.strerror}")
        except Exception as exc:  # a bug: rank 0 shows its traceback, the others stop too
            failure = exc
    code = comm.bcast(None if failure is None else getattr(failure, "exit_code", 1), root=0)
    if failure is not None:
        raise failure
    if code is not None:
        stopped = ScaleBridgeError("failed on rank 0 (see its message)")
        stopped.exit_code = code
        raise stopped
    return comm.bcast(outcome, root=0)
