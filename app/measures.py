"""The measures of one mesh: cells by region, boundary facets by boundary and by region.

A form may mix integrals written by several plug-in contexts, and DOLFINx accepts one set of
subdomain data per integral type in a form. So every context on a mesh shares one
:class:`Measures` (kept by :class:`app.domains.Domains`), built once from the mesh's tags.

Exterior facets of a boundary that borders several regions (the ``top`` of a pseudo-2D (x, r)
mesh borders the negative electrode, the separator and the positive electrode) carry one id per
region they border, so that ``ds(boundary, region)`` integrates over the boundary's part on that
region's cells: where a particle that lives only in the negative electrode exchanges lithium
with the electrolyte. ``ds(boundary)`` integrates over all of its ids. A boundary bordering one
region keeps its tag as its only id, so forms over such boundaries are what they always were.
The ids of parts are the same on every rank (numbered from the tags known to all ranks).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import ufl
from dolfinx import mesh as dmesh

from app.mesh_sets import tag_values


class Measures:
    """The shared measures of a mesh with named regions and boundaries.

    Args:
        data: The mesh with its tags (a :class:`app.meshing.MeshData`).
    """

    def __init__(self, data):
        self.data = data
        msh = data.mesh
        self._parts = self._boundary_parts(data)
        self.part_of = {part: key for key, part in self._parts.items()}  # id -> (boundary, region)
        exterior = self._refined_facet_tags(data)
        self.dx = ufl.Measure("dx", domain=msh, subdomain_data=data.cell_tags)
        self._ds = ufl.Measure("ds", domain=msh, subdomain_data=exterior)
        self.dS = ufl.Measure("dS", domain=msh, subdomain_data=data.facet_tags)

    @staticmethod
    def _facet_regions(data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local exterior tagged facets, their boundary tag and the region tag of their cell."""
        msh, tdim = data.mesh, data.mesh.topology.dim
        msh.topology.create_connectivity(tdim - 1, tdim)
        to_cells = msh.topology.connectivity(tdim - 1, tdim)
        interior = {data.boundaries[name] for name in data.interior_boundaries}
        keep = ~np.isin(data.facet_tags.values, list(interior))
        facets, tags = data.facet_tags.indices[keep], data.facet_tags.values[keep]
        cell_values = tag_values(msh, tdim, data.cell_tags)
        cells = np.array([to_cells.links(f)[0] for f in facets], dtype=np.int32)
        return facets, tags, cell_values[cells] if len(cells) else cells

    def _boundary_parts(self, data) -> dict[tuple[int, int], int]:
        """The id of each (boundary tag, region tag) part of a boundary bordering several
        regions, from every rank's facets."""
        _, tags, regions = self._facet_regions(data)
        local = {(int(b), int(r)) for b, r in zip(tags, regions, strict=True)}
        pairs = sorted(set().union(*data.mesh.comm.allgather(local)))
        by_boundary: dict[int, list[int]] = {}
        for boundary, region in pairs:
            by_boundary.setdefault(boundary, []).append(region)
        start = max([*data.boundaries.values(), 0]) + 1
        parts, next_id = {}, start
        for boundary, regions in sorted(by_boundary.items()):
            for region in regions:
                if len(regions) == 1:
                    parts[boundary, region] = boundary
                else:
                    parts[boundary, region] = next_id
                    next_id += 1
        return parts

    def _refined_facet_tags(self, data) -> dmesh.MeshTags:
        facets, tags, regions = self._facet_regions(data)
        values = np.array(
            [self._parts[int(b), int(r)] for b, r in zip(tags, regions, strict=True)],
            dtype=np.int32,
        )
        order = np.argsort(facets)
        tdim = data.mesh.topology.dim
        return dmesh.meshtags(data.mesh, tdim - 1, facets[order], values[order])

    def ids(self, boundary: str, regions: Iterable[str] | None = None) -> tuple[int, ...]:
        """The ids of a boundary's facets (only those on the cells of ``regions``)."""
        tag = self.data.boundaries[boundary]
        wanted = None if regions is None else {self.data.regions[name] for name in regions}
        return tuple(
            part
            for (b, region), part in sorted(self._parts.items())
            if b == tag and (wanted is None or region in wanted)
        )

    def ds(self, boundary: str | None = None, regions: Iterable[str] | None = None) -> ufl.Measure:
        """The exterior facet measure: everywhere, of a boundary, or of its part on regions.
        A part that does not exist integrates over nothing."""
        if boundary is None:
            return self._ds
        ids = self.ids(boundary, regions)
        if not ids:  # no facet: an id no facet carries
            return self._ds(max(self.part_of, default=0) + 1)
        return self._ds(ids[0] if len(ids) == 1 else ids)

    def origin(self, part: int) -> tuple[int, int] | None:
        """(boundary tag, region tag) of an exterior facet id (None for an id of no part)."""
        return self.part_of.get(part)

    def touches(self, boundary: str, regions: Iterable[str]) -> bool:
        """Whether some facet of a boundary lies on a cell of the regions (on any rank)."""
        tag = self.data.boundaries[boundary]
        inside = {self.data.regions[name] for name in regions}
        return any(b == tag and r in inside for b, r in self._parts)
