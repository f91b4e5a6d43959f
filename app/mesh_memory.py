"""Memory a mesh needs, estimated before it is built, against the memory the machine has.

A mesh too large for the machine must be refused with a message that says how much it would
need, not end in ``MemoryError`` / ``std::bad_alloc`` inside DOLFINx or in swapping.

The estimates are bytes per cell, measured on this stack (DOLFINx 0.11, 1 rank): the peak
resident memory of ``scalebridge check`` on a case with one P1 field, minus the interpreter's,
as the slope between two mesh sizes (0.07M-3M cells), rounded up. They cover building the mesh
and setting up the case; a run needs more (matrices, and for a direct solver its factors: a
steady heat run on 0.7M triangles peaked at 1.5 times the memory of its check).

Rank 0 creates (or reads from gmsh) the whole mesh before DOLFINx distributes it, so the node
of rank 0 must hold the whole mesh plus the shares of its other ranks; other nodes hold their
ranks' shares. (Measured on 2 ranks of one node, 2.9M triangles: rank 0 peaked at 197 bytes
per cell of the whole mesh, rank 1 at 97.)
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from mpi4py import MPI

from app.errors import CaseError

#: Built-in meshes, by cell type (1.9M-2.9M cells against 0.25M-0.7M).
BYTES_PER_CELL = {
    "interval": 200,
    "triangle": 230,
    "quadrilateral": 320,
    "tetrahedron": 300,
    "hexahedron": 560,
}
#: gmsh meshes, by (dimension, geometry order): generation, the gmsh model and its transfer
#: to DOLFINx (simplices; 0.07M-1.2M cells).
GMSH_BYTES_PER_CELL = {
    (1, 1): 620,
    (1, 2): 1000,
    (2, 1): 1230,
    (2, 2): 1600,
    (3, 1): 800,
    (3, 2): 1450,
}
#: Simplices gmsh makes per unit length, area or volume at a largest cell size h, times h^dim
#: (measured with a uniform size: 1.0 on a line, 2.31 on rectangles, 4.5-4.6 on a box).
GMSH_CELLS_PER_SIZE = {1: 1.0, 2: 2.3, 3: 4.5}


def simplex_cells(counts: list[int], cell_type: str) -> int:
    """Cells of a built-in mesh: simplices split each box of the grid (2 triangles, 6 tets)."""
    cells = 1
    for count in counts:
        cells *= count
    return cells * {"triangle": 2, "tetrahedron": 6}.get(cell_type, 1)


def available_memory() -> int | None:
    """Bytes this node can still give: MemAvailable (else the free pages), or a lower cgroup
    limit (containers); None when the system does not say."""
    found = [_meminfo() or _free_pages(), _cgroup()]
    return min((value for value in found if value is not None), default=None)


def _meminfo() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def _free_pages() -> int | None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def _cgroup() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            return int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text())
    return None


@dataclass(frozen=True)
class Node:
    """One node of a communicator: its free memory (None: unknown), its ranks, and whether it
    holds rank 0."""

    available: int | None
    ranks: int
    root: bool


@dataclass(frozen=True)
class MemoryBudget:
    """The memory of every node of a communicator; the same on every rank, so every rank
    comes to the same verdict without communicating."""

    nodes: tuple[Node, ...]
    size: int

    def check(
        self,
        cells: float,
        bytes_per_cell: int,
        where: str,
        what: str,
        fix: str = "use fewer or larger cells",
    ) -> None:
        """Refuse a mesh of ``cells`` cells that some node cannot hold.

        Args:
            cells: The number of cells (estimated, or counted).
            bytes_per_cell: Measured memory per cell (see the module constants).
            where: Case-file path to blame.
            what: What makes how many cells, e.g. "cells = [30000, 30000] makes 1.8e+09
                triangle cells".
            fix: How to make the mesh smaller.

        Raises:
            CaseError: Naming the cells, the memory needed and the memory available.
        """
        share = cells * bytes_per_cell / self.size
        for node in self.nodes:
            whole = cells * bytes_per_cell if node.root else 0.0
            need = whole + share * (node.ranks - (1 if node.root else 0))
            if node.available is None or need <= node.available:
                continue
            ranks = "1 rank" if node.ranks == 1 else f"{node.ranks} ranks"
            place = "the node of rank 0" if node.root else "another node"
            raise CaseError(
                where,
                f"{what}, which need about {_size(need)} of memory on {place} ({ranks}, "
                f"{bytes_per_cell} bytes per cell measured); it has {_size(node.available)} "
                "available",
                fix,
            )


def memory_budget(comm: MPI.Comm) -> MemoryBudget:
    """The memory of the nodes of ``comm``. Collective."""
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        root = node.allreduce(comm.rank == 0, op=MPI.LOR)
        mine = Node(available_memory() if node.rank == 0 else None, node.size, root)
        leaders = [item for item in comm.allgather(mine if node.rank == 0 else None) if item]
    finally:
        node.Free()
    return MemoryBudget(tuple(leaders), comm.size)


def _size(count: float) -> str:
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count / 1e3:.3g} kB"
