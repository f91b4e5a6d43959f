"""Dirichlet conditions: the values plug-ins prescribe on boundaries, as DOLFINx conditions.

A value is a number, a constant (a protocol may set it) or an expression of x, t and fields,
evaluated at the boundary's nodes whenever it can change. Each condition also has a time
derivative, which the rates at an instant (app/rates.py) prescribe on the same dofs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import ufl
from dolfinx import fem
from ufl.algorithms.analysis import extract_constants

from app.context import unknown_fixable
from app.contracts import Dirichlet
from app.domains import Domains, Evaluation
from app.errors import CaseError
from app.fields import Field
from app.meshing import MeshData
from app.non_finite import non_finite


@dataclass
class BoundaryValue:
    """A Dirichlet value given as an expression, evaluated where the condition needs it."""

    function: fem.Function
    expression: Any
    cells: np.ndarray
    evolving: bool
    update: Any = None
    origin: tuple[str, Dirichlet, Any] | None = None  # (instance, condition, t): checked values

    def compile(self, domains: Domains) -> None:
        on_parent = all(
            t.function_space.mesh is domains.parent
            for t in ufl.algorithms.extract_coefficients(self.expression)
        )
        if on_parent and self.function.function_space.mesh is domains.parent:
            # Only the cells at the boundary: cheap enough to redo every step.
            points = self.function.function_space.element.interpolation_points
            compiled = fem.Expression(self.expression, points)
            evaluate = lambda: self.function.interpolate(compiled, cells0=self.cells)  # noqa: E731
        else:  # a field on a region, or a value reading one
            evaluate = Evaluation(self.expression, self.function, domains)
        self.update = evaluate if self.origin is None else lambda: self._checked(evaluate)
        self.update()

    def _checked(self, evaluate: Any) -> None:
        """Evaluate, then refuse a value that is not finite (collective): the solve would
        fail on it at every step size down to dt_min, which is the case's error, not the
        solver's (1/(y - 0.05) on a boundary through y = 0.05)."""
        evaluate()
        instance, bc, t = self.origin
        problem = non_finite([self.function], [bc.field])
        if problem:
            raise CaseError(
                f"physics.{instance}",
                f"the value fixed on boundary '{bc.boundary}' at t = {float(t.value):g} s is "
                f"not finite: {problem}",
                f"the expression physics.{instance} gives for boundary '{bc.boundary}' is "
                "undefined there (a division by zero, the log or sqrt of a negative number); "
                "guard it, e.g. 'a/b if b != 0 else 0'",
            )


@dataclass
class FixedValue:
    """A plug-in's Dirichlet condition as built, with what it was built from.

    Attributes:
        field: Name of the field it fixes.
        condition: The DOLFINx condition.
        value: The value: a ``fem.Constant`` or a UFL expression.
        dofs: The located dofs (pairs of (sub)space and collapsed dofs for a component).
        space: The space (or subspace of a component) it acts on.
        target: The space of its value.
        component: The component it fixes, or None for the whole field.
        cells: Cells touching the boundary (where an expression is evaluated).
        expression: How an expression value is evaluated (None for a constant).
    """

    field: str
    condition: fem.DirichletBC
    value: Any
    dofs: Any
    space: fem.FunctionSpace
    target: fem.FunctionSpace
    component: int | None
    cells: np.ndarray
    expression: BoundaryValue | None

    def rate(self, t: fem.Constant) -> tuple[fem.DirichletBC, BoundaryValue | None]:
        """The condition du/dt = dg/dt on the same dofs, and how its value is evaluated."""
        rate = 0.0
        if not isinstance(self.value, fem.Constant):  # a constant changes only between stages
            moving = ufl.variable(t)
            derivative = ufl.diff(ufl.replace(self.value, {t: moving}), moving)
            rate = ufl.algorithms.expand_derivatives(derivative)
        if isinstance(rate, float | ufl.constantvalue.Zero):
            where = self.target.mesh
            zero = fem.Constant(where, np.zeros(self.target.value_shape))
            dofs = self.dofs if self.component is None else self.dofs[0]
            return fem.dirichletbc(zero, dofs, self.space), None
        if not ufl.domain.extract_domains(rate):  # a number (of t alone): give it its mesh
            rate = rate * fem.Constant(self.target.mesh, 1.0)
        function = fem.Function(self.target)
        value = BoundaryValue(function, rate, self.cells, evolving=True)
        if self.component is None:
            return fem.dirichletbc(function, self.dofs), value
        return fem.dirichletbc(function, self.dofs, self.space), value


def fixed_value(
    bc: Dirichlet,
    field: Field,
    mesh_data: MeshData,
    domains: Domains,
    t: Any,
    static: set,
    instance: str = "",
) -> FixedValue:
    """Build a plug-in's Dirichlet condition on the space of ``field``; an expression value
    of ``instance`` is checked to be finite at each evaluation.

    Raises:
        BadValue: The boundary (or point or edge set) is unknown.
    """
    if bc.boundary not in mesh_data.fixable:
        raise unknown_fixable(bc.boundary, mesh_data)
    where = field.space.mesh
    # Dofs on a facet, edge or vertex: each rank finds those of its own entities, and the copies
    # other ranks hold are added (remote), so a shared dof is fixed everywhere.
    if bc.component is None:
        space = target = field.space
        dofs, cells = domains.locate(space, bc.boundary)
    else:
        space = field.space.sub(bc.component)
        target, parent_maps = space.collapse()  # a new-to-old map per cell type: one here
        parent_dofs = np.concatenate(parent_maps)
        located, cells = domains.locate(space, bc.boundary)
        index_map = space.dofmap.index_map
        local = (index_map.size_local + index_map.num_ghosts) * space.dofmap.index_map_bs
        collapsed = np.full(local, -1, dtype=np.int32)
        collapsed[parent_dofs] = np.arange(len(parent_dofs), dtype=np.int32)
        dofs = [located, collapsed[located]]
    value, expression = bc.value, None
    if isinstance(value, int | float):
        value = fem.Constant(where, np.full(target.value_shape, float(value)))
    if isinstance(value, fem.Constant):
        condition = fem.dirichletbc(value, dofs if bc.component is None else dofs[0], space)
    else:
        function = fem.Function(target)
        evolving = t in extract_constants(value) or bool(
            set(ufl.algorithms.extract_coefficients(value)) - static
        )
        origin = (instance, bc, t) if instance else None
        expression = BoundaryValue(function, value, cells, evolving, origin=origin)
        if bc.component is None:
            condition = fem.dirichletbc(function, dofs)
        else:
            condition = fem.dirichletbc(function, dofs, space)
    return FixedValue(
        bc.field, condition, value, dofs, space, target, bc.component, cells, expression
    )


def pinned(field: Field, domains: Domains) -> FixedValue:
    """Zero on the dofs of a field on part of a boundary's mesh (``Field.parts``) that no cell
    of its part holds: where the field does not live. A dof counts as held when any rank's cell
    of the part holds it, so every rank fixes the same dofs."""
    space, cells = field.space, field.part_cells(domains)
    dofs = np.flatnonzero(~field.held(domains)).astype(np.int32)
    zero = fem.Constant(space.mesh, np.zeros(space.value_shape))
    condition = fem.dirichletbc(zero, dofs, space)
    return FixedValue(field.spec.name, condition, zero, dofs, space, space, None, cells, None)
