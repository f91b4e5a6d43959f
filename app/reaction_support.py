"""A form tested with an indicator, integrated only where the indicator is not zero.

A reaction (app/quantities.py) is a residual form tested with the indicator of a boundary's
degrees of freedom: 1 there, 0 elsewhere. Every cell that holds none of those dofs contributes
exactly zero, yet a form integrates every cell: for a face of a 3D box, a hundred times more
cells than the ones that count. :meth:`Support.restrict` gives the same form with each
integral's cells and facets cut down to the *support* (the cells holding a dof where the
indicator is not zero, ghost cells included, and the exterior facets of those cells), so the
value is the same sum of the same cell contributions without the zeros, at a cost that follows
the boundary, not the volume. Each integral keeps its own subdomain: its integration entities
are those DOLFINx would integrate, filtered to the support.

Forms this does not cover (interior-facet, vertex or ridge integrals, an integral over another
mesh than the indicator's) are returned unchanged: the reaction is then integrated everywhere,
as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ufl
from dolfinx import cpp, fem
from dolfinx.fem import IntegralType

_TYPES = {"cell": IntegralType.cell, "exterior_facet": IntegralType.exterior_facet}


class Support:
    """The cells holding a dof where an indicator is not zero.

    Args:
        indicator: A function that is zero outside a few dofs (it must not change after).
    """

    def __init__(self, indicator: fem.Function):
        self.indicator = indicator
        self._cells: np.ndarray | None = None

    def cells(self) -> np.ndarray:
        """Which local cells (owned and ghost) are in the support (a mask); found on first use
        and kept (forms of several kinds share it)."""
        if self._cells is None:
            self._cells = _support_cells(self.indicator)
        return self._cells

    def restrict(self, form: ufl.Form) -> ufl.Form:
        """``form`` integrated only over the support; ``form`` itself when it has integrals
        this does not cover (see the module docstring)."""
        mesh = self.indicator.function_space.mesh
        integrals = form.integrals()
        domains = {integral.ufl_domain() for integral in integrals}
        covered = all(integral.integral_type() in _TYPES for integral in integrals)
        if not covered or domains != {mesh.ufl_domain()}:
            return form
        support = self.cells()
        restricted, data = [], {kind: [] for kind in _TYPES}
        for integral in integrals:
            kind = integral.integral_type()
            # A facet integral's entities are (cell, local facet) pairs: kept by their cell.
            width = 1 if kind == "cell" else 2
            entities = _integration_entities(mesh, integral).reshape(-1, width)
            entities = entities[support[entities[:, 0]]]
            identifier = len(data[kind])
            data[kind].append((identifier, np.ascontiguousarray(entities.ravel())))
            restricted.append((integral, identifier))
        measures = {
            kind: ufl.Measure(kind, domain=mesh, subdomain_data=data[kind]) for kind in _TYPES
        }
        result = None
        for integral, identifier in restricted:
            measure = measures[integral.integral_type()](identifier, metadata=integral.metadata())
            term = integral.integrand() * measure
            result = term if result is None else result + term
        return result


def _support_cells(indicator: fem.Function) -> np.ndarray:
    """Which local cells (owned and ghost) hold a dof where ``indicator`` is not zero (a mask;
    masks, not sorted index sets, since numpy's set operations cost seconds on a large mesh)."""
    space = indicator.function_space
    block = space.dofmap.index_map_bs
    nonzero = (indicator.x.array.reshape(-1, block) != 0).any(axis=1)
    return nonzero[space.dofmap.list].any(axis=1)


def _integration_entities(mesh: Any, integral: ufl.Integral) -> np.ndarray:
    """What DOLFINx integrates ``integral`` over: owned cells, or the flat (cell, local facet)
    pairs of exterior facets, from meshtags or from integration entities given as such."""
    tdim = mesh.topology.dim
    kind = integral.integral_type()
    identifiers = integral.subdomain_id()
    identifiers = identifiers if isinstance(identifiers, tuple) else (identifiers,)
    data = integral.subdomain_data()
    if "everywhere" in identifiers or "otherwise" in identifiers:
        if kind == "cell":
            entities = np.arange(_local_count(mesh, tdim), dtype=np.int32)
        else:
            mesh.topology.create_connectivity(tdim - 1, tdim)
            entities = cpp.mesh.exterior_facet_indices(mesh.topology._cpp_object)
        return _domain(mesh, kind, entities)
    if data is None:  # DOLFINx integrates an untagged id over nothing
        return np.empty(0, dtype=np.int32)
    if isinstance(data, list):  # integration entities already
        given = dict(data)
        return np.concatenate([np.asarray(given[i], dtype=np.int32) for i in identifiers])
    entities = np.concatenate([data.find(i) for i in identifiers])
    if kind == "exterior_facet":
        mesh.topology.create_connectivity(tdim - 1, tdim)
        exterior = cpp.mesh.exterior_facet_indices(mesh.topology._cpp_object)
        entities = np.intersect1d(entities, exterior)
    return _domain(mesh, kind, entities)


def _domain(mesh: Any, kind: str, entities: np.ndarray) -> np.ndarray:
    domain = cpp.fem.compute_integration_domains(
        _TYPES[kind], mesh.topology._cpp_object, np.sort(entities).astype(np.int32)
    )
    return np.asarray(domain, dtype=np.int32)


def _local_count(mesh: Any, dim: int) -> int:
    """The number of local entities of a dimension, owned and ghost."""
    index_map = mesh.topology.index_map(dim)
    return index_map.size_local + index_map.num_ghosts
