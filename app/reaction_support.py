"""A form tested with an indicator, integrated only where the indicator is not zero.

A reaction (app/quantities.py) is a residual form tested with the indicator of a boundary's
degrees of freedom: 1 there, 0 elsewhere. Every cell that holds none of those dofs contributes
exactly zero, yet a form integrates every cell: for a face of a 3D box, a hundred times more
cells than the ones that count. :meth:`Support.restrict` gives the same form with each
integral's cells and facets cut down to the *support* (the cells holding a dof where the
indicator is not zero, ghost cells included, and their facets), so the value is the same sum of
the same cell contributions without the zeros, at a cost that follows the boundary, not the
volume. Each integral keeps its own subdomain: its integration entities are those DOLFINx
would integrate, filtered to the support.

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
    """The cells (and their facets) holding a dof where an indicator is not zero.

    Args:
        indicator: A function that is zero outside a few dofs (it must not change after).
    """

    def __init__(self, indicator: fem.Function):
        self.indicator = indicator
        self._masks: dict[str, np.ndarray] | None = None

    def masks(self) -> dict[str, np.ndarray]:
        """Which local cells and facets (owned and ghost) are in the support, by integral
        type; found on first use and kept (forms of several kinds share them)."""
        if self._masks is None:
            cells = _support_cells(self.indicator)
            mesh = self.indicator.function_space.mesh
            self._masks = {"cell": cells, "exterior_facet": _facets_of(mesh, cells)}
        return self._masks

    def restrict(self, form: ufl.Form) -> ufl.Form:
        """``form`` integrated only over the support; ``form`` itself when it has integrals
        this does not cover (see the module docstring)."""
        mesh = self.indicator.function_space.mesh
        integrals = form.integrals()
        domains = {integral.ufl_domain() for integral in integrals}
        covered = all(integral.integral_type() in _TYPES for integral in integrals)
        if not covered or domains != {mesh.ufl_domain()}:
            return form
        originals = [_original_entities(mesh, integral) for integral in integrals]
        if any(entities is None for entities in originals):
            return form
        support = self.masks()
        restricted, data = [], {kind: [] for kind in _TYPES}
        for integral, entities in zip(integrals, originals, strict=True):
            kind = integral.integral_type()
            entities = entities[support[kind][entities]].astype(np.int32)
            domain = cpp.fem.compute_integration_domains(
                _TYPES[kind], mesh.topology._cpp_object, entities
            )
            identifier = len(data[kind])
            data[kind].append((identifier, np.asarray(domain)))
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


def _facets_of(mesh: Any, cells: np.ndarray) -> np.ndarray:
    """Which local facets belong to the cells of the mask ``cells`` (a mask)."""
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim, tdim - 1)
    cell_facets = mesh.topology.connectivity(tdim, tdim - 1)
    facets = np.zeros(_local_count(mesh, tdim - 1), dtype=bool)
    facets[cell_facets.array[np.repeat(cells, np.diff(cell_facets.offsets))]] = True
    return facets


def _original_entities(mesh: Any, integral: ufl.Integral) -> np.ndarray | None:
    """The cells or facets DOLFINx integrates ``integral`` over (before the owned filter of
    ``compute_integration_domains``), or None for subdomain data given as integration
    entities already (not meshtags)."""
    tdim = mesh.topology.dim
    kind = integral.integral_type()
    identifier = integral.subdomain_id()
    exterior = None
    if kind == "exterior_facet":
        mesh.topology.create_connectivity(tdim - 1, tdim)
        exterior = cpp.mesh.exterior_facet_indices(mesh.topology._cpp_object)
    if identifier == "everywhere":
        if kind == "cell":
            return np.arange(_local_count(mesh, tdim), dtype=np.int32)
        return exterior
    tags = integral.subdomain_data()
    if tags is None:
        return np.empty(0, dtype=np.int32)  # DOLFINx integrates an untagged id over nothing
    if not hasattr(tags, "find"):
        return None
    entities = tags.find(identifier)
    if exterior is None:
        return entities
    is_exterior = np.zeros(_local_count(mesh, tdim - 1), dtype=bool)
    is_exterior[exterior] = True
    return entities[is_exterior[entities]]


def _local_count(mesh: Any, dim: int) -> int:
    """The number of local entities of a dimension, owned and ghost."""
    index_map = mesh.topology.index_map(dim)
    return index_map.size_local + index_map.num_ghosts
