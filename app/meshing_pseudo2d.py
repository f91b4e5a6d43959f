"""The pseudo-2D (x, r) mesh of a layered 1D cell with a particle at every x ("pseudo2d").

x runs through the layers in metres (a battery: negative electrode, separator, positive
electrode); y is the normalised particle coordinate r in [0, 1] (r = 0 the particle centre, 1 its
surface). Quadrilateral cells, with vertex columns exactly at the layer interfaces::

    [mesh]
    type = "pseudo2d"
    layers = [{ name = "negative", thickness = "L_n", cells = 20 },      # set constants or
              { name = "separator", thickness = "12 um", cells = 10 },   # lengths with units
              { name = "positive", thickness = 75.6e-6, cells = 20 }]
    radial_cells = 10
    radial_grading = 1.5       # r_i = 1 - (1 - i/N)^g: cells shrink toward the surface r = 1
    interface_grading = 1.0    # > 1: cells shrink toward the interfaces between layers

Regions are the layers; boundaries ``left``/``right`` (x = 0 and x = L, the current collectors),
``bottom`` (r = 0) and ``top`` (r = 1, the particle surfaces and, read along x, the cell's
through-thickness line). A facet of ``top`` belongs to the layer of its cell:
:func:`app.meshing.facet_regions` gives that layer for any boundary.

Every rank builds the same structured grid (DOLFINx's rectangle, distributed as usual) and
moves its vertices to the graded positions, so 1 and N ranks have the same mesh.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from dolfinx import mesh as dmesh
from mpi4py import MPI
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from app.errors import CaseError
from app.parameters import constant_value
from app.validation import refuse_booleans

#: Boundary names and tags, as on the built-in rectangle.
SIDES = {"left": 1, "right": 2, "bottom": 3, "top": 4}
MAX_GRADING = 10.0


class LayerSpec(BaseModel):
    """One layer of a pseudo-2D mesh, from x = 0 on."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Region name of the layer")
    thickness: float = Field(description="In m, with units, or of parameter-set constants")
    cells: int = Field(description="Cells across the layer (in x)")

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_not_booleans(cls, raw: Any, info: ValidationInfo) -> Any:
        refuse_booleans(cls.model_fields[info.field_name].annotation, raw)
        return raw

    @field_validator("thickness", mode="before")
    @classmethod
    def _in_metres(cls, raw: Any) -> float:
        """Read when the case loads, while its parameter set is known ("L_n")."""
        try:
            value = constant_value(raw, "m", "")
        except CaseError as exc:
            raise ValueError(exc.problem) from None
        if not value > 0:
            raise ValueError(f"must be positive, got {value:g} m")
        return value


class MeshSpec(Protocol):
    """The settings of :class:`app.mesh_spec.MeshSpec` this module reads."""

    layers: list[LayerSpec] | None
    radial_cells: int
    radial_grading: float
    interface_grading: float
    cell: str | None
    order: int
    parameters: dict[str, Any]


def check_pseudo2d_spec(spec: MeshSpec) -> None:
    """Reject settings that do not fit a pseudo-2D mesh; check its layers and gradings."""
    for key in ("length", "origin", "cells", "file", "size"):
        if getattr(spec, key) is not None:
            raise CaseError(
                f"mesh.{key}",
                f"'{key}' is not read for a pseudo2d mesh",
                "give the layers (name, thickness, cells) and radial_cells instead",
            )
    if spec.parameters or spec.order != 1 or spec.cell not in (None, "quadrilateral"):
        key = "parameters" if spec.parameters else "order" if spec.order != 1 else "cell"
        raise CaseError(f"mesh.{key}", "a pseudo2d mesh has straight quadrilateral cells only")
    if not spec.layers:
        raise CaseError(
            "mesh.layers",
            "a pseudo2d mesh needs its layers",
            'e.g. layers = [{ name = "negative", thickness = "85 um", cells = 20 }, ...]',
        )
    names = set()
    for index, layer in enumerate(spec.layers):
        where = f"mesh.layers.{index}"
        if not layer.name.isidentifier() or layer.name in SIDES or layer.name in names:
            raise CaseError(
                f"{where}.name",
                f"layer name {layer.name!r} must be a new identifier, not "
                f"{', '.join(SIDES)} (the boundaries) or an earlier layer's",
            )
        names.add(layer.name)
        if layer.cells < 1:
            raise CaseError(f"{where}.cells", f"a layer needs at least 1 cell, got {layer.cells}")
    if spec.radial_cells < 1:
        raise CaseError("mesh.radial_cells", f"at least 1 cell, got {spec.radial_cells}")
    for key in ("radial_grading", "interface_grading"):
        value = getattr(spec, key)
        if not 1 <= value <= MAX_GRADING:
            raise CaseError(
                f"mesh.{key}",
                f"a grading exponent is in [1, {MAX_GRADING:g}] (1: uniform), got {value:g}",
            )


