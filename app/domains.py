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

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI
from ufl.corealg.traversal import traverse_unique_terminals

from app.contracts import BadValue, Physics
from app.errors import CaseError, did_you_mean, listing
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
    """

    name: str
    tag: int
    mesh: mesh.Mesh
    cell_map: mesh.EntityMap
    tags: dict[str, mesh.MeshTags]
    parent_cells: np.ndarray
    cells: np.ndarray

    @property
    def surface(self) -> bool:
        """A boundary's submesh (one dimension lower than the parent)."""
        return not self.tags


class Domains:
    """The parent mesh and the region submeshes created so far (on demand, once each).

    Args:
        mesh_data: The parent mesh with its named regions and boundaries.
    """

    def __init__(self, mesh_data: MeshData):
        self.mesh_data = mesh_data
        self.parent = mesh_data.mesh
        self._regions: dict[str, Region] = {}
        self._interpolation: dict[tuple[int, int], Any] = {}

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
            self._regions[name] = Region(
                name, tag, submesh, cell_map, transferred, parent_cells, local
            )
        return self._regions[name]

    @property
    def entity_maps(self) -> list[mesh.EntityMap]:
        """The maps every form needs to mix functions of several domains."""
        return [region.cell_map for region in self._regions.values()]

    def of(self, target: mesh.Mesh) -> Region | None:
        """The region a mesh is the submesh of (None for the parent)."""
        return next((r for r in self._regions.values() if r.mesh is target), None)

    def entities(self, target: mesh.Mesh, name: str) -> tuple[int, np.ndarray]:
        """Dimension and local entities (owned and ghost) of a named boundary, point set or
        edge set, on the parent or on a region's submesh."""
        tags, value = self.mesh_data.tags_of(name)
        region = self.of(target)
        if region is not None and region.surface:
            raise BadValue(
                f"a field on the boundary '{region.name}' has no boundary of its own here, so "
                f"it cannot be fixed on '{name}'",
                token=name,
            )
        if region is not None:
            tags = region.tags[tags.name]
        return tags.dim, tags.find(value)

    def transfer(self, source: fem.Function, target: fem.Function) -> None:
        """Copy values between the parent and a region (same element): a restriction, or an
        extension by zero outside the region."""
        source_mesh, target_mesh = source.function_space.mesh, target.function_space.mesh
        if source_mesh is target_mesh:
            target.x.array[:] = source.x.array
            return
        region = self.of(source_mesh) or self.of(target_mesh)
        if region.surface:  # facets of the parent: locate the target's nodes geometrically
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

    def check_integrals(self, form: ufl.Form, owner: str) -> None:
        """Refuse integrals that would read a region's field outside the region.

        A region field has no value on other cells; assembling it there silently gives
        garbage, so the integral must be restricted to the region (``ctx.dx(region)``).
        """
        for integral in form.integrals():
            integrand = integral.integrand()
            terminals = [
                *ufl.algorithms.extract_arguments(integrand),
                *ufl.algorithms.extract_coefficients(integrand),
            ]
            regions = {self.of(t.ufl_function_space().mesh) for t in terminals}
            regions.discard(None)
            for region in regions:
                if not self._inside(integral, region):
                    names = sorted(
                        str(t)
                        for t in terminals
                        if self.of(t.ufl_function_space().mesh) is region
                        and not isinstance(t, ufl.Argument)
                    )
                    what = f"field '{names[0]}'" if names else "the test function of a field"
                    kind, measure = (
                        ("boundary", "ctx.ds") if region.surface else ("region", "ctx.dx")
                    )
                    raise BadValue(
                        f"{owner} integrates {what} of {kind} '{region.name}' over "
                        f"{_where(integral)}, outside the region",
                        fix=f"integrate it over the {kind} only ({measure}('{region.name}'))",
                    )

    def _inside(self, integral: Any, region: Region) -> bool:
        ids = integral.subdomain_id()
        ids = ids if isinstance(ids, tuple) else (ids,)
        kind = integral.integral_type()
        if region.surface:  # only on the boundary's own facets
            return kind != "cell" and all(i == region.tag for i in ids)
        if kind == "cell":
            if "everywhere" in ids or "otherwise" in ids:
                return self.mesh_data.region_cells[region.name] == self._global_cells()
            return all(i == region.tag for i in ids)
        if kind == "exterior_facet":
            if "everywhere" in ids or "otherwise" in ids:
                return False
            return all(self._boundary_touches_only(region, int(i)) for i in ids)
        return False  # interior facets: two sides, one of them outside a region field

    def borders(self, region: str, boundary: str) -> bool:
        """Whether every facet of a named boundary lies on a cell of a named region."""
        tag = self.mesh_data.boundaries[boundary]
        return self._boundary_touches_only(self.region(region), tag)

    def _global_cells(self) -> int:
        index = self.parent.topology.index_map(self.parent.topology.dim)
        return index.size_global

    def _boundary_touches_only(self, region: Region, tag: int) -> bool:
        """Every facet with the tag lies on a cell of the region (over all ranks)."""
        data = self.mesh_data
        tdim = self.parent.topology.dim
        facets = data.facet_tags.find(tag)
        connectivity = self.parent.topology.connectivity(tdim - 1, tdim)
        index = self.parent.topology.index_map(tdim)
        in_region = np.zeros(index.size_local + index.num_ghosts, dtype=bool)
        in_region[data.cell_tags.find(region.tag)] = True
        local = all(in_region[connectivity.links(facet)].any() for facet in facets)
        return bool(self.parent.comm.allreduce(local, op=MPI.LAND))


