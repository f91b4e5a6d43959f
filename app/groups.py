"""A group: plug-in instances whose unknowns are solved together in one (Newton or linear) solve.

The group gives each of its instances a context, collects their residuals, adds the capacity
terms discretised by the time scheme, splits the sum by test function into blocks, derives the
Jacobian blocks with ``ufl.derivative`` and turns the plug-ins' Dirichlet conditions into DOLFINx
boundary conditions. Compilation (JIT) and solver creation wait for :meth:`Group.compile`, so
``scalebridge check`` can build and inspect everything without compiling.

The group also owns its plug-ins' internal variables (:class:`~app.contracts.InternalVariable`):
it creates them at its quadrature points, evaluates their updates after each successful solve,
makes them the accepted values in :meth:`Group.commit` (and between substeps) and restores them
in :meth:`Group.rewind`, so a rejected or retried step leaves them as they were.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import ufl
from dolfinx import fem, mesh
from ufl.algorithms.analysis import extract_constants

from app.context import FormContext, ParameterConstants, unknown_fixable
from app.contracts import BadValue, Dirichlet, Physics
from app.domains import Domains, Evaluation
from app.errors import CaseError
from app.fields import Field, FieldStore, owned
from app.forms import FormRules, adjustable, nonpolynomial, with_degree, without_zeros
from app.meshing import MeshData
from app.pointwise import pointwise_degrees
from app.registry import FieldGraph
from app.solvers import SolveReport, System, make_solver
from app.timeint import TimeScheme


@contextmanager
def blame(instance: str) -> Iterator[None]:
    """Attribute a case lookup error raised inside a plug-in call to its instance."""
    try:
        yield
    except BadValue as exc:
        exc.instance = exc.instance or instance
        raise


@dataclass
class BoundaryValue:
    """A Dirichlet value given as an expression, evaluated where the condition needs it."""

    function: fem.Function
    expression: Any
    cells: np.ndarray
    evolving: bool
    update: Any = None

    def compile(self, domains: Domains) -> None:
        on_parent = all(
            t.function_space.mesh is domains.parent
            for t in ufl.algorithms.extract_coefficients(self.expression)
        )
        if on_parent and self.function.function_space.mesh is domains.parent:
            # Only the cells at the boundary: cheap enough to redo every step.
            points = self.function.function_space.element.interpolation_points
            compiled = fem.Expression(self.expression, points)
            self.update = lambda: self.function.interpolate(compiled, cells0=self.cells)
        else:  # a field on a region, or a value reading one
            self.update = Evaluation(self.expression, self.function, domains)
        self.update()


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
            self.contexts[instance] = FormContext(
                instance,
                mesh_data,
                store,
                scheme,
                {n: v for n, v in test_of.items() if n in own},
                readable,
                static,
                rules,
                plugin.domain,
                parameters,
                internal,
            )
        self.quadrature_degree: int | None = None  # of every form of the group, once assembled
        self.internal: list[Field] = self._add_pointwise()
        self.derived: dict[str, Any] = {}  # derived fields of the group's plug-ins, in UFL
        self.derive()
        self.system: System | None = None
        self.solver = None
        self.boundary_values: list[BoundaryValue] = []
        self._updates: dict[str, Any] = {}  # new values of the internal variables, in UFL
        self._pending: float | None = None  # dt of a solve whose history shift is still due
        self._saved: tuple | None = None
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
        physics, store, static = self.physics, self._store, self._static
        self._updates = self._collect_updates()
        if not self.unknowns:  # a group of derived fields only: nothing to solve
            self.quadrature_degree = self._degree(nonpolynomial(list(self.derived.values())))
            self.check_points(list(self._updates.values()), "its internal variables' updates")
            return
        modes = {}
        for instance, plugin in physics.items():
            with blame(instance):
                modes.update(plugin.modes(self.contexts[instance]))
        residual = without_zeros(self._residual(store), self.rules.zeros)
        blocks = [None] * len(self._tests)
        if not residual.empty():
            blocks = ufl.extract_blocks(residual) if len(self._tests) > 1 else [residual]
        for field, block in zip(self.unknowns, blocks, strict=True):
            if block is None or block.empty():
                raise ValueError(f"no equation for '{field.spec.name}' in group '{self.name}'")
        jacobian = self._jacobian(blocks)
        degree = self.quadrature_degree = self._degree(self._nonlinear(residual, jacobian))
        self.check_points([residual, *self._updates.values()], "its equations")
        bcs = [bc for instance in physics for bc in self._dirichlet(instance, store, static)]
        self.system = System(
            [field.function for field in self.unknowns],
            [with_degree(block, degree) for block in blocks],
            [[None if J is None else with_degree(J, degree) for J in row] for row in jacobian],
            bcs,
            all(type(plugin).spd for plugin in physics.values()),
            static,
            modes.get(self.unknowns[0].spec.name) if len(self.unknowns) == 1 else None,
            store.domains.entity_maps,
        )

    def _nonlinear(self, residual: ufl.Form, jacobian: list[list[ufl.Form | None]]) -> bool:
        """Whether the integrals the group's degree applies to (not those a plug-in fixed)
        are nonlinear in the unknowns or non-polynomial."""
        unknowns = {field.function for field in self.unknowns}
        derivatives = [J for row in jacobian for J in row if J is not None]
        return nonpolynomial(adjustable(residual)) or any(
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

    def _residual(self, store: FieldStore) -> ufl.Form:
        residual = None
        for instance, plugin in self.physics.items():
            ctx = self.contexts[instance]
            with blame(instance):
                form = plugin.residual(ctx)
                capacities = plugin.capacity(ctx) if self.scheme.transient else {}
                storages = plugin.storage(ctx) if self.scheme.transient else {}
                if form is not None:
                    self._store.domains.check_integrals(form, f"plug-in '{instance}'")
            solved = [spec.name for spec in plugin.provides if not spec.derived]
            if form is None:
                if solved:
                    raise ValueError(f"plug-in '{instance}' solves {solved} but has no residual")
                continue
            self.transient.update(capacities)
            if self.scheme.theta < 1:  # the old time level's share of F (u_n and t_n)
                old = {field.function: field.history[0] for field in self.unknowns}
                old[self.scheme.t] = self.scheme.t_old
                theta = self.scheme.theta
                form = theta * form + (1 - theta) * ufl.replace(form, old)
            both = sorted(set(capacities) & set(storages))
            if both:
                raise ValueError(f"plug-in '{instance}' gives {both} a capacity and a storage")
            self.transient.update(storages)
            for name, coefficient in capacities.items():
                field = store[name]
                rate = self.scheme.rate(field.function, field.history)
                form += ufl.inner(coefficient * rate, ctx.test(name)) * ctx.over(field.spec.region)
            for name, amount in storages.items():
                levels = [self._earlier(amount, level) for level in (1, 2)]
                rate = self.scheme.rate(amount, levels)
                form += ufl.inner(rate, ctx.test(name)) * ctx.over(store[name].spec.region)
            residual = form if residual is None else residual + form
        return residual

    def _earlier(self, expression: Any, level: int) -> Any:
        """An expression at an earlier time level: every solved field's value and t then."""
        times = {1: self.scheme.t_old, 2: self.scheme.t_older}
        earlier = {self.scheme.t: times[level]}
        for field in self._store:
            if len(field.history) >= level:
                earlier[field.function] = field.history[level - 1]
        return ufl.replace(expression, earlier)

    def _jacobian(self, blocks: list[ufl.Form]) -> list[list[ufl.Form | None]]:
        rows = []
        for block in blocks:
            row = []
            for field in self.unknowns:
                du = ufl.TrialFunction(field.space)
                J = ufl.algorithms.expand_derivatives(ufl.derivative(block, field.function, du))
                row.append(None if J.empty() else J)
            rows.append(row)
        return rows

    def _dirichlet(self, instance: str, store: FieldStore, static: set) -> list[fem.DirichletBC]:
        plugin, ctx = self.physics[instance], self.contexts[instance]
        with blame(instance):
            conditions = plugin.dirichlet(ctx)
            return [self._boundary_condition(bc, store[bc.field], static) for bc in conditions]

    def _boundary_condition(self, bc: Dirichlet, field: Field, static: set) -> fem.DirichletBC:
        data, domains = self.mesh_data, self._store.domains
        if bc.boundary not in data.fixable:
            raise unknown_fixable(bc.boundary, data)
        where = field.space.mesh
        topology = where.topology
        # Dofs on a facet, edge or vertex: each rank finds those of its own entities, and
        # DOLFINx adds the copies other ranks hold (remote), so a shared dof is fixed everywhere.
        dim, entities = domains.entities(where, bc.boundary)
        topology.create_connectivity(dim, topology.dim)
        if bc.component is None:
            space = target = field.space
            dofs = fem.locate_dofs_topological(space, dim, entities)
        else:
            space = field.space.sub(bc.component)
            target = space.collapse()[0]
            dofs = fem.locate_dofs_topological((space, target), dim, entities)
        value = bc.value
        if isinstance(value, int | float):
            value = fem.Constant(where, np.full(target.value_shape, float(value)))
        if isinstance(value, fem.Constant):
            parent_dofs = dofs if bc.component is None else dofs[0]
            return fem.dirichletbc(value, parent_dofs, space)
        function = fem.Function(target)
        evolving = self.scheme.t in extract_constants(value) or bool(
            set(ufl.algorithms.extract_coefficients(value)) - static
        )
        cells = mesh.compute_incident_entities(topology, entities, dim, topology.dim)
        self.boundary_values.append(BoundaryValue(function, value, cells, evolving))
        if bc.component is None:
            return fem.dirichletbc(function, dofs)
        return fem.dirichletbc(function, dofs, space)

    def compile(self, solver_spec: Any) -> None:
        """JIT-compile the forms, the updates of the internal variables and create the solver."""
        for value in self.boundary_values:
            value.compile(self._store.domains)
        for internal in self.internal:
            expression = self._updates[internal.spec.name]
            internal.update = Evaluation(expression, internal.function, self._store.domains)
        if self.system is not None:
            self.solver = make_solver(self.system, solver_spec, self.name)

    def solve(self) -> SolveReport:
        """Solve for the group's unknowns at the time the scheme is prepared for."""
        for value in self.boundary_values:
            if value.evolving:
                value.update()
        return self.solver.solve()

    def reset(self) -> None:
        """Back to the start time for another run: no history; boundary values evaluated
        again (a constant they read may have a new value)."""
        self.scheme.reset()
        self._pending = None
        for value in self.boundary_values:
            value.update()

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
            for internal in self.internal:  # what the residual assumed, for output and readers
                internal.advance()
            self._pending = dt
        return total

    def _shift(self) -> None:
        if self._pending is not None:
            for field in [*self.unknowns, *self.internal]:
                field.push_history()
            self.scheme.accept(self._pending)
            self._pending = None

    def commit(self) -> None:
        """Make the step final: shift the time history (the internal variables' new values
        become the accepted ones)."""
        self._shift()

    def begin(self) -> None:
        """Remember the state at the start of a step (for retries and iterations)."""
        self._saved = (
            [field.function.x.array.copy() for field in self.unknowns],
            [[past.x.array.copy() for past in field.history] for field in self.unknowns],
            [
                [level.x.array.copy() for level in (field.function, *field.history)]
                for field in self.internal
            ],
            self.scheme.state(),
        )
        self._pending = None

    def rewind(self, keep_iterate: bool = False) -> None:
        """Back to the start of the step, internal variables included; ``keep_iterate`` keeps
        the current values of the unknowns as the next initial guess (fixed-point sweeps)."""
        values, histories, internal, state = self._saved
        if not keep_iterate:
            for field, saved in zip(self.unknowns, values, strict=True):
                field.function.x.array[:] = saved
        for field, saved in zip(self.unknowns, histories, strict=True):
            for past, array in zip(field.history, saved, strict=True):
                past.x.array[:] = array
        for field, saved in zip(self.internal, internal, strict=True):
            for level, array in zip((field.function, *field.history), saved, strict=True):
                level.x.array[:] = array
        self.scheme.restore(state)
        self._pending = None

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
