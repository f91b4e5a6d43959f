"""Meshes: the ``[mesh]`` section of a case file, turned into a DOLFINx mesh with named tags.

Every mesh carries named *regions* (cell tags, integrate with ``dx(tag)``) and named
*boundaries* (facet tags; ``ds(tag)`` when exterior, ``dS(tag)`` when interior, e.g. an
interface between two materials). It may also carry named *point sets* (vertices) and, in 3D,
*edge sets* (mesh edges): places to fix a value on (a point support that removes rigid-body
motion, a line constraint), which have no measure to integrate over. Names come from

* built-in meshes: region ``domain``; boundaries ``left``/``right`` (x min/max),
  ``bottom``/``top`` (y), ``back``/``front`` (z);
* the pseudo-2D (x, r) mesh of a layered cell (:mod:`app.meshing_pseudo2d`): one region per
  layer, boundaries ``left``/``right``/``bottom``/``top``;
* gmsh meshes: the physical groups of the top dimension (regions), of one dimension less
  (boundaries), of points and, in 3D, of curves (edge sets), named by their physical names
  (unnamed ones ``region_<tag>``, ``boundary_<tag>``, ``point_<tag>``, ``edge_<tag>``);
* ``regions`` / ``boundaries`` / ``points`` / ``edges`` in the case file: conditions on x, y, z
  (:mod:`app.mesh_sets`). A cell joins the first region whose condition its midpoint satisfies;
  a facet, vertex or edge joins the first set whose condition all its vertices satisfy. They
  take their entities away from the names above.

Name policy: a case's entry must use a new name. It never redefines an existing name (which
would leave some entities without any name); names that lose all their entities to such entries
are dropped. Every cell thus belongs to exactly one region, and each boundary is entirely
exterior or entirely interior (a mix is an error: no single measure fits). Point and edge sets
have names no region or boundary has, since a condition finds its place by name.

Reading gmsh files (on rank 0, with errors raised on every rank) is :mod:`app.meshing_gmsh`.
"""

import logging
import pathlib

import numpy as np
from dolfinx import mesh as dmesh
from mpi4py import MPI

from app import facetless_forms, mesh_sets
from app.box_sides import box_sides
from app.errors import CaseError
from app.facet_tags import FacetTags
from app.mesh_cache import MeshCache, cache_folder, cache_key
from app.mesh_data import CACHED_NAMES, MeshData
from app.mesh_memory import BYTES_PER_CELL, memory_budget, simplex_cells
from app.mesh_partition import grid_fits, grid_partitioner
from app.mesh_refine import refine, refined_cells
from app.mesh_sets import BOUNDARIES, EDGES, POINTS, REGIONS
from app.mesh_spec import BUILTIN_CELLS, MeshSpec
from app.meshing_pseudo2d import build_pseudo2d, describe

log = logging.getLogger("scalebridge")

# (name, axis, end) of the built-in boundaries, in tag order; a mesh of dimension d has 2d.
_SIDES = (
    ("left", 0, 0),
    ("right", 0, 1),
    ("bottom", 1, 0),
    ("top", 1, 1),
    ("back", 2, 0),
    ("front", 2, 1),
)


def build_mesh(
    spec: MeshSpec, comm: MPI.Comm, base_dir: pathlib.Path, keep_coarse: bool = False
) -> MeshData:
    """Build the mesh of a case, with named regions, boundaries, point and edge sets, or read
    it from the mesh cache (:mod:`app.mesh_cache`) when a run built it before.

    Collective on ``comm``.

    Args:
        spec: The validated ``[mesh]`` section.
        comm: Communicator to distribute the mesh on.
        base_dir: Folder of the case file; relative mesh files are looked up there first.
        keep_coarse: Keep the coarse meshes of ``refine`` (geometric multigrid). The cache
            holds only the refined mesh, so such a mesh is built, never read from it.

    Raises:
        CaseError: On every rank, for a missing or bad mesh file and for conditions that
            select nothing.
    """
    folder = cache_folder(spec.cache, base_dir)
    if keep_coarse and spec.refine and folder is not None:
        log.info("mesh cache not used: geometric multigrid needs the coarse meshes")
        folder = None
    if folder is None:
        return _build(spec, comm, base_dir, keep_coarse)
    source = None
    if spec.type == "gmsh":
        from app.meshing_gmsh import find_file  # gmsh's library loads only for gmsh meshes

        source = find_file(spec.file, base_dir)
    cache = MeshCache(folder, cache_key(spec.model_dump(exclude={"cache"}), source), comm)
    found = cache.load(CACHED_NAMES)
    if found is not None:
        log.info("mesh read from the cache %s", cache.entry)
        return MeshData.from_cache(*found)
    data = _build(spec, comm, base_dir)
    cache.store(data.mesh, data.cached_tags(), data.facets, data.cached_names())
    return data


