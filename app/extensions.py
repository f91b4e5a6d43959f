"""Extensions: a field of a boundary's mesh read on the parent mesh or on one of its regions.

A trace (app/traces.py) carries a parent field to a boundary; an extension carries a field of a
boundary back, constant along the boundary's normal: the cell temperature T(x, y) of the plane
r = 1 of a pseudo-3D (x, y, r) battery mesh read by the particles below it as

    T_ext(x, y, r) = T(x, y, 1).

It is defined for a flat boundary over cells that stand in columns on it (every cell of the
reading place is the prism of one facet of the boundary along its normal n, as the pseudo-2D
meshes' cells are): one more unknown of the group that solves the field, on the reader's place
(``<field>_<region>``, or ``<field>_parent`` on the whole mesh), with the row

    int_P H (grad(u).n)(grad(m).n) dx  +  int_{B beside P} (u - T) m ds  =  0    for all m

(H the columns' height along n, making both terms of one unit). The extension of T lies in the
space of u on such cells, has a zero normal derivative and equals T on B, so it is the row's
solution; the row is definite when every cell reaches B along n, which the column check makes
sure of. Newton solves it with T, so its Jacobian couples the readers to T.

A reader's integrals over the parent (its cells, or other boundaries) read the extension in
place of the boundary's field, and an expression built on the boundary's mesh (a prescribed
field of x and y there) reads the parent's coordinate projected onto the boundary; integrals
over the boundary's own facets keep the field itself (:class:`Extensions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import ufl
from dolfinx import fem
from dolfinx import mesh as dmesh
from mpi4py import MPI
from ufl.corealg.traversal import traverse_unique_terminals
from ufl.domain import extract_unique_domain

from app.domains import Domains
from app.mesh_sets import tag_values

FLAT = 1e-10  # relative deviation of a facet normal (or offset) from the boundary's plane
MATCH = 1e-8  # relative to the smallest facet edge: positions that are the same column


@dataclass(eq=False)
class Columns:
    """The reading place's cells as columns over a flat boundary.

    Attributes:
        boundary: The boundary the field lives on.
        place: The region read on (None: the whole mesh).
        normal: The boundary's unit normal (its sign is immaterial).
        height: Extent of the place's cells along the normal.
        basis: Orthonormal tangent vectors of the boundary (columns of a gdim x (gdim - 1)).
        tolerance: Distance within which two positions on the boundary are one.
    """

    boundary: str
    place: str | None
    normal: np.ndarray
    height: float
    basis: np.ndarray
    tolerance: float

    def along(self, points: np.ndarray) -> np.ndarray:
        """Positions on the boundary of points (their coordinates along the tangents)."""
        return points[:, : len(self.normal)] @ self.basis


class NoColumns(ValueError):
    """The place's cells do not stand in columns on the boundary (the message says why)."""


def plane(domains: Domains, boundary: str) -> tuple[np.ndarray, float, float]:
    """Normal, offset and smallest edge of a flat boundary (the same on every rank).

    Raises:
        NoColumns: The boundary is not flat, or the mesh has no room along its normal.
    """
    msh = domains.parent
    tdim, gdim = msh.topology.dim, msh.geometry.dim
    if tdim != gdim or tdim < 2:
        raise NoColumns(f"a {tdim}D mesh in {gdim}D has no columns along a boundary's normal")
    corners = _vertices(msh, tdim - 1, _facets(domains, boundary, None))
    normals = _normals(corners)
    comm = msh.comm
    found = [n for n in comm.allgather(normals[0] if len(normals) else None) if n is not None]
    if not found:
        raise NoColumns(f"the boundary '{boundary}' has no facets")
    first = found[0]
    normals *= np.sign(normals @ first)[:, None]
    heights = corners @ first
    edges = np.linalg.norm(corners[:, 1] - corners[:, 0], axis=1)
    bent = comm.allreduce(float(np.max(1 - normals @ first, initial=0.0)), op=MPI.MAX)
    low = comm.allreduce(float(heights.min(initial=np.inf)), op=MPI.MIN)
    high = comm.allreduce(float(heights.max(initial=-np.inf)), op=MPI.MAX)
    edge = comm.allreduce(float(edges.min(initial=np.inf)), op=MPI.MIN)
    size = float(np.ptp(msh.geometry.x[:, :gdim], axis=0).max())
    if bent > FLAT or high - low > FLAT * size:
        raise NoColumns(f"the boundary '{boundary}' is not flat (one plane)")
    return first, 0.5 * (low + high), edge


