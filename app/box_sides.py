"""The sides of a built-in box as (cell, local facet) pairs, found without creating facets.

Why it exists: tagging the sides of a box through DOLFINx's facets means creating them
(``create_connectivity(tdim - 1, tdim)``), about a fifth of building a 1M-vertex box on one rank,
and the part of the build that gains least from a second rank (facets on the ranks' shared plane
are matched by messages). A box's side is a plane, so a cell's local facet lies on a side exactly
when all of that facet's vertices do: :func:`box_sides` finds the pairs from the vertex
coordinates alone, as :class:`app.facet_tags.FacetTags`, which is all that boundary conditions
and ``ds`` need (a mesh read from the mesh cache has the same; app/facetless_forms.py builds its
forms). Whatever needs facet numbers later (an interface, a boundary mesh) creates them on first
use.

Each exterior facet lies in one cell, so the rank owning that cell integrates it; the pairs of
ghost cells are kept for locating dofs.
"""

from __future__ import annotations

import numpy as np
from dolfinx import cpp
from dolfinx import mesh as dmesh
from mpi4py import MPI

from app.facet_tags import FacetTags

# Relative to the box's size: how far from a side a vertex generated on it may lie.
_TOLERANCE = 1e-10


def box_sides(
    msh: dmesh.Mesh, origin: np.ndarray, lengths: np.ndarray, sides: list[tuple[int, int]]
) -> tuple[FacetTags, list[int]]:
    """The facets of ``msh`` on each side of the box ``origin`` + [0, ``lengths``].

    Collective (the counts are global).

    Args:
        msh: A mesh of the box with straight cells (geometry of degree 1) and no facets.
        origin, lengths: The box's lowest corner and its extent per axis.
        sides: (axis, end) per side, end 0 at ``origin``, 1 at the far end; side i gets tag
            i + 1.

    Returns:
        The pairs, tagged, and the global number of facets of each side.
    """
    topology, geometry = msh.topology, msh.geometry
    tdim = topology.dim
    nodes = geometry.dofmaps[0]  # straight cells: the cell's vertices in their local order
    x = geometry.x
    tolerance = _TOLERANCE * float(np.max(lengths))
    facet_vertices = cpp.mesh.get_entity_vertices(topology.cell_type, tdim - 1)
    local_facets = [facet_vertices.links(i) for i in range(facet_vertices.num_nodes)]
    on_side = [
        np.abs(x[:, axis] - (origin[axis] + end * lengths[axis])) <= tolerance
        for axis, end in sides
    ]
    # Only cells with a facet's worth of boundary vertices can have a facet on a side.
    on_any = np.logical_or.reduce(on_side)
    touching = np.flatnonzero(on_any[nodes].sum(axis=1) >= len(local_facets[0]))
    corners = nodes[touching]
    cells, local, values = [], [], []
    for tag, flags in enumerate(on_side, start=1):
        flagged = flags[corners]
        for index, vertices in enumerate(local_facets):
            hit = touching[flagged[:, vertices].all(axis=1)]
            cells.append(hit)
            local.append(np.full(len(hit), index, dtype=np.int32))
            values.append(np.full(len(hit), tag, dtype=np.int32))
    cells, local, values = (np.concatenate(a).astype(np.int32) for a in (cells, local, values))
    order = np.lexsort((local, cells))
    cells, local, values = cells[order], local[order], values[order]
    integrated = cells < topology.index_map(tdim).size_local
    exterior = np.stack([cells[integrated], local[integrated]], axis=1).ravel()
    counts = np.bincount(values[integrated], minlength=len(sides) + 1)[1:]
    counts = msh.comm.allreduce(counts, op=MPI.SUM)
    return FacetTags(msh, cells, local, values, integrated, exterior), [int(c) for c in counts]