def _build(
    spec: MeshSpec, comm: MPI.Comm, base_dir: pathlib.Path, keep_coarse: bool = False
) -> MeshData:
    """The mesh of a case built from its section (see :func:`build_mesh`)."""
    if spec.type == "gmsh":
        from app.meshing_gmsh import load_gmsh  # gmsh's library loads only for gmsh meshes

        msh, tags, names = load_gmsh(spec, comm, base_dir)
        size = "" if spec.size is None else f", size {spec.size_si():g} m"
        description = f"gmsh {spec.file}{size}" + (
            f", order {spec.order}" if spec.order > 1 else ""
        )
    elif spec.type == "pseudo2d":
        msh, cell_tags, facet_tags, regions, boundaries = build_pseudo2d(spec, comm)
        tdim = msh.topology.dim
        tags = {tdim: cell_tags, tdim - 1: facet_tags}
        names = {tdim: regions, tdim - 1: boundaries}
        description = describe(spec)
    else:
        msh = _builtin_mesh(spec, comm)
        tags = {}
        names = {
            msh.topology.dim: {"domain": 1},
            msh.topology.dim - 1: {
                name: i + 1 for i, (name, _, _) in enumerate(_SIDES[: 2 * spec.dim])
            },
        }
        counts = "x".join(map(str, spec.cell_counts()))
        cell = "" if spec.type == "interval" else f" {spec.cell_type()}"
        description = f"{spec.type} {counts}{cell}"
    hierarchy = None
    if spec.refine:
        msh, tags, hierarchy = refine(msh, tags, spec.refine, keep_coarse)
        description += f", refined {spec.refine}x"
    tdim = msh.topology.dim
    if spec.edges and tdim != 3:
        spec.refuse_edges(tdim)
    # A box's sides need no facets (app/box_sides.py); conditions on facets do.
    sides_only = spec.type in BUILTIN_CELLS and not spec.boundaries and not _has_facets(msh)
    if not sides_only:
        msh.topology.create_connectivity(tdim - 1, tdim)
    # Mesh edges cost about 40 % more memory on tetrahedra: made only for edge sets.
    edged = tdim == 3 and bool(spec.edges or names.get(1))
    if edged:
        msh.topology.create_entities(1)
    regions, boundaries = names[tdim], names[tdim - 1]
    # In 1D a gmsh point group is a boundary; case point sets are vertex sets of their own.
    points = names.get(0, {}) if tdim > 1 else {}
    edges = names.get(1, {}) if edged else {}
    cells = mesh_sets.tag_values(msh, tdim, tags.get(tdim))
    vertices = mesh_sets.tag_values(msh, 0, tags.get(0) if tdim > 1 else None)
    lines = mesh_sets.tag_values(msh, 1, tags.get(1)) if edged else None
    if spec.type in BUILTIN_CELLS:  # a built-in box: regions and sides are the whole of each
        cells[:] = regions["domain"]
    mesh_sets.apply_conditions(msh, tdim, cells, regions, spec.regions, REGIONS)
    if sides_only:
        origin, lengths = spec.extent()
        sides = [(axis, end) for _, axis, end in _SIDES[: 2 * spec.dim]]
        facet_tags, side_counts = box_sides(msh, origin, lengths, sides)
        facetless_forms.install()  # the forms of this mesh must not create its facets
    else:
        facets, outside = _tag_facets(msh, spec, tags.get(tdim - 1), boundaries)
    taken = dict.fromkeys(regions, "region") | dict.fromkeys(boundaries, "boundary")
    taken |= dict.fromkeys(edges, "edge set")
    mesh_sets.apply_conditions(msh, 0, vertices, points, spec.points, POINTS, taken)
    if lines is not None:
        taken |= dict.fromkeys(points, "point set")
        mesh_sets.apply_conditions(msh, 1, lines, edges, spec.edges, EDGES, taken)

    region_cells = mesh_sets.keep_used(msh, tdim, cells, regions)[0]
    if sides_only:
        outer = {name: side_counts[tag - 1] for name, tag in boundaries.items()}
        inner = dict.fromkeys(boundaries, 0)
    else:
        exterior = np.zeros(len(facets), dtype=bool)
        exterior[outside] = True
        outer, inner = mesh_sets.keep_used(msh, tdim - 1, facets, boundaries, exterior)
        tagged = mesh_sets.meshtags(msh, tdim - 1, facets, "facet_tags")
        facet_tags = FacetTags.from_meshtags(msh, tagged)
    for name in boundaries:
        if outer[name] and inner[name]:
            where = f"mesh.boundaries.{name}" if name in spec.boundaries else "mesh.file"
            raise CaseError(
                where,
                f"boundary '{name}' has {outer[name]} exterior and {inner[name]} interior facets",
                "split it into an outer boundary (ds) and an interface (dS)",
            )
    return MeshData(
        mesh=msh,
        cell_tags=mesh_sets.meshtags(msh, tdim, cells, "cell_tags"),
        facets=facet_tags,
        regions=regions,
        boundaries=boundaries,
        interior_boundaries=frozenset(name for name in boundaries if inner[name]),
        description=description,
        region_cells=region_cells,
        boundary_facets={name: outer[name] + inner[name] for name in boundaries},
        vertex_tags=mesh_sets.meshtags(msh, 0, vertices, "point_tags"),
        points=points,
        point_vertices=mesh_sets.keep_used(msh, 0, vertices, points)[0],
        edge_tags=None if lines is None else mesh_sets.meshtags(msh, 1, lines, "edge_tags"),
        edges=edges,
        edge_counts={} if lines is None else mesh_sets.keep_used(msh, 1, lines, edges)[0],
        hierarchy=hierarchy,
    )


