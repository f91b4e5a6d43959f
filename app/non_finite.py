"""Where a field stopped being finite: the report of a diverging run.

A non-finite value (nan, inf) is located the same way on any partition: among the non-finite
nodes of all ranks, the one with the smallest coordinates (x, then y, then z) is reported, with
the rank that owns it and how many values of the field are not finite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from dolfinx import fem
from dolfinx import mesh as dmesh
from mpi4py import MPI

from app.case_values import Formula, PerRegion
from app.errors import CaseError
from app.expressions import ExpressionError
from app.parameters import walk_values


def non_finite(functions: Sequence[fem.Function], names: Sequence[str], what: str = "") -> str:
    """A description of the first field with a non-finite value, e.g. ``"field 'T' is nan at
    (0.25, 0.5) on rank 1 (12 of 441 values)"``; "" when every value is finite (collective).

    Args:
        functions: The functions to look at, in order.
        names: Their field names.
        what: Words before the field ("the residual of ").
    """
    for function, name in zip(functions, names, strict=True):
        found = _first(function)
        if found is not None:
            return _described(found, name, what)
    return ""


def _described(found: tuple, name: str, what: str = "") -> str:
    value, point, rank, count, total = found
    where = f"at ({', '.join(f'{c:.6g}' for c in point)})" if point else "(global value)"
    return f"{what}field '{name}' is {value} {where} on rank {rank} ({count} of {total} values)"


def initial_state_error(fields: Sequence[Any], sim: Any, t: float):
    """The case error of the first of ``fields`` (with ``spec`` and ``function``) not finite
    in the state at ``t``: at the property of the instance providing it that is undefined
    where the field is first not finite (one of x, y, z, t and the parameter set's
    constants), else at the instance; None when all are finite (collective: every rank
    finds the same field and point). ``sim``: the Simulation (its graph, physics and set)."""
    for field in fields:
        found = _first(field.function)
        if found is None:
            continue
        problem = _described(found, field.spec.name)
        instance = sim.graph.providers[field.spec.name][0]
        table = sim.loaded.parameters
        constants = table.values() if table is not None else {}
        named = _undefined_property(sim.physics[instance], found[1], t, constants)
        if named is not None:
            path, source = named
            return CaseError(
                f"physics.{instance}.{path}",
                f"'{source}' is not defined at t = {t:g} s where {problem}",
                "guard it where it is undefined (a division by zero, the log or sqrt of a "
                "negative number), e.g. 'sqrt(x - 1) if x > 1 else 0'",
            )
        return CaseError(
            f"physics.{instance}",
            f"the initial state at t = {t:g} s, before any step, is not finite: {problem}",
            f"an initial value of physics.{instance}, or a property that field is computed "
            "from, is undefined there (a division by zero, the log or sqrt of a negative "
            "number); guard it, e.g. 'a/b if b != 0 else 0'",
        )
    return None


def _undefined_property(
    plugin: Any, point: tuple[float, ...], t: float, constants: Mapping[str, float]
) -> tuple[str, str] | None:
    """(path, expression) of the first expression among ``plugin``'s parameters that reads
    only x, y, z, t and constants and is undefined (or not finite) at ``point``; None when
    there is none (a property that reads fields is left to the field's message). Boundary
    conditions and a region's entry hold elsewhere than at any point: they are not asked."""
    if not point:  # a global value: no place to evaluate at
        return None
    env = {**constants, **dict(zip("xyz", (*point, 0.0, 0.0), strict=False)), "t": t}
    by_region: list[str] = []
    for path, value in walk_values(plugin.params):
        if isinstance(value, PerRegion):
            by_region.append(f"{path}.")
        local = "boundaries" in path.split(".") or path.startswith(tuple(by_region))
        if local or not isinstance(value, Formula) or not value.names <= env.keys():
            continue
        try:
            result = float(value.expression.evaluate(env))
        except ExpressionError:
            return path, value.expression.source
        if not math.isfinite(result):
            return path, value.expression.source
    return None


def derived_state_error(sim: Any, t: float):
    """The case error of the first derived field of ``sim.store`` not finite in the current
    state (each evaluated first), as :func:`initial_state_error` says it; None when all are
    finite (collective)."""
    derived = [f for f in sim.store if f.evaluation is not None and f.internal is None]
    for target in derived:
        target.refresh()
    return initial_state_error(derived, sim, t)


def _first(function: fem.Function) -> tuple[str, tuple[float, ...], int, int, int] | None:
    """(nan/inf, coordinates, owning rank, non-finite count, value count) of the reported
    non-finite value of ``function``, or None (collective)."""
    space = function.function_space
    comm = space.mesh.comm
    index_map, block = space.dofmap.index_map, space.dofmap.index_map_bs
    owned = function.x.array[: index_map.size_local * block]
    bad = np.flatnonzero(~np.isfinite(owned))
    count = comm.allreduce(len(bad), op=MPI.SUM)
    if count == 0:
        return None
    mine = None
    if len(bad):
        value = "nan" if np.isnan(owned[bad]).any() else "inf"
        mine = (_position(space, bad // block), comm.rank, value)
    point, rank, value = min(found for found in comm.allgather(mine) if found is not None)
    return value, point, rank, count, index_map.size_global * block


def _position(space: Any, nodes: np.ndarray) -> tuple[float, ...]:
    """The smallest coordinates among ``nodes`` (of the node itself, or of its cell's midpoint
    for values at quadrature points); () for a real (global) space."""
    element = space.ufl_element()
    msh = space.mesh
    gdim = msh.geometry.dim
    if element.family_name == "Real":
        return ()
    if element.is_quadrature:
        per_cell = space.dofmap.list.shape[1]
        cells = np.unique(nodes // per_cell).astype(np.int32)
        points = dmesh.compute_midpoints(msh, msh.topology.dim, cells)[:, :gdim]
    else:
        points = space.tabulate_dof_coordinates()[nodes, :gdim]
    order = np.lexsort(points.T[::-1])
    return tuple(float(c) for c in points[order[0]])
