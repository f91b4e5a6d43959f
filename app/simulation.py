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

import functools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from mpi4py import MPI

from app import output_quantities, runner
from app.bound_stops import BoundStops
from app.case import LoadedCase, load_case
from app.checkpoint import Checkpoint
from app.context import FormContext, locate_value
from app.contracts import BadValue, Quantity
from app.control_targets import ControlTargets
from app.coupling import Coupler, build_groups, link
from app.domains import Domains, Evaluation
from app.errors import CaseError, did_you_mean, listing
from app.events import Stage, event_trigger, protocol_stages, step_limits
from app.extensions import Extensions
from app.fields import FieldStore, assign
from app.forms import FormRules
from app.groups import Group, blame
from app.meshing import MeshData, build_mesh
from app.multiscale.manager import Multiscale
from app.output import column
from app.parameter_constants import ParameterConstants
from app.placement import check_placement, create_fields, create_traces
from app.probes import Probes
from app.quantities import Quantities, add_case_columns, quantity_columns
from app.registry import check_contracts
from app.run_plot import check_plot
from app.runner import Result
from app.safeguards import StopRequests
from app.solve_system import SolveReport, describe_groups
from app.solver_options import GEOMETRIC_MULTIGRID
from app.time_spec import warn_dropped_time_derivatives
from app.timeint import ACCURACY, ORDERS, PREDICTOR_LEVELS, StartValues, TimeScheme
from app.traces import initial_guess

log = logging.getLogger("scalebridge")

FIXED_COLUMNS = ["time_s", "dt_s", "newton_iterations", "linear_iterations"]


