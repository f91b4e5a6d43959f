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

from app.mesh_sets import tag_values


class Measures:
    """The shared measures of a mesh with named regions and boundaries.

    Exterior facet integrals run over (cell, local facet) pairs (app/facet_tags.py), so they
    need no facet numbers: a mesh read from the cache has none until something else needs them.

    Args:
        data: The mesh with its tags (a :class:`app.meshing.MeshData`).
    """

    def __init__(self, data):
        self.data = data
        msh = data.mesh
        pairs, tags, regions = self._facet_regions(data)
        self._parts = self._boundary_parts(data, tags, regions)
        self.part_of = {part: key for key, part in self._parts.items()}  # id -> (boundary, region)
        # ds() runs over every exterior facet, tagged or not; a part nobody has, over none.
        self._everywhere = max([*self.part_of, 0]) + 1
        self._nowhere = self._everywhere + 1
        exterior = self._integration_entities(pairs, tags, regions)
        self.dx = ufl.Measure("dx", domain=msh, subdomain_data=data.cell_tags)
        self._ds = ufl.Measure("ds", domain=msh, subdomain_data=exterior)
        self._dS: ufl.Measure | None = None

    @property
    def dS(self) -> ufl.Measure:
        """The interior facet measure by boundary tag (creates the facets on first use)."""
        if self._dS is None:
            self._dS = ufl.Measure("dS", domain=self.data.mesh, subdomain_data=self.data.facet_tags)
        return self._dS

    @staticmethod
    def _facet_regions(data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The exterior tagged facets this rank integrates ((cell, local facet) rows), their
        boundary tag and the region tag of their cell."""
        msh, tdim = data.mesh, data.mesh.topology.dim
        pairs, tags = data.facets.integrated_pairs()
        cell_values = tag_values(msh, tdim, data.cell_tags)
        return pairs, tags, cell_values[pairs[:, 0]]

    def _boundary_parts(self, data, tags, regions) -> dict[tuple[int, int], int]:
        """The id of each (boundary tag, region tag) part of a boundary bordering several
        regions, from every rank's facets."""
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

    def _integration_entities(self, pairs, tags, regions) -> list[tuple[int, np.ndarray]]:
        """The ``ds`` subdomain data: each part's (cell, local facet) pairs, flat, on every
        rank (empty where a rank has none), then every exterior facet's and none."""
        ids = np.array(
            [self._parts[int(b), int(r)] for b, r in zip(tags, regions, strict=True)],
            dtype=np.int32,
        )
        entities = [
            (part, np.ascontiguousarray(pairs[ids == part].ravel(), dtype=np.int32))
            for part in sorted(self.part_of)
        ]
        entities.append((self._everywhere, self.data.facets.exterior()))
        entities.append((self._nowhere, np.empty(0, dtype=np.int32)))
        return entities

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
            return self._ds(self._everywhere)
        ids = self.ids(boundary, regions)
        if not ids:  # no facet: an id no facet carries
            return self._ds(self._nowhere)
        return self._ds(ids[0] if len(ids) == 1 else ids)

    def origin(self, part: int) -> tuple[int, int] | None:
        """(boundary tag, region tag) of an exterior facet id (None for an id of no part)."""
        return self.part_of.get(part)

    def touches(self, boundary: str, regions: Iterable[str]) -> bool:
        """Whether some facet of a boundary lies on a cell of the regions (on any rank)."""
        tag = self.data.boundaries[boundary]
        inside = {self.data.regions[name] for name in regions}
        return any(b == tag and r in inside for b, r in self._parts)
