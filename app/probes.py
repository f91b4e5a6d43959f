"""Probes: field values at named points (quantities.csv columns) and along lines (profile CSVs).

A case names them under ``[output.probes]``::

    [output.probes]
    D = [0.1, "2 cm"]                                        # a point: every output field there
    inlet = { at = [0, 0.05], fields = ["temperature"] }     # a point, chosen fields
    axis = { from = [0, 0], to = ["20 cm", 0], points = 50 } # a line: profiles/axis.csv

A point's values become quantities.csv columns ``<probe>_<field>[_<component>]_<unit>``
(``D_temperature_K``, ``D_displacement_x_m``, ``D_stress_xy_Pa``); components of vectors are
x, y, z, of tensors xx, xy, ... A line writes ``profiles/<name>.csv``: one row per point and
output time (``time_s``, ``distance_m`` from ``from``, the coordinates, then a column per field
component, named as above without the probe).

Which fields: the probe's ``fields``, else the output fields (``output.fields``, default all).
A field that lives on a region or a boundary is read where it lives: a point elsewhere leaves
its columns out (``scalebridge check`` lists what each probe reads and what it leaves out), a
line gets NaN at its points outside. Both ends of a line, and every point, must
lie in the mesh; points between the ends may fall in a hole (NaN there too).

Values at quadrature points (internal variables) are read as the mean over the cell holding the
point, as the field files show them.

Exactly one rank evaluates each point, in one cell: among all cells that contain it, on any
rank, the one whose midpoint comes first (by x, then y, then z). A point on a facet between
cells thus reads a discontinuous field from the same cell on any partition, and the values
are summed over the ranks (one contribution each), so a probe reads alike on 1 or N ranks.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from dolfinx import fem
from mpi4py import MPI
from pydantic import Field, model_validator

from app.errors import CaseError, did_you_mean, listing
from app.output import column
from app.parameters import Parameters, quantity
from app.point_location import Located, bounding_box, locate
from app.pointwise import CellMean, cell_mean_space, quadrature_degree
from app.quantity_table import cut_table, open_tables

AXES = "xyz"


class Probe(Parameters):
    """A point (``at``, or just the coordinates) or a line (``from``, ``to``, ``points``)."""

    at: list[float] | None = quantity("m", None, "Coordinates of a point [x(, y(, z))]")
    start: list[float] | None = Field(
        None,
        alias="from",
        description="Start of a line [x(, y(, z))] (m)",
        json_schema_extra={"units": "m"},
    )
    end: list[float] | None = Field(
        None,
        alias="to",
        description="End of a line [x(, y(, z))] (m)",
        json_schema_extra={"units": "m"},
    )
    points: int | None = Field(
        None, ge=2, le=1_000_000, description="Points along a line, ends included"
    )
    fields: list[str] | None = Field(
        None, description="Fields to read (default: the output fields)"
    )

    @model_validator(mode="after")
    def _point_or_line(self) -> Probe:
        line = (self.start, self.end, self.points) != (None, None, None)
        if self.at is not None and line:
            raise ValueError("a probe is a point (at) or a line (from, to, points), not both")
        if self.at is None and (self.start is None or self.end is None or self.points is None):
            raise ValueError(
                "a point is [x, y] or { at = [x, y] }; a line is "
                "{ from = [x, y], to = [x, y], points = 100 }"
            )
        if self.is_line and self.start == self.end:
            raise ValueError(
                f"a line from {self.start} to the same point has no direction to read along; "
                "give a 'to' different from 'from', or make it a point probe (at = [x, y])"
            )
        return self

    @property
    def is_line(self) -> bool:
        return self.at is None

    def coordinates(self) -> np.ndarray:
        """The probe's points, one row each (a line's evenly spaced, ends included)."""
        if not self.is_line:
            return np.array([self.at], dtype=float)
        fractions = np.linspace(0.0, 1.0, self.points)[:, None]
        start, end = np.array(self.start), np.array(self.end)
        return start + fractions * (end - start)


def probe_table(raw: Any) -> Any:
    """``[output.probes]`` as written: a bare coordinate list is a point (``{at = [...]}``)."""
    if not isinstance(raw, Mapping):
        return raw
    for name, value in raw.items():
        if not isinstance(value, list | Mapping):
            raise ValueError(
                f"{name}: expected a point [x, y] or a table ({{ at = [x, y] }}, or "
                f"{{ from = [x, y], to = [x, y], points = 100 }} for a line), got {value!r}"
            )
    return {name: {"at": v} if isinstance(v, list) else v for name, v in raw.items()}


def check_probe_names(probes: Mapping[str, Probe]) -> Mapping[str, Probe]:
    """Probe names start CSV column and file names: letters, digits and underscores."""
    for name in probes:
        if not name.isidentifier():
            raise ValueError(f"probe names are letters, digits and underscores, got {name!r}")
    return probes


# --------------------------------------------------------------------------------------------
# Reading fields at located points
# --------------------------------------------------------------------------------------------
@dataclass
class Reading:
    """One field at one probe's points."""

    field: str
    function: fem.Function
    points: np.ndarray  # (n, 3)
    located: Located
    names: list[str]  # column names, one per component
    units: str
    mean: CellMean | None = None  # values at quadrature points are read as their cell's mean

    @property
    def size(self) -> int:
        return len(self.names)

    def local(self) -> np.ndarray:
        """This rank's contribution: values at the points it evaluates, zeros elsewhere."""
        values = np.zeros((len(self.points), self.size))
        mine = self.located.mine
        if self.mean is not None:
            self.mean()
        if mine.any():
            evaluated = self.function.eval(self.points[mine], self.located.cells[mine])
            values[mine] = np.reshape(evaluated, (int(mine.sum()), self.size))
        return values


