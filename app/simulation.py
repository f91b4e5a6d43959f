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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from dolfinx import fem
from mpi4py import MPI

from app.case import LoadedCase, load_case
from app.context import (
    FormContext,
    ParameterConstants,
    locate_value,
    parameter_owner,
    unknown,
    unknown_fixable,
)
from app.contracts import BadValue, Formula, Physics, Quantity, Value
from app.coupling import Coupler, build_groups, link
from app.domains import Domains, Evaluation
from app.errors import CaseError, did_you_mean, listing
from app.events import Stage, event_trigger, protocol_stages
from app.fields import FieldStore, assign
from app.forms import FormRules
from app.groups import Group, blame
from app.meshing import MeshData, build_mesh
from app.output import FieldOutput, FieldWriter, QuantityTable, RunDirectory, column
from app.probes import Probes
from app.quantities import Quantities
from app.registry import check_contracts
from app.scheduler import TimeLoop
from app.solvers import SolveReport, choose_preset
from app.timeint import ACCURACY, ORDERS, TimeScheme
from app.units import compatible, si_factor

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
        event: The event that stopped the run, if one did.
        profiles: Each line probe's rows (one per point and output time) by column.
    """

    quantities: dict[str, np.ndarray]
    fields: dict[str, fem.Function]
    output_dir: Path | None
    steps: int
    rejected: int
    wall_time: float
    event: str | None = None
    profiles: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


class Simulation:
    """One coupled simulation built from a case (see the module docstring for the order)."""

    def __init__(self, loaded: LoadedCase, comm: MPI.Comm = MPI.COMM_WORLD):
        self.loaded, self.comm = loaded, comm
        self.case, self.physics = loaded.case, loaded.physics
        self.graph = check_contracts(self.physics, loaded.parameters)
        self.parameter_constants = ParameterConstants(loaded.parameters)
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
        time_spec = self.case.time
        # Error control extrapolates the history with a polynomial of the scheme's accuracy.
        depth = ORDERS[time_spec.scheme]
        if time_spec.adaptive and time_spec.adaptive.rtol:
            depth = max(depth, ACCURACY[time_spec.scheme] + 1)
        self.domains = Domains(self.mesh_data)
        self.store = FieldStore(self.domains)
        with self._located():
            for instance, plugin in self.physics.items():
                self._check_domain(instance, plugin)
                for spec in plugin.provides:
                    # a global value (a real element) is one number, readable everywhere
                    placed = plugin.domain is not None and spec.space[0] != "Real"
                    if spec.region is None and placed:
                        spec = replace(spec, region=plugin.domain)
                    places = [*self.mesh_data.regions, *self.mesh_data.boundaries]
                    if spec.region is not None and spec.region not in places:
                        error = unknown("region or boundary", spec.region, places)
                        error.instance = instance
                        raise error
                    if spec.space[0] != "Quadrature":  # its group creates it, at its degree
                        self.store.add(spec, instance, 0 if spec.derived else depth)
        self._static: set[Any] = set()
        rules = FormRules(self.case.solver.quadrature_degree, self._controlled())
        with self._located():
            self.groups = build_groups(
                self.case.coupling,
                self.physics,
                self.graph,
                self.store,
                lambda: TimeScheme(self.mesh_data.mesh, time_spec.scheme, time_spec.start),
                self.mesh_data,
                self._static,
                rules,
                self.parameter_constants,
            )
            lagged = link(self.groups, self.graph, self.store)
            self.coupler = Coupler(self.groups, self.case.coupling, lagged, self.comm)
            self._initial = self._collect("initial")
            self.quantities, self.quantity_owners = self._columns(
                self._finished(self._collect("quantities"))
            )
        self._output_fields = self._select_output_fields()
        self.probes = Probes(self.case.output.probes, self.store, self._output_fields)
        self._check_probe_columns()
        self._build_events()

    def _controlled(self) -> frozenset[int]:
        """Identities of the parameter values the protocol sets (they are not fixed, even when
        they start at 0). A target that does not resolve is reported with the protocol."""
        protocol, found = self.case.protocol, set()
        for control in protocol.controls.values() if protocol else ():
            parts = control.target.split(".")
            if len(parts) >= 3 and parts[0] == "physics" and parts[1] in self.physics:
                owner, name = parameter_owner(self.physics[parts[1]].params, ".".join(parts[2:]))
                if owner is not None:
                    found.add(id(getattr(owner, name)))
        return frozenset(found)

    def _finished(self, tables: dict[str, dict[str, Quantity]]) -> dict[str, dict[str, Quantity]]:
        """Integral quantities as their instance's group integrates: at its quadrature degree,
        without terms that are zero throughout the run (so balances close)."""
        group_of = {instance: group for group in self.groups for instance in group.physics}
        return {
            instance: {
                name: quantity
                if quantity.form is None
                else replace(quantity, form=group_of[instance].finish(quantity.form))
                for name, quantity in table.items()
            }
            for instance, table in tables.items()
        }

    def _check_domain(self, instance: str, plugin: Physics) -> None:
        dim = self.mesh_data.mesh.topology.dim
        if dim not in plugin.dimensions:
            raise CaseError(
                "mesh",
                f"plug-in '{plugin.name}' (physics.{instance}) has no {dim}D formulation; it "
                f"supports {listing(f'{d}D' for d in plugin.dimensions)} meshes",
                "use a mesh of a supported dimension",
            )
        domain, regions = plugin.domain, list(self.mesh_data.regions)
        if domain is None or domain in regions:
            return
        where = f"physics.{instance}.domain"
        if domain in self.mesh_data.boundaries:
            raise CaseError(
                where,
                f"'{domain}' is a boundary; an instance is placed on a region (fields on a "
                "boundary are declared by the plug-in: FieldSpec(region=boundary))",
                f"use a region: {listing(regions)}",
            )
        raise CaseError(
            where,
            f"unknown region '{domain}'{did_you_mean(domain, regions)}",
            f"use one of the mesh's regions: {listing(regions)}",
        )

    def _build_events(self) -> None:
        """Triggers of the case's events and the resolved protocol stages."""
        units = {name: quantity.units for name, quantity in self.quantities.items()}
        units |= self.probes.units()
        span = (self.case.time.end or 0.0) - self.case.time.start
        tolerance = 1e-6 * span if span > 0 else 1e-6
        self.events = [
            event_trigger(spec, units, tolerance, f"events[{index}]")
            for index, spec in enumerate(self.case.events)
        ]
        protocol = self.case.protocol
        self.stages = None
        if protocol is not None:
            self.stages = protocol_stages(
                protocol, self._constant_at, units, tolerance, self._nominal_capacity()
            )

    def _nominal_capacity(self) -> float | None:
        """The capacity [A h] C-rates refer to: the protocol's, else the parameter set's
        nominal capacity ``Q_nom``."""
        protocol, table = self.case.protocol, self.loaded.parameters
        nominal = table.constants.get("Q_nom") if table is not None else None
        if protocol.capacity is not None or nominal is None or not compatible(nominal.units, "C"):
            return protocol.capacity
        return nominal.value * si_factor(nominal.units) / 3600.0

    def _constant_at(self, path: str) -> tuple[Any, str]:
        """The fem.Constant behind the constant parameter at a case path, and its unit."""
        found = self._find_constant(path)
        if isinstance(found, tuple) and found[1] is None:
            found = f"target {path!r} is a constant without declared units"
        if isinstance(found, str):
            problem, _, fix = found.partition(". Fix: ")
            raise CaseError("protocol.controls", problem, fix or None)
        return found

    def _find_constant(self, path: str) -> tuple[Any, str | None] | str:
        """The fem.Constant behind the constant parameter at a case path and its unit (None
        if the parameter declares none), or why there is none."""
        parts = path.split(".")
        if parts[0] == "parameters":
            return self._parameter_at(path)
        if len(parts) < 3 or parts[0] != "physics" or parts[1] not in self.physics:
            return f"target {path!r} is not a parameter path 'physics.<instance>.<name>'"
        plugin, dotted = self.physics[parts[1]], ".".join(parts[2:])
        owner, name = parameter_owner(plugin.params, dotted)
        value = getattr(owner, name, None) if owner is not None else None
        if not isinstance(value, Value):
            head = value.expression.head if isinstance(value, Formula) else None
            table = self.loaded.parameters
            named = table is not None and head in table.constants
            return (
                f"target {path!r} is not a constant parameter (an expression, a table by region "
                "or a plain setting cannot be controlled)"
                + (
                    f". Fix: it is the set's constant {head}: target 'parameters.{head}'"
                    if named
                    else ""
                )
            )
        ctx = self.context(parts[1])
        constant = ctx.constant_of(value)
        if constant is None:
            return f"target {path!r} is not used by '{parts[1]}'"
        return ctx.control_of(value, constant), type(owner).units_of(name)

    def _parameter_at(self, path: str) -> tuple[Any, str] | str:
        """A constant of the parameter set as a control target (``parameters.T_amb``), or why
        there is none."""
        table, name = self.loaded.parameters, path.partition(".")[2]
        constants = table.constants if table else {}
        if name not in constants:
            return (
                f"target {path!r} is not a constant of the parameter set"
                + (did_you_mean(name, list(constants)) if table else " (the case names no set)")
                + ". Fix: give parameters.<name> of one of the set's constants"
            )
        return self.parameter_constants.control(name), constants[name].units

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

    def _columns(
        self, quantities: dict[str, dict[str, Quantity]]
    ) -> tuple[dict[str, Quantity], dict[str, str]]:
        """Quantities by CSV column, and the instance each column belongs to; a second instance
        of a plug-in prefixes its instance name."""
        columns: dict[str, Quantity] = {}
        owners: dict[str, str] = {}
        for instance, table in quantities.items():
            named = "" if instance == self.physics[instance].name else f"{instance}_"
            for name, quantity in table.items():
                prefix = named if quantity.scope == "instance" else ""
                if (
                    quantity.boundary is not None
                    and quantity.boundary not in self.mesh_data.fixable
                ):
                    error = unknown_fixable(quantity.boundary, self.mesh_data)
                    error.instance = instance
                    raise error
                key = prefix + column(name, quantity.units)
                if key in columns:
                    shared = quantity.scope == "case" or columns[key].scope == "case"
                    raise CaseError(
                        f"physics.{instance}",
                        f"two quantities write the CSV column '{key}'"
                        + (f" (with physics.{owners[key]})" if owners[key] != instance else ""),
                        "a case has one of each quantity of the whole case (a cell's terminal)"
                        if shared
                        else "rename an instance or a species so that the column names differ",
                    )
                columns[key] = quantity
                owners[key] = instance
        return columns, owners

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

    def _check_probe_columns(self) -> None:
        taken = [*FIXED_COLUMNS, *self._extra_columns(), *self.quantities]
        for name, readings in self.probes.points.items():
            for reading in readings:
                clash = next((c for c in reading.names if c in taken), None)
                if clash is not None:
                    raise CaseError(
                        f"output.probes.{name}",
                        f"the probe's column '{clash}' is already a quantities.csv column",
                        "rename the probe",
                    )
                taken += reading.names

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
        self._set_initial_values()
        derived = {name: value for group in self.groups for name, value in group.derived.items()}
        for name, value in derived.items():
            target = self.store[name]
            target.evaluation = Evaluation(value, target.function, self.domains)
        residual_forms = {
            field.spec.name: block
            for group in self.groups
            if group.system is not None
            for field, block in zip(group.unknowns, group.system.residuals, strict=True)
        }
        self._evaluator = Quantities(
            self.quantities,
            self.store,
            self._residuals_now,
            residual_forms,
            self.mesh_data,
            lambda: self.groups[0].scheme.time if self.groups else self.case.time.start,
        )
        # Consumers read derived fields as expressions; the stored values are evaluated only
        # at output times, when they are written or enter a quantity.
        derived_fields = [self.store[name] for name in derived]
        read = self._evaluator.coefficients()
        probed = self.probes.fields()
        self._refresh_at_output = [
            target
            for target in derived_fields
            if (self.case.output.xdmf and target.spec.name in self._output_fields)
            or target.function in read
            or target.spec.name in probed
        ]
        self._compiled = True

    def _set_initial_values(self) -> None:
        # Solved fields first: an internal variable may start from them (a peak from the
        # initial temperature).
        initial = [
            (name, value) for values in self._initial.values() for name, value in values.items()
        ]
        for name, value in sorted(
            initial, key=lambda item: self.store[item[0]].internal is not None
        ):
            target = self.store[name]
            assign(target.function, value, self.domains)
            for past in target.history:
                past.x.array[:] = target.function.x.array

    # Another run of the compiled simulation ------------------------------------------------
    def reuse(self, loaded: LoadedCase) -> bool:
        """Take over ``loaded`` if it differs from this case only in constant parameters (new
        fem.Constant values, nothing rebuilt) and go back to the initial state; False, changing
        nothing, for any other difference. Studies run such members this way."""
        settings = []
        for path, value in self.loaded.differences(loaded).items():
            found = self._find_constant(path)
            if isinstance(found, str):
                return False
            settings.append((found[0], value))
        for constant, value in settings:
            constant.value = value
        self.loaded = loaded  # what the run folder records (case.toml)
        self.reset()
        return True

    def reset(self) -> None:
        """Back to the state a fresh build starts from: start time, no step history, every
        field zero and then its initial value, boundary values re-evaluated."""
        self.compile()
        for target in self.store:
            for function in (target.function, *target.history):
                function.x.array[:] = 0.0
        for group in self.groups:
            group.reset()
            for ctx in group.contexts.values():
                ctx.reset_modes()
        self._set_initial_values()

    @property
    def columns(self) -> list[str]:
        """The quantities.csv columns a run writes, in order (after :meth:`build`)."""
        self.build()
        return [*FIXED_COLUMNS, *self._extra_columns(), *self.quantities, *self.probes.columns]

    def _residuals_now(self, names: set[str]) -> dict[str, Any]:
        """The residual vectors of the named solved fields' rows at the current state."""
        vectors = {}
        for group in self.groups:
            mine = names & {field.spec.name for field in group.unknowns}
            if mine:
                vectors |= group.residuals_now(mine)
        return vectors

    # 7: run (the time loop's stepper interface) -------------------------------------------
    def initialise(self) -> None:
        """Solve the fields without a time derivative consistently with the initial state of
        the others (before the first output row and the first event check)."""
        self.coupler.initialise()
        self._evaluator.start()

    def step(self, start: float, dt: float) -> SolveReport:
        """Solve the step from ``start``; on failure the state is back at ``start``."""
        return self.coupler.step(start, dt)

    def commit(self) -> None:
        self.coupler.commit()
        self._evaluator.commit()

    def rollback(self) -> None:
        self.coupler.rollback()

    def restart(self) -> None:
        """After a jump of the forcing (a protocol step begins, a breakpoint): multistep
        schemes start again, and the fields without a time derivative jump with the forcing
        (a held voltage sets the current at once), so they are solved again first."""
        self.coupler.restart()
        self.coupler.initialise(strict=False)
        self._evaluator.restart()

    def error(self) -> float | None:
        adaptive = self.case.time.adaptive
        return self.coupler.error(adaptive.rtol, adaptive.atol)

    def change(self) -> float:
        return self.coupler.change()

    def values(self, columns: list[str]) -> dict[str, float]:
        """The named quantities.csv columns now (quantities and point probes), for events."""
        probed = [name for name in columns if name in self.probes.units()]
        if probed:  # derived fields are otherwise refreshed at output times only
            for target in self._refresh_at_output:
                if target.spec.name in self.probes.fields():
                    target.refresh()
        quantities = [name for name in columns if name not in probed]
        return self._evaluator.evaluate(quantities) | self.probes.values(probed)

    def apply(self, stage: Stage) -> None:
        """Enter a protocol stage: set its controls."""
        for constant, value in stage.settings:
            constant.value = value
        self._stage = stage
        log.info("protocol step %d (cycle %d): %s", stage.index, stage.cycle, stage.text)

    def evaluate_quantities(self) -> dict[str, float]:
        """Every quantity at the current state."""
        return self._evaluator.evaluate()

    def quantity_scales(self) -> dict[str, float]:
        """The magnitude of the terms each quantity is made of, at the current state: what a
        quantity that is zero by cancellation is round-off of (see app.magnitudes)."""
        return self._evaluator.scales()

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
        folder.write_fields(
            {
                target.spec.name: {"units": target.spec.units, "rank": target.spec.rank}
                for target in self.store
                if not target.is_global
            }
        )
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
        self._writer = None
        settings = FieldOutput.of(self.case.output)
        if folder is not None and (settings.xdmf or settings.vtx):
            self._writer = FieldWriter(folder.path, self.mesh_data, functions, settings)
        self._table = QuantityTable(
            folder.path / "quantities.csv" if folder else None,
            self.columns,
            self.comm,
        )
        self.probes.open(folder.path if folder else None)
        self._stage = None
        loop = TimeLoop(
            self.case.time,
            self.case.output,
            self,
            self.events,
            self.stages,
            progress,
            self.comm,
        )
        try:
            loop.run()
        finally:
            self._table.close()
            self.probes.close()
            if self._writer is not None:
                self._writer.close()
        current = set(self._refresh_at_output)  # refreshed at the last output
        for target in self.store:
            if target not in current:
                target.refresh()  # the result's derived fields match its final state
        table = self._table
        columns = np.array(table.rows, dtype=float).reshape(-1, len(table.columns))
        return Result(
            {name: columns[:, i] for i, name in enumerate(table.columns)},
            {target.spec.name: target.function for target in self.store},
            folder.path if folder else None,
            loop.steps,
            loop.rejected,
            time.perf_counter() - started,
            loop.fired,
            self.probes.profiles(),
        )

    def _extra_columns(self) -> list[str]:
        extra = []
        if len(self.groups) > 1 and self.case.coupling.method == "fixed_point":
            extra.append("coupling_iterations")
        if self.case.protocol is not None:
            extra += ["protocol_step", "cycle"]
        return extra

    def record(self, t: float, dt: float, report: SolveReport | None) -> None:
        """Write an output row (and the fields) for the current state."""
        for target in self._refresh_at_output:
            target.refresh()
        row = [t, dt, *((report.iterations, report.linear_iterations) if report else (0, 0))]
        if len(self.groups) > 1 and self.case.coupling.method == "fixed_point":
            row.append(self.coupler.iterations if report else 0)
        if self.stages is not None:
            row += [self._stage.index, self._stage.cycle] if self._stage else [-1, -1]
        quantities = self._evaluator.evaluate().values()
        self._table.append([*row, *quantities, *self.probes.read(t)])
        if self._writer is not None:
            self._writer.write(t, self._stage.cycle if self._stage else None)

    # Reports -------------------------------------------------------------------------------
    def describe_solvers(self) -> str:
        lines = []
        for group in self.groups:
            system = group.system
            if system is None:
                lines.append(f"group '{group.name}': derived fields only, nothing to solve")
                continue
            preset = choose_preset(self.case.solver.preset, system)
            kind = "linear, operator reused across steps" if system.linear else "nonlinear, Newton"
            unknowns = ", ".join(f.spec.name for f in group.unknowns)
            lines.append(
                f"group '{group.name}': {unknowns} ({system.size} dofs; {kind}; solver {preset}; "
                f"quadrature degree {group.quadrature_degree})"
            )
        return "\n".join(lines)
