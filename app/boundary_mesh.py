"""The named mesh of a boundary: a facet submesh with regions and boundaries of its own.

A plug-in instance placed on a boundary (``domain = "top"``) solves on the submesh of that
boundary's facets as on any mesh: its ``dx`` integrates over the facets, its ``ds`` over the
submesh's own boundary. Both are named from the parent, so a case reads the same names:

* regions: each facet inherits the region of the parent cell beside it. The ``top`` (r = 1)
  line of a pseudo-2D (x, r) battery mesh is the cell's through-thickness line, with the
  negative electrode, the separator and the positive electrode as its regions;
* boundaries: an exterior facet of the submesh (an end point of a line, an edge of a surface)
  takes the name of the parent's exterior boundary it lies on: the ends of ``top`` lie on
  ``left`` and ``right``, the current collectors. Facets on none stay unnamed.

The result is a :class:`app.meshing.MeshData`, so contexts, measures, conditions and output
treat the boundary's mesh like the parent's.
"""

from __future__ import annotations

import numpy as np
from dolfinx import mesh as dmesh

from app import mesh_sets
from app.facet_tags import FacetTags
from app.meshing import MeshData


def boundary_mesh_data(
    parent: MeshData,
    name: str,
    submesh: dmesh.Mesh,
    cell_map: dmesh.EntityMap,
    vertex_map: dmesh.EntityMap,
) -> MeshData:
    """The named mesh of the boundary ``name`` (its facet submesh, with its maps)."""
    msh, tdim = parent.mesh, parent.mesh.topology.dim
    sub_dim = submesh.topology.dim
    cell_index = submesh.topology.index_map(sub_dim)
    local = np.arange(cell_index.size_local + cell_index.num_ghosts, dtype=np.int32)
    facets = cell_map.sub_topology_to_topology(local, inverse=False)
    msh.topology.create_connectivity(tdim - 1, tdim)
    to_cells = msh.topology.connectivity(tdim - 1, tdim)
    parent_regions = mesh_sets.tag_values(msh, tdim, parent.cell_tags)
    cells = np.array([parent_regions[to_cells.links(f)[0]] for f in facets], dtype=np.int32)
    regions = dict(parent.regions)
    region_cells = mesh_sets.keep_used(submesh, sub_dim, cells, regions)[0]

    sides = _sides(parent, name, submesh, vertex_map)
    boundaries = {
        side: tag
        for side, tag in parent.boundaries.items()
        if side != name and side not in parent.interior_boundaries
    }
    boundary_facets = mesh_sets.keep_used(submesh, sub_dim - 1, sides, boundaries)[0]
    no_vertices = np.zeros(submesh.topology.index_map(0).size_local, dtype=np.int32)
    return MeshData(
        mesh=submesh,
        cell_tags=mesh_sets.meshtags(submesh, sub_dim, cells, "cell_tags"),
        facets=FacetTags.from_meshtags(
            submesh, mesh_sets.meshtags(submesh, sub_dim - 1, sides, "facet_tags")
        ),
        regions=regions,
        boundaries=boundaries,
        interior_boundaries=frozenset(),
        description=f"the facets of boundary '{name}'",
        region_cells=region_cells,
        boundary_facets=boundary_facets,
        vertex_tags=mesh_sets.meshtags(submesh, 0, no_vertices, "point_tags"),
        points={},
        point_vertices={},
        edge_tags=None,
        edges={},
        edge_counts={},
    )


def _sides(
    parent: MeshData, name: str, submesh: dmesh.Mesh, vertex_map: dmesh.EntityMap
) -> np.ndarray:
    """The parent boundary tag of every local facet of the submesh (0: none): the exterior
    boundary, other than ``name``, of a parent facet holding all of the facet's vertices."""
    msh, tdim = parent.mesh, parent.mesh.topology.dim
    sub_dim = submesh.topology.dim
    submesh.topology.create_connectivity(sub_dim - 1, sub_dim)
    submesh.topology.create_connectivity(sub_dim - 1, 0)
    index = submesh.topology.index_map(sub_dim - 1)
    sides = np.zeros(index.size_local + index.num_ghosts, dtype=np.int32)
    own, interior = (
        parent.boundaries[name],
        {parent.boundaries[n] for n in parent.interior_boundaries},
    )
    facet_tags = mesh_sets.tag_values(msh, tdim - 1, parent.facet_tags)
    msh.topology.create_connectivity(0, tdim - 1)
    msh.topology.create_connectivity(tdim - 1, 0)
    vertex_facets = msh.topology.connectivity(0, tdim - 1)
    facet_vertices = msh.topology.connectivity(tdim - 1, 0)
    to_vertices = submesh.topology.connectivity(sub_dim - 1, 0)
    for facet in dmesh.exterior_facet_indices(submesh.topology):
        vertices = vertex_map.sub_topology_to_topology(to_vertices.links(facet), inverse=False)
        for candidate in sorted(vertex_facets.links(vertices[0])):
            tag = facet_tags[candidate]
            if tag in (0, own) or tag in interior:
                continue
            if set(vertices) <= set(facet_vertices.links(candidate)):
                sides[facet] = tag if sides[facet] == 0 else min(sides[facet], tag)
    return sides