def find_columns(domains: Domains, boundary: str, place: str | None) -> Columns:
    """The columns of the place's cells over the boundary.

    Raises:
        NoColumns: The boundary is not flat, or a cell of the place is not the prism of one of
            the boundary's facets beside the place along its normal.
    """
    normal, _, edge = plane(domains, boundary)
    msh, tdim = domains.parent, domains.parent.topology.dim
    comm, tolerance = msh.comm, MATCH * edge
    columns = Columns(boundary, place, normal, 0.0, _tangents(normal), tolerance)
    facets = _vertices(msh, tdim - 1, _facets(domains, boundary, place))
    gathered = np.concatenate(comm.allgather(columns.along(facets.reshape(-1, len(normal)))))
    where = "the whole mesh" if place is None else f"region '{place}'"
    if len(gathered) == 0:
        raise NoColumns(f"no facet of the boundary '{boundary}' borders {where}")
    table = np.unique(gathered, axis=0)
    facet_keys = {
        tuple(sorted(set(row)))
        for row in _match(gathered, table, tolerance).reshape(-1, facets.shape[1])
    }
    cells = _cells(domains, place)
    corners = _vertices(msh, tdim, cells)
    ids = _match(columns.along(corners.reshape(-1, len(normal))), table, tolerance)
    ids = ids.reshape(len(cells), corners.shape[1])
    stray = (ids < 0).any() or any(
        tuple(sorted(set(row))) not in facet_keys for row in ids.tolist()
    )
    if comm.allreduce(stray, op=MPI.MAX):
        raise NoColumns(
            f"the cells of {where} do not stand in columns on the boundary '{boundary}': a "
            f"cell is not the prism of one of its facets along the boundary's normal "
            f"({_vector(normal)})"
        )
    heights = corners.reshape(-1, len(normal)) @ normal
    low = comm.allreduce(float(heights.min(initial=np.inf)), op=MPI.MIN)
    high = comm.allreduce(float(heights.max(initial=-np.inf)), op=MPI.MAX)
    columns.height = high - low
    return columns


def row(extension: Any, source: Any, columns: Columns, test: Any, domains: Domains) -> Any:
    """The extension's row: zero normal derivative on the place, equal to the source on the
    boundary beside it."""
    measures = domains.measures(domains.mesh_data)
    normal = ufl.as_vector([float(value) for value in columns.normal])
    if columns.place is None:
        dx, ds = measures.dx, measures.ds(columns.boundary)
    else:
        dx = measures.dx(domains.mesh_data.regions[columns.place])
        ds = measures.ds(columns.boundary, [columns.place])
    along = ufl.inner(ufl.dot(ufl.grad(extension), normal), ufl.dot(ufl.grad(test), normal))
    return float(columns.height) * along * dx + ufl.inner(extension - source, test) * ds


def guess(extension: fem.Function, source: fem.Function, columns: Columns) -> None:
    """The extension's values at its nodes: the source's at the node of its column (the
    starting guess of Newton, exact on columns)."""
    space = source.function_space
    block = space.dofmap.index_map_bs
    owned = space.dofmap.index_map.size_local
    comm = space.mesh.comm
    positions = columns.along(space.tabulate_dof_coordinates()[:owned])
    values = source.x.array[: owned * block].reshape(-1, block)
    positions = np.concatenate(comm.allgather(positions))
    values = np.concatenate(comm.allgather(values))
    order = np.lexsort(positions.T[::-1])
    nodes = columns.along(extension.function_space.tabulate_dof_coordinates())
    ids = _match(nodes, positions[order], columns.tolerance)
    if (ids < 0).any():
        raise RuntimeError("an extension's node has no node of its source in its column")
    extension.x.array[:] = values[order][ids].ravel()


