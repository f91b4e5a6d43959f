"""Periodic constraints on a unit-cell mesh, without dolfinx_mpc (not installable next to the PyPI
wheel): a PETSc prolongation matrix P from the free to all degrees of freedom.

The cell is a box (the bounding box of the mesh); its mesh is periodic (gmsh ``setPeriodic``), so
each node on a high face has a partner at the same place on the opposite low face. P is square
with the layout of the operator A: the row of a free dof has a 1 on its diagonal, the row of a
node on a high face a 1 in the column of its partner (a corner's partner is the lowest corner),
and the rows of the pinned dofs (the lowest corner, which fixes the constant or the rigid
translation a periodic fluctuation is only defined up to) are empty. Then ``A.PtAP(P)`` with the
identity added on its empty rows is the periodic operator, ``P^T b`` its right-hand side and
``P x`` the periodic solution. Partners on other ranks are found by gathering the nodes on the
low faces, so P is built the same way on any number of ranks.
"""

from __future__ import annotations

import numpy as np
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc
from scipy.spatial import cKDTree


def cell_box(mesh) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest corner of the unit cell (the mesh's bounding box), on every rank."""
    gdim = mesh.geometry.dim
    x = mesh.geometry.x[:, :gdim]
    low, high = np.full(gdim, np.inf), np.full(gdim, -np.inf)
    mesh.comm.Allreduce(x.min(axis=0, initial=np.inf), low, op=MPI.MIN)
    mesh.comm.Allreduce(x.max(axis=0, initial=-np.inf), high, op=MPI.MAX)
    return low, high


def node_coordinates(space: fem.FunctionSpace) -> np.ndarray:
    """Coordinates of the space's nodes (owned, then ghosts)."""
    gdim = space.mesh.geometry.dim
    return space.tabulate_dof_coordinates()[:, :gdim]


def pinned_nodes(space: fem.FunctionSpace, corners: list[np.ndarray]) -> list[np.ndarray]:
    """Local indices of the owned nodes at each of ``corners`` (empty where another rank owns
    it)."""
    x = node_coordinates(space)[: space.dofmap.index_map.size_local]
    low, high = cell_box(space.mesh)
    tolerance = 1e-8 * float(np.max(high - low))
    return [np.flatnonzero(np.all(np.abs(x - corner) < tolerance, axis=1)) for corner in corners]


def prolongation(space: fem.FunctionSpace) -> PETSc.Mat:
    """The periodic prolongation P of ``space`` (see the module docstring).

    Raises:
        ValueError: The mesh is not periodic (a node on a high face has no partner).
    """
    comm = space.mesh.comm
    index_map, bs = space.dofmap.index_map, space.dofmap.index_map_bs
    owned = index_map.size_local
    x = node_coordinates(space)[:owned]
    low, high = cell_box(space.mesh)
    tolerance = 1e-8 * float(np.max(high - low))
    on_high = np.abs(x - high) < tolerance
    image = np.where(on_high, low, x)  # where a node's partner sits
    slaves = np.flatnonzero(on_high.any(axis=1))
    global_nodes = index_map.local_to_global(np.arange(owned, dtype=np.int32))

    # Partners lie on the low faces and off the high ones; gather them from every rank.
    on_low = (np.abs(x - low) < tolerance).any(axis=1) & ~on_high.any(axis=1)
    gathered = comm.allgather((x[on_low], global_nodes[on_low]))
    points = np.concatenate([p for p, _ in gathered]) if gathered else np.zeros((0, x.shape[1]))
    numbers = np.concatenate([n for _, n in gathered]).astype(np.int64)
    partner = np.empty(len(slaves), dtype=np.int64)
    unmatched = None
    if len(slaves) and not len(points):
        unmatched = x[slaves[0]]
    elif len(slaves):
        distance, nearest = cKDTree(points).query(image[slaves])
        partner = numbers[nearest]
        if distance.max() > tolerance:
            unmatched = x[slaves[int(np.argmax(distance))]]
    unmatched = next((p for p in comm.allgather(unmatched) if p is not None), None)
    if unmatched is not None:  # raised on every rank, so none waits in a collective call
        raise ValueError(
            f"the cell's mesh is not periodic: the node at {unmatched} has no partner on the "
            "opposite face (mesh it with gmsh.model.mesh.setPeriodic)"
        )

    columns = global_nodes.copy()
    columns[slaves] = partner
    corner = np.all(np.abs(x - low) < tolerance, axis=1)
    lowest = comm.allreduce(
        int(global_nodes[corner][0]) if corner.any() else np.iinfo(np.int64).max, op=MPI.MIN
    )
    pinned = columns == lowest

    # one entry per row (none on pinned rows), rows in the operator's order: node-major
    cols = (columns[:, None] * bs + np.arange(bs)).ravel()
    keep = np.repeat(~pinned, bs)
    indptr = np.concatenate([[0], np.cumsum(keep)]).astype(PETSc.IntType)
    size, total = owned * bs, index_map.size_global * bs
    P = PETSc.Mat().createAIJ(
        ((size, total), (size, total)),
        csr=(indptr, cols[keep].astype(PETSc.IntType), np.ones(int(keep.sum()))),
        comm=comm,
    )
    P.assemble()
    return P


def reduced_operator(A: PETSc.Mat, P: PETSc.Mat) -> PETSc.Mat:
    """``P^T A P`` with 1 on the diagonal of its empty rows (the slave and pinned dofs).

    The unit diagonal is added as a matrix of its own: setting entries outside the pattern of
    PtAP reallocates per entry, which takes minutes on large cells.
    """
    reduced = A.PtAP(P)
    used, ones = P.createVecRight(), P.createVecLeft()
    ones.set(1.0)
    P.multTranspose(ones, used)  # rows mapping to each column: none for the unused columns
    diagonal = used.duplicate()
    diagonal.setArray(np.where(used.getArray() == 0, 1.0, 0.0))
    identity = PETSc.Mat().createAIJ(reduced.getSizes(), nnz=(1, 0), comm=reduced.getComm())
    identity.setDiagonal(diagonal)
    identity.assemble()
    reduced.axpy(1.0, identity, PETSc.Mat.Structure.DIFFERENT_NONZERO_PATTERN)
    return reduced
