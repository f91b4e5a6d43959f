"""Cell partitioners that need no graph partitioner: blocks of a structured grid, and "keep".

DOLFINx distributes a mesh by building its dual graph (the cells sharing a facet) across ranks
and calling a graph partitioner (PT-Scotch here), whose cost does not shrink with the ranks. A
built-in box or rectangle is a grid: the number of a cell's lowest vertex says which grid cell
(a cube of 6 tetrahedra, a square of 2 triangles) it belongs to, so :func:`grid_partitioner`
gives every cell the rank of its block of a process grid chosen to cut the fewest facets, and
its ghost ranks (the blocks across its facets on a block boundary), by arithmetic on each rank's
own cells. On 2 ranks a 1M-vertex box splits into two slabs with a single plane of shared
vertices; on 64 into 4 x 4 x 4 blocks.

:func:`keep_partitioner` leaves every cell on the rank that holds it and adds the ghost layer
(shared facets): for a mesh whose cells are already well distributed, such as a uniformly refined
one (each child on its parent's rank).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
from dolfinx import cpp, mesh

Partitioner = Callable[..., cpp.graph.AdjacencyList_int32]


def process_grid(counts: Sequence[int], parts: int) -> list[int]:
    """Blocks per axis of ``parts`` ranks over a grid of ``counts`` cells: the factorisation
    whose block boundaries cut the fewest grid faces (ties: more blocks along later axes, the
    order the built-in meshes number their cells in). An axis gets at most one block per cell."""
    best: tuple | None = None
    for split in _factorisations(parts, len(counts)):
        if any(p > n for p, n in zip(split, counts, strict=True)):
            continue
        cut = sum(
            (split[axis] - 1) * np.prod([n for other, n in enumerate(counts) if other != axis])
            for axis in range(len(counts))
        )
        key = (cut, [-p for p in reversed(split)])
        if best is None or key < best[0]:
            best = (key, list(split))
    if best is None:
        raise ValueError(f"{parts} ranks cannot share a grid of {list(counts)} cells")
    return best[1]


def grid_fits(counts: Sequence[int], parts: int) -> bool:
    """Whether ``parts`` ranks can share a grid of ``counts`` cells in blocks of whole cells."""
    try:
        process_grid(counts, parts)
    except ValueError:
        return False
    return True


def _factorisations(number: int, factors: int) -> list[tuple[int, ...]]:
    if factors == 1:
        return [(number,)]
    return [
        (first, *rest)
        for first in range(1, number + 1)
        if number % first == 0
        for rest in _factorisations(number // first, factors - 1)
    ]


def grid_partitioner(
    counts: Sequence[int], cell_type: mesh.CellType, axis_order: Sequence[int]
) -> Partitioner:
    """A DOLFINx cell partitioner for a built-in mesh of ``counts`` grid cells per axis.

    Args:
        counts: Grid cells per axis.
        cell_type: The mesh's cells (each lies in one grid cell).
        axis_order: The axes from the fastest-varying in the vertex numbering to the slowest
            ((0, 1, 2) for boxes, triangles and intervals; (1, 0) for quadrilaterals).

    Returns:
        ``partition(comm, nparts, cell_types, cells)``: each local cell's destination ranks,
        owner first, then the ranks it is a ghost on (shared-facet ghosting).
    """
    counts = np.asarray(counts, dtype=np.int64)
    dim = len(counts)
    strides = np.ones(dim, dtype=np.int64)
    for previous, axis in itertools.pairwise(axis_order):
        strides[axis] = strides[previous] * (counts[previous] + 1)
    facets = cpp.mesh.get_entity_vertices(cell_type, cpp.mesh.cell_dim(cell_type) - 1)
    facet_vertices = [facets.links(i) for i in range(facets.num_nodes)]
    vertices = cpp.mesh.cell_num_vertices(cell_type)

    def partition(comm, nparts, cell_types, cells) -> cpp.graph.AdjacencyList_int32:
        blocks = np.asarray(process_grid(counts, nparts), dtype=np.int64)
        local = np.asarray(cells[0]).reshape(-1, vertices)
        # A cell's lowest vertex is the lowest corner of its grid cell. Only the axes split
        # into several blocks place a cell or make ghosts: the others are not decoded.
        split = [a for a in range(dim) if blocks[a] > 1]
        lowest = local.min(axis=1)
        grid_cell = {a: (lowest // strides[a]) % (counts[a] + 1) for a in split}
        block = {a: grid_cell[a] * blocks[a] // counts[a] for a in split}
        unsplit = np.zeros(len(local), dtype=np.int64)
        owner = _rank([block.get(a, unsplit) for a in range(dim)], blocks)
        on_boundary = np.zeros(len(local), dtype=bool)
        for a in split:
            start = (block[a] * counts[a] + blocks[a] - 1) // blocks[a]
            end = ((block[a] + 1) * counts[a] + blocks[a] - 1) // blocks[a]
            on_boundary |= ((grid_cell[a] == start) & (start > 0)) | (
                (grid_cell[a] == end - 1) & (end < counts[a])
            )
        rows = np.flatnonzero(on_boundary)
        ghosts = []
        for a in split:
            corner = grid_cell[a][rows]
            along_axis = (local[rows] // strides[a]) % (counts[a] + 1)
            for facet in facet_vertices:
                along = along_axis[:, facet]
                flat = (along == along[:, :1]).all(axis=1)
                for side, step in ((along[:, 0] == corner, -1), (along[:, 0] > corner, 1)):
                    neighbour = corner + step
                    across = flat & side & (neighbour >= 0) & (neighbour < counts[a])
                    their = [block.get(b, unsplit)[rows] for b in range(dim)]
                    their[a] = neighbour * blocks[a] // counts[a]
                    rank = _rank(their, blocks)
                    rank[~across | (rank == owner[rows])] = -1
                    ghosts.append(rank)
        return _adjacency(owner, rows, ghosts)

    return partition


def keep_partitioner() -> Partitioner:
    """A graph partitioning function (for ``dolfinx.mesh.create_cell_partitioner``) that keeps
    each cell on its rank and ghosts it on the ranks of its neighbours across facets."""

    def partition(comm, nparts, graph, ghosting) -> cpp.graph.AdjacencyList_int32:
        count = graph.num_nodes
        offsets = np.concatenate([[0], np.cumsum(comm.allgather(count))]).astype(np.int64)
        owner = np.full(count, comm.rank, dtype=np.int64)
        if not ghosting or count == 0:
            return _adjacency(owner, np.empty(0, dtype=np.int64), [])
        links = np.asarray(graph.array)
        rows = np.repeat(np.arange(count), np.diff(np.asarray(graph.offsets)))
        theirs = np.searchsorted(offsets, links, side="right") - 1
        foreign = theirs != comm.rank
        pairs = np.unique(np.stack([rows[foreign], theirs[foreign]], axis=1), axis=0)
        return _adjacency_from_pairs(owner, pairs)

    return partition


def _rank(block: list[np.ndarray], blocks: np.ndarray) -> np.ndarray:
    """The rank of a block: numbered with the last axis slowest."""
    rank = np.zeros(len(block[0]), dtype=np.int64)
    for axis in reversed(range(len(blocks))):
        rank = rank * blocks[axis] + block[axis]
    return rank


def _adjacency(
    owner: np.ndarray, rows: np.ndarray, ghosts: list[np.ndarray]
) -> cpp.graph.AdjacencyList_int32:
    """Destinations: each cell's owner, then the distinct ranks in ``ghosts`` (one column per
    candidate, -1 for none) for the cells ``rows``."""
    if not ghosts:
        return _adjacency_from_pairs(owner, np.empty((0, 2), dtype=np.int64))
    table = np.stack(ghosts, axis=1)
    pairs = np.stack([np.repeat(rows, table.shape[1]), table.ravel()], axis=1)
    pairs = np.unique(pairs[pairs[:, 1] >= 0], axis=0)
    return _adjacency_from_pairs(owner, pairs)


def _adjacency_from_pairs(owner: np.ndarray, pairs: np.ndarray) -> cpp.graph.AdjacencyList_int32:
    """Destinations from the owners and sorted unique (cell, ghost rank) pairs."""
    sizes = 1 + np.bincount(pairs[:, 0].astype(np.int64), minlength=len(owner))
    offsets = np.zeros(len(owner) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    data = np.empty(offsets[-1], dtype=np.int32)
    data[offsets[:-1]] = owner
    if len(pairs):
        first = np.searchsorted(pairs[:, 0], pairs[:, 0], side="left")
        data[offsets[pairs[:, 0]] + 1 + np.arange(len(pairs)) - first] = pairs[:, 1]
    return cpp.graph.AdjacencyList_int32(data, offsets.astype(np.int32))
