"""Uniform refinement in parallel, with the named entities carried to the refined mesh.

``[mesh] refine = n`` splits every cell into 2^d children n times (Plaza refinement of
simplices). Each rank refines its own cells, so a fine mesh is made in parallel from a coarse
one that is cheap to build and distribute: the work that does not shrink with the ranks (a
built-in box generated and partitioned, a gmsh file meshed on rank 0) is done on the coarse
mesh. The children stay on their parent's rank (:func:`app.mesh_partition.keep_partitioner`
adds the ghost layer), so no graph partitioner runs either.

Tags follow the children: a child cell takes its parent's region, a child facet inside a
parent facet takes that facet's boundary, and a tagged vertex keeps its tag (vertices keep
their coordinates). DOLFINx's ``transfer_meshtag`` aborts in parallel on ghosted meshes, so the
transfer is done here: ``parent_cell`` and ``parent_facet`` are in the order of the cells
before DOLFINx reorders them, i.e. indexed by ``original_cell_index`` minus the rank's offset,
and values reach ghost copies through the index maps. Built-in meshes name their entities
from coordinates after refinement, which gives the same names.

The coarse meshes are dropped as soon as the next one is made, unless a solver needs them
(geometric multigrid, app/multigrid.py): then :class:`MeshHierarchy` keeps each one with the
parent of every owned cell of the mesh refined from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from dolfinx import cpp, la
from dolfinx import mesh as dmesh

from app.errors import CaseError
from app.mesh_memory import BYTES_PER_CELL, memory_budget
from app.mesh_partition import keep_partitioner

Tags = dict[int, dmesh.MeshTags | None]


@dataclass(frozen=True)
class MeshHierarchy:
    """The nested meshes of a uniform refinement, coarsest first; the last is the case's mesh.

    Attributes:
        meshes: The meshes, each refined once from the one before.
        parents: For each mesh after the first, the local index (in the mesh before) of the
            parent of each of its owned cells, in its own (local) cell order. A child lives on
            its parent's rank, so a parent is always a local cell.
    """

    meshes: tuple[dmesh.Mesh, ...]
    parents: tuple[np.ndarray, ...]


def refine(
    msh: dmesh.Mesh, tags: Tags, levels: int, keep_coarse: bool = False
) -> tuple[dmesh.Mesh, Tags, MeshHierarchy | None]:
    """``msh`` refined uniformly ``levels`` times, with its tags (by entity dimension) carried,
    and the hierarchy of meshes when ``keep_coarse`` asks for it (None otherwise).

    Raises:
        CaseError: The mesh has cells other than simplices, or edge tags (3D curve groups).
    """
    tdim = msh.topology.dim
    if msh.topology.cell_type not in (
        dmesh.CellType.interval,
        dmesh.CellType.triangle,
        dmesh.CellType.tetrahedron,
    ):
        raise CaseError(
            "mesh.refine",
            f"refinement splits intervals, triangles and tetrahedra, not "
            f"{msh.topology.cell_type.name} cells",
            "use simplex cells (mesh.cell), or give more cells instead",
        )
    if msh.geometry.cmaps[0].degree > 1:
        raise CaseError(
            "mesh.refine",
            "refinement would straighten the curved (order 2) cells of this mesh",
            "mesh the file finer instead (mesh.size), or use order = 1",
        )
    if tdim == 3 and tags.get(1) is not None:
        raise CaseError(
            "mesh.refine",
            "the mesh file has physical curves (edge sets), which are not carried through "
            "refinement",
            "mesh the file finer instead (mesh.size)",
        )
    _check_memory(msh, levels)
    partitioner = dmesh.create_cell_partitioner(keep_partitioner(), dmesh.GhostMode.shared_facet, 2)
    meshes, parents = [msh], []
    for _ in range(levels):
        if tdim > 1:
            msh.topology.create_entities(1)
        msh.topology.create_connectivity(tdim, tdim - 1)
        # DOLFINx has no parent facets of intervals: a 1D facet is a vertex, carried as one.
        option = dmesh.RefinementOption.parent_cell
        if tdim > 1:
            option = dmesh.RefinementOption.parent_cell_and_facet
        fine, parent_cell, parent_facet = dmesh.refine(msh, None, partitioner, option)
        tags = _carry(msh, fine, tags, parent_cell, parent_facet)
        if keep_coarse:
            meshes.append(fine)
            parents.append(parent_cell[_input_order(fine)])
        msh = fine
    hierarchy = MeshHierarchy(tuple(meshes), tuple(parents)) if keep_coarse else None
    return msh, tags, hierarchy


def _input_order(fine: dmesh.Mesh) -> np.ndarray:
    """Each owned cell's index in DOLFINx's input order, by which ``parent_cell`` and
    ``parent_facet`` are indexed (DOLFINx reorders the cells it is given)."""
    cells = fine.topology.index_map(fine.topology.dim)
    return fine.topology.original_cell_index[: cells.size_local] - cells.local_range[0]


def _carry(
    coarse: dmesh.Mesh,
    fine: dmesh.Mesh,
    tags: Tags,
    parent_cell: np.ndarray,
    parent_facet: np.ndarray,
) -> Tags:
    tdim = coarse.topology.dim
    cells = fine.topology.index_map(tdim)
    order = _input_order(fine)
    parents = parent_cell[order]
    carried: Tags = {}
    for dim, coarse_tags in tags.items():
        if coarse_tags is None:
            carried[dim] = None
            continue
        values = np.zeros(_count(coarse, dim), dtype=np.int32)
        values[coarse_tags.indices] = coarse_tags.values
        if dim == tdim:
            fine_values = values[parents]
            fine_entities = np.arange(cells.size_local, dtype=np.int32)
        elif dim == tdim - 1 and tdim > 1:
            fine_entities, fine_values = _facets(coarse, fine, values, parents, order, parent_facet)
        else:
            fine_entities, fine_values = _vertices(coarse, fine, values)
        carried[dim] = _shared_tags(fine, dim, fine_entities, fine_values)
    return carried


def _facets(coarse, fine, values, parents, order, parent_facet):
    """Each owned child cell's facets that lie in a facet of its parent, with its tag."""
    tdim = coarse.topology.dim
    per_cell = cpp.mesh.cell_num_entities(coarse.topology.cell_type, tdim - 1)
    fine.topology.create_connectivity(tdim, tdim - 1)
    coarse_facets = coarse.topology.connectivity(tdim, tdim - 1).array.reshape(-1, per_cell)
    fine_facets = fine.topology.connectivity(tdim, tdim - 1).array.reshape(-1, per_cell)
    inherited = parent_facet.reshape(-1, per_cell)[order]  # local facet of the parent, or -1
    child, local = np.nonzero(inherited >= 0)
    parent_facets = coarse_facets[parents[child], inherited[child, local]]
    return fine_facets[child, local], values[parent_facets]


