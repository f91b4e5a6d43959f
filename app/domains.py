"""Domains: the parent mesh and the submeshes of its named regions and boundaries.

A field restricted to a region (``FieldSpec(region=...)``) lives on a submesh of that region's
cells, so it has degrees of freedom only where it exists; a field on a named boundary (a surface
species, a film) lives on the submesh of the boundary's facets. Every integral is taken on the
parent mesh (``ctx.dx("matrix")`` for a region's cells, ``ctx.ds("top")`` for a boundary's
facets), and the entity maps kept here let one form mix functions of the parent, of any region
and of any boundary: a Newton system over fields on different domains is one block system.

Values move between meshes only through :class:`Evaluation`: a UFL expression of fields on the
parent and on one region (or boundary) is evaluated on the smaller of the meshes involved and
handed to a function on the parent or on the region: restricted, or extended by zero outside
it. Between a boundary's facets and the parent the values are interpolated geometrically (as
between non-matching meshes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ufl
from dolfinx import fem, mesh
from ufl.corealg.traversal import traverse_unique_terminals

from app.boundary_mesh import boundary_mesh_data
from app.contracts import BadValue
from app.facet_tags import closure_dofs
from app.measures import Measures
from app.meshing import MeshData
from app.pointwise import CellMean, cell_mean_space, is_pointwise, quadrature_degree


@dataclass(eq=False)
class Region:
    """A region's (or a boundary's) submesh and its relation to the parent mesh.

    Attributes:
        name: Region or boundary name (also the submesh's ``name``, used for output files).
        tag: The region's cell tag (or the boundary's facet tag) on the parent mesh.
        mesh: The submesh of the region's cells (or of the boundary's facets).
        cell_map: Submesh cells to parent cells (or facets).
        tags: The parent's named facets, vertices and edges transferred to a region's submesh,
            by the name of the parent's tags (empty for a boundary's submesh).
        parent_cells: Parent cell (or facet) of every local (owned and ghost) submesh cell.
        cells: Every local submesh cell, in order.
        data: A boundary's submesh as a named mesh of its own (app/boundary_mesh.py): regions
            inherited from the parent cells beside it, its end points named after the
            parent's boundaries; None for a region's submesh.
    """

    name: str
    tag: int
    mesh: mesh.Mesh
    cell_map: mesh.EntityMap
    tags: dict[str, mesh.MeshTags]
    parent_cells: np.ndarray
    cells: np.ndarray
    data: MeshData | None = None

    @property
    def surface(self) -> bool:
        """A boundary's submesh (one dimension lower than the parent)."""
        return self.data is not None


