"""Meshes: the ``[mesh]`` section of a case file, turned into a DOLFINx mesh with named tags.

Every mesh carries named *regions* (cell tags, integrate with ``dx(tag)``) and named
*boundaries* (facet tags; ``ds(tag)`` when exterior, ``dS(tag)`` when interior, e.g. an
interface between two materials). Names come from

* built-in meshes: region ``domain``; boundaries ``left``/``right`` (x min/max),
  ``bottom``/``top`` (y), ``back``/``front`` (z);
* gmsh meshes: the physical groups of the top dimension (regions) and of one dimension less
  (boundaries), named by their physical names (unnamed ones ``region_<tag>``/``boundary_<tag>``);
* ``regions`` / ``boundaries`` in the case file: conditions on x, y, z. A cell joins the first
  region whose condition its midpoint satisfies; a facet joins the first boundary whose condition
  all its vertices satisfy. They take their entities away from the names above.

Name policy: a ``regions``/``boundaries`` entry must use a new name. It never redefines an
existing name (which would leave some entities without any name); names that lose all their
entities to such entries are dropped. Every cell thus belongs to exactly one region, and each
boundary is entirely exterior or entirely interior (a mix is an error: no single measure fits).

Reading gmsh files (on rank 0, with errors raised on every rank) is :mod:`app.meshing_gmsh`.
"""

import pathlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
from dolfinx import mesh as dmesh
from mpi4py import MPI
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.errors import CaseError, listing
from app.expressions import Expression, ExpressionError, parse
from app.mesh_memory import BYTES_PER_CELL, memory_budget, simplex_cells
from app.meshing_gmsh import check_gmsh_spec, load_gmsh
from app.units import to_si

