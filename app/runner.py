"""A run of a compiled simulation: its outputs, its checkpoints and the safeguards around them.

:func:`run` is what :meth:`Simulation.run <app.simulation.Simulation.run>` does: it opens the
run folder (a new one, or a stopped run's to continue), checks that the disk can take the output
before anything is computed, and hands a :class:`Session` the time loop. The session writes a
row (and the fields) at every output time, after checking every value is finite (a diverging
run stops with where it diverged; nothing non-finite is ever written), and at every step
boundary it decides, with all ranks, whether to write a checkpoint (``[checkpoint]``: every N
steps, every T of simulated time, every W of wall time, at the end) and whether to stop (a
signal; app/safeguards.py). Restarting from a checkpoint (app/restart.py) builds the same
session and restores the registry of parts (app/checkpoint.py) before the loop resumes.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from dolfinx import fem

from app import __version__
from app.checkpoint import Checkpoint, CheckpointFiles, Registry
from app.errors import CaseError, Diverged, Interrupted, OutputFailed, SolverError
from app.events import StageSettings
from app.fields import Field, FieldStore
from app.non_finite import derived_state_error, initial_state_error, non_finite
from app.output import FieldOutput, FieldWriter, column
from app.output_estimate import OutputEstimate, check_room, space_values
from app.quantity_table import QuantityTable
from app.run_folder import RunDirectory, input_files
from app.run_plot import plot_run
from app.safeguards import StopRequests, agreed, collective, room
from app.scheduler import TimeLoop
from app.solve_system import SolveReport

log = logging.getLogger("scalebridge")


@dataclass
class Result:
    """What a run returns.

    Attributes:
        quantities: Each quantities.csv column as an array (one entry per output time).
        fields: Final value of every field (derived fields nothing read are evaluated when
            first looked up).
        output_dir: The run folder (None for a run without output).
        steps: Accepted time steps.
        rejected: Rejected (retried) time steps.
        wall_time: Seconds from set-up to the end of the run.
        event: The event that stopped the run, if one did.
        profiles: Each line probe's rows (one per point and output time) by column.
    """

    quantities: dict[str, np.ndarray]
    fields: Mapping[str, fem.Function]
    output_dir: Path | None
    steps: int
    rejected: int
    wall_time: float
    event: str | None = None
    profiles: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


class FinalFields(Mapping[str, fem.Function]):
    """Every field's function at the end of a run, by name. A derived field that nothing read
    during the run is evaluated at the final state when first looked up (an interpolation, on
    every rank: look fields up alike on all ranks), so a run pays only for what is used.

    Args:
        store: The run's fields.
        unused: Derived fields not evaluated since the last step.
    """

    def __init__(self, store: FieldStore, unused: list[Field]):
        self._store = store
        self._unused = set(unused)

    def __getitem__(self, name: str) -> fem.Function:
        target = self._store[name]
        if target in self._unused:
            self._unused.discard(target)
            target.refresh()
        return target.function

    def __iter__(self) -> Iterator[str]:
        return iter(self._store.names())

    def __len__(self) -> int:
        return len(self._store.names())


def run(
    simulation: Any,
    output_dir: str | Path | None,
    overwrite: bool = False,
    progress: bool = False,
    resume: Checkpoint | None = None,
    stops: StopRequests | None = None,
) -> Result:
    """Run (or, with ``resume``, continue) a simulation into ``output_dir``; see the module
    docstring.

    Raises:
        CaseError: Bad input, an output folder that cannot take the run (exit code 2).
        SolverError: A step failed for good, or the solution diverged (exit code 1).
        Interrupted: A signal stopped the run after a checkpoint (exit code 3).
        OutputFailed: Output failed mid-run (exit code 4).
    """
    started = time.perf_counter()
    simulation.build()  # bad input is reported before anything is written
    if output_dir is None:
        return Session(simulation, None, progress, stops, None).execute(started)
    inputs = input_files(simulation.loaded)
    folder = RunDirectory(output_dir, simulation.comm, overwrite, resume is not None, inputs)
    estimate = OutputEstimate.of(simulation)
    check_room(simulation.comm, folder.path, estimate, resume is not None)
    folder.write_case(simulation.loaded.resolved())
    folder.write_fields(
        {
            target.spec.name: {"units": target.spec.units, "rank": target.spec.rank}
            for target in simulation.store
            if not target.is_global
        }
    )
    restart = None
    if resume is not None:
        restart = {"checkpoint": str(resume.path), "time_s": resume.time}
        if resume.changes:
            restart["case_changes"] = resume.changes
    session = Session(simulation, folder, progress, stops, resume, estimate)
    if stops is not None:
        stops.abort = folder.stopped_at_once
    details = {"case_title": simulation.case.title}
    with folder.running(simulation.loaded.path, details, restart) as record:
        log.info("%s", simulation.mesh_data.summary())
        result = session.execute(started)
        plot_run(simulation.case.output.plot, folder.path, simulation.comm)
        record.update(steps=result.steps, rejected_steps=result.rejected)
        if result.event is not None:
            record.update(stopped_by_event=result.event)
        solves = (
            f"{result.steps} steps ({result.rejected} rejected)" if result.steps else "one solve"
        )
        log.info(
            "run completed: %s in %.2f s; results in %s", solves, result.wall_time, folder.path
        )
    return result


class Session:
    """One run's outputs and checkpoints around its time loop.

    Args:
        simulation: The simulation (built).
        folder: The run folder (None: results in memory only, no checkpoints).
        progress: Show a progress bar.
        stops: The signal handlers, when the run honours stop requests.
        resume: The checkpoint to continue from.
        estimate: What the run writes (to stop before a write the disk cannot take).
    """

    def __init__(
        self,
        simulation: Any,
        folder: RunDirectory | None,
        progress: bool,
        stops: StopRequests | None,
        resume: Checkpoint | None,
        estimate: OutputEstimate | None = None,
    ):
        self.sim, self.folder, self.progress = simulation, folder, progress
        self.stops, self.resume, self.estimate = stops, resume, estimate
        self.comm = simulation.comm
        self.spec = simulation.case.checkpoint
        self.writer: FieldWriter | None = None
        self.files: CheckpointFiles | None = None
        if folder is not None:
            self.files = CheckpointFiles(folder.path, self.comm, self.spec.keep, self._room)
            self.files.latest = resume.path if resume is not None else None
            if resume is not None:
                folder.checkpoint = {"folder": str(resume.path), "time_s": resume.time}

    def execute(self, started: float) -> Result:
        sim = self.sim
        folder = self.folder.path if self.folder else None
        sim.multiscale.open(folder)
        sim.compile()
        log.info("%s", sim.describe_solvers())
        settings = FieldOutput.of(sim.case.output)
        resuming = self.resume is not None
        if folder is not None and (settings.xdmf or settings.vtx):
            functions = [sim.store[name].function for name in sim._output_fields]
            self.writer = FieldWriter(folder, sim.mesh_data, functions, settings, resuming)
        self.table = QuantityTable(
            folder / "quantities.csv" if folder else None, sim.columns, self.comm, resuming
        )
        sim.probes.open(folder, resuming)
        sim._stage = None
        self.loop = TimeLoop(
            sim.case.time,
            sim.case.output,
            sim,
            sim.events,
            sim.stages,
            self.progress,
            self.comm,
            record=self.record,
            boundary=self.boundary,
            limits=sim.limits,
            tolerances=sim.tolerances,
        )
        self.registry = self._registry()
        try:
            if self.resume is not None:
                self.registry.restore(self.resume.parts)
            else:  # the initial values, before the solves of the start read them
                start = sim.case.time.start
                error = initial_state_error(list(sim.store.solved()), sim, start)
                if error is not None:
                    raise error
            self._since = (self.loop.position.steps, self.loop.position.t, time.monotonic())
            self.loop.run()
            stepped = sim.case.time.end is not None or sim.stages is not None  # a time loop
            if self.files is not None and self.spec.at_end and stepped:
                self.checkpoint()
        except BaseException as exc:
            self._close(folder, exc)
            raise
        self._close(folder, None)
        return self._result(folder, time.perf_counter() - started)

    def _close(self, folder: Path | None, failure: BaseException | None) -> None:
        """Close the run's files. A field file that cannot be finished fails the run, unless
        it is failing already: then the first error is the one reported, and this one logged.
        After a failed write (a full disk) the field files are left open: HDF5 and ADIOS2
        abort the process when they close a file whose writes failed."""
        self.table.close()
        self.sim.probes.close()
        try:
            if self.writer is not None and isinstance(failure, OutputFailed):
                self.writer.abandon()
            elif self.writer is not None:
                self.writer.close()
        except OutputFailed as exc:
            if failure is None:
                raise
            log.error("%s", exc)
        finally:
            self.sim.multiscale.close(folder)

    def _result(self, folder: Path | None, wall_time: float) -> Result:
        sim, table, loop = self.sim, self.table, self.loop
        current = set(sim._refresh_at_output)  # refreshed at the last output
        unused = []  # derived fields nothing has read: evaluated when the result's user asks
        for target in sim.store:
            if target in current:
                continue
            if target.unused:
                unused.append(target)
            else:
                target.refresh()  # the result's derived fields match its final state
        columns = np.array(table.rows, dtype=float).reshape(-1, len(table.columns))
        return Result(
            {name: columns[:, i] for i, name in enumerate(table.columns)},
            FinalFields(sim.store, unused),
            folder,
            loop.steps,
            loop.rejected,
            wall_time,
            loop.fired,
            sim.probes.profiles(),
        )

    def _registry(self) -> Registry:
        """What a checkpoint of this run holds (app/checkpoint.py)."""
        registry = Registry()
        registry.add("fields", self.sim.store)
        for group in self.sim.groups:
            registry.add(f"scheme.{group.name}", group.scheme)
        registry.add("protocol", StageSettings(self.sim.stages))
        registry.add("loop", self.loop)
        registry.add("quantities", self.table)
        registry.add("time_integrals", self.sim.case_quantities)
        registry.add("profiles", self.sim.probes)
        if self.sim.bound_stops.watched:
            registry.add("bound_stops", self.sim.bound_stops)
        if self.writer is not None:
            registry.add("field_files", self.writer)
        return registry

    # What the time loop calls ---------------------------------------------------------------
    def record(self, t: float, dt: float, report: SolveReport | None) -> None:
        """Write the output row (and the fields) of the current state at ``t``, once every
        value of it is known to be finite.

        Raises:
            Diverged: A value is not finite (nothing of this output is written).
            OutputFailed: The disk cannot take it, or a write failed.
        """
        sim = self.sim
        for target in sim._refresh_at_output:
            target.refresh()
        row = sim.row_start(t, dt, report)
        try:
            quantities = sim.evaluate_quantities()
        except SolverError:
            # the rates of the initial state (flows through fixed values) fail on a property
            # undefined there (sqrt(x - 1)): the case's error, found in the derived fields
            error = None if report is not None else derived_state_error(sim, t)
            if error is not None:
                raise error from None
            raise
        points, lines = sim.probes.read()
        problem = self._not_finite(quantities, points, lines, t)
        if problem and report is None:  # the state before any step: the case's initial values
            error = initial_state_error(self._checked_fields(), sim, t)
            if error is not None:
                raise error
        if problem:
            raise Diverged(f"the solution is no longer finite at t = {t:.6g} s: {problem}")
        where = f"the output at t = {t:g} s"
        if self.folder is not None and self.estimate is not None:
            room(self.comm, self.folder.path, self.estimate.per_output, where)
        known = quantities | dict(zip(sim.probes.columns, points, strict=True))
        defined = sim.case_quantities.evaluate(known, t)
        values = [*row, *quantities.values(), *points, *defined.values()]
        disk = self.folder.path if self.folder is not None else None
        collective(self.comm, lambda: self.table.append(values), where, folder=disk)
        collective(self.comm, lambda: sim.probes.write_profiles(t, lines), where, folder=disk)
        if self.writer is not None:
            cycle = sim._stage.cycle if sim._stage else None
            collective(
                self.comm,
                lambda: self.writer.write(t, cycle),
                where,
                (OSError, RuntimeError),
                folder=disk,
            )
        for observer in sim.output_observers:
            observer(t)

    def _not_finite(self, quantities: dict, points: list[float], lines: list, t: float) -> str:
        """The first value of an output that is not finite, or "" (collective): the solved
        fields first (the cause, located), then the written fields, the quantities and the
        probes. A ratio of zeros (a mean over an empty set) is undefined by design, not a
        divergence: it is written as nan.

        Raises:
            CaseError: One of the case's own quantities is not finite while every field is
                (its expression is undefined there, such as log(t - 60) at t = 0).
        """
        sim = self.sim
        checked = self._checked_fields()
        problem = non_finite([f.function for f in checked], [f.spec.name for f in checked])
        if problem:
            return problem
        for name, value in quantities.items():
            if math.isfinite(value) or name in sim._evaluator.undefined:  # 0/0 by design
                continue
            if sim.quantity_owners.get(name) == "output":
                raise self._undefined_quantity(name, value, t)
            return f"quantity '{name}' is {value}"
        return sim.probes.not_finite(points, lines)

    def _checked_fields(self) -> list[Field]:
        """The fields an output checks are finite: the solved ones, then those written."""
        sim = self.sim
        fields = {id(f): f for f in sim.store.solved()}
        if self.writer is not None:
            fields |= {id(f): f for f in (sim.store[name] for name in sim._output_fields)}
        return list(fields.values())

    def _undefined_quantity(self, column_name: str, value: float, t: float) -> CaseError:
        """The error of a case quantity (``[output.quantities]``) that is not finite."""
        specs = self.sim.case.output.quantities
        name = next(n for n, spec in specs.items() if column(n, spec.units) == column_name)
        spec = specs[name]
        given = f"int {spec.value} / int {spec.per}" if spec.per else spec.value
        return CaseError(
            f"output.quantities.{name}",
            f"{given!r} is {value} at t = {t:g} s, where every field is finite (its expression "
            "is undefined there)",
            "guard it where it is undefined, e.g. 'log(a) if a > 0 else 0'",
        )

    def boundary(self) -> None:
        """Before each step: a checkpoint when one is due, and a stop when a rank was asked
        for one (all ranks decide together)."""
        position = self.loop.position
        steps, t, wall = self._since
        received, wall_due = agreed(
            self.comm,
            (self.stops.received or 0) if self.stops is not None else 0,
            bool(self.spec.wall_interval) and time.monotonic() - wall >= self.spec.wall_interval,
        )
        due = bool(received or wall_due)
        if self.spec.steps and position.steps - steps >= self.spec.steps:
            due = True
        interval, start = self.spec.interval, self.sim.case.time.start
        if interval and math.floor((position.t - start) / interval) > math.floor(
            (t - start) / interval
        ):
            due = True
        fresh = position.steps > steps or self.files is None or self.files.latest is None
        if due and fresh and self.files is not None:
            self.checkpoint()
        if received:
            name = signal.Signals(received).name
            seen = "" if self.stops.received else " (received by another rank)"
            raise Interrupted(self._stopped(f"stopped by {name}{seen}"))

    def _stopped(self, why: str) -> str:
        position = self.loop.position
        text = f"{why} at t = {position.t:.6g} s (step {position.steps})"
        if self.files is not None and self.files.latest is not None:
            text += (
                f"; the checkpoint {self.files.latest} continues it: scalebridge restart "
                f"{self.folder.path}"
            )
        return text

    # Checkpoints ----------------------------------------------------------------------------
    def checkpoint(self) -> Path:
        """Write a checkpoint of the whole state now (collective)."""
        position = self.loop.position
        parts = self.registry.state()
        problem = _not_finite(parts)
        if self.comm.allreduce(bool(problem)):
            problem = next(p for p in self.comm.allgather(problem) if p)
            raise Diverged(
                f"the state at t = {position.t:.6g} s (step {position.steps}) is not finite "
                f"({problem}); no checkpoint is written"
            )
        try:
            path = self.files.write(parts, self._manifest())
        except OutputFailed as exc:
            raise OutputFailed(self._stopped(str(exc))) from None
        self._since = (position.steps, position.t, time.monotonic())
        self.folder.checkpointed(path, position.t)
        log.info("checkpoint %s at t = %.6g s (step %d)", path.name, position.t, position.steps)
        return path

    def _room(self, size: int) -> None:
        room(self.comm, self.folder.path, size, "the checkpoint")

    def _manifest(self) -> dict[str, Any]:
        sim, position = self.sim, self.loop.position
        msh = sim.mesh_data.mesh
        return {
            "time": position.t,
            "steps": position.steps,
            "done": position.done,
            "fired": position.fired,
            "ranks": self.comm.size,
            "scalebridge_version": __version__,
            "written": datetime.now(UTC).isoformat(timespec="seconds"),
            "case": sim.loaded.resolved(),
            "columns": sim.columns,
            "fields": field_signature(sim.store),
            "mesh": {
                "dim": msh.topology.dim,
                "cells": msh.topology.index_map(msh.topology.dim).size_global,
                "nodes": msh.geometry.index_map().size_global,
            },
        }


def field_signature(store: Any) -> dict[str, dict[str, Any]]:
    """What a checkpoint's fields are: space, shape, region and time levels of each solved
    field and internal variable (a restart refuses a run whose fields differ)."""
    return {
        field.spec.name: {
            "space": list(field.spec.space),
            "shape": list(field.function.ufl_shape),
            "region": field.spec.region,
            "levels": 1 + len(field.history),
            "values": space_values(field.space),
        }
        for field in [*store.solved(), *store.internals()]
    }


def _not_finite(parts: dict[str, Any], path: str = "") -> str:
    """The first array of a checkpoint's parts with a non-finite value on this rank, or ""."""
    for key, value in parts.items():
        where = f"{path}/{key}" if path else key
        if isinstance(value, dict):
            found = _not_finite(value, where)
            if found:
                return found
        elif isinstance(value, np.ndarray) and not np.isfinite(value).all():
            return f"{where} holds a non-finite value"
    return ""
