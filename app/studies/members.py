"""Running members: a member's case, its simulation on the group's communicator, its row.

Each group of ranks runs its members one after the other through the Python API
(``Simulation(load_case(case, overrides), comm=group).run()``). Members that differ only in
constant parameters (a conductivity, a boundary value: values that became ``fem.Constant``) run
on the simulation the group built first: :meth:`Simulation.reuse` sets the new constants and
goes back to the initial state, so no mesh, form or solver is built again. The first member
run that way is also run on a fresh build and the two compared; if any quantity differs (a
plug-in that reads a parameter as a plain number when it builds its forms) the group builds
every member afresh. A member that fails (bad values: CaseError; a solve that gives up:
SolverError) becomes a row with its error, and the study goes on.
"""

from __future__ import annotations

import gc
import logging
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from app.case import load_case
from app.errors import ScaleBridgeError
from app.simulation import Result, Simulation
from app.studies.spec import QuantitySpec
from app.studies.table import Row

log = logging.getLogger("scalebridge.study")


def reduce(spec: QuantitySpec, series: Mapping[str, np.ndarray]) -> float:
    """One number from a run's quantities (NaN when the run never reached it)."""
    t = np.asarray(series["time_s"], dtype=float)
    if spec.reduce == "end_time":
        return float(t[-1])
    y = np.asarray(series[spec.column], dtype=float)
    match spec.reduce:
        case "final":
            return float(y[-1])
        case "max":
            return float(y.max())
        case "min":
            return float(y.min())
        case "integral":
            return float(np.trapezoid(y, t))
        case "mean":
            span = t[-1] - t[0]
            return float(np.trapezoid(y, t) / span) if span > 0 else float(y[-1])
        case "at":
            inside = t[0] <= spec.time <= t[-1]
            return float(np.interp(spec.time, t, y)) if inside else float("nan")
        case "crossing":
            return _crossing(t, y - spec.level)
    raise ValueError(f"unknown reduction {spec.reduce!r}")


def _crossing(t: np.ndarray, distance: np.ndarray) -> float:
    """First time a sampled function reaches zero (linear between samples), NaN if never."""
    if distance[0] == 0:
        return float(t[0])
    changes = np.nonzero(np.sign(distance[1:]) != np.sign(distance[:-1]))[0]
    if changes.size == 0:
        return float("nan")
    i = changes[0]
    return float(t[i] - distance[i] * (t[i + 1] - t[i]) / (distance[i + 1] - distance[i]))


@contextmanager
def _quiet() -> Iterator[None]:
    """A member's own log lines (mesh, solvers, 'run completed') stay out of the study's."""
    framework = logging.getLogger("scalebridge")
    level = framework.level
    framework.setLevel(logging.WARNING)
    try:
        yield
    finally:
        framework.setLevel(level)


class MemberRunner:
    """Runs members on one group's communicator.

    Args:
        case: The case file.
        quantities: The numbers each member reduces its quantities to, by name.
        comm: The group's communicator.
        runs: Folder for each member's run folder (None: runs stay in memory).
        reuse: Whether members that differ only in constants may share a built simulation.
    """

    def __init__(
        self,
        case: Path,
        quantities: Mapping[str, QuantitySpec],
        comm: Any,
        runs: Path | None = None,
        reuse: bool = True,
    ):
        self.case, self.quantities, self.comm, self.runs = case, quantities, comm, runs
        self._template: Simulation | None = None
        self._reusable: bool | None = None if reuse else False  # None: not checked yet
        self._reported = False
        self._built = False  # a member built a new simulation (old ones became garbage)

    def run(self, member: int, values: Mapping[str, Any], overrides: Mapping[str, Any]) -> Row:
        """Run one member; its row records success or the error."""
        started = time.perf_counter()
        try:
            with _quiet():
                result = self._simulate(overrides, self._folder(member))
            quantities = {
                name: reduce(spec, result.quantities) for name, spec in self.quantities.items()
            }
        except ScaleBridgeError as exc:
            return self._failed(member, values, started, str(exc))
        except Exception as exc:
            if not self._reported and self.comm.rank == 0:
                log.warning("member %d: unexpected error\n%s", member, traceback.format_exc())
                self._reported = True
            return self._failed(member, values, started, f"{type(exc).__name__}: {exc}")
        finally:
            self._collect_garbage()
        return Row(member, "completed", time.perf_counter() - started, dict(values), quantities)

    def _collect_garbage(self) -> None:
        """PETSc objects of a group of several ranks are destroyed collectively: those of the
        simulations a group dropped are freed here, by all its ranks at once."""
        if self._built and self.comm.size > 1:
            from petsc4py import PETSc

            gc.collect()
            PETSc.garbage_cleanup(self.comm)
        self._built = False

    @staticmethod
    def _failed(member: int, values: Mapping[str, Any], started: float, error: str) -> Row:
        message = " ".join(error.split())  # one line in the table
        return Row(member, "failed", time.perf_counter() - started, dict(values), {}, message)

    def _folder(self, member: int) -> Path | None:
        return None if self.runs is None else self.runs / f"{member:06d}"

    def _read_columns(self) -> set[str]:
        """The columns the study reduces: a column it never reads (a conservation residual at
        round-off, 1e-17 either way) has no say in whether a built simulation is reused."""
        return {"time_s"} | {s.column for s in self.quantities.values() if s.column is not None}

    def _simulate(self, overrides: Mapping[str, Any], folder: Path | None) -> Result:
        loaded = load_case(self.case, overrides)
        template = self._template
        if template is not None and self._reusable is not False and template.reuse(loaded):
            reused = template.run(folder, overwrite=True)
            if self._reusable is None:
                self._built = True
                fresh = Simulation(loaded, self.comm).run(folder, overwrite=True)
                self._reusable = _same(reused, fresh, self._read_columns(), self.comm)
                return fresh
            return reused
        self._built = True
        simulation = Simulation(loaded, self.comm)
        result = simulation.run(folder, overwrite=True)
        self._template = simulation  # the latest build: the next member may differ from it least
        return result


def _same(reused: Result, fresh: Result, columns: set[str], comm: Any) -> bool:
    """Whether a run on a reused simulation gave what a fresh build gives in ``columns`` (to
    round-off of each column's scale)."""
    for column in sorted(columns):
        values = fresh.quantities[column]
        other = reused.quantities.get(column)
        if other is None or other.shape != values.shape:
            differs = f"{column}: {other} vs {values}"
        else:
            scale = max(float(np.max(np.abs(values), initial=0.0)), 1e-300)
            gap = float(np.max(np.abs(other - values), initial=0.0))
            differs = f"{column} differs by {gap:.3g}" if gap > 1e-10 * scale else ""
        if differs:
            if comm.rank == 0:
                log.warning(
                    "members are built afresh: a run on the reused simulation differs from a fresh "
                    "build (%s)",
                    differs,
                )
            return False
    return True
