"""The simulation: a case turned into meshes, fields, forms, solvers and a time loop.

Set-up follows one order, each stage depending only on the ones before it:

1. load and validate the case; instantiate the plug-ins (:func:`app.case.load_case`);
2. check the contract graph (before any mesh is built or anything is solved);
3. build the mesh with its named regions and boundaries;
4. create the time scheme and the field store (one space per field);
5. build each group's forms, boundary conditions, derived fields and quantities in UFL
   (``scalebridge check`` stops here);
6. compile: JIT the forms, create the solvers, set initial values;
7. run the time loop, writing output at the requested times.

Example::

    sim = Simulation.from_case("cases/two_layer_wall.toml", overrides={"mesh.size": 0.005})
    result = sim.run("results/wall")
    result.quantities["heat_flow_right_W_per_m"][-1]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from dolfinx import fem
from mpi4py import MPI

from app.case import LoadedCase, load_case
from app.context import FormContext, locate_value, unknown
from app.contracts import BadValue, Quantity
from app.errors import CaseError, did_you_mean, listing
from app.fields import FieldStore, interpolate
from app.groups import Group, blame
from app.meshing import MeshData, build_mesh
from app.output import FieldWriter, QuantityTable, RunDirectory, column
from app.quantities import Quantities
from app.registry import check_contracts
from app.scheduler import TimeLoop
from app.solvers import SolveReport, choose_preset
from app.timeint import TimeScheme

log = logging.getLogger("scalebridge")

FIXED_COLUMNS = ["time_s", "dt_s", "newton_iterations", "linear_iterations"]


@dataclass
class Result:
    """What a run returns.

    Attributes:
        quantities: Each quantities.csv column as an array (one entry per output time).
        fields: Final value of every field.
        output_dir: The run folder (None for a run without output).
        steps: Accepted time steps.
        rejected: Rejected (retried) time steps.
        wall_time: Seconds from set-up to the end of the run.
    """

    quantities: dict[str, np.ndarray]
    fields: dict[str, fem.Function]
    output_dir: Path | None
    steps: int
    rejected: int
    wall_time: float


@dataclass
class _Output:
    """The compiled outputs of one instance: quantities by column."""

    integrals: dict[str, fem.Form] = field(default_factory=dict)
    extremes: dict[str, tuple[str, str]] = field(default_factory=dict)


class Simulation:
    """One coupled simulation built from a case (see the module docstring for the order)."""

    def __init__(self, loaded: LoadedCase, comm: MPI.Comm = MPI.COMM_WORLD):
        self.loaded, self.comm = loaded, comm
        self.case, self.physics = loaded.case, loaded.physics
        self.graph = check_contracts(self.physics)
        self.mesh_data: MeshData | None = None
        self.groups: list[Group] = []
        self._compiled = False

    @classmethod
    def from_case(
        cls,
        source: str | Path | Mapping[str, Any],
        overrides: Mapping[str, Any] | Sequence[str] | None = None,
        base_dir: str | Path | None = None,
        comm: MPI.Comm = MPI.COMM_WORLD,
    ) -> Simulation:
        """Load a case file (or dict), apply overrides and check its contracts."""
        return cls(load_case(source, overrides, base_dir), comm)

    # 3-5: UFL-level set-up ----------------------------------------------------------------
    def build(self) -> None:
        """Mesh, fields, forms, boundary conditions and outputs, without compiling anything."""
        if self.mesh_data is not None:
            return
        self.mesh_data = build_mesh(self.case.mesh, self.comm, self.loaded.base_dir)
        self.scheme = TimeScheme(self.mesh_data.mesh, self.case.time.scheme, self.case.time.start)
        self.store = FieldStore(self.mesh_data.mesh)
        for instance, plugin in self.physics.items():
            for spec in plugin.provides:
                if spec.region is not None:
                    raise CaseError(
                        f"physics.{instance}",
                        f"field '{spec.name}' is restricted to region '{spec.region}'; fields on "
                        "regions (submeshes) are not supported by this version",
                    )
                self.store.add(spec, instance, 0 if spec.derived else self.scheme.order)
        self._static: set[Any] = set()
        with self._located():
            self.groups = [
                Group(
                    "main",
                    self.physics,
                    self.graph,
                    self.store,
                    self.scheme,
                    self.mesh_data,
                    self._static,
                )
            ]
            self._initial = self._collect("initial")
            self.quantities = self._columns(self._collect("quantities"))
        self._output_fields = self._select_output_fields()

    def _collect(self, method: str) -> dict[str, dict[str, Any]]:
        """Call a plug-in method on every instance, inside its context."""
        results = {}
        for instance, plugin in self.physics.items():
            with blame(instance):
                results[instance] = getattr(plugin, method)(self.context(instance))
        return results

    def context(self, instance: str) -> FormContext:
        """The context of an instance (for tests and post-processing through the API)."""
        return next(g.contexts[instance] for g in self.groups if instance in g.contexts)

    def _columns(self, quantities: dict[str, dict[str, Quantity]]) -> dict[str, Quantity]:
        """Quantities by CSV column; a second instance of a plug-in prefixes its instance name."""
        columns: dict[str, Quantity] = {}
        for instance, table in quantities.items():
            prefix = "" if instance == self.physics[instance].name else f"{instance}_"
            for name, quantity in table.items():
                if (
                    quantity.boundary is not None
                    and quantity.boundary not in self.mesh_data.boundaries
                ):
                    error = unknown("boundary", quantity.boundary, list(self.mesh_data.boundaries))
                    error.instance = instance
                    raise error
                columns[prefix + column(name, quantity.units)] = quantity
        return columns

    def _select_output_fields(self) -> list[str]:
        wanted = self.case.output.fields
        if wanted is None:  # global values (real elements) are quantities, not field output
            return [field.spec.name for field in self.store if not field.is_global]
        for index, name in enumerate(wanted):
            if name not in self.store:
                raise CaseError(
                    f"output.fields[{index}]",
                    f"unknown field '{name}'{did_you_mean(name, self.store.names())}; "
                    f"fields: {listing(self.store.names())}",
                )
        return list(wanted)

    @contextmanager
    def _located(self) -> Iterator[None]:
        """Turn a lookup error of the case (bad boundary/region/name) into a CaseError."""
        try:
            yield
        except BadValue as exc:
            raise self._case_error(exc) from None

    def _case_error(self, exc: BadValue) -> CaseError:
        instance = exc.instance
        if instance is None:
            return CaseError("physics", exc.message, exc.fix)
        where = f"physics.{instance}"
        path = None if exc.value is None else locate_value(self.physics[instance].params, exc.value)
        where = f"{where}.{path}" if path else self.loaded.locate(exc.token, where)
        return CaseError(where, exc.message, exc.fix)

    # 6: compile ----------------------------------------------------------------------------
    def compile(self) -> None:
        """JIT-compile forms and expressions, create solvers, set initial values."""
        self.build()
        if self._compiled:
            return
        for group in self.groups:
            group.compile(self.case.solver)
        for values in self._initial.values():
            for name, value in values.items():
                target = self.store[name]
                interpolate(target.function, value)
                for past in target.history:
                    past.x.array[:] = target.function.x.array
        derived = {name: value for group in self.groups for name, value in group.derived.items()}
        for name, value in derived.items():
            target = self.store[name]
            target.expression = fem.Expression(value, target.space.element.interpolation_points)
        residuals = {
            field.spec.name: block
            for group in self.groups
            for field, block in zip(group.unknowns, group.system.residuals, strict=True)
        }
        self._evaluator = Quantities(self.quantities, self.store, residuals, self.mesh_data)
        # Derived fields are evaluated only where they are read: every step when a plug-in of
        # another group consumes them, at output times when they are written or enter a quantity.
        derived_fields = [self.store[name] for name in derived]
        self._refresh = [f for f in derived_fields if f.spec.name in self.graph.consumers]
        read = self._evaluator.coefficients()
        self._refresh_at_output = [
            target
            for target in derived_fields
            if (self.case.output.xdmf and target.spec.name in self._output_fields)
            or target.function in read
        ]
        for target in self._refresh:
            target.refresh()
        self._compiled = True

    # 7: run --------------------------------------------------------------------------------
    def step(self, t: float, dt: float) -> SolveReport:
        """Solve the step ending at time ``t``; the state is unchanged if it fails."""
        self.scheme.prepare(t, dt)
        reports = [group.solve() for group in self.groups]
        return SolveReport(
            all(r.converged for r in reports),
            sum(r.iterations for r in reports),
            sum(r.linear_iterations for r in reports),
            "; ".join(r.reason for r in reports if not r.converged),
        )

    def _accept(self, t: float, dt: float) -> None:
        for target in self.store:
            target.push_history()
        self.scheme.accept(dt)
        for target in self._refresh:
            target.refresh()

    def evaluate_quantities(self) -> dict[str, float]:
        """Every quantity at the current state."""
        return self._evaluator.evaluate()

    def run(
        self,
        output_dir: str | Path | None = None,
        overwrite: bool = False,
        progress: bool = False,
    ) -> Result:
        """Run the case to its end time.

        Args:
            output_dir: Run folder to write; None keeps results in memory only.
            overwrite: Replace an existing run folder.
            progress: Show a progress bar on rank 0 (after a few seconds).

        Raises:
            CaseError: Bad input (found while building).
            SolverError: A step failed and no retry was possible.
        """
        started = time.perf_counter()
        self.build()  # bad input is reported before anything is written
        folder = RunDirectory(output_dir, self.comm, overwrite) if output_dir else None
        if folder is None:
            return self._run(None, started, progress)
        folder.write_case(self.loaded.resolved())
        with folder.running(self.loaded.path, {"case_title": self.case.title}) as record:
            log.info("%s", self.mesh_data.summary())
            result = self._run(folder, started, progress)
            record.update(steps=result.steps, rejected_steps=result.rejected)
            log.info(
                "run completed: %d steps (%d rejected) in %.2f s; results in %s",
                result.steps,
                result.rejected,
                result.wall_time,
                folder.path,
            )
        return result

    def _run(self, folder: RunDirectory | None, started: float, progress: bool) -> Result:
        self.compile()
        log.info("%s", self.describe_solvers())
        functions = [self.store[name].function for name in self._output_fields]
        writer = None
        if folder is not None and self.case.output.xdmf:
            writer = FieldWriter(folder.path / "fields.xdmf", self.mesh_data, functions)
        table = QuantityTable(
            folder.path / "quantities.csv" if folder else None,
            FIXED_COLUMNS + list(self.quantities),
            self.comm,
        )

        def record(t: float, dt: float, report: SolveReport | None) -> None:
            for target in self._refresh_at_output:
                target.refresh()
            iterations = (report.iterations, report.linear_iterations) if report else (0, 0)
            values = self.evaluate_quantities()
            table.append([t, dt, *iterations, *values.values()])
            log.debug("output at t = %.6g s", t)
            if writer is not None:
                writer.write(t)

        loop = TimeLoop(
            self.case.time,
            self.case.output,
            self.step,
            self._accept,
            self.scheme.restart,
            record,
            progress,
            self.comm,
        )
        try:
            loop.run()
        finally:
            table.close()
            if writer is not None:
                writer.close()
        current = {*self._refresh, *self._refresh_at_output}  # refreshed after the last step
        for target in self.store:
            if target not in current:
                target.refresh()  # the result's derived fields match its final state
        columns = np.array(table.rows, dtype=float).reshape(-1, len(table.columns))
        return Result(
            {name: columns[:, i] for i, name in enumerate(table.columns)},
            {target.spec.name: target.function for target in self.store},
            folder.path if folder else None,
            loop.steps,
            loop.rejected,
            time.perf_counter() - started,
        )

    # Reports -------------------------------------------------------------------------------
    def describe_solvers(self) -> str:
        lines = []
        for group in self.groups:
            system = group.system
            preset = choose_preset(self.case.solver.preset, system)
            kind = "linear, operator reused across steps" if system.linear else "nonlinear, Newton"
            unknowns = ", ".join(f.spec.name for f in group.unknowns)
            lines.append(
                f"group '{group.name}': {unknowns} ({system.size} dofs; {kind}; solver {preset})"
            )
        return "\n".join(lines)
