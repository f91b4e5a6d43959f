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
import math
import pathlib
from typing import Any, Literal

import numpy as np
from dolfinx import mesh as dmesh
from mpi4py import MPI
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from app import mesh_sets
from app.errors import CaseError
from app.mesh_cache import MeshCache, cache_folder, cache_key
from app.mesh_data import MeshData
from app.mesh_memory import BYTES_PER_CELL, memory_budget, simplex_cells
from app.mesh_partition import grid_partitioner
from app.mesh_refine import refine, refined_cells
from app.mesh_sets import BOUNDARIES, COORDS, EDGES, POINTS, REGIONS
from app.meshing_gmsh import find_file, load_gmsh
from app.meshing_pseudo2d import LayerSpec, build_pseudo2d, check_pseudo2d_spec, describe
from app.parameters import constant_value
from app.units import looks_like_quantity, to_si

log = logging.getLogger("scalebridge")

_DIM = {"interval": 1, "rectangle": 2, "box": 3, "pseudo2d": 2}
_CELLS = {  # the built-in boxes
    "interval": ("interval",),
    "rectangle": ("triangle", "quadrilateral"),
    "box": ("tetrahedron", "hexahedron"),
}
# (name, axis, end) of the built-in boundaries, in tag order; a mesh of dimension d has 2d.
_SIDES = (
    ("left", 0, 0),
    ("right", 0, 1),
    ("bottom", 1, 0),
    ("top", 1, 1),
    ("back", 2, 0),
    ("front", 2, 1),
)
_GMSH_ONLY = ("file", "size", "parameters")
_BUILTIN_ONLY = ("length", "origin", "cells", "cell")
_SUFFIXES = (".msh", ".geo", ".py")
_PSEUDO2D_ONLY = {"layers": None, "radial_cells": 10, "radial_grading": 1.0}
_PSEUDO2D_ONLY["interface_grading"] = 1.0


