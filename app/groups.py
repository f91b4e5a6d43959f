"""A group: plug-in instances whose unknowns are solved together in one (Newton or linear) solve.

The group gives each of its instances a context and collects, per field it solves, the steady
operator of its equations and the terms under the time derivative (a :class:`~app.timeint.Row`);
the time scheme (app/timeint.py) turns each row into the step's residual. The group derives the
Jacobian blocks with ``ufl.derivative``, turns the plug-ins' Dirichlet conditions into DOLFINx
conditions (app/conditions.py) and hands the system to app/solvers.py. Compilation (JIT) and
solver creation wait for :meth:`Group.compile`, so ``scalebridge check`` can build and inspect
everything without compiling.

Two more solves use the same rows: the rates at an instant that the reported flows need
(app/rates.py), and the consistent initial values of the fields without a time derivative
(:meth:`Group.initialise`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import ufl
from dolfinx import fem, la

from app.conditions import BoundaryValue, FixedValue, fixed_value
from app.context import FormContext
from app.contracts import BadValue, Physics
from app.fields import Field, FieldStore, owned
from app.meshing import MeshData
from app.rates import Rates
from app.registry import FieldGraph
from app.solvers import SolveReport, System, jacobian_blocks, make_solver
from app.timeint import Row, TimeScheme, TimeTerm


@contextmanager
def blame(instance: str) -> Iterator[None]:
    """Attribute a case lookup error raised inside a plug-in call to its instance."""
    try:
        yield
    except BadValue as exc:
        exc.instance = exc.instance or instance
        raise


class Group:
    """Instances solved monolithically.

    Args:
        name: Group name (PETSc options prefix, messages).
        physics: The group's plug-in instances by instance name.
        graph: The checked field graph.
        store: All fields (the group's unknowns are already in it).
        scheme: The group's time scheme.
        mesh_data: The mesh with named regions and boundaries.
        static: Shared set of functions that never change during the run.
        subcycles: Substeps the group takes per coupled step.
    """

    def __init__(
        self,
        name: str,
        physics: Mapping[str, Physics],
        graph: FieldGraph,
        store: FieldStore,
        scheme: TimeScheme,
        mesh_data: MeshData,
        static: set[Any],
        subcycles: int = 1,
    ):
        self.name, self.physics, self.scheme, self.mesh_data = name, physics, scheme, mesh_data
        self.unknowns: list[Field] = [
            store[spec.name]
            for plugin in physics.values()
            for spec in plugin.provides
            if not spec.derived
        ]
        self.subcycles = subcycles
        self.transient: set[str] = set()  # fields with a time derivative
        spaces = [field.space for field in self.unknowns]
        if len(spaces) > 1:
            tests = list(ufl.TestFunctions(ufl.MixedFunctionSpace(*spaces)))
        else:
            tests = [ufl.TestFunction(space) for space in spaces]
        test_of = {field.spec.name: v for field, v in zip(self.unknowns, tests, strict=True)}
        self.contexts: dict[str, FormContext] = {}
        for instance, plugin in physics.items():
            own = {spec.name for spec in plugin.provides}
            readable = own | {spec.name for spec in plugin.requires if spec.name in store}
            readable |= {n for n, users in graph.consumers.items() if instance in dict(users)}
            self.contexts[instance] = FormContext(
                instance,
                mesh_data,
                store,
                scheme,
                {n: v for n, v in test_of.items() if n in own},
                readable,
                static,
                plugin.domain,
            )
        self.derived: dict[str, Any] = {}  # derived fields of the group's plug-ins, in UFL
        self.derive()
        self.system: System | None = None
        self.solver = None
        self.rows: list[Row] = []
        self.fixed: list[FixedValue] = []  # the Dirichlet conditions
        self.rates: Rates | None = None  # the rates of the transient fields at an instant
        self._solver_spec: Any = None
        self._modes: dict[str, Any] = {}
        self._initial_solver = None  # the fields without a time derivative, the others fixed
        self._forms: dict[tuple[str, str], fem.Form] = {}  # compiled residuals for reactions
        self._pending: float | None = None  # dt of a solve whose history shift is still due
        self._saved: tuple | None = None
        self._tests = tests
        self._store, self._static = store, static

    def derive(self) -> None:
        """(Re)build the derived fields' expressions from the fields the contexts hand out."""
        for instance, plugin in self.physics.items():
            with blame(instance):
                self.derived.update(plugin.derived(self.contexts[instance]))

    def assemble(self) -> None:
        """Residual, Jacobian blocks and boundary conditions in UFL (after every consumer of a
        derived field has been handed its expression)."""
        if not self.unknowns:  # a group of derived fields only: nothing to solve
            return
        for instance, plugin in self.physics.items():
            with blame(instance):
                self._modes.update(plugin.modes(self.contexts[instance]))
        self.rows = self._rows()
        self.transient = {row.field.spec.name for row in self.rows if row.transient}
        blocks = [self.scheme.discretise(row, self.unknowns, self._store) for row in self.rows]
        for field, block in zip(self.unknowns, blocks, strict=True):
            if block is None or block.empty():
                raise ValueError(f"no equation for '{field.spec.name}' in group '{self.name}'")
        self.fixed = [fixed for instance in self.physics for fixed in self._dirichlet(instance)]
        functions = [field.function for field in self.unknowns]
        single = self.unknowns[0].spec.name if len(self.unknowns) == 1 else None
        self.system = System(
            functions,
            blocks,
            jacobian_blocks(blocks, functions),
            [fixed.condition for fixed in self.fixed],
            all(type(plugin).spd for plugin in self.physics.values()),
            self._static,
            self._modes.get(single),
            self._store.domains.entity_maps,
        )
        if self.transient:
            self.rates = Rates(
                self.name,
                self.rows,
                self.scheme,
                self.fixed,
                self._static,
                self._store.domains.entity_maps,
            )

    def _rows(self) -> list[Row]:
        """Each solved field's steady operator (the sum of the plug-ins' residuals, split by
        test function) and its terms under the time derivative."""
        store, transient = self._store, self.scheme.transient
        operator = None
        terms: dict[str, list[TimeTerm]] = {field.spec.name: [] for field in self.unknowns}
        for instance, plugin in self.physics.items():
            ctx = self.contexts[instance]
            with blame(instance):
                form = plugin.residual(ctx)
                capacities = plugin.capacity(ctx) if transient else {}
                storages = plugin.storage(ctx) if transient else {}
                if form is not None:
                    store.domains.check_integrals(form, f"plug-in '{instance}'")
            solved = [spec.name for spec in plugin.provides if not spec.derived]
            if form is None:
                if solved:
                    raise ValueError(f"plug-in '{instance}' solves {solved} but has no residual")
                continue
            both = sorted(set(capacities) & set(storages))
            if both:
                raise ValueError(f"plug-in '{instance}' gives {both} a capacity and a storage")
            for kind, declared in (("capacity", capacities), ("storage", storages)):
                for name, expression in declared.items():
                    where = ctx.over(store[name].spec.region)
                    term = TimeTerm(store[name], kind, expression, ctx.test(name), where)
                    terms[name].append(term)
            operator = form if operator is None else operator + form
        blocks = ufl.extract_blocks(operator) if len(self._tests) > 1 else [operator]
        return [
            Row(field, block, terms[field.spec.name])
            for field, block in zip(self.unknowns, blocks, strict=True)
        ]

    def _dirichlet(self, instance: str) -> list[FixedValue]:
        plugin, ctx, store = self.physics[instance], self.contexts[instance], self._store
        with blame(instance):
            return [
                fixed_value(
                    bc, store[bc.field], self.mesh_data, store.domains, self.scheme.t, self._static
                )
                for bc in plugin.dirichlet(ctx)
            ]

    @property
    def boundary_values(self) -> list[BoundaryValue]:
        """The Dirichlet values given as expressions."""
        return [fixed.expression for fixed in self.fixed if fixed.expression is not None]

    def compile(self, solver_spec: Any) -> None:
        """JIT-compile the forms and create the solver."""
        self._solver_spec = solver_spec
        for value in self.boundary_values:
            value.compile(self._store.domains)
        if self.system is not None:
            self.solver = make_solver(self.system, solver_spec, self.name)

    def solve(self) -> SolveReport:
        """Solve for the group's unknowns at the time the scheme is prepared for."""
        self._update_boundary_values()
        return self.solver.solve()

    def _update_boundary_values(self) -> None:
        for value in self.boundary_values:
            if value.evolving:
                value.update()

    def initialise(self) -> SolveReport:
        """Solve the fields without a time derivative at the current (start) time, the others
        held at their values, and make that their history too.

        A potential's initial value is only a guess; read before any step (the first output
        row, an event checked at the start) it would describe no state of the system, and a
        Crank-Nicolson step would average it into its first step.
        """
        algebraic = [field for field in self.unknowns if field.spec.name not in self.transient]
        if self.system is None or not algebraic:
            return SolveReport(True, 0, 0, "")
        if len(algebraic) == len(self.unknowns):
            report = self.solve()
        else:
            if self._initial_solver is None:
                self._initial_solver = self._algebraic_solver(algebraic)
            self._update_boundary_values()
            report = self._initial_solver.solve()
        if report.converged:
            for field in algebraic:
                for past in field.history:
                    past.x.array[:] = field.function.x.array
        return report

    def _algebraic_solver(self, algebraic: list[Field]) -> Any:
        """A solver of the rows of ``algebraic`` for those fields alone."""
        names = {field.spec.name for field in algebraic}
        blocks = [
            block
            for field, block in zip(self.unknowns, self.system.residuals, strict=True)
            if field.spec.name in names
        ]
        functions = [field.function for field in algebraic]
        single = algebraic[0].spec.name if len(algebraic) == 1 else None
        system = System(
            functions,
            blocks,
            jacobian_blocks(blocks, functions),
            [fixed.condition for fixed in self.fixed if fixed.field in names],
            self.system.spd,
            self._static,
            self._modes.get(single),
            self.system.entity_maps,
        )
        spec = self._solver_spec
        if spec.preset == "fieldsplit" and single is not None:
            spec = spec.model_copy(update={"preset": "auto"})
        return make_solver(system, spec, f"{self.name}_initial")

    def residuals_now(self, names: set[str]) -> dict[str, la.Vector]:
        """The residual vector of each named field's row at the current state and time (the
        reactions of app/quantities.py sum it over a boundary's dofs).

        After a step of a scheme that evaluates its rows at the new level (BDF, steady) that is
        the step's residual, so the discrete balances close. Otherwise (a Crank-Nicolson step,
        whose residual is the average over the step, or no step yet) a transient field's row
        is the semi-discrete one, with the rates at this instant (app/rates.py).
        """
        instant = self.rates is not None and not (
            self._pending is not None and self.scheme.theta == 1
        )
        if instant and names & set(self.rates.residuals):
            self.rates.solve(self._solver_spec, self._store.domains)
        residuals = zip(self.unknowns, self.system.residuals, strict=True)
        step = {field.spec.name: block for field, block in residuals}
        vectors = {}
        for name in sorted(names):  # the same order on every rank: assembly is collective
            kind = "rate" if instant and name in self.rates.residuals else "step"
            if (kind, name) not in self._forms:
                form = self.rates.residuals[name] if kind == "rate" else step[name]
                maps = self._store.domains.entity_maps
                self._forms[kind, name] = fem.form(form, entity_maps=maps)
            vector = fem.assemble_vector(self._forms[kind, name])
            vector.scatter_reverse(la.InsertMode.add)
            vectors[name] = vector
        return vectors

    # Stepping ---------------------------------------------------------------------------------
    def advance(self, start: float, step: float) -> SolveReport:
        """Solve from ``start`` over ``step`` in the group's substeps. The history shift of the
        last solve is left pending until :meth:`commit`, so outputs read the step's residual."""
        dt = step / self.subcycles  # exact for one substep: a reused operator stays valid
        total = SolveReport(True, 0, 0, "")
        for substep in range(1, self.subcycles + 1):
            self._shift()
            self.scheme.prepare(start + substep * dt, dt)
            if self.solver is not None:
                report = self.solve()
                total = total.then(report)
                if not report.converged:
                    return total
            self._pending = dt
        return total

    def _shift(self) -> None:
        if self._pending is not None:
            for field in self.unknowns:
                field.push_history()
            self.scheme.accept(self._pending)
            self._pending = None

    def commit(self) -> None:
        """Make the step final: shift the time history."""
        self._shift()

    def begin(self) -> None:
        """Remember the state at the start of a step (for retries and iterations)."""
        self._saved = (
            [field.function.x.array.copy() for field in self.unknowns],
            [[past.x.array.copy() for past in field.history] for field in self.unknowns],
            self.scheme.state(),
        )
        self._pending = None

    def rewind(self, keep_iterate: bool = False) -> None:
        """Back to the start of the step; ``keep_iterate`` keeps the current values of the
        unknowns as the next initial guess (fixed-point sweeps)."""
        values, histories, state = self._saved
        if not keep_iterate:
            for field, saved in zip(self.unknowns, values, strict=True):
                field.function.x.array[:] = saved
        for field, saved in zip(self.unknowns, histories, strict=True):
            for past, array in zip(field.history, saved, strict=True):
                past.x.array[:] = array
        self.scheme.restore(state)
        self._pending = None

    def change(self) -> list[tuple[float, float]]:
        """For each unknown, the largest change over the step being taken and its largest
        value (owned dofs of this rank)."""
        changes = []
        for field, before in zip(self.unknowns, self._saved[0], strict=True):
            now = owned(field.function)
            delta = np.abs(now - before[: now.size]).max(initial=0.0)
            changes.append((float(delta), float(np.abs(now).max(initial=0.0))))
        return changes

    def error(self, rtol: float, atol: float) -> tuple[float, int]:
        """Sum of squared scaled local errors of the group's transient fields (owned dofs)
        and their count; (0, 0) while the history is too short for an estimate."""
        weights = self.scheme.predictor_weights()
        if weights is None or self.subcycles > 1:
            return 0.0, 0
        factor = self.scheme.error_factor()
        total, count = 0.0, 0
        for field in self.unknowns:
            if field.spec.name not in self.transient:
                continue
            u = owned(field.function)
            levels = [owned(past) for past in field.history[: len(weights)]]
            predicted = sum(w * level for w, level in zip(weights, levels, strict=True))
            scaled = factor * (u - predicted) / (atol + rtol * np.abs(u))
            total += float(scaled @ scaled)
            count += u.size
        return total, count