def x_nodes(spec: MeshSpec) -> np.ndarray:
    """Vertex columns through the layers, exactly at the interfaces, graded toward them."""
    layers, g = spec.layers, spec.interface_grading
    sizes = [layer.thickness for layer in layers]
    starts = np.concatenate([[0.0], np.cumsum(sizes)])
    columns = [np.array([0.0])]
    for k, layer in enumerate(layers):
        xi = np.arange(1, layer.cells + 1) / layer.cells
        left, right = k > 0, k < len(layers) - 1  # ends that meet another layer
        if left and right:
            s = np.where(xi <= 0.5, 0.5 * (2 * xi) ** g, 1 - 0.5 * (2 * (1 - xi)) ** g)
        elif left:
            s = xi**g
        elif right:
            s = 1 - (1 - xi) ** g
        else:
            s = xi
        interior = starts[k] + sizes[k] * s[:-1]
        columns += [interior, starts[k + 1 : k + 2]]  # the interface itself, exactly
    return np.concatenate(columns)


def r_nodes(spec: MeshSpec) -> np.ndarray:
    """Radial vertex rows r_i = 1 - (1 - i/N)^g."""
    n = spec.radial_cells
    return 1 - (1 - np.arange(n + 1) / n) ** spec.radial_grading


def build_pseudo2d(
    spec: MeshSpec, comm: MPI.Comm
) -> tuple[dmesh.Mesh, dmesh.MeshTags, dmesh.MeshTags, dict[str, int], dict[str, int]]:
    """The mesh, its cell tags (layers) and facet tags (sides), and their names."""
    xs, rs = x_nodes(spec), r_nodes(spec)
    nx, nr = len(xs) - 1, len(rs) - 1
    msh = dmesh.create_rectangle(
        comm,
        [np.zeros(2), np.ones(2)],
        [nx, nr],
        cell_type=dmesh.CellType.quadrilateral,
        ghost_mode=dmesh.GhostMode.shared_facet,
    )
    geometry = msh.geometry.x
    geometry[:, 0] = xs[np.rint(geometry[:, 0] * nx).astype(int)]
    geometry[:, 1] = rs[np.rint(geometry[:, 1] * nr).astype(int)]
    tdim = msh.topology.dim
    cells = np.arange(
        msh.topology.index_map(tdim).size_local + msh.topology.index_map(tdim).num_ghosts
    )
    midpoints = dmesh.compute_midpoints(msh, tdim, cells.astype(np.int32))[:, 0]
    interfaces = np.cumsum([layer.thickness for layer in spec.layers])[:-1]
    layer_tags = np.searchsorted(interfaces, midpoints).astype(np.int32) + 1
    cell_tags = dmesh.meshtags(msh, tdim, cells, layer_tags)
    length, tolerance = xs[-1], 1e-12
    planes = {
        "left": lambda x: np.abs(x[0]) <= tolerance * length,
        "right": lambda x: np.abs(x[0] - length) <= tolerance * length,
        "bottom": lambda x: np.abs(x[1]) <= tolerance,
        "top": lambda x: np.abs(x[1] - 1) <= tolerance,
    }
    msh.topology.create_connectivity(tdim - 1, tdim)
    found = [(dmesh.locate_entities_boundary(msh, tdim - 1, planes[s]), SIDES[s]) for s in SIDES]
    facets = np.concatenate([f for f, _ in found]).astype(np.int32)
    values = np.concatenate([np.full(len(f), tag, dtype=np.int32) for f, tag in found])
    order = np.argsort(facets)
    facet_tags = dmesh.meshtags(msh, tdim - 1, facets[order], values[order])
    regions = {layer.name: index + 1 for index, layer in enumerate(spec.layers)}
    return msh, cell_tags, facet_tags, regions, dict(SIDES)


def describe(spec: MeshSpec) -> str:
    """One line for the mesh summary."""
    layers = " + ".join(f"{layer.name} {layer.cells}" for layer in spec.layers)
    return (
        f"pseudo2d (x, r): {layers} cells in x, {spec.radial_cells} in r "
        f"(grading: r {spec.radial_grading:g}, interfaces {spec.interface_grading:g})"
    )