def _tag_facets(
    msh: dmesh.Mesh, spec: MeshSpec, tags: dmesh.MeshTags | None, boundaries: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The boundary tag of every local facet (created before): a built-in box's sides, then the
    case's conditions on facets (their names added to ``boundaries``); and the owned exterior
    facets."""
    tdim = msh.topology.dim
    facets = mesh_sets.tag_values(msh, tdim - 1, tags)
    outside = dmesh.exterior_facet_indices(msh.topology)
    if spec.type in BUILTIN_CELLS:
        _mark_sides(msh, spec, facets, outside)
    mesh_sets.apply_conditions(msh, tdim - 1, facets, boundaries, spec.boundaries, BOUNDARIES)
    return facets, outside


def _builtin_mesh(spec: MeshSpec, comm: MPI.Comm) -> dmesh.Mesh:
    origin, lengths = spec.extent()
    corners = [origin, origin + lengths]
    counts = spec.cell_counts()
    cell = spec.cell_type()
    cells = refined_cells(simplex_cells(counts, cell), spec.dim, spec.refine)
    refined = f", refined {spec.refine}x," if spec.refine else ""
    what = f"cells = {counts}{refined} makes {cells:.3g} {cell} cells"
    memory_budget(comm).check(cells, BYTES_PER_CELL[cell], "mesh.cells", what)
    ghosts = dmesh.GhostMode.shared_facet
    cell_type = dmesh.CellType[cell]
    # Blocks of the grid instead of a graph partitioner, whose cost does not shrink with ranks.
    # One rank has nothing to distribute: without a partitioner DOLFINx skips that work. A grid
    # with fewer cells than ranks (a one-cell batch reactor on 2 ranks) is DOLFINx's to share.
    axis_order = (1, 0) if cell == "quadrilateral" else tuple(range(spec.dim))
    blocks = None
    if comm.size > 1 and grid_fits(counts, comm.size):
        blocks = grid_partitioner(counts, cell_type, axis_order)
    if spec.type == "interval":
        return dmesh.create_interval(
            comm, counts[0], [origin[0], corners[1][0]], ghost_mode=ghosts, partitioner=blocks
        )
    create = dmesh.create_rectangle if spec.type == "rectangle" else dmesh.create_box
    return create(comm, corners, counts, cell_type=cell_type, ghost_mode=ghosts, partitioner=blocks)


def _has_facets(msh: dmesh.Mesh) -> bool:
    """Whether the mesh's facets exist (refinement may have made them)."""
    try:
        msh.topology.index_map(msh.topology.dim - 1)
    except RuntimeError:  # "Missing IndexMap in Topology"
        return False
    return True


def _mark_sides(msh: dmesh.Mesh, spec: MeshSpec, facets: np.ndarray, outside: np.ndarray) -> None:
    """Tag the exterior facets of a built-in box by the side their midpoint lies on."""
    origin, lengths = spec.extent()
    tol = 1e-10 * lengths.max()
    midpoints = dmesh.compute_midpoints(msh, msh.topology.dim - 1, outside)
    for tag, (_, axis, end) in enumerate(_SIDES[: 2 * spec.dim], start=1):
        plane = origin[axis] + end * lengths[axis]
        facets[outside[np.abs(midpoints[:, axis] - plane) <= tol]] = tag


def facet_regions(data: MeshData, boundary: str) -> tuple[np.ndarray, np.ndarray]:
    """The local facets of an exterior boundary and the region tag of each one's cell.

    What a field on the boundary inherits from the cells beside it: on a pseudo2d mesh, the layer
    (negative electrode, separator, positive electrode) of each facet of ``top``, the r = 1 line
    that is the cell's through-thickness domain.
    """
    msh, tdim = data.mesh, data.mesh.topology.dim
    facets = data.facet_tags.find(data.boundaries[boundary])
    msh.topology.create_connectivity(tdim - 1, tdim)
    to_cells = msh.topology.connectivity(tdim - 1, tdim)
    cells = np.array([to_cells.links(facet)[0] for facet in facets], dtype=np.int32)
    return facets, mesh_sets.tag_values(msh, tdim, data.cell_tags)[cells]