def _vertices(coarse, fine, values):
    """The fine vertices at the coordinates of the tagged coarse vertices (a vertex keeps its
    coordinates through refinement)."""
    tagged = np.flatnonzero(values[: coarse.topology.index_map(0).size_local])
    nodes = dmesh.entities_to_geometry(coarse, 0, tagged.astype(np.int32)).ravel()
    points = coarse.geometry.x[nodes]
    found = [
        (points, values[tagged])
        for points, values in zip(
            coarse.comm.allgather(points), coarse.comm.allgather(values[tagged]), strict=True
        )
    ]
    points = np.concatenate([p for p, _ in found]) if found else np.empty((0, 3))
    tag_of = np.concatenate([v for _, v in found]) if found else np.empty(0, dtype=np.int32)
    fine.topology.create_connectivity(0, fine.topology.dim)
    count = fine.topology.index_map(0).size_local + fine.topology.index_map(0).num_ghosts
    vertices = np.arange(count, dtype=np.int32)
    coordinates = fine.geometry.x[dmesh.entities_to_geometry(fine, 0, vertices).ravel()]
    entities, tag_values = [], []
    for point, tag in zip(points, tag_of, strict=True):
        at = np.flatnonzero((coordinates == point).all(axis=1))
        entities.append(at)
        tag_values.append(np.full(len(at), tag, dtype=np.int32))
    if not entities:
        return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32)
    return np.concatenate(entities).astype(np.int32), np.concatenate(tag_values)


def _count(msh: dmesh.Mesh, dim: int) -> int:
    index_map = msh.topology.index_map(dim)
    return index_map.size_local + index_map.num_ghosts


def _shared_tags(
    msh: dmesh.Mesh, dim: int, entities: np.ndarray, values: np.ndarray
) -> dmesh.MeshTags:
    """Tags from values known on some ranks' copies of each entity, made the same on every
    copy (owned and ghost): each tagged copy sends its value to the owner, which hands it on."""
    msh.topology.create_entities(dim)
    index_map = msh.topology.index_map(dim)
    total = la.vector(index_map, dtype=np.float64)
    copies = la.vector(index_map, dtype=np.float64)
    total.array[entities] = values
    copies.array[entities] = 1.0
    for vector in (total, copies):
        vector.scatter_reverse(la.InsertMode.add)
    owned = index_map.size_local
    tagged = copies.array[:owned] > 0
    total.array[:owned][tagged] /= copies.array[:owned][tagged]
    total.scatter_forward()
    found = np.flatnonzero(total.array > 0).astype(np.int32)
    return dmesh.meshtags(msh, dim, found, np.rint(total.array[found]).astype(np.int32))


def _check_memory(msh: dmesh.Mesh, levels: int) -> None:
    """Refuse a refinement the memory cannot hold before it starts: a gmsh mesh (whose cells
    are counted only once it is made) refined 10 times took 12 GB and more until the kernel
    killed it. Collective."""
    tdim = msh.topology.dim
    coarse = msh.topology.index_map(tdim).size_global
    cell = msh.topology.cell_type.name
    cells = refined_cells(coarse, tdim, levels)
    what = f"the mesh's {coarse} {cell} cells, refined {levels}x, make {cells:.3g} cells"
    fix = "refine fewer times, or start from a coarser mesh"
    memory_budget(msh.comm).check(cells, BYTES_PER_CELL[cell], "mesh.refine", what, fix)


def refined_cells(cells: float, dim: int, levels: int) -> float:
    """Cells after ``levels`` uniform refinements of ``cells`` cells of dimension ``dim``."""
    return cells * (2**dim) ** levels