class Simulation:
    """One coupled simulation built from a case (see the module docstring for the order)."""

    def __init__(self, loaded: LoadedCase, comm: MPI.Comm = MPI.COMM_WORLD):
        self.loaded, self.comm = loaded, comm
        self.case, self.physics = loaded.case, loaded.physics
        self.graph = check_contracts(self.physics, loaded.parameters)
        self.start_values = StartValues()  # of the constants a protocol changes (CN reads them)
        self.parameter_constants = ParameterConstants(loaded.parameters, self.start_values)
        self.targets = ControlTargets(loaded, self.context, self.parameter_constants)
        self.mesh_data: MeshData | None = None
        self.groups: list[Group] = []
        self._compiled = False
        self._stage: Stage | None = None  # the protocol step being run (its ramps move)
        # called with t after each output row is written (the conformance kit, tests)
        self.output_observers: list[Callable[[float], None]] = []

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
        multigrid = self.case.solver.preset in GEOMETRIC_MULTIGRID
        self.mesh_data = build_mesh(self.case.mesh, self.comm, self.loaded.base_dir, multigrid)
        time_spec = self.case.time
        # Error control extrapolates the history with a polynomial of the scheme's accuracy.
        depth = ORDERS[time_spec.scheme]
        if time_spec.adaptive and time_spec.adaptive.rtol:
            depth = max(depth, ACCURACY[time_spec.scheme] + 1)
        predictor = self.case.solver.newton.predictor
        if predictor != "none" and depth > 0:  # extrapolation reads that many accepted levels
            depth = max(depth, PREDICTOR_LEVELS[predictor])
        self.domains = Domains(self.mesh_data)
        self.store = FieldStore(self.domains)
        with self._located():
            for instance, plugin in self.physics.items():
                check_placement(instance, plugin, self.domains)
            create_fields(self.physics, self.store, depth)
            create_traces(self.physics, self.graph, self.store, depth)
        self.multiscale = Multiscale.create(
            self.case, self.physics, self.store, self.loaded.base_dir, self.comm
        )
        self._static: set[Any] = set()
        rules = FormRules(
            self.case.solver.quadrature_degree,
            self.targets.controlled(),
            start_values=self.start_values,
            extend=Extensions(self.domains, self.store.extensions()),
        )
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
            warn_dropped_time_derivatives(time_spec, self._collect)
            self.quantities, self.quantity_owners = quantity_columns(
                self._finished(self._collect("quantities")),
                self.physics,
                {instance: self.context(instance).mesh_data for instance in self.physics},
            )
            degree = max((group.quadrature_degree or 0 for group in self.groups), default=2)
            t = self.groups[0].scheme.t
            readable = output_quantities.namespace(self.store, t)
            of_fields, of_columns = output_quantities.of_fields(
                self.case.output.quantities, readable
            )
            own = output_quantities.build(of_fields, self.store, self.mesh_data, t, degree)
            add_case_columns(self.quantities, self.quantity_owners, own)
        self._output_fields = self._select_output_fields()
        self.probes = Probes(self.case.output.probes, self.store, self._output_fields)
        self.probes.check_columns([*FIXED_COLUMNS, *self._extra_columns(), *self.quantities])
        units = {name: quantity.units for name, quantity in self.quantities.items()}
        self.case_quantities = output_quantities.ColumnQuantities(
            of_columns,
            units | self.probes.units(),
            self.loaded.parameters,
            column,
            list(readable),
        )
        self._build_events()
        written = self._output_fields if self.case.output.xdmf else []
        check_plot(self.case.output.plot, self.columns, written)

    def _finished(self, tables: dict[str, dict[str, Quantity]]) -> dict[str, dict[str, Quantity]]:
        """Integral quantities as their instance's group integrates: at its quadrature degree,
        without terms that are zero throughout the run (so balances close)."""
        group_of = {instance: group for group in self.groups for instance in group.physics}

        def finished(quantity: Quantity, group: Group) -> Quantity:
            if quantity.form is None:
                return quantity
            per = None if quantity.per is None else group.finish(quantity.per)
            return replace(quantity, form=group.finish(quantity.form), per=per)

        return {
            instance: {name: finished(q, group_of[instance]) for name, q in table.items()}
            for instance, table in tables.items()
        }

    def _build_events(self) -> None:
        """Triggers of the case's events and the resolved protocol stages."""
        units = {name: quantity.units for name, quantity in self.quantities.items()}
        units |= self.probes.units() | self.case_quantities.units
        span = (self.case.time.end or 0.0) - self.case.time.start
        tolerance = 1e-6 * span if span > 0 else 1e-6
        self.events = [
            event_trigger(spec, units, tolerance, f"events[{index}]")
            for index, spec in enumerate(self.case.events)
        ]
        solved = [field for group in self.groups for field in group.unknowns]
        self.bound_stops = BoundStops(solved, tolerance)
        self.events += self.bound_stops.triggers
        adaptive = self.case.time.adaptive
        self.limits = step_limits(adaptive.limits if adaptive else {}, units)
        self.tolerances = step_limits(adaptive.tolerances if adaptive else {}, units, "tolerances")
        protocol = self.case.protocol
        self.stages = None
        if protocol is not None:
            targets = self.targets
            capacity = targets.nominal_capacity()
            self.stages = protocol_stages(protocol, targets.constant_at, units, tolerance, capacity)

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
        self._set_initial_values()
        derived = {name: value for group in self.groups for name, value in group.derived.items()}
        for name, value in derived.items():
            target = self.store[name]
            cells = None if target.parts is None else target.part_cells(self.domains)
            target.evaluation = Evaluation(value, target.function, self.domains, cells)
        self.multiscale.compile(self.store, derived)
        self.multiscale.start(self.case.time.start)
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
            self._static,
            self.case.solver.stored_products,
        )
        # Consumers read derived fields as expressions; the stored values are evaluated only
        # at output times, when they are written or enter a quantity.
        derived_fields = [self.store[name] for name in derived]
        read = self._evaluator.coefficients()
        probed = self.probes.fields()
        written_to_files = self.case.output.xdmf or self.case.output.vtx
        self._refresh_at_output = [
            target
            for target in derived_fields
            if (written_to_files and target.spec.name in self._output_fields)
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
        for name, _, trace in self.store.traces():
            initial_guess(trace, self.store[name], self.domains)

    # Another run of the compiled simulation ------------------------------------------------
    def reuse(self, loaded: LoadedCase) -> bool:
        """Take over ``loaded`` if it differs from this case only in constant parameters (new
        fem.Constant values, nothing rebuilt) and go back to the initial state; False, changing
        nothing, for any other difference. Studies run such members this way."""
        settings = []
        for path, value in self.loaded.differences(loaded).items():
            found = self.targets.find(path)
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
        self._evaluator.reset()
        for target in self.store:
            for function in (target.function, *target.history):
                function.x.array[:] = 0.0
        for group in self.groups:
            group.reset()
            for ctx in group.contexts.values():
                ctx.reset_modes()
        self.case_quantities.reset()
        self._set_initial_values()

    @property
    def columns(self) -> list[str]:
        """The quantities.csv columns a run writes, in order (after :meth:`build`)."""
        self.build()
        return [
            *FIXED_COLUMNS,
            *self._extra_columns(),
            *self.quantities,
            *self.probes.columns,
            *self.case_quantities.columns,
        ]

    def _residuals_now(self, names: set[str]) -> dict[str, tuple[str, Any]]:
        """The residual forms of the named solved fields' rows at the current state (see
        :meth:`app.groups.Group.residuals_now`)."""
        forms = {}
        for group in self.groups:
            mine = names & {field.spec.name for field in group.unknowns}
            if mine:
                forms |= group.residuals_now(mine)
        return forms

    # 7: run (the time loop's stepper interface) -------------------------------------------
    def initialise(self, start: bool = True) -> None:
        """Solve the fields without a time derivative consistently with the state of the others:
        at the start (before the first output row and the first event check), and where the
        settings jump (``start=False``: a new protocol step, a breakpoint), where the fields
        jump with the forcing (a held voltage sets the current at once). A failed solve at a
        jump only warns: the next step solves them with the others."""
        self.coupler.initialise(strict=start)
        if start:
            self.case_quantities.reset()
        # running integrals continue from the values after the jump (a current switched off)
        self._commit_case_quantities()

    def step(self, start: float, dt: float) -> SolveReport:
        """Solve the step from ``start``; on failure the state is back at ``start``. With
        surrogates, the step may be solved again with refreshed properties."""
        ramps = self._stage.ramps if self._stage else []
        for ramp in ramps:  # at the step's start also after a rejected try
            ramp.constant.value = ramp.value_at(start)
        self.start_values.record()
        for ramp in ramps:
            ramp.constant.value = ramp.value_at(start + dt)  # the forcing at the step's end
        solve = functools.partial(self.coupler.step, start, dt)
        return self.multiscale.advance(solve, self.coupler.rollback, start + dt)

    def commit(self) -> None:
        self.coupler.commit()
        self.multiscale.commit()
        self._commit_case_quantities()

    def _commit_case_quantities(self) -> None:
        """The case's running integrals take the state just accepted."""
        needed = sorted(self.case_quantities.needs())
        if needed:
            self.case_quantities.commit(self._read(needed), self.groups[0].scheme.time)

    def rollback(self) -> None:
        self.coupler.rollback()
        self.multiscale.rollback()

    def restart(self) -> None:
        """After a jump of the forcing (a protocol step begins, a breakpoint): multistep
        schemes start again (the time loop then calls ``initialise(start=False)``)."""
        self.coupler.restart()

    def error(self) -> float | None:
        adaptive = self.case.time.adaptive
        return self.coupler.error(adaptive.rtol, adaptive.atol)

    def change(self) -> float:
        return self.coupler.change()

    def values(self, columns: list[str]) -> dict[str, float]:
        """The named quantities.csv columns now, for events."""
        values = self.bound_stops.read(columns)
        defined = [name for name in columns if name in self.case_quantities.units]
        read = {*defined, *values}
        values |= self._read([name for name in columns if name not in read])
        if defined:
            needed = self._read(sorted(self.case_quantities.needs(defined)))
            time = self.groups[0].scheme.time
            evaluated = self.case_quantities.evaluate(needed, time, defined)
            values |= {name: evaluated[name] for name in defined}
        return values

    def _read(self, columns: list[str]) -> dict[str, float]:
        """Plug-in quantities and point probes now."""
        probed = [name for name in columns if name in self.probes.units()]
        quantities = [name for name in columns if name not in probed]
        # Derived fields are otherwise refreshed at output times only: an event between them
        # would read the values of the last output (a surface stoichiometry 1 min old).
        read = self._evaluator.coefficients(quantities) if quantities else set()
        for target in self._refresh_at_output:
            if target.function in read or (probed and target.spec.name in self.probes.fields()):
                target.refresh()
        return self._evaluator.evaluate(quantities) | self.probes.values(probed)

    def apply(self, stage: Stage, started: float) -> float | None:
        """Enter a protocol stage that began at ``started`` (earlier when resumed within it):
        set its controls and take up its ramps; returns the time its ramps take from
        ``started`` (None without ramps)."""
        for constant, value in stage.settings:
            constant.value = value
        now = self.groups[0].scheme.time
        times = [ramp.begin(started, now) for ramp in stage.ramps]
        if stage is not self._stage:  # the first is applied before the first row too: once
            log.info("protocol step %d (cycle %d): %s", stage.index, stage.cycle, stage.text)
        self._stage = stage
        return max(times) if times else None

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
        resume: Checkpoint | None = None,
        stops: StopRequests | None = None,
    ) -> Result:
        """Run the case to its end time (app/runner.py).

        Args:
            output_dir: Run folder to write; None keeps results in memory only.
            overwrite: Replace an existing run folder.
            progress: Show a progress bar on rank 0 (after a few seconds).
            resume: Continue the stopped run in ``output_dir`` from this checkpoint
                (app/restart.py checks that it fits this case first).
            stops: Signal handlers whose requests stop the run after a step, with a
                checkpoint (the command line installs them).

        Raises:
            CaseError: Bad input (found while building), an output folder that cannot take
                the run.
            SolverError: A step failed and no retry was possible, or the solution diverged.
            Interrupted: A signal stopped the run (after a checkpoint).
            OutputFailed: Output failed mid-run (the last checkpoint intact).
        """
        return runner.run(self, output_dir, overwrite, progress, resume, stops)

    def _extra_columns(self) -> list[str]:
        extra = []
        if len(self.groups) > 1 and self.case.coupling.method == "fixed_point":
            extra.append("coupling_iterations")
        if self.case.protocol is not None:
            extra += ["step", "cycle"]
        return extra + self.multiscale.columns()

    def row_start(self, t: float, dt: float, report: SolveReport | None) -> list[float]:
        """The columns of an output row before the quantities: time, dt, iterations, and the
        coupling iterations and protocol position where the case has them."""
        row = [t, dt, *((report.iterations, report.linear_iterations) if report else (0, 0))]
        if len(self.groups) > 1 and self.case.coupling.method == "fixed_point":
            row.append(self.coupler.iterations if report else 0)
        if self.stages is not None:
            row += [self._stage.index, self._stage.cycle] if self._stage else [-1, -1]
        row += self.multiscale.row()
        return row

    # Reports -------------------------------------------------------------------------------
    def describe_solvers(self) -> str:
        return describe_groups(self.groups, self.case.solver.preset)