class MeshSpec(BaseModel):
    """The ``[mesh]`` section of a case file."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: Literal["interval", "rectangle", "box", "gmsh", "pseudo2d"] = Field(
        "rectangle",
        description="Built-in interval/rectangle/box, a gmsh file, or the (x, r) mesh of a "
        "layered cell with a particle at every x (pseudo2d).",
    )
    length: list[float | str] | None = Field(
        None, description='Size per direction in m or with units ("2 cm"); default 1 each.'
    )
    origin: list[float | str] | None = Field(
        None, description="Lowest corner per direction in m or with units; default 0 each."
    )
    cells: list[int] | None = Field(None, description="Cells per direction; default 16 each.")
    cell: Literal["interval", "triangle", "quadrilateral", "tetrahedron", "hexahedron"] | None = (
        Field(
            None, description="Cell type of a built-in mesh; default interval/triangle/tetrahedron."
        )
    )
    file: str | None = Field(
        None,
        description="gmsh: a .msh, .geo or .py file, relative to the case file's folder "
        "(then the current directory).",
    )
    size: float | str | None = Field(
        None, description="gmsh .geo/.py: largest cell size (Mesh.CharacteristicLengthMax), in m."
    )
    parameters: dict[str, float | int | str] = Field(
        default_factory=dict, description="gmsh .py: keyword arguments of the script's build()."
    )
    order: int = Field(1, description="gmsh .geo/.py: geometry order, 1 or 2 (curved cells).")
    regions: dict[str, str] = Field(
        default_factory=dict,
        description="Extra regions: name = condition on x, y, z of cell midpoints (first wins).",
    )
    boundaries: dict[str, str] = Field(
        default_factory=dict,
        description="Extra boundaries: name = condition on x, y, z met by all facet vertices.",
    )
    points: dict[str, str] = Field(
        default_factory=dict,
        description="Point sets (values may be fixed there, nothing integrated): name = "
        'condition on the vertex coordinates, e.g. "x == 0 and y == 0".',
    )
    edges: dict[str, str] = Field(
        default_factory=dict,
        description="3D: edge sets (values may be fixed there, nothing integrated): name = "
        "condition met by both vertices of a mesh edge.",
    )
    layers: list[LayerSpec] | None = Field(
        None, description="pseudo2d: the layers from x = 0 on (name, thickness, cells in x)."
    )
    radial_cells: int = Field(10, description="pseudo2d: cells along r (0 to 1).")
    radial_grading: float = Field(
        1.0, description="pseudo2d: r_i = 1 - (1 - i/N)^g, cells shrink toward r = 1 (1: none)."
    )
    interface_grading: float = Field(
        1.0, description="pseudo2d: cells shrink toward the layer interfaces (1: uniform)."
    )
    refine: int = Field(
        0,
        ge=0,
        le=10,
        description="Uniform refinements of the mesh, done in parallel (each splits a simplex "
        "into 2^dim); names are carried to the refined cells, facets and vertices.",
    )
    cache: str | bool | None = Field(
        None,
        description="Folder (relative to the case file) to keep the built mesh in and read it "
        "from in later runs on any number of ranks; false: no cache (default: the "
        "SCALEBRIDGE_MESH_CACHE environment variable, if set).",
    )

    @field_validator("length", "origin", mode="before")
    @classmethod
    def _in_metres(cls, raw: Any, info: ValidationInfo) -> Any:
        """Lengths read when the case loads, so they may be parameter-set constants ("L_n")."""
        if not isinstance(raw, list):
            return raw
        metres = [constant_value(v, "m", f"mesh.{info.field_name}.{i}") for i, v in enumerate(raw)]
        bad = next((i for i, m in enumerate(metres) if m <= 0), None)
        if info.field_name == "length" and bad is not None:
            # Said with the text as written: "thickness/2" is wrong because of the constant.
            value, fix = raw[bad], "give a positive length"
            written = repr(value)
            if isinstance(value, str) and not looks_like_quantity(value):
                written = f"'{value}' = {metres[bad]:g} m"
                fix += f"; '{value}' is computed from [parameters]: check the values used"
            raise CaseError(f"mesh.length.{bad}", f"lengths must be positive, got {written}", fix)
        return metres

    @field_validator("cache")
    @classmethod
    def _cache_folder(cls, cache: str | bool | None) -> str | bool | None:
        if cache is True:
            raise CaseError("mesh.cache", "give the cache's folder, or false", 'cache = "meshes"')
        return cache

    @model_validator(mode="after")
    def _check(self) -> "MeshSpec":
        if self.type != "pseudo2d":
            for key, default in _PSEUDO2D_ONLY.items():
                if getattr(self, key) != default:
                    raise CaseError(f"mesh.{key}", f"'{key}' is only read for type = \"pseudo2d\"")
        if self.type == "gmsh":
            self._check_gmsh()
            coords = COORDS
        elif self.type == "pseudo2d":
            check_pseudo2d_spec(self)
            coords = COORDS[:2]
        else:
            self._check_builtin()
            coords = COORDS[: self.dim]
            if self.edges and self.dim != 3:
                self.refuse_edges(self.dim)
        for kind in (REGIONS, BOUNDARIES, POINTS, EDGES):
            for name, text in getattr(self, kind.key).items():
                mesh_sets.condition(text, f"mesh.{kind.key}.{name}", coords)
        return self

    def refuse_edges(self, dim: int) -> None:
        """Edge sets exist in 3D only: a 2D mesh's edges are its facets (boundaries)."""
        name = next(iter(self.edges))
        what = "its facets: name them in mesh.boundaries" if dim == 2 else "its cells"
        raise CaseError(
            f"mesh.edges.{name}",
            f"edge sets are for 3D meshes; the edges of a {dim}D mesh are {what}",
            "name a line of a 2D mesh in mesh.boundaries, a vertex in mesh.points",
        )

    def _check_builtin(self) -> None:
        for key in _GMSH_ONLY:
            if getattr(self, key) not in (None, {}):
                raise CaseError(
                    f"mesh.{key}",
                    f"'{key}' is only read for type = \"gmsh\", not for a built-in {self.type}",
                    'remove it, or set type = "gmsh" to read a mesh file',
                )
        if self.order != 1:
            raise CaseError("mesh.order", "built-in meshes have straight cells (order 1)")
        if self.cell is not None and self.cell not in _CELLS[self.type]:
            raise CaseError(
                "mesh.cell",
                f"a {self.type} mesh cannot have {self.cell} cells",
                f"use one of: {', '.join(_CELLS[self.type])}",
            )
        for key in ("length", "origin", "cells"):
            values = getattr(self, key)
            if values is not None and len(values) != self.dim:
                raise CaseError(
                    f"mesh.{key}",
                    f"a {self.type} needs {self.dim} value(s), one per axis, got {len(values)}",
                    f"give {key} = [{', '.join(['...'] * self.dim)}]",
                )
        if self.refine and self.cell_type() in ("quadrilateral", "hexahedron"):
            raise CaseError(
                "mesh.refine",
                f"refinement splits intervals, triangles and tetrahedra, not {self.cell} cells",
                'use cell = "triangle" or "tetrahedron", or give more cells instead',
            )
        if any(n < 1 for n in self.cell_counts()):
            raise CaseError("mesh.cells", f"cell counts must be at least 1, got {self.cells}")
        self._check_resolvable(*self.extent())

    def _check_resolvable(self, origin: np.ndarray, lengths: np.ndarray) -> None:
        """Refuse boxes whose corners or cells double precision cannot tell apart (DOLFINx
        refuses spans below machine epsilon; cells a few ulps wide would be degenerate)."""
        with np.errstate(over="ignore"):  # checked just below
            ends = origin + lengths
        if not np.isfinite(ends).all():
            raise CaseError("mesh.length", "origin + length overflows double precision")
        spans = ends - origin
        widths = spans / np.array(self.cell_counts(), dtype=float)
        scale = np.maximum(np.abs(origin), np.abs(ends))
        eps = np.finfo(float).eps
        unresolved = np.flatnonzero((spans < eps) | (widths <= 8 * eps * scale))
        if unresolved.size:
            axis = unresolved[0]
            raise CaseError(
                "mesh.length",
                f"cells {widths[axis]:.3g} m wide along {COORDS[axis]}, at coordinates up to "
                f"{scale[axis]:.3g} m, are below what double precision resolves",
                "give a longer length, fewer cells, or an origin nearer to 0",
            )

    def _check_gmsh(self) -> None:
        """Reject settings that do not fit a gmsh file of the given type."""
        for key in _BUILTIN_ONLY:
            if getattr(self, key) is not None:
                raise CaseError(
                    f"mesh.{key}",
                    f"'{key}' is only read for built-in meshes (interval, rectangle, box)",
                    "remove it: the gmsh file defines the geometry and cells",
                )
        if not self.file:
            raise CaseError(
                "mesh.file",
                "a gmsh mesh needs a file",
                'give file = "meshes/part.geo" (a .msh, .geo or .py file)',
            )
        suffix = pathlib.PurePath(self.file).suffix.lower()
        if suffix not in _SUFFIXES:
            raise CaseError(
                "mesh.file",
                f"unknown mesh file type '{suffix or self.file}'",
                "give a gmsh .msh mesh, a .geo geometry or a .py script with build(model)",
            )
        if suffix == ".msh":
            if self.size is not None:
                raise CaseError("mesh.size", "a .msh file is already meshed", "remove 'size'")
            if self.order != 1:
                raise CaseError(
                    "mesh.order",
                    "a .msh file keeps the order it was written with",
                    "remove 'order', or mesh the .geo/.py source instead",
                )
        if self.parameters and suffix != ".py":
            raise CaseError(
                "mesh.parameters", "'parameters' are only passed to a .py script's build()"
            )
        for name, value in self.parameters.items():
            if isinstance(value, str) and _non_finite(value):  # a script may call float() on it
                raise CaseError(f"mesh.parameters.{name}", f"{value!r} is not a finite number")
        if self.order not in (1, 2):
            raise CaseError("mesh.order", f"order must be 1 or 2, got {self.order}")
        if self.size is not None and self.size_si() <= 0:
            raise CaseError("mesh.size", f"size must be positive, got {self.size!r}")

    @property
    def dim(self) -> int:
        """Dimension of a built-in mesh."""
        return _DIM[self.type]

    def cell_type(self) -> str:
        """Cell type of a built-in mesh."""
        return self.cell or _CELLS[self.type][0]

    def cell_counts(self) -> list[int]:
        """Cells per direction of a built-in mesh."""
        return list(self.cells) if self.cells is not None else [16] * self.dim

    def extent(self) -> tuple[np.ndarray, np.ndarray]:
        """Origin and lengths of a built-in mesh, in metres."""
        lengths = self.length if self.length is not None else [1.0] * self.dim
        origin = self.origin if self.origin is not None else [0.0] * self.dim
        return (
            np.array([to_si(v, "m", f"mesh.origin.{i}") for i, v in enumerate(origin)]),
            np.array([to_si(v, "m", f"mesh.length.{i}") for i, v in enumerate(lengths)]),
        )

    def size_si(self) -> float | None:
        """The gmsh cell size in metres, if given."""
        return None if self.size is None else to_si(self.size, "m", "mesh.size")


