"""A group: plug-in instances whose unknowns are solved together in one (Newton or linear) solve.

The group gives each of its instances a context, collects their residuals, adds the capacity
terms discretised by the time scheme, splits the sum by test function into blocks, derives the
Jacobian blocks with ``ufl.derivative`` and turns the plug-ins' Dirichlet conditions into DOLFINx
boundary conditions. Compilation (JIT) and solver creation wait for :meth:`Group.compile`, so
``scalebridge check`` can build and inspect everything without compiling.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import ufl
from dolfinx import fem, mesh
from ufl.algorithms.analysis import extract_constants

from app.context import FormContext, unknown
from app.contracts import BadValue, Dirichlet, Physics
from app.fields import Field, FieldStore
from app.meshing import MeshData
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
    """A Dirichlet value given as an expression, interpolated on the cells at the boundary."""

    function: fem.Function
    expression: Any
    cells: np.ndarray
    evolving: bool
    compiled: fem.Expression | None = None

    def compile(self) -> None:
        points = self.function.function_space.element.interpolation_points
        self.compiled = fem.Expression(self.expression, points)
        self.update()

    def update(self) -> None:
        self.function.interpolate(self.compiled, cells0=self.cells)


class Group:
    """Instances solved monolithically.

    Args:
        name: Group name (PETSc options prefix, messages).
        physics: The group's plug-in instances by instance name.
        graph: The checked field graph.
        store: All fields (the group's unknowns are already in it).
        scheme: The time scheme.
        mesh_data: The mesh with named regions and boundaries.
        static: Shared set of functions that never change during the run.
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
    ):
        self.name, self.physics, self.scheme, self.mesh_data = name, physics, scheme, mesh_data
        self.unknowns: list[Field] = [
            store[spec.name]
            for plugin in physics.values()
            for spec in plugin.provides
            if not spec.derived
        ]
        spaces = [field.space for field in self.unknowns]
        tests = (
            [ufl.TestFunction(spaces[0])]
            if len(spaces) == 1
            else list(ufl.TestFunctions(ufl.MixedFunctionSpace(*spaces)))
        )
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
            )
        # Derived fields in UFL. A consumer in this group gets the expression itself, so the
        # coupling is part of the Newton system (Jacobian included) instead of lagging a step.
        self.derived: dict[str, Any] = {}
        for instance, plugin in physics.items():
            with blame(instance):
                self.derived.update(plugin.derived(self.contexts[instance]))
        for instance, ctx in self.contexts.items():
            for name, expression in self.derived.items():
                if name in ctx.readable and store[name].provider != instance:
                    ctx.inline(name, expression)
        modes = {}
        for instance, plugin in physics.items():
            with blame(instance):
                modes.update(plugin.modes(self.contexts[instance]))
        residual = self._residual(store)
        blocks = ufl.extract_blocks(residual) if len(tests) > 1 else [residual]
        for field, block in zip(self.unknowns, blocks, strict=True):
            if block is None or block.empty():
                raise ValueError(f"no equation for field '{field.spec.name}' in group '{name}'")
        self.boundary_values: list[BoundaryValue] = []
        bcs = [bc for instance in physics for bc in self._dirichlet(instance, store, static)]
        self.system = System(
            [field.function for field in self.unknowns],
            blocks,
            self._jacobian(blocks),
            bcs,
            all(type(plugin).spd for plugin in physics.values()),
            static,
            modes.get(self.unknowns[0].spec.name) if len(self.unknowns) == 1 else None,
        )
        self.solver = None

    def _residual(self, store: FieldStore) -> ufl.Form:
        residual = None
        for instance, plugin in self.physics.items():
            ctx = self.contexts[instance]
            with blame(instance):
                form = plugin.residual(ctx)
                capacities = plugin.capacity(ctx) if self.scheme.transient else {}
            solved = [spec.name for spec in plugin.provides if not spec.derived]
            if form is None:
                if solved:
                    raise ValueError(f"plug-in '{instance}' solves {solved} but has no residual")
                continue
            for name, coefficient in capacities.items():
                field = store[name]
                rate = self.scheme.rate(field.function, field.history)
                form += ufl.inner(coefficient * rate, ctx.test(name)) * ctx.dx()
            residual = form if residual is None else residual + form
        return residual

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
        data = self.mesh_data
        if bc.boundary not in data.boundaries:
            raise unknown("boundary", bc.boundary, list(data.boundaries))
        topology = data.mesh.topology
        fdim = topology.dim - 1
        topology.create_connectivity(fdim, topology.dim)
        facets = data.facet_tags.find(data.boundaries[bc.boundary])
        if bc.component is None:
            space = target = field.space
            dofs = fem.locate_dofs_topological(space, fdim, facets)
        else:
            space = field.space.sub(bc.component)
            target = space.collapse()[0]
            dofs = fem.locate_dofs_topological((space, target), fdim, facets)
        value = bc.value
        if isinstance(value, int | float):
            value = fem.Constant(data.mesh, np.full(target.value_shape, float(value)))
        if isinstance(value, fem.Constant):
            parent_dofs = dofs if bc.component is None else dofs[0]
            return fem.dirichletbc(value, parent_dofs, space)
        function = fem.Function(target)
        evolving = self.scheme.t in extract_constants(value) or bool(
            set(ufl.algorithms.extract_coefficients(value)) - static
        )
        cells = mesh.compute_incident_entities(topology, facets, fdim, topology.dim)
        self.boundary_values.append(BoundaryValue(function, value, cells, evolving))
        if bc.component is None:
            return fem.dirichletbc(function, dofs)
        return fem.dirichletbc(function, dofs, space)

    def compile(self, solver_spec: Any) -> None:
        """JIT-compile the forms and create the solver."""
        for value in self.boundary_values:
            value.compile()
        self.solver = make_solver(self.system, solver_spec, self.name)

    def solve(self) -> SolveReport:
        """Solve for the group's unknowns at the time the scheme is prepared for."""
        for value in self.boundary_values:
            if value.evolving:
                value.update()
        return self.solver.solve()
