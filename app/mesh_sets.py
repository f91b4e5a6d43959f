"""Named sets of mesh entities chosen by conditions on the coordinates (for :mod:`app.meshing`).

A case names regions (cells), boundaries (facets), points (vertices) and, on 3D meshes, edges
with conditions such as ``"x < 0.5"`` or ``"x == 0 and y == 0"``. A cell meets a condition at
its midpoint; a facet or an edge when every one of its vertices meets it. ``==``, ``!=``, ``<=``
and ``>=`` compare within 1e-10 of the mesh's size, the round-off of a mesh generator's
coordinates. Each entity carries at most one tag per dimension: the first condition that selects
it wins, and a name left without entities is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from dolfinx import mesh as dmesh
from mpi4py import MPI

from app.errors import CaseError, listing
from app.expressions import Expression, ExpressionError, parse

COORDS = ("x", "y", "z")
# Relative to the mesh's size: what round-off of vertex coordinates an equality forgives.
RELATIVE_TOLERANCE = 1e-10


@dataclass(frozen=True)
class Kind:
    """A kind of named entity set, as the case's ``[mesh]`` section names it.

    Attributes:
        key: The ``[mesh]`` key ("regions", "boundaries", "points", "edges").
        noun: One set ("region", "point set").
        entities: Its entities ("cells", "vertices").
        rule: How an entity meets a condition, for messages ("" when obvious).
    """

    key: str
    noun: str
    entities: str
    rule: str = ""


REGIONS = Kind("regions", "region", "cells", "a cell joins by its midpoint")
BOUNDARIES = Kind("boundaries", "boundary", "facets", "every vertex of a facet must meet it")
POINTS = Kind("points", "point set", "vertices")
EDGES = Kind("edges", "edge set", "edges", "both vertices of an edge must meet it")


def condition(text: str, path: str, coords: tuple[str, ...]) -> Expression:
    """Parse a set's condition, allowing only the mesh's coordinates."""
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


def tag_values(msh: dmesh.Mesh, dim: int, tags: dmesh.MeshTags | None) -> np.ndarray:
    """Tag value of every local entity (owned and ghost) of ``dim``; 0 means untagged."""
    index_map = msh.topology.index_map(dim)
    values = np.zeros(index_map.size_local + index_map.num_ghosts, dtype=np.int32)
    if tags is not None:
        values[tags.indices] = tags.values
    return values


def _extent(msh: dmesh.Mesh) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest coordinate per axis over all ranks (collective)."""
    gdim = msh.geometry.dim
    x = msh.geometry.x[:, :gdim]
    low, high = np.full(gdim, np.inf), np.full(gdim, -np.inf)
    msh.comm.Allreduce(x.min(axis=0) if len(x) else low.copy(), low, op=MPI.MIN)
    msh.comm.Allreduce(x.max(axis=0) if len(x) else high.copy(), high, op=MPI.MAX)
    return low, high


def _describe_extent(low: np.ndarray, high: np.ndarray) -> str:
    """``x in [0, 1], y in [0, 2]``: where conditions can select something."""
    pairs = zip(COORDS, low, high, strict=False)
    return ", ".join(f"{c} in [{lo:.6g}, {hi:.6g}]" for c, lo, hi in pairs)


def apply_conditions(
    msh: dmesh.Mesh,
    dim: int,
    values: np.ndarray,
    names: dict[str, int],
    conditions: dict[str, str],
    kind: Kind,
    reserved: dict[str, str] | None = None,
) -> None:
    """Give each entity of ``dim`` the tag of the first condition it meets; adds the new names.

    Collective. ``reserved`` maps names other kinds already use to their noun: a new set may
    not take them either (a condition names the set it applies to, so names must be unique).
    """
    if not conditions:
        return
    owned = msh.topology.index_map(dim).size_local
    coords = COORDS[: msh.geometry.dim]
    low, high = _extent(msh)
    tolerance = RELATIVE_TOLERANCE * float(np.max([high - low, np.abs(low), np.abs(high)]))
    taken = np.zeros(len(values), dtype=bool)
    tag = max(names.values(), default=0) + 1
    existing = dict(names)
    for name, text in conditions.items():
        path = f"mesh.{kind.key}.{name}"
        if name in existing:
            raise CaseError(
                path,
                f"'{name}' is already a {kind.noun} of this mesh ({listing(existing)})",
                f"choose a new name; the {kind.entities} it selects are taken from '{name}' "
                "automatically",
            )
        if reserved and name in reserved:
            raise CaseError(
                path,
                f"'{name}' is already the name of a {reserved[name]} of this mesh",
                "choose a name no region, boundary, point set or edge set of the mesh has",
            )
        expr = condition(text, path, coords)
        hit, problem = _select(msh, dim, len(values), expr, tolerance)
        # One rank's failure (sqrt of a negative coordinate) must stop all, not deadlock them.
        problem = next((p for p in msh.comm.allgather(problem) if p), None)
        if problem:
            raise CaseError(path, problem)
        mine = hit & ~taken
        selected, kept = msh.comm.allreduce(
            np.array([hit[:owned].sum(), mine[:owned].sum()]), op=MPI.SUM
        )
        if selected == 0:
            rule = f"; {kind.rule}" if kind.rule else ""
            raise CaseError(
                path,
                f"'{text}' selects no {kind.entities}",
                f"check the coordinates against the domain extent "
                f"({_describe_extent(low, high)}){rule}",
            )
        if kept == 0:
            raise CaseError(
                path,
                f"'{text}' only selects {kind.entities} that earlier {kind.key} already took",
                f"{kind.key} are applied in order, first match wins; move '{name}' up",
            )
        values[mine] = tag
        taken |= mine
        names[name] = tag
        tag += 1


def _select(
    msh: dmesh.Mesh, dim: int, size: int, expr: Expression, tolerance: float
) -> tuple[np.ndarray, str | None]:
    """Local entities meeting ``expr`` (cells: midpoint; others: all vertices), or the error."""
    hit = np.zeros(size, dtype=bool)

    def meets(x: np.ndarray) -> np.ndarray:
        return expr.evaluate(dict(zip(COORDS, x, strict=False)), tolerance)

    try:
        if dim == msh.topology.dim:
            hit[:] = meets(dmesh.compute_midpoints(msh, dim, np.arange(size, dtype=np.int32)).T)
        else:
            hit[dmesh.locate_entities(msh, dim, meets)] = True
    except ExpressionError as exc:
        return hit, str(exc).rstrip(".")
    return hit, None


def keep_used(
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


def meshtags(msh: dmesh.Mesh, dim: int, values: np.ndarray, name: str) -> dmesh.MeshTags:
    entities = np.flatnonzero(values).astype(np.int32)
    tags = dmesh.meshtags(msh, dim, entities, values[entities])
    tags.name = name
    return tags