def _non_finite(text: str) -> bool:
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


def build_mesh(spec: MeshSpec, comm: MPI.Comm, base_dir: pathlib.Path) -> MeshData:
    """Build the mesh of a case, with named regions, boundaries, point and edge sets, or read
    it from the mesh cache (:mod:`app.mesh_cache`) when a run built it before.

    Collective on ``comm``.

    Args:
        spec: The validated ``[mesh]`` section.
        comm: Communicator to distribute the mesh on.
        base_dir: Folder of the case file; relative mesh files are looked up there first.

    Raises:
        CaseError: On every rank, for a missing or bad mesh file and for conditions that
            select nothing.
    """
    folder = cache_folder(spec.cache, base_dir)
    if folder is None:
        return _build(spec, comm, base_dir)
    source = find_file(spec.file, base_dir) if spec.type == "gmsh" else None
    cache = MeshCache(folder, cache_key(spec.model_dump(exclude={"cache"}), source), comm)
    found = cache.load()
    if found is not None:
        log.info("mesh read from the cache %s", cache.entry)
        return MeshData.from_cache(*found)
    data = _build(spec, comm, base_dir)
    cache.store(data.mesh, data.cached_tags(), data.cached_names())
    return data


def _build(spec: MeshSpec, comm: MPI.Comm, base_dir: pathlib.Path) -> MeshData:
    """The mesh of a case built from its section (see :func:`build_mesh`)."""
    if spec.type == "gmsh":
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
    if spec.refine:
        msh, tags = refine(msh, tags, spec.refine)
        description += f", refined {spec.refine}x"
    tdim = msh.topology.dim
    if spec.edges and tdim != 3:
        spec.refuse_edges(tdim)
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
    facets = mesh_sets.tag_values(msh, tdim - 1, tags.get(tdim - 1))
    vertices = mesh_sets.tag_values(msh, 0, tags.get(0) if tdim > 1 else None)
    lines = mesh_sets.tag_values(msh, 1, tags.get(1)) if edged else None
    outside = dmesh.exterior_facet_indices(msh.topology)
    if spec.type in _CELLS:  # a built-in box: regions and sides are the whole of each
        cells[:] = regions["domain"]
        _mark_sides(msh, spec, facets, outside)
    mesh_sets.apply_conditions(msh, tdim, cells, regions, spec.regions, REGIONS)
    mesh_sets.apply_conditions(msh, tdim - 1, facets, boundaries, spec.boundaries, BOUNDARIES)
    taken = dict.fromkeys(regions, "region") | dict.fromkeys(boundaries, "boundary")
    taken |= dict.fromkeys(edges, "edge set")
    mesh_sets.apply_conditions(msh, 0, vertices, points, spec.points, POINTS, taken)
    if lines is not None:
        taken |= dict.fromkeys(points, "point set")
        mesh_sets.apply_conditions(msh, 1, lines, edges, spec.edges, EDGES, taken)

    region_cells = mesh_sets.keep_used(msh, tdim, cells, regions)[0]
    exterior = np.zeros(len(facets), dtype=bool)
    exterior[outside] = True
    outer, inner = mesh_sets.keep_used(msh, tdim - 1, facets, boundaries, exterior)
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
        facet_tags=mesh_sets.meshtags(msh, tdim - 1, facets, "facet_tags"),
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
    )


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
    # One rank has nothing to distribute: without a partitioner DOLFINx skips that work.
    axis_order = (1, 0) if cell == "quadrilateral" else tuple(range(spec.dim))
    blocks = grid_partitioner(counts, cell_type, axis_order) if comm.size > 1 else None
    if spec.type == "interval":
        return dmesh.create_interval(
            comm, counts[0], [origin[0], corners[1][0]], ghost_mode=ghosts, partitioner=blocks
        )
    create = dmesh.create_rectangle if spec.type == "rectangle" else dmesh.create_box
    return create(comm, corners, counts, cell_type=cell_type, ghost_mode=ghosts, partitioner=blocks)


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
