"""A group: plug-in instances whose unknowns are solved together in one (Newton or linear) solve.

The group gives each of its instances a context and collects, per field it solves, the steady
operator of its equations and the terms under the time derivative (a :class:`~app.timeint.Row`);
the time scheme (app/timeint.py) turns each row into the step's residual. The group derives the
Jacobian blocks with ``ufl.derivative``, integrates every form at one quadrature degree
(app/forms.py), turns the plug-ins' Dirichlet conditions into DOLFINx conditions
(app/conditions.py) and hands the system to app/solvers.py. Compilation (JIT) and solver
creation wait for :meth:`Group.compile`, so ``scalebridge check`` can build and inspect
everything without compiling.

Two more solves use the same rows: the rates at an instant that the reported flows need
(app/rates.py), and the consistent initial values of the fields without a time derivative
(``initialise``, app/group_stepping.py).

Laws evaluated outside UFL at the quadrature points (an RVE per point, app/pointwise_law.py)
are refreshed by the solver before each assembly and committed or rolled back with the step,
as the internal variables are.

The group also owns its plug-ins' internal variables (:class:`~app.contracts.InternalVariable`):
it creates them at its quadrature points, evaluates their updates after each successful solve,
makes them the accepted values in ``commit`` (and between substeps) and restores them
in ``rewind`` (app/group_stepping.py), so a rejected or retried step leaves them as they were.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import ufl
from dolfinx import fem

from app.conditions import BoundaryValue, FixedValue, fixed_value, pinned
from app.context import FormContext, unknown
from app.contracts import BadValue, Physics
from app.declarations import FIX as DECLARATION_FIX
from app.domain_forms import check_integrals
from app.domains import Evaluation
from app.errors import CaseError
from app.field_bounds import outside_bounds
from app.fields import Field, FieldStore
from app.forms import FormRules, adjustable, nonpolynomial, with_degree
from app.group_stepping import GroupStepping
from app.meshing import MeshData
from app.parameter_constants import ParameterConstants
from app.pointwise import pointwise_degrees
from app.rates import Rates
from app.registry import FieldGraph
from app.solve_system import SolveReport, System, jacobian_blocks
from app.solvers import make_solver
from app.timeint import Row, TimeScheme, TimeTerm
from app.traces import check_degree, projection


@contextmanager
def blame(instance: str) -> Iterator[None]:
    """Attribute a case lookup error raised inside a plug-in call to its instance."""
    try:
        yield
    except BadValue as exc:
        exc.instance = exc.instance or instance
        raise


class Group(GroupStepping):
    """Instances solved monolithically; stepping through time is in app/group_stepping.py.

    Args:
        name: Group name (PETSc options prefix, messages).
        physics: The group's plug-in instances by instance name.
        graph: The checked field graph.
        store: All fields (the group's unknowns are already in it).
        scheme: The group's time scheme.
        mesh_data: The mesh with named regions and boundaries.
        static: Shared set of functions that never change during the run.
        rules: What the simulation's forms share (quadrature override, zero constants).
        subcycles: Substeps the group takes per coupled step.
        parameters: The case's parameter-set constants, for the contexts.
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
        rules: FormRules,
        subcycles: int = 1,
        parameters: ParameterConstants | None = None,
    ):
        self.name, self.physics, self.scheme, self.mesh_data = name, physics, scheme, mesh_data
        self.rules = rules
        self._store, self._static = store, static
        self.unknowns: list[Field] = [
            store[spec.name]
            for plugin in physics.values()
            for spec in plugin.provides
            if not spec.derived
        ]
        # The traces of the group's fields on boundaries are solved with them (app/traces.py),
        # and so are the traces of those traces (a global value copied to the parent first).
        solved = {field.spec.name for field in self.unknowns}
        self.traces = []
        for name, boundary, trace in store.traces():
            if name in solved:
                self.traces.append((store[name], boundary, trace))
                solved.add(trace.spec.name)
        self.unknowns += [trace for _, _, trace in self.traces]
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
            internal = frozenset(variable.name for variable in plugin.internal_variables)
            readable = own | internal
            readable |= {spec.name for spec in plugin.requires if spec.name in graph.providers}
            readable |= {n for n, users in graph.consumers.items() if instance in dict(users)}
            on_boundary = plugin.domain is not None and plugin.domain not in mesh_data.regions
            self.contexts[instance] = FormContext(
                instance,
                store.domains.region(plugin.domain).data if on_boundary else mesh_data,
                store,
                scheme,
                {n: v for n, v in test_of.items() if n in own},
                readable,
                static,
                rules,
                None if on_boundary else plugin.domain,
                parameters,
                internal,
                plugin.domain if on_boundary else None,
                plugin.regions,
            )
        self.quadrature_degree: int | None = None  # of every form of the group, once assembled
        self.internal: list[Field] = self._add_pointwise()
        for context in self.contexts.values():
            context.quadrature_degree = self.quadrature_degree
        self.laws: list[Any] = []  # laws outside UFL at quadrature points (app/pointwise_law.py)
        self.derived: dict[str, Any] = {}  # derived fields of the group's plug-ins, in UFL
        self.derive()
        self.system: System | None = None
        self.solver = None
        self.rows: list[Row] = []
        self.fixed: list[FixedValue] = []  # the Dirichlet conditions
        self.rates: Rates | None = None  # the rates of the transient fields at an instant
        self._solver_spec: Any = None
        self._modes: dict[str, Any] = {}
        self._updates: dict[str, Any] = {}  # new values of the internal variables, in UFL
        self._init_stepping()
        self._tests = tests

    def _add_pointwise(self) -> list[Field]:
        """Create the group's internal variables and its derived fields at quadrature points;
        returns the internal variables. Refuses internal variables under Crank-Nicolson.

        Values at quadrature points must sit at the points of the rule the forms are integrated
        with, so the group's degree is fixed before any form exists: the rule's degree with the
        equations counted as nonlinear (pointwise values of a history are not polynomials).
        """
        plugins = self.physics.items()
        at_points = any(v.at == "quadrature" for _, p in plugins for v in p.internal_variables)
        at_points |= any(s.space[0] == "Quadrature" for _, p in plugins for s in p.provides)
        if at_points:
            self.quadrature_degree = self._degree(nonlinear=True)
        declared = [(i, p) for i, p in plugins if p.internal_variables]
        if declared and self.scheme.theta < 1:
            raise CaseError(
                "time.scheme",
                f"'{declared[0][0]}' has internal variables, which Crank-Nicolson cannot weigh "
                "between time levels (the residual at the old level needs the history before it)",
                'use scheme = "bdf1" or "bdf2" (or "steady" for quasi-static loading)',
            )
        internal = []
        levels = max(1, self.scheme.order)  # BDF2 relaxations need two accepted values
        for instance, plugin in plugins:
            for variable in plugin.internal_variables:
                internal.append(
                    self._store.add_internal(
                        variable, instance, levels, self.quadrature_degree, plugin.domain
                    )
                )
            for spec in plugin.provides:
                if spec.space[0] == "Quadrature":
                    spec = replace(spec, region=spec.region or plugin.domain)
                    self._store.add(spec, instance, 0, self.quadrature_degree)
        return internal

    def derive(self) -> None:
        """(Re)build the derived fields' expressions from the fields the contexts hand out."""
        for instance, plugin in self.physics.items():
            with blame(instance):
                self.derived.update(plugin.derived(self.contexts[instance]))

    def assemble(self) -> None:
        """Residual, Jacobian blocks and boundary conditions in UFL (after every consumer of a
        derived field has been handed its expression), all at the group's quadrature degree."""
        self._updates = self._collect_updates()
        if not self.unknowns:  # a group of derived fields only: nothing to solve
            self.quadrature_degree = self._degree(nonpolynomial(list(self.derived.values())))
            self.check_points(list(self._updates.values()), "its internal variables' updates")
            return
        for instance, plugin in self.physics.items():
            with blame(instance):
                self._modes.update(plugin.modes(self.contexts[instance]))
        self.rows = self._rows()
        self.laws = [law for context in self.contexts.values() for law in context.laws.values()]
        self.transient = {row.field.spec.name for row in self.rows if row.transient}
        zeros = self.rules.zeros
        start = self.rules.start_values
        blocks = [
            self.scheme.discretise(row, self.unknowns, self._store, start) for row in self.rows
        ]
        blocks = [None if block is None else self.rules.localise(block, zeros) for block in blocks]
        for field, block in zip(self.unknowns, blocks, strict=True):
            if block is None or block.empty():
                raise ValueError(f"no equation for '{field.spec.name}' in group '{self.name}'")
        functions = [field.function for field in self.unknowns]
        jacobian = jacobian_blocks(blocks, functions)
        degree = self.quadrature_degree = self._degree(self._nonlinear(blocks, jacobian))
        check_degree(degree, [trace for _, _, trace in self.traces], self.name)
        self.check_points([*blocks, *self._updates.values()], "its equations")
        self.fixed = [fixed for instance in self.physics for fixed in self._dirichlet(instance)]
        self.fixed += [pinned(field, self._store.domains) for field in self._partial()]
        single = self.unknowns[0].spec.name if len(self.unknowns) == 1 else None
        self.system = System(
            functions,
            [with_degree(block, degree) for block in blocks],
            [[None if J is None else with_degree(J, degree) for J in row] for row in jacobian],
            [fixed.condition for fixed in self.fixed],
            all(type(plugin).spd for plugin in self.physics.values()),
            self._static,
            self._modes.get(single),
            self._store.domains.entity_maps,
            [field.spec.units for field in self.unknowns],
            self.laws,
            self.mesh_data.hierarchy,
        )
        if self.transient:
            self.rates = Rates(
                self.name,
                self.rows,
                self.scheme,
                self.fixed,
                self._static,
                self._store.domains.entity_maps,
                lambda form: self.rules.finish(form, degree),
            )

    def _nonlinear(self, blocks: list[ufl.Form], jacobian: list[list[ufl.Form | None]]) -> bool:
        """Whether the integrals the group's degree applies to (not those a plug-in fixed)
        are nonlinear in the unknowns or non-polynomial."""
        unknowns = {field.function for field in self.unknowns}
        derivatives = [J for row in jacobian for J in row if J is not None]
        return nonpolynomial(adjustable(*blocks)) or any(
            unknowns & set(ufl.algorithms.extract_coefficients(integrand))
            for integrand in adjustable(*derivatives)
        )

    def _degree(self, nonlinear: bool) -> int:
        """The group's quadrature degree: from the highest degree of its unknowns and of the
        solved fields its plug-ins read, the geometry and the kind of its equations (values at
        quadrature points make it nonlinear, and it stays what it was when they were made)."""
        read = {name for ctx in self.contexts.values() for name in ctx.readable}
        fields = [*self.unknowns, *(self._store[n] for n in read if n in self._store)]
        field_degree = max(
            (
                f.space.ufl_element().embedded_superdegree
                for f in fields
                if not f.spec.derived and not f.pointwise
            ),
            default=1,
        )
        pointwise = self.quadrature_degree is not None
        return self.rules.degree(self.mesh_data.mesh, field_degree, nonlinear or pointwise)

    def check_points(self, expressions: list[Any], what: str) -> None:
        """Refuse values at quadrature points of another rule than the group's: the forms would
        read them at the wrong points (a field of a group integrated at another degree).

        Raises:
            CaseError: Naming the degrees and the fix.
        """
        others = pointwise_degrees(expressions) - {self.quadrature_degree}
        if others:
            raise CaseError(
                "solver.quadrature_degree",
                f"group '{self.name}' integrates {what} at quadrature degree "
                f"{self.quadrature_degree} but reads values stored at the quadrature points of "
                f"degree {min(others)} (a field another group keeps at its quadrature points)",
                "solve the plug-ins in one group, or set [solver] quadrature_degree for all",
            )

    def finish(self, form: ufl.Form) -> ufl.Form:
        """A form of one of the group's plug-ins (an integral quantity) as the group's own:
        without identically zero terms, at the group's quadrature degree."""
        self.check_points([form], "a quantity")
        return self.rules.finish(form, self.quadrature_degree)

    def _collect_updates(self) -> dict[str, Any]:
        """The new value of each internal variable, checked against its declaration."""
        updates: dict[str, Any] = {}
        for instance, plugin in self.physics.items():
            with blame(instance):
                given = plugin.update(self.contexts[instance]) if plugin.internal_variables else {}
            declared = {variable.name: variable for variable in plugin.internal_variables}
            if set(given) != set(declared):
                raise ValueError(
                    f"plug-in '{instance}' declares the internal variables {sorted(declared)} but "
                    f"update() gives {sorted(given)}"
                )
            for name, value in given.items():
                shape = ufl.as_ufl(value).ufl_shape
                if shape != declared[name].shape:
                    raise ValueError(
                        f"plug-in '{instance}': update() gives '{name}' the shape {shape}, but it "
                        f"is declared with shape {declared[name].shape}"
                    )
                updates[name] = value
        return updates

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
                    form = self.rules.extended(form)
                    check_integrals(form, f"plug-in '{instance}'", store.domains)
            solved = [spec.name for spec in plugin.provides if not spec.derived]
            where = f"'{instance}' ({plugin.name})"
            if form is None:
                if solved:
                    raise CaseError(
                        f"physics.{instance}",
                        f"{where} provides {solved} to be solved for, but its residual() "
                        "returns None",
                        f"{DECLARATION_FIX}: give a residual, or declare them derived=True",
                    )
                continue
            both = sorted(set(capacities) & set(storages))
            if both:
                raise CaseError(
                    f"physics.{instance}",
                    f"{where} gives {both} both a capacity and a storage",
                    DECLARATION_FIX,
                )
            for kind, declared in (("capacity", capacities), ("storage", storages)):
                for name, expression in declared.items():
                    where = ctx.over(store[name].spec.region)
                    term = TimeTerm(store[name], kind, expression, ctx.test(name), where)
                    terms[name].append(term)
            operator = form if operator is None else operator + form
        for form in self._trace_rows() + self._pin_rows():
            operator = form if operator is None else operator + form
        blocks = ufl.extract_blocks(operator) if len(self._tests) > 1 else [operator]
        return [
            Row(field, block, terms[field.spec.name])
            for field, block in zip(self.unknowns, blocks, strict=True)
        ]

    def _trace_rows(self) -> list[ufl.Form]:
        """The projections defining the traces of the group's fields (app/traces.py)."""
        tests = dict(zip(self.unknowns, self._tests, strict=True))
        domains = self._store.domains
        return [
            projection(trace, source, boundary, tests[trace], domains)
            for source, boundary, trace in self.traces
        ]

    def _partial(self) -> list[Field]:
        """Solved fields of instances acting on part of a boundary's mesh (``regions``)."""
        traces = {trace for _, _, trace in self.traces}
        return [f for f in self.unknowns if f.parts is not None and f not in traces]

    def _pin_rows(self) -> list[ufl.Form]:
        """Zero terms over the rest of the mesh for a field on part of a boundary's mesh: they
        make the rows of its dofs there, which the zero condition of :func:`pinned` fixes
        (a condition on a row without entries would be dropped from the matrix)."""
        tests = dict(zip(self.unknowns, self._tests, strict=True))
        rows = []
        for field in self._partial():
            data = self._store.domains.named(field.space.mesh)
            rest = [tag for name, tag in data.regions.items() if name not in field.parts]
            if rest:
                zero = fem.Constant(field.space.mesh, 0.0)
                dx = self._store.domains.measures(data).dx(tuple(rest))
                rows.append(zero * ufl.inner(field.function, tests[field]) * dx)
        return rows

    def _dirichlet(self, instance: str) -> list[FixedValue]:
        plugin, ctx, store = self.physics[instance], self.contexts[instance], self._store
        with blame(instance):
            conditions = plugin.dirichlet(ctx)
            for bc in conditions:  # on part of a boundary's mesh: only the part's own ends
                if ctx.parts is not None and bc.boundary not in ctx.boundaries:
                    raise unknown("boundary", bc.boundary, ctx.boundaries)
            return [
                fixed_value(
                    bc,
                    store[bc.field],
                    ctx.mesh_data,
                    store.domains,
                    self.scheme.t,
                    self._static,
                    instance,
                )
                for bc in conditions
            ]

    @property
    def boundary_values(self) -> list[BoundaryValue]:
        """The Dirichlet values given as expressions."""
        return [fixed.expression for fixed in self.fixed if fixed.expression is not None]

    def compile(self, solver_spec: Any) -> None:
        """JIT-compile the forms, the updates of the internal variables and create the solver."""
        self._solver_spec = solver_spec
        for value in self.boundary_values:
            value.compile(self._store.domains)
        for internal in self.internal:
            expression = self._updates[internal.spec.name]
            internal.update = Evaluation(expression, internal.function, self._store.domains)
        for law in self.laws:
            law.compile()
        if self.system is not None:
            self.solver = make_solver(
                self.system,
                solver_spec,
                self.name,
                repeated=self.scheme.transient,
                scheme=self.scheme,
            )

    def solve(self) -> SolveReport:
        """Solve for the group's unknowns at the time the scheme is prepared for; a solution
        beyond a field's bounds (app/field_bounds.py) fails, the unknowns as before it."""
        self._update_boundary_values()
        bounded = [field for field in self.unknowns if field.spec.bounds != (None, None)]
        saved = [field.function.x.array.copy() for field in bounded]
        report = self.solver.solve()
        outside = outside_bounds(bounded) if report.converged else ""
        if not outside:
            return report
        for field, values in zip(bounded, saved, strict=True):
            field.function.x.array[:] = values
        return replace(report, converged=False, reason=f"{report.reason}; {outside}")

    def _update_boundary_values(self) -> None:
        for value in self.boundary_values:
            if value.evolving:
                value.update()

    def residuals_now(self, names: set[str]) -> dict[str, tuple[str, ufl.Form]]:
        """The residual form of each named field's row at the current state and time, with its
        kind ("step" or "rate"); the reactions of app/quantities.py test it with the indicator
        of a boundary's dofs.

        After a step of a scheme that evaluates its rows at the new level (BDF, steady) that is
        the step's residual, so the discrete balances close. Otherwise (a Crank-Nicolson step,
        whose residual is the average over the step, or no step yet) a transient field's row
        is the semi-discrete one, with the rates at this instant (app/rates.py), solved here.
        """
        one_step = self.scheme.theta == 1
        instant = self.rates is not None and not (self._pending is not None and one_step)
        rated = instant and bool(names & set(self.rates.residuals))
        if rated:
            # a BDF run's first rates may borrow the step matrix (app/rates.py); a CN run needs
            # the rates at every row, in a matrix of their own assembled once
            lender = self.solver if one_step else None
            self.rates.solve(self._solver_spec, self._store.domains, lender)
        residuals = zip(self.unknowns, self.system.residuals, strict=True)
        step = {field.spec.name: block for field, block in residuals}
        forms = {}
        for name in names:
            if instant and name in self.rates.residuals:
                forms[name] = ("rate", self.rates.residuals[name])
            else:
                forms[name] = ("step", step[name])
        if rated and one_step:  # a BDF run needs the rates again only at a stage's start
            self.rates.release()
        return forms