class Domains:
    """The parent mesh and the region submeshes created so far (on demand, once each).

    Args:
        mesh_data: The parent mesh with its named regions and boundaries.
    """

    def __init__(self, mesh_data: MeshData):
        self.mesh_data = mesh_data
        self.parent = mesh_data.mesh
        self._regions: dict[str, Region] = {}
        self._measures: dict[int, Measures] = {}
        self._interpolation: dict[tuple[int, int], Any] = {}
        # (expression, region or None) -> the expression reading the extensions of boundary
        # fields there (app/extensions.py; set by the simulation once they exist)
        self.extend: Callable[[Any, str | None], Any] | None = None

    def region(self, name: str) -> Region:
        """The submesh of a named region or boundary (created on first use; collective)."""
        if name not in self._regions:
            data = self.mesh_data
            tdim = self.parent.topology.dim
            self.parent.topology.create_connectivity(tdim - 1, tdim)
            if name in data.regions:
                tag, dim, tags = data.regions[name], tdim, data.cell_tags
            else:
                tag, dim, tags = data.boundaries[name], tdim - 1, data.facet_tags
            submesh, cell_map, vertex_map, _ = mesh.create_submesh(self.parent, dim, tags.find(tag))
            submesh.name = name
            transferred = {}
            if dim == tdim:
                for parent_tags in (data.facet_tags, data.vertex_tags, data.edge_tags):
                    if parent_tags is not None:
                        transferred[parent_tags.name] = mesh.transfer_meshtags_to_submesh(
                            parent_tags, submesh, vertex_map, cell_map
                        )
            cell_index = submesh.topology.index_map(dim)
            local = np.arange(cell_index.size_local + cell_index.num_ghosts, dtype=np.int32)
            parent_cells = cell_map.sub_topology_to_topology(local, inverse=False)
            named = None
            if dim < tdim:
                named = boundary_mesh_data(data, name, submesh, cell_map, vertex_map)
            self._regions[name] = Region(
                name, tag, submesh, cell_map, transferred, parent_cells, local, named
            )
        return self._regions[name]

    def named(self, target: mesh.Mesh) -> MeshData:
        """The named mesh a mesh is: the parent's, or a boundary's own (app/boundary_mesh.py);
        a region's submesh has none of its own."""
        region = self.of(target)
        if region is None:
            return self.mesh_data
        if not region.surface:
            raise ValueError(f"the region '{region.name}' has no named mesh of its own")
        return region.data

    def measures(self, data: MeshData) -> Measures:
        """The measures every context on a named mesh shares (see app/measures.py)."""
        key = id(data.mesh)
        if key not in self._measures:
            self._measures[key] = Measures(data)
        return self._measures[key]

    @property
    def entity_maps(self) -> list[mesh.EntityMap]:
        """The maps every form needs to mix functions of several domains."""
        return [region.cell_map for region in self._regions.values()]

    def submeshes(self) -> list[Region]:
        """The regions' and boundaries' submeshes created so far."""
        return list(self._regions.values())

    def of(self, target: mesh.Mesh) -> Region | None:
        """The region a mesh is the submesh of (None for the parent)."""
        return next((r for r in self._regions.values() if r.mesh is target), None)

    def entities(self, target: mesh.Mesh, name: str) -> tuple[int, np.ndarray]:
        """Dimension and local entities (owned and ghost) of a named boundary, point set or
        edge set, on the parent or on a region's submesh."""
        region = self.of(target)
        if region is not None and region.surface:
            found = region.data.tags_of(name)
            if found is None:
                raise BadValue(
                    f"'{name}' is not a boundary of the mesh of '{region.name}' (its ends or "
                    f"edges are named after the parent's boundaries they lie on: "
                    f"{', '.join(region.data.boundaries) or 'none here'})",
                    token=name,
                )
            tags, value = found
            return tags.dim, tags.find(value)
        tags, value = self.mesh_data.tags_of(name)
        if region is not None:
            tags = region.tags[tags.name]
        return tags.dim, tags.find(value)

    def locate(self, space: fem.FunctionSpace, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The dofs of a named boundary, point set or edge set in ``space`` (owned and ghost,
        sorted: what ``fem.locate_dofs_topological`` gives, a shared dof on every rank that
        holds it) and the local cells touching it (where a value there is evaluated). On the
        parent's boundaries they come from the facets' (cell, local facet) pairs, which need
        no facet numbers (app/facet_tags.py)."""
        where = space.mesh
        if where is self.parent and name in self.mesh_data.boundaries:
            pairs = self.mesh_data.facets.pairs(self.mesh_data.boundaries[name])
            return closure_dofs(space, pairs), np.unique(pairs[:, 0])
        dim, entities = self.entities(where, name)
        topology = where.topology
        topology.create_connectivity(dim, topology.dim)
        cells = mesh.compute_incident_entities(topology, entities, dim, topology.dim)
        return fem.locate_dofs_topological(space, dim, entities), cells

    def transfer(self, source: fem.Function, target: fem.Function) -> None:
        """Copy values between the parent and a region (same element): a restriction, or an
        extension by zero outside the region."""
        source_mesh, target_mesh = source.function_space.mesh, target.function_space.mesh
        if source_mesh is target_mesh:
            target.x.array[:] = source.x.array
            return
        region = self.of(source_mesh) or self.of(target_mesh)
        surfaces = [r for r in (self.of(source_mesh), self.of(target_mesh)) if r is not None]
        if any(r.surface for r in surfaces):  # facets: locate the target's nodes geometrically
            self._nonmatching(source, target)
        elif self.of(target_mesh) is region and source_mesh is self.parent:
            target.interpolate(source, cells0=region.parent_cells, cells1=region.cells)
        else:
            target.x.array[:] = 0.0
            target.interpolate(source, cells0=region.cells, cells1=region.parent_cells)
        target.x.scatter_forward()

    def _nonmatching(self, source: fem.Function, target: fem.Function) -> None:
        """Interpolation between meshes that share no cells (points outside the source get 0);
        the point location is computed once per pair of spaces."""
        key = (id(target.function_space), id(source.function_space))
        if key not in self._interpolation:
            target_mesh = target.function_space.mesh
            index = target_mesh.topology.index_map(target_mesh.topology.dim)
            cells = np.arange(index.size_local + index.num_ghosts, dtype=np.int32)
            data = fem.create_interpolation_data(
                target.function_space, source.function_space, cells, padding=1e-8
            )
            self._interpolation[key] = (cells, data)
        cells, data = self._interpolation[key]
        target.interpolate_nonmatching(source, cells, interpolation_data=data)

    def global_cells(self) -> int:
        """Number of cells of the parent mesh."""
        index = self.parent.topology.index_map(self.parent.topology.dim)
        return index.size_global


@dataclass(eq=False)
class Evaluation:
    """A UFL expression compiled for evaluation into a function on any domain.

    The expression may mix terminals of the parent and of one region; it is evaluated on the
    region then (parent functions restricted to it, parent constants mirrored), and the result
    is handed to the target: restricted to a region or extended by zero to the parent. Values
    at quadrature points (internal variables) are read as their cell means, unless the target
    holds values at the same points.

    Args:
        expression: The UFL expression.
        target: Function receiving the values.
        domains: The domains of the run.
        cells: Cells of the target's mesh to evaluate on (None: all). A node two cells share
            takes the value of the last one evaluated: a field on part of a mesh is evaluated
            on its own cells only, so its nodes at the part's edge take its own value.
    """

    expression: Any
    target: fem.Function
    domains: Domains
    cells: np.ndarray | None = None
    _compiled: fem.Expression | None = None
    _mirrors: list[tuple[Any, Any]] = field(default_factory=list)
    _means: list[CellMean] = field(default_factory=list)
    _result: fem.Function | None = None
    _where: Any = None  # the mesh the expression is evaluated on

    def __post_init__(self) -> None:
        # boundary fields read off their boundary as their extensions: what _compile evaluates
        self.expression = self._extended(
            ufl.as_ufl(self.expression), self.target.function_space.mesh
        )
        meshes = {self._mesh_of(t) for t in _terminals(self.expression)} - {None}
        regions = {self.domains.of(m) for m in meshes} - {None}
        if len(regions) > 1:
            names = ", ".join(sorted(r.name for r in regions))
            raise BadValue(f"an expression mixes fields of several regions ({names})")
        region = regions.pop() if regions else self.domains.of(self.target.function_space.mesh)
        self._where = self.domains.parent if region is None else region.mesh

    def _compile(self) -> None:
        """The compiled expression and the functions it needs, made on the first evaluation:
        a derived field nobody reads is never compiled and holds no memory."""
        target_space, where = self.target.function_space, self._where
        expression = self._cell_means(ufl.as_ufl(self.expression), target_space)
        if where is not self.domains.parent:
            expression = self._mirror(expression, where)
        self._result = (
            self.target
            if where is target_space.mesh
            else fem.Function(fem.functionspace(where, target_space.ufl_element()))
        )
        points = self._result.function_space.element.interpolation_points
        if ufl.domain.extract_unique_domain(expression) is None:
            # It reads nothing of a mesh ("1 + 0*x" simplifies to 1): tie it to where it is
            # evaluated, which DOLFINx needs.
            expression = expression * fem.Constant(where, np.float64(1.0))
        self._compiled = fem.Expression(expression, points)

    def _extended(self, expression: Any, target: mesh.Mesh) -> Any:
        """Boundary fields read at the nodes of a region or of the parent as their extensions
        (values on a boundary's own mesh stay what they are)."""
        place = self.domains.of(target)
        if self.domains.extend is None or (place is not None and place.surface):
            return expression
        return self.domains.extend(expression, None if place is None else place.name)

    def _cell_means(self, expression: Any, target_space: Any) -> Any:
        """Replace values at quadrature points by their cell means (refreshed on every
        evaluation), where the target's points are not theirs."""
        replacements: dict[Any, Any] = {}
        for terminal in _terminals(expression):
            if not isinstance(terminal, fem.Function) or not is_pointwise(terminal.function_space):
                continue
            space = terminal.function_space
            if (
                is_pointwise(target_space)
                and target_space.mesh is space.mesh
                and quadrature_degree(target_space) == quadrature_degree(space)
            ):
                continue
            mean = fem.Function(cell_mean_space(space))
            self._means.append(CellMean(terminal, mean, quadrature_degree(space)))
            replacements[terminal] = mean
        return ufl.replace(expression, replacements) if replacements else expression

    @staticmethod
    def _mesh_of(terminal: Any) -> Any:
        if isinstance(terminal, fem.Function):
            return terminal.function_space.mesh
        return None

    def _mirror(self, expression: Any, where: mesh.Mesh) -> Any:
        """Replace parent terminals by copies on ``where`` (refreshed on every evaluation)."""
        parent = self.domains.parent
        replacements: dict[Any, Any] = {}
        for terminal in _terminals(expression):
            if isinstance(terminal, fem.Function) and terminal.function_space.mesh is parent:
                copy = fem.Function(fem.functionspace(where, terminal.function_space.ufl_element()))
                self._mirrors.append((terminal, copy))
                replacements[terminal] = copy
            elif isinstance(terminal, fem.Constant) and terminal.ufl_domain() is not None:
                copy = fem.Constant(where, np.array(terminal.value, copy=True))
                self._mirrors.append((terminal, copy))
                replacements[terminal] = copy
            elif isinstance(terminal, ufl.SpatialCoordinate):
                replacements[terminal] = ufl.SpatialCoordinate(where)
        return ufl.replace(expression, replacements)

    def __call__(self) -> None:
        """Evaluate with the current values and store the result in the target."""
        if self._compiled is None:
            self._compile()
        for mean in self._means:
            mean()
        for original, copy in self._mirrors:
            if isinstance(copy, fem.Constant):
                copy.value = original.value
            else:
                self.domains.transfer(original, copy)
        if self._result is self.target:
            self.target.interpolate(self._compiled, cells0=self.cells)
        else:
            self._result.interpolate(self._compiled)
            self.domains.transfer(self._result, self.target)


def _terminals(expression: Any) -> list[Any]:
    """Functions, constants and coordinates an expression uses."""
    found: list[Any] = []
    for node in traverse_unique_terminals(expression):
        kinds = fem.Function | fem.Constant | ufl.SpatialCoordinate
        if isinstance(node, kinds) and node not in found:
            found.append(node)
    return found
