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

All gmsh work runs on rank 0; its errors are broadcast so every rank raises the same
:class:`~app.errors.CaseError`.
"""

import importlib.util
import inspect
import pathlib
from dataclasses import dataclass
from typing import Literal

import gmsh
import numpy as np
from dolfinx import mesh as dmesh
from dolfinx.io import gmsh as dgmsh
from mpi4py import MPI
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.errors import CaseError, did_you_mean, listing
from app.expressions import Expression, ExpressionError, parse
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
_SUFFIXES = (".msh", ".geo", ".py")
_GROUP_WORDS = {1: "Curve", 2: "Surface", 3: "Volume"}
_GMSH_ONLY = ("file", "size", "parameters")
_BUILTIN_ONLY = ("length", "origin", "cells", "cell")


class MeshSpec(BaseModel):
    """The ``[mesh]`` section of a case file."""

    model_config = ConfigDict(extra="forbid")

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
            self._check_gmsh()
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
            if key in self.model_fields_set and getattr(self, key):
                raise CaseError(
                    f"mesh.{key}",
                    f"'{key}' is only read for type = \"gmsh\", not for a built-in {self.type}",
                    f'remove it, or set type = "gmsh" to read a mesh file',
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
                    f"a {self.type} needs {self.dim} value(s), one per direction, got {len(values)}",
                    f"give {key} = [{', '.join(['...'] * self.dim)}]",
                )
        if any(n < 1 for n in self.cell_counts()):
            raise CaseError("mesh.cells", f"cell counts must be at least 1, got {self.cells}")
        if any(v <= 0 for v in self.extent()[1]):
            raise CaseError("mesh.length", f"lengths must be positive, got {self.length}")

    def _check_gmsh(self) -> None:
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
        lines.append("  Boundaries:")
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
        msh, cell_tags, facet_tags, regions, boundaries = _gmsh_mesh(spec, comm, base_dir)
        description = f"gmsh {spec.file}"
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
    if cell_tags is None:
        cells[:] = 1
        _mark_sides(msh, spec, facets)
    bbox = _bounding_box(msh)
    _apply_conditions(msh, tdim, cells, regions, spec.regions, "regions", bbox)
    _apply_conditions(msh, tdim - 1, facets, boundaries, spec.boundaries, "boundaries", bbox)

    region_cells = _keep_used(msh, tdim, cells, regions)[0]
    exterior = np.zeros(len(facets), dtype=bool)
    exterior[dmesh.exterior_facet_indices(msh.topology)] = True
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
    ghosts = dmesh.GhostMode.shared_facet
    if spec.type == "interval":
        return dmesh.create_interval(comm, counts[0], [origin[0], corners[1][0]], ghost_mode=ghosts)
    cell_type = dmesh.CellType[spec.cell_type()]
    create = dmesh.create_rectangle if spec.type == "rectangle" else dmesh.create_box
    return create(comm, corners, counts, cell_type=cell_type, ghost_mode=ghosts)


def _mark_sides(msh: dmesh.Mesh, spec: MeshSpec, facets: np.ndarray) -> None:
    origin, lengths = spec.extent()
    tol = 1e-10 * lengths.max()
    for tag, (_, axis, end) in enumerate(_SIDES[: 2 * spec.dim], start=1):
        plane = origin[axis] + end * lengths[axis]
        found = dmesh.locate_entities(
            msh, msh.topology.dim - 1, lambda x, a=axis, p=plane: np.abs(x[a] - p) <= tol
        )
        facets[found] = tag


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
    low = msh.comm.allreduce(x.min(axis=0) if len(x) else np.full(gdim, np.inf), op=MPI.MIN)
    high = msh.comm.allreduce(x.max(axis=0) if len(x) else np.full(gdim, -np.inf), op=MPI.MAX)
    return ", ".join(f"{c} in [{lo:.6g}, {hi:.6g}]" for c, lo, hi in zip(_COORDS, low, high))


def _apply_conditions(
    msh: dmesh.Mesh,
    dim: int,
    values: np.ndarray,
    names: dict[str, int],
    conditions: dict[str, str],
    kind: Literal["regions", "boundaries"],
    bbox: str,
) -> None:
    """Give each entity the tag of the first condition it meets; adds the new names."""
    what = "cells" if kind == "regions" else "facets"
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
                f"'{name}' is already a {kind[:-1]} of this mesh ({listing(existing)})",
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
            raise CaseError(
                path,
                f"'{text}' selects no {what}",
                f"check the coordinates against the domain extent ({bbox})"
                + (
                    " and that all vertices of a facet meet the condition"
                    if dim < msh.topology.dim
                    else ""
                ),
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
            hit[:] = expr.evaluate(dict(zip(_COORDS, x)))
        else:
            marker = lambda x: expr.evaluate(dict(zip(_COORDS, x)))  # noqa: E731
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


def _gmsh_mesh(
    spec: MeshSpec, comm: MPI.Comm, base_dir: pathlib.Path
) -> tuple[dmesh.Mesh, dmesh.MeshTags, dmesh.MeshTags | None, dict[str, int], dict[str, int]]:
    """Read or generate the gmsh model on rank 0 and distribute it."""
    outcome: tuple = ()
    try:
        if comm.rank == 0:
            gmsh.initialize(readConfigFiles=False, interruptible=False)
            gmsh.option.setNumber("General.Terminal", 0)
            try:
                outcome = ("ok", _gmsh_model(spec, base_dir))
            except CaseError as exc:
                outcome = ("error", (exc.path, exc.problem, exc.fix))
            except Exception as exc:  # noqa: BLE001 - any failure must reach the other ranks
                outcome = ("error", ("mesh.file", f"gmsh failed on '{spec.file}': {exc}", None))
        status, payload = comm.bcast(outcome, root=0)
        if status == "error":
            raise CaseError(*payload)
        dim, groups = payload
        partitioner = dmesh.create_cell_partitioner(dmesh.GhostMode.shared_facet, 2)
        data = dgmsh.model_to_mesh(gmsh.model, comm, 0, gdim=dim, partitioner=partitioner)
    finally:
        if comm.rank == 0 and gmsh.isInitialized():
            gmsh.finalize()
    regions = {name: tag for d, tag, name in groups if d == dim}
    boundaries = {name: tag for d, tag, name in groups if d == dim - 1}
    return data.mesh, data.cell_tags, data.facet_tags, regions, boundaries


def _gmsh_model(spec: MeshSpec, base_dir: pathlib.Path) -> tuple[int, list[tuple[int, int, str]]]:
    """Load the file into the gmsh model and mesh it (rank 0); returns its dimension and groups.

    ``.msh`` is merged here rather than through ``dolfinx.io.gmsh.read_from_msh``, which would
    leave the other ranks waiting forever if gmsh failed to read the file.
    """
    path = _find(spec.file, base_dir)
    if path.suffix.lower() == ".py":
        _run_script(path, spec.parameters)
    else:
        _gmsh_step(f"read '{spec.file}'", gmsh.open, str(path))
    dim = gmsh.model.getDimension()
    if dim < 1:
        raise CaseError("mesh.file", f"'{spec.file}' defines no geometry")
    if path.suffix.lower() != ".msh":
        if spec.size is not None:
            gmsh.option.setNumber("Mesh.CharacteristicLengthMax", spec.size_si())
        _gmsh_step(f"mesh '{spec.file}'", gmsh.model.mesh.generate, dim)
        if spec.order > 1:
            _gmsh_step(
                f"make '{spec.file}' order {spec.order}", gmsh.model.mesh.setOrder, spec.order
            )
    return dim, _physical_groups(spec.file, dim)


def _gmsh_step(what: str, step, *args) -> None:
    try:
        step(*args)
    except Exception as exc:  # noqa: BLE001 - the gmsh API raises plain Exception
        raise CaseError("mesh.file", f"gmsh could not {what}: {exc}") from None


def _find(file: str, base_dir: pathlib.Path) -> pathlib.Path:
    given = pathlib.Path(file).expanduser()
    candidates = [given] if given.is_absolute() else [base_dir / given, pathlib.Path.cwd() / given]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    folders = ", ".join(dict.fromkeys(str(c.parent.resolve()) for c in candidates))
    raise CaseError(
        "mesh.file",
        f"file '{file}' not found (looked in: {folders})",
        "check the name; a relative path is read from the case file's folder, "
        "then from the current directory",
    )


def _run_script(path: pathlib.Path, parameters: dict[str, float | int | str]) -> None:
    """Run a .py geometry script's ``build(model, **parameters)``."""
    loader_spec = importlib.util.spec_from_file_location(f"scalebridge_mesh_{path.stem}", path)
    module = importlib.util.module_from_spec(loader_spec)
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - user code may raise anything
        raise CaseError("mesh.file", f"{path.name} failed to load: {type(exc).__name__}: {exc}")
    build = getattr(module, "build", None)
    if not callable(build):
        raise CaseError(
            "mesh.file",
            f"{path.name} has no build() function",
            "define build(model, **parameters) that adds the geometry and physical groups "
            "(see meshes/two_layer.py)",
        )
    signature = inspect.signature(build)
    try:
        signature.bind(gmsh.model, **parameters)
    except TypeError as exc:
        accepted = list(signature.parameters)[1:]
        raise CaseError(
            "mesh.parameters",
            f"build() in {path.name} does not take these parameters ({exc})",
            f"its parameters are: {listing(accepted)}",
        ) from None
    try:
        build(gmsh.model, **parameters)
    except Exception as exc:  # noqa: BLE001 - user code may raise anything
        raise CaseError(
            "mesh.file", f"build() in {path.name} raised {type(exc).__name__}: {exc}"
        ) from None