_DIM = {"interval": 1, "rectangle": 2, "box": 3}
_CELLS = {
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
_COORDS = ("x", "y", "z")
_GMSH_ONLY = ("file", "size", "parameters")


class MeshSpec(BaseModel):
    """The ``[mesh]`` section of a case file."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: Literal["interval", "rectangle", "box", "gmsh"] = Field(
        "rectangle", description="Built-in interval/rectangle/box, or a gmsh file."
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

    @model_validator(mode="after")
    def _check(self) -> "MeshSpec":
        if self.type == "gmsh":
            check_gmsh_spec(self)
            coords = _COORDS
        else:
            self._check_builtin()
            coords = _COORDS[: self.dim]
        for kind in ("regions", "boundaries"):
            for name, text in getattr(self, kind).items():
                _condition(text, f"mesh.{kind}.{name}", coords)
        return self

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
        if any(n < 1 for n in self.cell_counts()):
            raise CaseError("mesh.cells", f"cell counts must be at least 1, got {self.cells}")
        origin, lengths = self.extent()
        if any(v <= 0 for v in lengths):
            raise CaseError("mesh.length", f"lengths must be positive, got {self.length}")
        self._check_resolvable(origin, lengths)

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
                f"cells {widths[axis]:.3g} m wide along {_COORDS[axis]}, at coordinates up to "
                f"{scale[axis]:.3g} m, are below what double precision resolves",
                "give a longer length, fewer cells, or an origin nearer to 0",
            )

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


@dataclass(frozen=True)
class MeshData:
    """A mesh with named regions and boundaries.

    Attributes:
        mesh: The DOLFINx mesh.
        cell_tags: Region tag of every cell.
        facet_tags: Boundary tag of the named facets.
        regions: Region name -> cell tag value.
        boundaries: Boundary name -> facet tag value.
        interior_boundaries: Boundaries made of interior facets (use ``dS``); the rest are
            exterior (use ``ds``).
        description: One line saying where the mesh came from.
        region_cells: Region name -> global number of cells.
        boundary_facets: Boundary name -> global number of facets.
    """

    mesh: dmesh.Mesh
    cell_tags: dmesh.MeshTags
    facet_tags: dmesh.MeshTags
    regions: dict[str, int]
    boundaries: dict[str, int]
    interior_boundaries: frozenset[str]
    description: str
    region_cells: dict[str, int]
    boundary_facets: dict[str, int]

    def summary(self) -> str:
        """Multi-line description for ``scalebridge check``; the same text on every rank.

        Not collective (the counts were reduced at build time), so rank 0 may call it alone.
        """
        topology = self.mesh.topology
        lines = [
            f"Mesh: {self.description}",
            f"  {topology.index_map(topology.dim).size_global} cells "
            f"({topology.cell_name()}, geometry order {self.mesh.geometry.cmaps[0].degree}), "
            f"{topology.index_map(0).size_global} vertices, gdim {self.mesh.geometry.dim}",
            "  Regions (dx):",
        ]
        width = max(map(len, [*self.regions, *self.boundaries]))
        lines += [
            f"    {name:<{width}}  tag {tag:<3}  {self.region_cells[name]} cells"
            for name, tag in self.regions.items()
        ]
        lines.append("  Boundaries:" if self.boundaries else "  Boundaries: none")
        for name, tag in self.boundaries.items():
            kind = "interior (dS)" if name in self.interior_boundaries else "exterior (ds)"
            lines.append(
                f"    {name:<{width}}  tag {tag:<3}  {kind}  {self.boundary_facets[name]} facets"
            )
        return "\n".join(lines)


def build_mesh(spec: MeshSpec, comm: MPI.Comm, base_dir: pathlib.Path) -> MeshData:
    """Build the mesh of a case, with named regions and boundaries.

    Collective on ``comm``.

    Args:
        spec: The validated ``[mesh]`` section.
        comm: Communicator to distribute the mesh on.
        base_dir: Folder of the case file; relative mesh files are looked up there first.

    Raises:
        CaseError: On every rank, for a missing or bad mesh file and for region or boundary
            conditions that select nothing.
    """
    if spec.type == "gmsh":
        msh, cell_tags, facet_tags, regions, boundaries = load_gmsh(spec, comm, base_dir)
        size = "" if spec.size is None else f", size {spec.size_si():g} m"
        description = f"gmsh {spec.file}{size}" + (
            f", order {spec.order}" if spec.order > 1 else ""
        )
    else:
        msh = _builtin_mesh(spec, comm)
        cell_tags = facet_tags = None
        regions = {"domain": 1}
        boundaries = {name: i + 1 for i, (name, _, _) in enumerate(_SIDES[: 2 * spec.dim])}
        counts = "x".join(map(str, spec.cell_counts()))
        cell = "" if spec.type == "interval" else f" {spec.cell_type()}"
        description = f"{spec.type} {counts}{cell}"
    tdim = msh.topology.dim
    msh.topology.create_connectivity(tdim - 1, tdim)
    cells = _tag_values(msh, tdim, cell_tags)
    facets = _tag_values(msh, tdim - 1, facet_tags)
    outside = dmesh.exterior_facet_indices(msh.topology)
    if spec.type != "gmsh":
        cells[:] = regions["domain"]
        _mark_sides(msh, spec, facets, outside)
    _apply_conditions(msh, tdim, cells, regions, spec.regions, "regions")
    _apply_conditions(msh, tdim - 1, facets, boundaries, spec.boundaries, "boundaries")

    region_cells = _keep_used(msh, tdim, cells, regions)[0]
    exterior = np.zeros(len(facets), dtype=bool)
    exterior[outside] = True
    outer, inner = _keep_used(msh, tdim - 1, facets, boundaries, exterior)
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
        cell_tags=_meshtags(msh, tdim, cells, "cell_tags"),
        facet_tags=_meshtags(msh, tdim - 1, facets, "facet_tags"),
        regions=regions,
        boundaries=boundaries,
        interior_boundaries=frozenset(name for name in boundaries if inner[name]),
        description=description,
        region_cells=region_cells,
        boundary_facets={name: outer[name] + inner[name] for name in boundaries},
    )


def _builtin_mesh(spec: MeshSpec, comm: MPI.Comm) -> dmesh.Mesh:
    origin, lengths = spec.extent()
    corners = [origin, origin + lengths]
    counts = spec.cell_counts()
    cell = spec.cell_type()
    cells = simplex_cells(counts, cell)
    what = f"cells = {counts} makes {cells:.3g} {cell} cells"
    memory_budget(comm).check(cells, BYTES_PER_CELL[cell], "mesh.cells", what)
    ghosts = dmesh.GhostMode.shared_facet
    if spec.type == "interval":
        return dmesh.create_interval(comm, counts[0], [origin[0], corners[1][0]], ghost_mode=ghosts)
    cell_type = dmesh.CellType[cell]
    create = dmesh.create_rectangle if spec.type == "rectangle" else dmesh.create_box
    return create(comm, corners, counts, cell_type=cell_type, ghost_mode=ghosts)


def _mark_sides(msh: dmesh.Mesh, spec: MeshSpec, facets: np.ndarray, outside: np.ndarray) -> None:
    """Tag the exterior facets of a built-in box by the side their midpoint lies on."""
    origin, lengths = spec.extent()
    tol = 1e-10 * lengths.max()
    midpoints = dmesh.compute_midpoints(msh, msh.topology.dim - 1, outside)
    for tag, (_, axis, end) in enumerate(_SIDES[: 2 * spec.dim], start=1):
        plane = origin[axis] + end * lengths[axis]
        facets[outside[np.abs(midpoints[:, axis] - plane) <= tol]] = tag


def _tag_values(msh: dmesh.Mesh, dim: int, tags: dmesh.MeshTags | None) -> np.ndarray:
    """Tag value of every local entity (owned and ghost) of ``dim``; 0 means untagged."""
    index_map = msh.topology.index_map(dim)
    values = np.zeros(index_map.size_local + index_map.num_ghosts, dtype=np.int32)
    if tags is not None:
        values[tags.indices] = tags.values
    return values


def _condition(text: str, path: str, coords: tuple[str, ...]) -> Expression:
    """Parse a region/boundary condition, allowing only the mesh's coordinates."""
    try:
        expr = parse(text)
        expr.check_names(coords)
    except ExpressionError as exc:
        raise CaseError(
            path, str(exc).rstrip("."), f"conditions may use the coordinates {', '.join(coords)}"
        ) from None
    if not expr.is_boolean:
        raise CaseError(
            path,
            f"'{text}' is a value, not a condition",
            "write a comparison such as 'x < 0.5', combined with and/or/not",
        )
    return expr


def _bounding_box(msh: dmesh.Mesh) -> str:
    gdim = msh.geometry.dim
    x = msh.geometry.x[:, :gdim]
    low, high = np.full(gdim, np.inf), np.full(gdim, -np.inf)
    msh.comm.Allreduce(x.min(axis=0) if len(x) else low.copy(), low, op=MPI.MIN)
    msh.comm.Allreduce(x.max(axis=0) if len(x) else high.copy(), high, op=MPI.MAX)
    return ", ".join(
        f"{c} in [{lo:.6g}, {hi:.6g}]" for c, lo, hi in zip(_COORDS, low, high, strict=False)
    )


def _apply_conditions(
    msh: dmesh.Mesh,
    dim: int,
    values: np.ndarray,
    names: dict[str, int],
    conditions: dict[str, str],
    kind: Literal["regions", "boundaries"],
) -> None:
    """Give each entity the tag of the first condition it meets; adds the new names."""
    noun, what = ("region", "cells") if kind == "regions" else ("boundary", "facets")
    owned = msh.topology.index_map(dim).size_local
    coords = _COORDS[: msh.geometry.dim]
    taken = np.zeros(len(values), dtype=bool)
    tag = max(names.values(), default=0) + 1
    existing = dict(names)
    for name, text in conditions.items():
        path = f"mesh.{kind}.{name}"
        if name in existing:
            raise CaseError(
                path,
                f"'{name}' is already a {noun} of this mesh ({listing(existing)})",
                f"choose a new name; the {what} it selects are taken from '{name}' automatically",
            )
        expr = _condition(text, path, coords)
        hit, problem = _select(msh, dim, len(values), expr)
        # One rank's failure (sqrt of a negative coordinate) must stop all, not deadlock them.
        problem = next((p for p in msh.comm.allgather(problem) if p), None)
        if problem:
            raise CaseError(path, problem)
        mine = hit & ~taken
        selected, kept = msh.comm.allreduce(
            np.array([hit[:owned].sum(), mine[:owned].sum()]), op=MPI.SUM
        )
        if selected == 0:
            rule = "; every vertex of a facet must meet it" if kind == "boundaries" else ""
            extent = _bounding_box(msh)
            raise CaseError(
                path,
                f"'{text}' selects no {what}",
                f"check the coordinates against the domain extent ({extent}){rule}",
            )
        if kept == 0:
            raise CaseError(
                path,
                f"'{text}' only selects {what} that earlier {kind} already took",
                f"{kind} are applied in order, first match wins; move '{name}' up",
            )
        values[mine] = tag
        taken |= mine
        names[name] = tag
        tag += 1


def _select(
    msh: dmesh.Mesh, dim: int, size: int, expr: Expression
) -> tuple[np.ndarray, str | None]:
    """Local entities meeting ``expr`` (cells: midpoint; facets: all vertices), or the error."""
    hit = np.zeros(size, dtype=bool)
    try:
        if dim == msh.topology.dim:
            x = dmesh.compute_midpoints(msh, dim, np.arange(size, dtype=np.int32)).T
            hit[:] = expr.evaluate(dict(zip(_COORDS, x, strict=False)))
        else:

            def marker(x: np.ndarray) -> np.ndarray:
                return expr.evaluate(dict(zip(_COORDS, x, strict=False)))

            hit[dmesh.locate_entities(msh, dim, marker)] = True
    except ExpressionError as exc:
        return hit, str(exc).rstrip(".")
    return hit, None


def _keep_used(
    msh: dmesh.Mesh,
    dim: int,
    values: np.ndarray,
    names: dict[str, int],
    split: np.ndarray | None = None,
) -> tuple[dict[str, int], dict[str, int]]:
    """Global owned-entity counts per name, dropping names left without entities.

    Returns the counts of entities in and outside ``split`` (all count as "in" without it).
    """
    owned = values[: msh.topology.index_map(dim).size_local]
    inside = np.ones(len(owned), dtype=bool) if split is None else split[: len(owned)]
    size = max(names.values(), default=0) + 1
    local = np.stack(
        [np.bincount(owned[inside], minlength=size), np.bincount(owned[~inside], minlength=size)]
    )
    counts = msh.comm.allreduce(local[:, :size], op=MPI.SUM)
    for name, tag in list(names.items()):
        if counts[:, tag].sum() == 0:
            del names[name]
    return (
        {name: int(counts[0, tag]) for name, tag in names.items()},
        {name: int(counts[1, tag]) for name, tag in names.items()},
    )


def _meshtags(msh: dmesh.Mesh, dim: int, values: np.ndarray, name: str) -> dmesh.MeshTags:
    entities = np.flatnonzero(values).astype(np.int32)
    tags = dmesh.meshtags(msh, dim, entities, values[entities])
    tags.name = name
    return tags