class Extensions:
    """The form pass that makes a parent integral read extensions instead of fields of a
    boundary's mesh (integrals over that boundary's own facets keep the field). Created, it
    also makes the domains' evaluations of expressions read them (``domains.extend``).

    Args:
        domains: The domains of the run.
        extensions: (source function, place) -> the extension's function.
    """

    def __init__(self, domains: Domains, extensions: dict[tuple[Any, str | None], Any]):
        self._domains = domains
        self._extensions = extensions
        self._planes: dict[str, tuple[np.ndarray, float] | None] = {}
        domains.extend = self.expression

    def __call__(self, form: ufl.Form) -> ufl.Form:
        parent = self._domains.parent.ufl_domain()
        integrals, changed = [], False
        for integral in form.integrals():
            replacements = {}
            if integral.ufl_domain() == parent:
                for terminal in traverse_unique_terminals(integral.integrand()):
                    value = self._replacement(terminal, integral)
                    if value is not None:
                        replacements[terminal] = value
            if replacements:
                changed = True
                integral = integral.reconstruct(ufl.replace(integral.integrand(), replacements))
            integrals.append(integral)
        return ufl.Form(integrals) if changed else form

    def expression(self, expression: Any, place: str | None) -> Any:
        """An expression evaluated on a region's (or the parent's) nodes, reading the
        extensions of boundary fields there."""
        replacements = {}
        for terminal in traverse_unique_terminals(ufl.as_ufl(expression)):
            value = self._replacement(terminal, None, place)
            if value is not None:
                replacements[terminal] = value
        return ufl.replace(expression, replacements) if replacements else expression

    def _replacement(self, terminal: Any, integral: Any, place: str | None = None) -> Any:
        """The extension of a terminal of a boundary's mesh read in an integral over the
        parent (or, without one, at the nodes of ``place``), or None to keep it."""
        if isinstance(terminal, fem.Function):
            surface = self._domains.of(terminal.function_space.mesh)
        elif isinstance(terminal, ufl.SpatialCoordinate):
            home = extract_unique_domain(terminal)
            surface = next(
                (r for r in self._domains.submeshes() if r.mesh.ufl_domain() == home), None
            )
        else:
            return None
        if surface is None or not surface.surface:
            return None
        if integral is not None:
            if _on(integral, surface, self._domains):
                return None
            place = _region(integral, self._domains)
        if isinstance(terminal, ufl.SpatialCoordinate):
            return self._projected(surface.name)
        for where in (place, None):
            found = self._extensions.get((terminal, where))
            if found is not None:
                return found
        return None

    def _projected(self, boundary: str) -> Any:
        """The parent's coordinate moved along the normal onto a flat boundary (None: the
        boundary is not flat, and the coordinate stays what localising makes it)."""
        if boundary not in self._planes:
            try:
                normal, offset, _ = plane(self._domains, boundary)
                self._planes[boundary] = (normal, offset)
            except NoColumns:
                self._planes[boundary] = None
        if self._planes[boundary] is None:
            return None
        normal, offset = self._planes[boundary]
        x = ufl.SpatialCoordinate(self._domains.parent)
        n = ufl.as_vector([float(value) for value in normal])
        return x - (ufl.dot(x, n) - float(offset)) * n


def _on(integral: Any, surface: Any, domains: Domains) -> bool:
    """Whether an integral over the parent runs over the boundary's own facets only."""
    ids = integral.subdomain_id()
    ids = ids if isinstance(ids, tuple) else (ids,)
    if integral.integral_type() != "exterior_facet" or "everywhere" in ids or "otherwise" in ids:
        return False
    measures = domains.measures(domains.mesh_data)
    origins = [measures.origin(int(i)) for i in ids]
    return all(origin is not None and origin[0] == surface.tag for origin in origins)


