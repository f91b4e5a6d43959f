"""Errors that reach the user.

`CaseError` is bad input: it names the case-file path of the offending value, what was expected and
how to fix it; the CLI prints it as one message and exits with code 2. `SolverError` is a run that
could not continue (Newton failed below the minimum time step, or the solution diverged); the
CLI exits with code 1. `Interrupted` (a signal; exit code 3) and `OutputFailed` (a full or
read-only disk mid-run; exit code 4) stop a run that can continue from its last checkpoint.
"""

import difflib
import re
from collections.abc import Iterable

#: ADIOS2 and HDF5 colour their error messages for a terminal; ours carry the text only.
TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*m")


class ScaleBridgeError(Exception):
    """Base class of errors the CLI reports without a traceback."""

    exit_code = 1


class CaseError(ScaleBridgeError):
    """Invalid input, located by its dotted case-file path (``physics.heat.conductivity``).

    Args:
        path: Dotted path of the offending value in the case file ("" for the file itself).
        problem: What is wrong, including what was expected.
        fix: How to fix it, when that is not obvious from ``problem``.
    """

    exit_code = 2

    def __init__(self, path: str, problem: str, fix: str | None = None):
        self.path = path if path.isprintable() and len(path) <= 200 else shown(path, 200)
        self.problem = problem
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"{where}{self.problem}.{fix}"

    def at(self, prefix: str) -> "CaseError":
        """The same error with its path placed under ``prefix``."""
        path = ".".join(p for p in (prefix, self.path) if p)
        return CaseError(path, self.problem, self.fix)


class SolverError(ScaleBridgeError):
    """A solve that failed for good (after all retries the time-step control allows)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A " (did you mean 'x'?)" suffix for the closest choice, or "" when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def listing(choices: Iterable[str]) -> str:
    """Sorted, comma-separated names, or "none" for an empty collection."""
    names = sorted(choices)
    return ", ".join(names) if names else "none"


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters, so a message echoing a huge input
    stays one readable line."""
    text = repr(value)
    return (
        text if len(text) <= limit else f"{text[: limit - 15]}...{text[-12:]} ({len(text)} chars)"
    )


class Diverged(SolverError):
    """The solution stopped being finite: where and when it first did, and the last good
    output time."""


class Interrupted(ScaleBridgeError):
    """The run stopped on SIGTERM or SIGINT after writing a checkpoint (exit code 3)."""

    exit_code = 3


class OutputFailed(ScaleBridgeError):
    """Output could not be written mid-run (disk full, quota, read-only): the run stopped,
    its last checkpoint intact (exit code 4)."""

    exit_code = 4