def component_suffixes(shape: tuple[int, ...]) -> list[str]:
    """``[""]`` for a scalar, x, y, z for a vector, xx, xy, ... for a tensor."""
    if not shape:
        return [""]
    if len(shape) == 1:
        return [f"_{AXES[i]}" for i in range(shape[0])]
    return [f"_{AXES[i]}{AXES[j]}" for i in range(shape[0]) for j in range(shape[1])]


class Probes:
    """The probes of a run: checked and located when built, read at every output time.

    Args:
        specs: The case's ``[output.probes]``.
        store: The fields.
        default_fields: What a probe without ``fields`` reads.
    """

    def __init__(self, specs: Mapping[str, Probe], store: Any, default_fields: list[str]):
        self._store = store
        self._comm = store.mesh.comm
        self._at: dict[str, np.ndarray] = {}
        self.points: dict[str, list[Reading]] = {}
        self.lines: dict[str, tuple[Probe, list[Reading]]] = {}
        self.skipped: dict[str, list[str]] = {}
        for name, spec in specs.items():
            coordinates = self._coordinates(name, spec)
            self._at[name] = coordinates[0, : store.mesh.geometry.dim]
            readings, skipped = self._readings(name, spec, coordinates, default_fields)
            self.skipped[name] = skipped
            if spec.is_line:
                self.lines[name] = (spec, readings)
            else:
                self.points[name] = readings
        self._rows: dict[str, list[list[float]]] = {name: [] for name in self.lines}
        self._streams: dict[str, Any] = {}
        self._folder: Path | None = None

    # Set-up ---------------------------------------------------------------------------------
    def _coordinates(self, name: str, spec: Probe) -> np.ndarray:
        where = f"output.probes.{name}"
        parent = self._store.mesh
        gdim = parent.geometry.dim
        for key, value in (("at", spec.at), ("from", spec.start), ("to", spec.end)):
            if value is not None and len(value) != gdim:
                raise CaseError(
                    f"{where}.{key}" if spec.is_line else where,
                    f"expected {gdim} coordinates on a {gdim}D mesh, got {len(value)}",
                )
        points = spec.coordinates()
        located = locate(parent, points)
        ends = [0, len(points) - 1] if spec.is_line else [0]
        for index in ends:
            if not located.found[index]:
                low, high = bounding_box(parent)
                span = ", ".join(f"{AXES[i]} {low[i]:g} to {high[i]:g}" for i in range(gdim))
                what = f"the line's {('start', 'end')[index > 0]}" if spec.is_line else "the point"
                raise CaseError(
                    where,
                    f"{what} ({_text(points[index])}) m lies outside the mesh, which spans "
                    f"{span} m",
                    "give a point inside the mesh (coordinates in m, or with units)",
                )
        xyz = np.zeros((len(points), 3))
        xyz[:, :gdim] = points
        return xyz

    def _readings(
        self, name: str, spec: Probe, points: np.ndarray, default_fields: list[str]
    ) -> tuple[list[Reading], list[str]]:
        wanted = spec.fields if spec.fields is not None else default_fields
        spatial = [f.spec.name for f in self._store if not f.is_global]
        readings, skipped = [], []
        located_on: dict[int, Located] = {}  # by mesh: fields of one mesh share the search
        for index, field in enumerate(wanted):
            if field in self._store and field not in spatial:
                raise CaseError(
                    f"output.probes.{name}.fields[{index}]",
                    f"'{field}' is one value for the whole domain, not a field over space",
                    "read it in quantities.csv; probe a field that varies in space",
                )
            if field not in spatial:
                raise CaseError(
                    f"output.probes.{name}.fields[{index}]",
                    f"unknown field '{field}'{did_you_mean(field, spatial)}; fields that can be "
                    f"probed: {listing(spatial)}",
                )
            target = self._store[field]
            msh = target.function.function_space.mesh
            if id(msh) not in located_on:
                located_on[id(msh)] = locate(msh, points)
            located = located_on[id(msh)]
            if not located.found.any() or (not spec.is_line and not located.found.all()):
                skipped.append(field)
                continue
            prefix = f"{field}" if spec.is_line else f"{name}_{field}"
            names = [
                column(prefix + suffix, target.spec.units)
                for suffix in component_suffixes(target.function.ufl_shape)
            ]
            function, mean = target.function, None
            if target.pointwise:  # no shape functions: the mean of the cell holding the point
                function = fem.Function(cell_mean_space(target.space), name=field)
                mean = CellMean(target.function, function, quadrature_degree(target.space))
            readings.append(
                Reading(field, function, points, located, names, target.spec.units, mean)
            )
        return readings, skipped

    # What the run writes --------------------------------------------------------------------
    def check_columns(self, taken: list[str]) -> None:
        """Refuse a probe column that another column of quantities.csv already has.

        Raises:
            CaseError: At ``output.probes.<name>``.
        """
        taken = list(taken)
        for name, readings in self.points.items():
            for reading in readings:
                clash = next((c for c in reading.names if c in taken), None)
                if clash is not None:
                    raise CaseError(
                        f"output.probes.{name}",
                        f"the probe's column '{clash}' is already a quantities.csv column",
                        "rename the probe",
                    )
                taken += reading.names

    @property
    def columns(self) -> list[str]:
        """The quantities.csv columns of the point probes."""
        return [name for readings in self.points.values() for r in readings for name in r.names]

    def units(self) -> dict[str, str]:
        """The unit of each quantities.csv column of the point probes."""
        return {name: r.units for rs in self.points.values() for r in rs for name in r.names}

    def fields(self) -> set[str]:
        """Every field some probe reads (derived ones must be current when read)."""
        readings = [r for rs in self.points.values() for r in rs]
        readings += [r for _, rs in self.lines.values() for r in rs]
        return {r.field for r in readings}

    def profile_columns(self, name: str) -> list[str]:
        readings = self.lines[name][1]
        gdim = self._store.mesh.geometry.dim
        place = ["time_s", "distance_m", *(f"{AXES[i]}_m" for i in range(gdim))]
        return place + [n for r in readings for n in r.names]

    def describe(self) -> list[str]:
        """One line per probe for ``scalebridge check``."""
        lines = []
        for name, readings in self.points.items():
            lines.append(f"{name} at ({_text(self._at[name])}) m: {self._read(name, readings)}")
        for name, (spec, readings) in self.lines.items():
            start, end = _text(spec.start), _text(spec.end)
            lines.append(
                f"{name}: {spec.points} points from ({start}) to ({end}) m -> "
                f"profiles/{name}.csv: {self._read(name, readings)}"
            )
        return lines

    def _read(self, name: str, readings: list[Reading]) -> str:
        text = ", ".join(r.field for r in readings) or "no field"
        places: dict[str, list[str]] = {}
        for field in self.skipped[name]:
            places.setdefault(self._store[field].spec.region, []).append(field)
        for place, fields in places.items():
            text += f"; not {', '.join(fields)} (on '{place}' only)"
        return text

    def open(self, folder: Path | None, resume: bool = False) -> None:
        """Start the profile CSVs (rank 0) in ``folder``/profiles (``resume``: open a stopped
        run's, to be cut back to its checkpoint by :meth:`restore`)."""
        self._folder = folder
        if folder is None or not self.lines:
            return
        tables = {
            name: (folder / "profiles" / f"{name}.csv", self.profile_columns(name))
            for name in self.lines
        }
        self._streams = open_tables(tables, resume, self._comm)

    def state(self) -> dict[str, Any]:
        """The profiles in a checkpoint: each file's length (app/quantity_table.py)."""
        sizes = {name: stream.tell() for name, stream in self._streams.items()}
        return {"bytes": self._comm.bcast(sizes, root=0)}

    def restore(self, state: dict[str, Any]) -> None:
        for name in self.lines:
            path = None if self._folder is None else self._folder / "profiles" / f"{name}.csv"
            stream = self._streams.get(name)
            length = state["bytes"].get(name, 0)
            columns = self.profile_columns(name)
            self._rows[name] = cut_table(path, stream, length, columns, self._comm)

    def read(self) -> tuple[list[float], list[np.ndarray]]:
        """The point probes' values now, in column order, and the values along each line
        (collective); :meth:`write_profiles` writes the latter."""
        readings = [r for rs in self.points.values() for r in rs]
        lines = [r for _, rs in self.lines.values() for r in rs]
        values = self._reduce(readings + lines)
        points = [float(v) for block in values[: len(readings)] for v in block.ravel()]
        return points, values[len(readings) :]

    def not_finite(self, points: list[float], lines: list[np.ndarray]) -> str:
        """Which probe reads a non-finite value (lines: where they lie in the field's mesh;
        elsewhere they read nan by design), or ""."""
        columns = self.columns
        for name, value in zip(columns, points, strict=True):
            if not np.isfinite(value):
                return f"probe column '{name}' is {value}"
        readings = [(n, r) for n, (_, rs) in self.lines.items() for r in rs]
        for (name, reading), block in zip(readings, lines, strict=True):
            located = block[reading.located.found]
            if not np.isfinite(located).all():
                return f"line probe '{name}' reads a non-finite {reading.field}"
        return ""

    def write_profiles(self, t: float, lines: list[np.ndarray]) -> None:
        """A row per point of each line at time ``t`` (rank 0 writes)."""
        self._profiles(t, lines)

    def values(self, columns: list[str]) -> dict[str, float]:
        """The named point-probe columns now (collective), for events."""
        wanted = set(columns)
        readings = [r for rs in self.points.values() for r in rs if wanted & set(r.names)]
        found = {}
        for reading, block in zip(readings, self._reduce(readings), strict=True):
            found |= dict(zip(reading.names, map(float, block.ravel()), strict=True))
        return {name: found[name] for name in columns}

    def _reduce(self, readings: list[Reading]) -> list[np.ndarray]:
        """The values of ``readings``, each (points, components), summed over the ranks (each
        point has one contributor); NaN where the field is absent."""
        if not readings:
            return []
        local = np.concatenate([r.local().ravel() for r in readings])
        total = np.empty_like(local)
        self._comm.Allreduce(local, total, op=MPI.SUM)
        blocks, offset = [], 0
        for reading in readings:
            block = total[offset : offset + len(reading.points) * reading.size]
            block = block.reshape(len(reading.points), reading.size).copy()
            block[~reading.located.found] = np.nan
            blocks.append(block)
            offset += block.size
        return blocks

    def _profiles(self, t: float, blocks: list[np.ndarray]) -> None:
        offset = 0
        gdim = self._store.mesh.geometry.dim
        for name, (spec, readings) in self.lines.items():
            coordinates = spec.coordinates()
            distance = np.linalg.norm(coordinates - coordinates[0], axis=1)
            fields = blocks[offset : offset + len(readings)]
            offset += len(readings)
            table = np.column_stack(
                [np.full(len(coordinates), t), distance, coordinates[:, :gdim], *fields]
            )
            self._rows[name] += table.tolist()
            if name in self._streams:
                writer = csv.writer(self._streams[name])
                writer.writerows([[f"{v:.12g}" for v in row] for row in table])
                self._streams[name].flush()

    def profiles(self) -> dict[str, dict[str, np.ndarray]]:
        """Every profile row so far, by line and column (one entry per point and time)."""
        tables = {}
        for name in self.lines:
            columns = self.profile_columns(name)
            rows = np.array(self._rows[name], dtype=float).reshape(-1, len(columns))
            tables[name] = {c: rows[:, i] for i, c in enumerate(columns)}
        return tables

    def close(self) -> None:
        for stream in self._streams.values():
            stream.close()
        self._streams = {}


def _text(point: Any) -> str:
    return ", ".join(f"{float(c):g}" for c in point)