def _where(integral: Any) -> str:
    ids = integral.subdomain_id()
    kind = {"cell": "cells", "exterior_facet": "boundary facets", "interior_facet": "interfaces"}
    label = kind.get(integral.integral_type(), integral.integral_type())
    return f"all {label}" if ids in ("everywhere", "otherwise") else f"{label} tagged {ids}"


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
    """

    expression: Any
    target: fem.Function
    domains: Domains
    _compiled: fem.Expression | None = None
    _mirrors: list[tuple[Any, Any]] = field(default_factory=list)
    _means: list[CellMean] = field(default_factory=list)
    _result: fem.Function | None = None

    def __post_init__(self) -> None:
        target_space = self.target.function_space
        expression = self._cell_means(ufl.as_ufl(self.expression), target_space)
        meshes = {self._mesh_of(t) for t in _terminals(expression)} - {None}
        regions = {self.domains.of(m) for m in meshes} - {None}
        if len(regions) > 1:
            names = ", ".join(sorted(r.name for r in regions))
            raise BadValue(f"an expression mixes fields of several regions ({names})")
        region = regions.pop() if regions else self.domains.of(target_space.mesh)
        where = self.domains.parent if region is None else region.mesh
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
        for mean in self._means:
            mean()
        for original, copy in self._mirrors:
            if isinstance(copy, fem.Constant):
                copy.value = original.value
            else:
                self.domains.transfer(original, copy)
        self._result.interpolate(self._compiled)
        if self._result is not self.target:
            self.domains.transfer(self._result, self.target)


def _terminals(expression: Any) -> list[Any]:
    """Functions, constants and coordinates an expression uses."""
    found: list[Any] = []
    for node in traverse_unique_terminals(expression):
        kinds = fem.Function | fem.Constant | ufl.SpatialCoordinate
        if isinstance(node, kinds) and node not in found:
            found.append(node)
    return found


def check_placement(instance: str, plugin: Physics, mesh_data: MeshData) -> None:
    """Refuse a plug-in on a mesh of a dimension it has no formulation for, or placed on a
    name that is no region of the mesh.

    Raises:
        CaseError: At ``mesh`` or ``physics.<instance>.domain``.
    """
    dim = mesh_data.mesh.topology.dim
    if dim not in plugin.dimensions:
        raise CaseError(
            "mesh",
            f"plug-in '{plugin.name}' (physics.{instance}) has no {dim}D formulation; it "
            f"supports {listing(f'{d}D' for d in plugin.dimensions)} meshes",
            "use a mesh of a supported dimension",
        )
    domain, regions = plugin.domain, list(mesh_data.regions)
    if domain is None or domain in regions:
        return
    where = f"physics.{instance}.domain"
    if domain in mesh_data.boundaries:
        raise CaseError(
            where,
            f"'{domain}' is a boundary; an instance is placed on a region (fields on a "
            "boundary are declared by the plug-in: FieldSpec(region=boundary))",
            f"use a region: {listing(regions)}",
        )
    raise CaseError(
        where,
        f"unknown region '{domain}'{did_you_mean(domain, regions)}",
        f"use one of the mesh's regions: {listing(regions)}",
    )