def _physical_groups(file: str, dim: int) -> list[tuple[int, int, str]]:
    """Named physical groups of the cells and facets, checked so model_to_mesh cannot fail."""
    model = gmsh.model
    word = _GROUP_WORDS[dim]
    groups = []
    for d in (dim, dim - 1):
        owner: dict[int, str] = {}
        names: set[str] = set()
        for _, tag in model.getPhysicalGroups(d):
            name = model.getPhysicalName(d, tag) or f"{'region' if d == dim else 'boundary'}_{tag}"
            if name in names:
                raise CaseError("mesh.file", f"two physical groups of '{file}' are named '{name}'")
            names.add(name)
            groups.append((d, tag, name))
            for entity in model.getEntitiesForPhysicalGroup(d, tag):
                if entity in owner:
                    raise CaseError(
                        "mesh.file",
                        f"entity {entity} of dimension {d} is in both '{owner[entity]}' and '{name}'",
                        "put every cell and facet into at most one physical group",
                    )
                owner[int(entity)] = name
        if d == dim:
            loose = [tag for _, tag in model.getEntities(dim) if tag not in owner]
            if not owner or loose:
                raise CaseError(
                    "mesh.file",
                    f"in '{file}', {word.lower()}(s) {loose} belong to no physical {word.lower()}",
                    f'add e.g. Physical {word}("solid") = {{...}}; or, in a .py script, '
                    f'model.addPhysicalGroup({dim}, tags, name="solid")',
                )
    types = model.mesh.getElementTypes(dim)
    if len(types) != 1 or types[0] not in dgmsh._gmsh_to_cells:
        names = [model.mesh.getElementProperties(t)[0] for t in types]
        raise CaseError(
            "mesh.file",
            f"'{file}' has cells of type(s) {names}; one Lagrange cell type is supported",
            "do not mix triangles with quadrilaterals (or tetrahedra with hexahedra)",
        )
    return groups