def _region(integral: Any, domains: Domains) -> str | None:
    """The one region whose cells an integral over the parent covers (None: several, all)."""
    ids = integral.subdomain_id()
    ids = ids if isinstance(ids, tuple) else (ids,)
    if "everywhere" in ids or "otherwise" in ids:
        return None
    data = domains.mesh_data
    if integral.integral_type() == "cell":
        tags = {int(i) for i in ids}
    elif integral.integral_type() == "exterior_facet":
        measures = domains.measures(data)
        tags = {(measures.origin(int(i)) or (None, None))[1] for i in ids}
    else:
        return None
    names = [name for name, tag in data.regions.items() if tag in tags]
    return names[0] if len(tags) == 1 and len(names) == 1 else None


def _facets(domains: Domains, boundary: str, place: str | None) -> np.ndarray:
    """Local facets of the boundary (beside the place's cells only)."""
    data, msh = domains.mesh_data, domains.parent
    tdim = msh.topology.dim
    facets = data.facet_tags.find(data.boundaries[boundary])
    if place is None:
        return facets
    msh.topology.create_connectivity(tdim - 1, tdim)
    to_cells = msh.topology.connectivity(tdim - 1, tdim)
    regions = tag_values(msh, tdim, data.cell_tags)
    beside = np.array([regions[to_cells.links(f)[0]] for f in facets], dtype=np.int32)
    return facets[beside == data.regions[place]]


def _cells(domains: Domains, place: str | None) -> np.ndarray:
    data, msh = domains.mesh_data, domains.parent
    if place is not None:
        return data.cell_tags.find(data.regions[place])
    index = msh.topology.index_map(msh.topology.dim)
    return np.arange(index.size_local + index.num_ghosts, dtype=np.int32)


def _vertices(msh: dmesh.Mesh, dim: int, entities: np.ndarray) -> np.ndarray:
    """Vertex coordinates of entities: (entities, vertices per entity, gdim)."""
    msh.topology.create_connectivity(dim, 0)
    msh.topology.create_connectivity(0, msh.topology.dim)  # vertices' geometry nodes
    links = msh.topology.connectivity(dim, 0)
    count = len(links.links(0)) if links.num_nodes else 0
    gdim = msh.geometry.dim
    if len(entities) == 0 or count == 0:
        return np.zeros((0, count, gdim))
    vertices = links.array.reshape(-1, count)[entities].ravel().astype(np.int32)
    nodes = dmesh.entities_to_geometry(msh, 0, vertices)[:, 0]
    return msh.geometry.x[nodes, :gdim].reshape(len(entities), count, gdim)


def _normals(corners: np.ndarray) -> np.ndarray:
    """Unit normals of facets given by their vertices (segments in 2D, polygons in 3D)."""
    first = corners[:, 1] - corners[:, 0]
    if corners.shape[2] == 2:
        normals = np.stack([-first[:, 1], first[:, 0]], axis=1)
    else:
        normals = np.cross(first, corners[:, 2] - corners[:, 0])
    return normals / np.linalg.norm(normals, axis=1)[:, None]


def _tangents(normal: np.ndarray) -> np.ndarray:
    if len(normal) == 2:
        return np.array([[-normal[1]], [normal[0]]])
    axis = np.eye(3)[np.argmin(np.abs(normal))]
    first = np.cross(normal, axis)
    first /= np.linalg.norm(first)
    return np.stack([first, np.cross(normal, first)], axis=1)


def _match(points: np.ndarray, table: np.ndarray, tolerance: float) -> np.ndarray:
    """Index in ``table`` (sorted by its first column) of the entry within ``tolerance`` of
    each point (-1: none)."""
    ids = np.full(len(points), -1, dtype=np.int64)
    if len(table) == 0 or len(points) == 0:
        return ids
    low = np.searchsorted(table[:, 0], points[:, 0] - tolerance, side="left")
    high = np.searchsorted(table[:, 0], points[:, 0] + tolerance, side="right")
    for offset in range(int((high - low).max(initial=0))):
        candidate = np.minimum(low + offset, len(table) - 1)
        near = np.linalg.norm(table[candidate] - points, axis=1) <= tolerance
        hit = (low + offset < high) & near & (ids < 0)
        ids[hit] = candidate[hit]
    return ids


def _vector(normal: np.ndarray) -> str:
    return "(" + ", ".join(f"{value:.3g}" for value in normal + 0.0) + ")"
