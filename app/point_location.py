"""Locating points in a distributed mesh: each point in one cell on one rank, the same on any
partition (probes, point sources and line profiles read through this).

Each rank looks among the cells it owns; every cell containing a point (to round-off) is a
candidate, keyed by its midpoint; the smallest key over all ranks wins, so a point on a facet
between cells reads a discontinuous field from the same cell on 1 or N ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from dolfinx import geometry
from dolfinx import mesh as dmesh
from mpi4py import MPI

# A point within this fraction of the mesh's size of a cell lies in it (round-off of
# coordinates given in other units, points on curved boundaries).
_TOLERANCE = 1e-8


@dataclass
class Located:
    """Where a set of points lies on one mesh.

    Attributes:
        cells: Per point, the local cell this rank evaluates it in (-1: another rank, or none).
        found: Per point, whether it lies in the mesh (the same on every rank).
    """

    cells: np.ndarray
    found: np.ndarray

    @property
    def mine(self) -> np.ndarray:
        return self.cells >= 0


def locate(msh: dmesh.Mesh, points: np.ndarray) -> Located:
    """Assign each point (a row of up to 3 coordinates) to one cell on one rank, the same on
    any partition (collective).

    Each rank looks among the cells it owns; every cell containing a point (to round-off)
    is a candidate, keyed by its midpoint; the smallest key over all ranks wins.
    """
    comm, tdim = msh.comm, msh.topology.dim
    owned = np.arange(msh.topology.index_map(tdim).size_local, dtype=np.int32)
    xyz = np.zeros((len(points), 3))
    xyz[:, : points.shape[1]] = points
    tolerance = (_TOLERANCE * _diameter(msh)) ** 2
    keys = np.full((len(points), 3), np.inf)
    chosen = np.full(len(points), -1, dtype=np.int32)
    if len(owned):
        tree = geometry.bb_tree(msh, tdim, padding=math.sqrt(tolerance), entities=owned)
        candidates = geometry.compute_collisions_points(tree, xyz)
        counts = np.diff(candidates.offsets)
        point_of = np.repeat(np.arange(len(xyz)), counts)
        cells = candidates.array.astype(np.int32)
        inside = geometry.squared_distance(msh, tdim, cells, xyz[point_of]) <= tolerance
        point_of, cells = point_of[inside], cells[inside]
        midpoints = dmesh.compute_midpoints(msh, tdim, cells)
        # Sorted by point, then midpoint: the first row of each point is its best cell here.
        order = np.lexsort((midpoints[:, 2], midpoints[:, 1], midpoints[:, 0], point_of))
        point_of, cells, midpoints = point_of[order], cells[order], midpoints[order]
        first = np.unique(point_of, return_index=True)[1]
        keys[point_of[first]] = midpoints[first]
        chosen[point_of[first]] = cells[first]
    # The smallest key over the ranks, column by column; ties (one cell seen by two ranks
    # cannot happen, as only owned cells count) would go to the lowest rank.
    contending = np.isfinite(keys[:, 0])
    for coordinate in keys.T:
        mine = np.where(contending, coordinate, np.inf)
        smallest = np.empty_like(mine)
        comm.Allreduce(mine, smallest, op=MPI.MIN)
        contending &= mine == smallest
    claim = np.where(contending, comm.rank, comm.size).astype(np.int64)
    winner = np.empty_like(claim)
    comm.Allreduce(claim, winner, op=MPI.MIN)
    chosen[winner != comm.rank] = -1
    return Located(chosen, winner < comm.size)


def _diameter(msh: dmesh.Mesh) -> float:
    low, high = bounding_box(msh)
    return float(np.linalg.norm(high - low)) or 1.0


def bounding_box(msh: dmesh.Mesh) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest coordinates of the mesh over all ranks (collective)."""
    gdim = msh.geometry.dim
    x = msh.geometry.x[:, :gdim]
    low, high = x.min(axis=0, initial=np.inf), x.max(axis=0, initial=-np.inf)
    global_low, global_high = np.empty_like(low), np.empty_like(high)
    msh.comm.Allreduce(low, global_low, op=MPI.MIN)
    msh.comm.Allreduce(high, global_high, op=MPI.MAX)
    return global_low, global_high
