"""Tagged facets as (cell, local facet) pairs: boundaries that need no facet numbering.

DOLFINx numbers a mesh's facets only when something creates them (``create_entities(tdim - 1)``),
and on a large mesh that is most of the cost of reading it from the mesh cache (3.2 s of a 4 s
read at 1M cells). Most of what a case does with its boundaries needs no facet numbers: a
Dirichlet condition needs the dofs of each boundary facet's cell at the element's closure dofs of
that facet, and an exterior facet integral is given to DOLFINx as (cell, local facet) pairs
anyway. :class:`FacetTags` holds a mesh's boundary tags in that form:

* :meth:`FacetTags.pairs`: every local facet of a tag (owned and ghost), as one (cell, local
  facet) pair each: where dofs are located (:func:`closure_dofs`);
* :meth:`FacetTags.integrated_pairs`: the pairs DOLFINx integrates exterior facet tags over
  (each facet on the one rank that owns it), and :meth:`FacetTags.exterior` those of every
  exterior facet (``ds`` everywhere);
* :meth:`FacetTags.meshtags`: the tags as DOLFINx ``MeshTags`` of facet numbers, for everything
  else (interfaces ``dS``, boundary meshes, extensions): the facets are created on first use.

A built mesh with conditions on facets has its facets, and its tags are made from them
(:meth:`FacetTags.from_meshtags`); a built-in box's sides are found without them
(app/box_sides.py); the mesh cache stores the arrays (:meth:`FacetTags.arrays`) and a mesh read
from it starts with no facets at all (:meth:`FacetTags.from_arrays`).
"""

from __future__ import annotations

import numpy as np
from dolfinx import cpp, fem, la
from dolfinx import mesh as dmesh

_ARRAYS = ("cells", "local", "values", "integrated", "exterior")
#: The names :meth:`FacetTags.arrays` stores them under (the mesh cache checks an entry has them).
SAVED_ARRAYS = tuple(f"facet_{name}" for name in _ARRAYS)


