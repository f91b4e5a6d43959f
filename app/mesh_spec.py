"""The ``[mesh]`` section of a case file: its schema, checked when the case loads.

A built-in box (``interval``, ``rectangle``, ``box``), a gmsh file or script (``file``), or the
pseudo-2D (x, r) mesh of a layered cell (``pseudo2d``); the named regions, boundaries, point
and edge sets a case adds; refinement and the cache of partitioned meshes. app/meshing.py
builds the mesh it describes.
"""

import math
import pathlib
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from app import mesh_sets
from app.errors import CaseError
from app.mesh_sets import BOUNDARIES, COORDS, EDGES, POINTS, REGIONS
from app.meshing_pseudo2d import LayerSpec, check_pseudo2d_spec
from app.parameters import constant_value
from app.units import looks_like_quantity, to_si
from app.validation import refuse_booleans

_DIM = {"interval": 1, "rectangle": 2, "box": 3, "pseudo2d": 2}
BUILTIN_CELLS = {  # the built-in boxes
    "interval": ("interval",),
    "rectangle": ("triangle", "quadrilateral"),
    "box": ("tetrahedron", "hexahedron"),
}
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

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_not_booleans(cls, raw: Any, info: ValidationInfo) -> Any:
        refuse_booleans(cls.model_fields[info.field_name].annotation, raw)
        return raw

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
        if self.cell is not None and self.cell not in BUILTIN_CELLS[self.type]:
            raise CaseError(
                "mesh.cell",
                f"a {self.type} mesh cannot have {self.cell} cells",
                f"use one of: {', '.join(BUILTIN_CELLS[self.type])}",
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
        return self.cell or BUILTIN_CELLS[self.type][0]

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
