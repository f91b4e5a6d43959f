"""Where plug-in instances live, and the fields that follows from it.

A case places an instance on the whole mesh, on a region (``domain = "core"``: its fields live
on the region's submesh) or on a boundary (``domain = "top"``: its fields live on the boundary's
own mesh, app/boundary_mesh.py, optionally on some of its regions only: ``regions =
["negative", "positive"]``). This module checks the placement, creates every provided field
where it lives, and the traces (app/traces.py) of parent fields that instances on a boundary
read, and the extensions (app/extensions.py) of boundary fields that instances on the parent or
on a region read.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import replace

from app.context import unknown
from app.contracts import Formula, Physics
from app.domains import Domains
from app.errors import CaseError, did_you_mean, listing
from app.extensions import NoColumns, find_columns
from app.fields import Field, FieldStore
from app.meshing import MeshData
from app.parameters import walk_values
from app.registry import FieldGraph

#: Element families whose extension along columns is exact (values at nodes).
NODAL = ("Lagrange", "P", "Q", "CG")


def check_placement(instance: str, plugin: Physics, domains: Domains) -> None:
    """The instance's domain is a region or an exterior boundary of a mesh of 2 or 3
    dimensions, its regions are regions of that boundary's mesh, and the plug-in has a
    formulation in the dimension it lives in.

    Raises:
        CaseError: At ``physics.<instance>.domain`` (or ``.regions``, or ``mesh``).
    """
    data = domains.mesh_data
    dim = data.mesh.topology.dim
    domain, regions = plugin.domain, list(data.regions)
    where = f"physics.{instance}.domain"
    on_boundary = domain is not None and domain in data.boundaries
    if domain is not None and domain not in regions and not on_boundary:
        places = [*regions, *exterior(data)]
        raise CaseError(
            where,
            f"unknown region or boundary '{domain}'{did_you_mean(domain, places)}",
            f"use one of the mesh's regions ({listing(regions)}) or boundaries "
            f"({listing(exterior(data))})",
        )
    if on_boundary:
        if domain in data.interior_boundaries or dim < 2:
            raise CaseError(
                where,
                f"'{domain}' is "
                + ("an interface" if dim >= 2 else "a point of a 1D mesh")
                + "; an instance is placed on a region or on an exterior boundary of a 2D or 3D "
                "mesh (its facets are the cells of the instance's mesh)",
                f"use a region ({listing(regions)})"
                + (f" or an exterior boundary ({listing(exterior(data))})" if dim >= 2 else ""),
            )
        dim -= 1
        _check_parts(instance, plugin, domains.region(domain).data)
    if dim not in plugin.dimensions:
        raise CaseError(
            where if on_boundary else "mesh",
            f"plug-in '{plugin.name}' (physics.{instance}) has no {dim}D formulation; it "
            f"supports {listing(f'{d}D' for d in plugin.dimensions)} meshes",
            "use a mesh of a supported dimension",
        )


def exterior(data: MeshData) -> list[str]:
    return [name for name in data.boundaries if name not in data.interior_boundaries]


def _check_parts(instance: str, plugin: Physics, named: MeshData) -> None:
    for index, name in enumerate(plugin.regions or ()):
        if name not in named.regions:
            raise CaseError(
                f"physics.{instance}.regions[{index}]",
                f"unknown region '{name}' of boundary '{plugin.domain}'"
                f"{did_you_mean(name, named.regions)}",
                f"the regions beside the boundary: {listing(named.regions)}",
            )


def create_fields(physics: Mapping[str, Physics], store: FieldStore, depth: int) -> None:
    """Every provided field where its instance lives, with ``depth`` past levels if solved
    (fields at quadrature points are their group's to create, at its degree).

    Raises:
        BadValue: A field declared on an unknown region or boundary.
    """
    data = store.domains.mesh_data
    places = [*data.regions, *data.boundaries]
    for instance, plugin in physics.items():
        for spec in plugin.provides:
            # a global value (a real element) is one number, readable on all of its mesh: the
            # parent's for an instance on a region, the boundary's own for one on a boundary
            real = spec.space[0] == "Real" and plugin.domain in data.regions
            if spec.region is None and plugin.domain is not None and not real:
                spec = replace(spec, region=plugin.domain)
            if spec.region is not None and spec.region not in places:
                error = unknown("region or boundary", spec.region, places)
                error.instance = instance
                raise error
            if spec.space[0] != "Quadrature":
                field = store.add(spec, instance, 0 if spec.derived else depth)
                if spec.region == plugin.domain:
                    field.parts = plugin.regions


def create_traces(
    physics: Mapping[str, Physics], graph: FieldGraph, store: FieldStore, depth: int
) -> None:
    """The trace of every parent field an instance on a boundary reads, of every global
    value read on a mesh other than its own (app/traces.py), and the extension of every solved
    field of a boundary that an instance on the parent or a region reads off that boundary
    (app/extensions.py).

    Raises:
        CaseError: It reads a field that cannot have a trace there: a derived field of the
            parent, or a field of another boundary; or one that cannot be extended.
    """
    data = store.domains.mesh_data
    for name, users in graph.consumers.items():
        if name not in store:
            continue
        source = store[name]
        for instance, _ in users:
            domain = physics[instance].domain
            boundary = None if domain is None or domain in data.regions else domain
            if source.is_global and not (source.spec.derived or source.internal is not None):
                _global_trace(store, name, boundary, depth)
                continue
            if boundary is None:
                if _extended(source, physics[instance], data):
                    _ensure_extension(store, name, instance, domain, depth)
                continue
            if source.spec.region == boundary:
                continue
            if source.spec.derived or source.internal is not None or source.is_global:
                problem = "a derived field" if source.spec.derived else "not a solved field"
            elif source.spec.region in data.boundaries:
                problem = f"a field of the boundary '{source.spec.region}'"
            else:
                _ensure_trace(store, name, boundary, depth)
                continue
            raise CaseError(
                f"physics.{instance}",
                f"'{instance}' lives on the boundary '{boundary}' and reads '{name}', which is "
                f"{problem}: only solved fields of the parent mesh or of its regions, and solved "
                "global values, reach a boundary (as their traces)",
                f"place '{instance}' where '{name}' lives, or read a solved field",
            )


def _global_trace(store: FieldStore, name: str, reader: str | None, depth: int) -> None:
    """The global value ``name`` on the mesh of the boundary ``reader`` (None: the parent's):
    a boundary's value reaches the parent through its copy there, and another boundary through
    that copy."""
    data = store.domains.mesh_data
    home = store[name].spec.region if store[name].spec.region in data.boundaries else None
    if reader == home:
        return
    if home is not None:
        _ensure_trace(store, name, None, depth)
        source = store.trace(name, None).spec.name
    else:
        source = name
    if reader is not None:
        _ensure_trace(store, name, reader, depth, source)


def _extended(source: Field, plugin: Physics, data: MeshData) -> bool:
    """Whether an instance on the parent or a region reads a solved spatial field of a
    boundary's mesh elsewhere than in conditions on that boundary (``boundaries.<name>``: its
    own facets, where the field itself is read). A name only passed to a set function that
    ignores it (Chen2020's D_s_n(theta, T)) is not read."""
    boundary = source.spec.region
    solved = not (source.spec.derived or source.internal is not None or source.is_global)
    if not solved or boundary not in data.boundaries:
        return False
    name = source.spec.name
    if any(spec.name == name for spec in plugin.requires):
        return True
    return any(
        isinstance(value, Formula)
        and name in value.expression.read_names
        and ("boundaries", boundary) not in itertools.pairwise(path.split("."))
        for path, value in walk_values(plugin.params)
    )


def _ensure_extension(
    store: FieldStore, name: str, instance: str, place: str | None, depth: int
) -> None:
    """The extension of the boundary field ``name`` on ``place`` (None: the parent).

    Raises:
        CaseError: At ``physics.<instance>``: the field is not nodal, the boundary not flat, or
            the place's cells do not stand in columns on it.
    """
    try:
        store.trace(name, place)
        return
    except KeyError:
        pass
    source = store[name]
    boundary = source.spec.region
    where = "the whole mesh" if place is None else f"region '{place}'"
    problem = None
    if source.spec.space[0] not in NODAL:
        problem = f"its space is {source.spec.space[0]}, not a nodal (Lagrange) one"
    else:
        try:
            columns = find_columns(store.domains, boundary, place)
        except NoColumns as exc:
            problem = str(exc)
    if problem is not None:
        raise CaseError(
            f"physics.{instance}",
            f"'{instance}' reads '{name}', a field of the boundary '{boundary}', on {where}, "
            f"where it is read as its extension along the boundary's normal; it cannot be "
            f"extended: {problem}",
            f"read '{name}' only in conditions on '{boundary}' (boundaries.{boundary}), or use "
            "a mesh whose cells stand in columns on a flat boundary (a pseudo2d mesh, an "
            "extruded gmsh mesh)",
        )
    store.add_extension(name, columns, depth)


def _ensure_trace(
    store: FieldStore, name: str, boundary: str | None, depth: int, source: str | None = None
) -> None:
    try:
        store.trace(name, boundary)
    except KeyError:
        store.add_trace(name, boundary, depth, source)
