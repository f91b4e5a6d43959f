"""Where a surrogate's cellwise fields hold values: the cells it serves, and boundary copies.

A surrogate serves every cell of the mesh unless all the properties naming it are entries of
tables by region (``transport_factor = { negative = { surrogate = "packing" }, ... }``): then
only the cells of those regions get states and values (a separator whose membrane is no
particle packing never asks the packing's script for an RVE), and the others keep 0, which
the table's indicator of their region multiplies away.

An instance placed on a boundary (``domain = "top"``) integrates over the boundary's own mesh,
where DOLFINx cannot read a function of the parent mesh; it reads a copy of the served field
on that mesh instead (``<field>_<boundary>``), each boundary cell taking the value of the
served parent cell beside it (the mean of the two on an interior boundary). A DG0 value is
constant on its cell, so the copy is exact, and it is refreshed whenever the field is.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
from dolfinx import fem

from app.domains import Domains
from app.fields import owned_size
from app.meshing import MeshData


def served_cells(space: fem.FunctionSpace, data: MeshData, regions: set[str]) -> np.ndarray:
    """The owned cell dofs of a DG0 space in ``regions``, in increasing order."""
    owned = space.dofmap.index_map.size_local
    tags = [data.regions[name] for name in sorted(regions)]
    cells = data.cell_tags.indices[np.isin(data.cell_tags.values, tags)]
    dofs = space.dofmap.list[cells, 0]
    return np.unique(dofs[dofs < owned])


def set_cells(function: fem.Function, cellwise: np.ndarray, cells: np.ndarray | None) -> None:
    """Write values of the owned ``cells`` (None: all owned cells, in dof order), then the
    ghosts."""
    block = function.function_space.dofmap.index_map_bs
    values = function.x.array.reshape(-1, block)
    if cells is None:
        values[: owned_size(function.function_space) // block] = np.reshape(cellwise, (-1, block))
    else:
        values[cells] = np.reshape(cellwise, (len(cells), block))
    function.x.scatter_forward()


class BoundaryCopy:
    """A DG0 field of the parent mesh copied onto the mesh of one of its boundaries.

    Args:
        source: The parent's DG0 function.
        target: The DG0 function of the same shape on the boundary's mesh.
        cells: The parent's scalar DG0 space (the cell dofs of every DG0 field there).
        domains: The run's domains (the boundary's facets on the parent).
        boundary: The boundary's name.
        served: Owned parent cell dofs holding values (None: all).
    """

    def __init__(
        self,
        source: fem.Function,
        target: fem.Function,
        cells: fem.FunctionSpace,
        domains: Domains,
        boundary: str,
        served: np.ndarray | None,
    ):
        self.source, self.target, self.boundary = source, target, boundary
        parent = domains.parent
        tdim = parent.topology.dim
        parent.topology.create_connectivity(tdim - 1, tdim)
        beside = parent.topology.connectivity(tdim - 1, tdim)
        region = domains.region(boundary)
        local_cells = cells.dofmap.index_map.size_local + cells.dofmap.index_map.num_ghosts
        holding = np.ones(local_cells, bool)
        if served is not None:  # ghosts of served cells hold values too (scattered)
            marker = fem.Function(cells)
            marker.x.array[served] = 1.0
            marker.x.scatter_forward()
            holding = marker.x.array > 0.5
        owned = target.function_space.dofmap.index_map.size_local
        rows, columns, weights = [], [], []
        for cell in range(owned):
            facet = region.parent_cells[cell]
            dofs = cells.dofmap.list[beside.links(facet), 0]
            dofs = dofs[holding[dofs]]
            if not len(dofs):  # beside no served cell: the copy keeps 0 there too
                continue
            row = target.function_space.dofmap.list[cell, 0]
            rows += [row] * len(dofs)
            columns += dofs.tolist()
            weights += [1 / len(dofs)] * len(dofs)
        shape = (owned, local_cells)
        self._average = scipy.sparse.csr_matrix((weights, (rows, columns)), shape=shape)

    def update(self) -> None:
        """Copy the source's current values."""
        block = self.source.function_space.dofmap.index_map_bs
        values = self.source.x.array.reshape(-1, block)
        owned = self._average.shape[0]
        self.target.x.array.reshape(-1, block)[:owned] = self._average @ values
        self.target.x.scatter_forward()