class FacetTags:
    """A mesh's tagged facets as (cell, local facet) pairs.

    Args:
        msh: The mesh.
        cells, local, values: One pair per local tagged facet (owned and ghost) and its tag.
        integrated: Which pairs DOLFINx integrates an exterior facet integral over (a mask).
        exterior: The flat (cell, local facet) pairs of every exterior facet this rank
            integrates.
        tags: The facet-numbered tags, when the facets exist already (else made on first use).
    """

    def __init__(
        self,
        msh: dmesh.Mesh,
        cells: np.ndarray,
        local: np.ndarray,
        values: np.ndarray,
        integrated: np.ndarray,
        exterior: np.ndarray,
        tags: dmesh.MeshTags | None = None,
    ):
        self.mesh = msh
        self._cells = np.asarray(cells, dtype=np.int32)
        self._local = np.asarray(local, dtype=np.int32)
        self.values = np.asarray(values, dtype=np.int32)
        self._integrated = np.asarray(integrated, dtype=bool)
        self._exterior = np.asarray(exterior, dtype=np.int32)
        self._tags = tags

    @classmethod
    def from_meshtags(cls, msh: dmesh.Mesh, tags: dmesh.MeshTags) -> FacetTags:
        """The pairs of the facet tags ``tags`` of ``msh``, whose facets exist."""
        topology = msh.topology
        tdim = topology.dim
        topology.create_connectivity(tdim - 1, tdim)
        topology.create_connectivity(tdim, tdim - 1)
        facets, values = tags.indices, tags.values
        to_cells = topology.connectivity(tdim - 1, tdim)
        cell_facets = topology.connectivity(tdim, tdim - 1)
        per_cell = cpp.mesh.cell_num_entities(topology.cell_type, tdim - 1)
        cells = to_cells.array[to_cells.offsets[facets]]
        local = np.argmax(cell_facets.array.reshape(-1, per_cell)[cells] == facets[:, None], axis=1)
        outside = cpp.mesh.exterior_facet_indices(topology._cpp_object)
        kind = fem.IntegralType.exterior_facet
        owned_exterior = np.zeros(topology.index_map(tdim - 1).size_local, dtype=bool)
        owned_exterior[outside] = True
        integrated = np.zeros(len(facets), dtype=bool)
        owned = facets < len(owned_exterior)
        integrated[owned] = owned_exterior[facets[owned]]
        exterior = cpp.fem.compute_integration_domains(kind, topology._cpp_object, outside)
        return cls(msh, cells, local, values, integrated, np.asarray(exterior), tags)

    @classmethod
    def from_arrays(cls, msh: dmesh.Mesh, arrays: dict[str, np.ndarray]) -> FacetTags:
        """The tags :meth:`arrays` stored, on the same mesh (cells numbered as they were)."""
        return cls(msh, *(arrays[name] for name in SAVED_ARRAYS))

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything this holds but the mesh, by name (for the mesh cache)."""
        held = (self._cells, self._local, self.values, self._integrated, self._exterior)
        return dict(zip(SAVED_ARRAYS, held, strict=True))

    def pairs(self, value: int) -> np.ndarray:
        """Every local facet (owned and ghost) tagged ``value``: (cell, local facet) rows."""
        chosen = self.values == value
        return np.stack([self._cells[chosen], self._local[chosen]], axis=1)

    def integrated_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """The (cell, local facet) rows and tags of every exterior tagged facet integrated
        here."""
        chosen = self._integrated
        return np.stack([self._cells[chosen], self._local[chosen]], axis=1), self.values[chosen]

    def exterior(self) -> np.ndarray:
        """The flat (cell, local facet) pairs of every exterior facet integrated on this rank
        (tagged or not)."""
        return self._exterior

    def meshtags(self) -> dmesh.MeshTags:
        """The tags by facet number; the mesh's facets are created on the first call."""
        if self._tags is None:
            topology = self.mesh.topology
            tdim = topology.dim
            topology.create_connectivity(tdim, tdim - 1)
            topology.create_connectivity(tdim - 1, tdim)  # as a built mesh has it
            per_cell = cpp.mesh.cell_num_entities(topology.cell_type, tdim - 1)
            cell_facets = topology.connectivity(tdim, tdim - 1).array.reshape(-1, per_cell)
            facets = cell_facets[self._cells, self._local]
            order = np.argsort(facets)
            self._tags = dmesh.meshtags(self.mesh, tdim - 1, facets[order], self.values[order])
            self._tags.name = "facet_tags"
        return self._tags


def closure_dofs(space: fem.FunctionSpace, pairs: np.ndarray) -> np.ndarray:
    """The dofs of ``space`` on the closure of the facets ``pairs`` ((cell, local facet) rows),
    owned and ghost, sorted: what ``fem.locate_dofs_topological`` gives for those facets (its
    ``remote`` default included: a dof this rank holds through a cell beside no such facet of
    its own is found by the rank that has the facet)."""
    dofmap = space.dofmap
    tdim = space.mesh.topology.dim
    per_cell = cpp.mesh.cell_num_entities(space.mesh.topology.cell_type, tdim - 1)
    layout = dofmap.dof_layout
    closure = np.array([layout.entity_closure_dofs(tdim - 1, i) for i in range(per_cell)])
    if closure.size == 0:
        return np.empty(0, dtype=np.int32)
    cell_dofs = dofmap.list[pairs[:, 0]] if len(pairs) else np.empty((0, 0), np.int32)
    found = (
        np.take_along_axis(cell_dofs, closure[pairs[:, 1]], axis=1).ravel()
        if len(pairs)
        else np.empty(0, dtype=np.int32)
    )
    # Entries of the dofmap are blocks of dofmap.bs; a subspace's are unrolled dofs.
    marker = la.vector(dofmap.index_map, dofmap.index_map_bs // dofmap.bs)
    marker.array[found] = 1.0
    marker.scatter_reverse(la.InsertMode.add)
    marker.scatter_forward()
    return np.flatnonzero(marker.array).astype(np.int32)
