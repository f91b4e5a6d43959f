"""A run folder read back: its quantities and an index of its field files.

``quantities.csv`` becomes arrays by column; each ``fields*.xdmf`` file is indexed by field and
time step. VTK's XDMF reader crashes on the ``xi:include`` DOLFINx uses to share the mesh
between time steps, so each snapshot is read through a small XDMF file that names the mesh and
that one time step directly (see ``_snapshot_xdmf``). The HDF5 data is global, so runs on any
number of ranks read alike. Used by ``scalebridge plot`` (app/plotting.py).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import os
import re
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import CaseError

XINCLUDE = "{https://www.w3.org/2001/XInclude}include"


@dataclass
class FieldSeries:
    """One field's time series in an XDMF file."""

    name: str
    file: Path
    times: list[float]
    steps: list[ET.Element]  # the Uniform grid of each time step
    meshes: list[ET.Element]  # the grid whose Topology and Geometry each step includes


@dataclass
class Run:
    """A run folder, read back: its quantities and an index of its fields."""

    path: Path
    name: str
    quantities: dict[str, np.ndarray]
    fields: dict[str, FieldSeries] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)  # of each field, from fields.json


def open_run(path: str | Path) -> Run:
    """Read a run folder's ``quantities.csv`` and index its ``fields*.xdmf`` files.

    Raises:
        CaseError: ``path`` is not a run folder.
    """
    path = Path(path)
    table = path / "quantities.csv"
    if not path.is_dir() or not (path / "provenance.json").is_file():
        raise CaseError(
            str(path),
            "not a ScaleBridge run folder (no provenance.json)",
            "pass the folder a run wrote, e.g. results/heated_plate",
        )
    if not table.is_file():
        raise CaseError(str(path), "the run folder has no quantities.csv")
    with table.open(newline="") as stream:
        rows = list(csv.reader(stream))
    if not rows:
        raise CaseError(str(table), "the file is empty")
    header = rows[0]
    try:
        values = np.array(rows[1:], dtype=float).reshape(-1, len(header))
    except ValueError:
        raise CaseError(
            str(table), "rows of different lengths or non-numbers: was the run killed mid-write?"
        ) from None
    run = Run(path, path.resolve().name, {name: values[:, i] for i, name in enumerate(header)})
    files = sorted(path.glob("fields*.xdmf"), key=lambda p: (p.name != "fields.xdmf", p.name))
    for xdmf in files:
        for series in _index_xdmf(xdmf):
            run.fields.setdefault(series.name, series)
    run.units = _field_units(path / "fields.json")
    return run


def _field_units(path: Path) -> dict[str, str]:
    """Each field's units from a run's ``fields.json`` (older runs have none: no units)."""
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(table, dict):
        return {}
    return {
        name: str(entry["units"])
        for name, entry in table.items()
        if isinstance(entry, dict) and "units" in entry
    }


def _index_xdmf(path: Path) -> list[FieldSeries]:
    """The time series of a DOLFINx XDMF file: one temporal collection per function."""
    try:
        domain = ET.parse(path).getroot().find("Domain")
    except ET.ParseError as exc:
        raise CaseError(
            str(path), f"cannot read it ({exc}); is the run still writing it?"
        ) from None
    if domain is None:
        return []
    grids = domain.findall("Grid")
    uniform = [g for g in grids if g.get("GridType") == "Uniform"]
    found = []
    for grid in grids:
        steps = grid.findall("Grid")
        if grid.get("CollectionType") != "Temporal" or not steps:
            continue
        meshes = [_included_mesh(step, uniform) for step in steps]
        if all(mesh is not None for mesh in meshes):
            times = [float(step.find("Time").get("Value")) for step in steps]
            found.append(FieldSeries(grid.get("Name"), path, times, steps, meshes))
    return found


def _included_mesh(step: ET.Element, uniform: list[ET.Element]) -> ET.Element | None:
    """The mesh grid a time step includes: DOLFINx points at it by position, as in
    ``xpointer(/Xdmf/Domain/Grid[@GridType='Uniform'][1]/*[self::Topology or ...])`` (a run
    continued after a checkpoint has a mesh per segment: app/field_segments.py)."""
    include = step.find(XINCLUDE)
    pointer = include.get("xpointer", "") if include is not None else ""
    match = re.search(r"\[@GridType='Uniform'\]\[(\d+)\]", pointer)
    position = int(match.group(1)) - 1 if match else 0
    return uniform[position] if position < len(uniform) else None


def _snapshot_xdmf(series: FieldSeries, index: int, target: Path) -> Path:
    """A self-contained XDMF file of one time step: the mesh written in, absolute HDF5 paths,
    and 8-byte floats (XDMF's default precision is 4 bytes)."""
    step = copy.deepcopy(series.steps[index])
    for include in step.findall(XINCLUDE):
        step.remove(include)
    mesh = series.meshes[index]
    parts = [copy.deepcopy(e) for e in mesh if e.tag in ("Topology", "Geometry")]
    for position, part in enumerate(parts):
        step.insert(position, part)
    for item in step.iter("DataItem"):
        if item.get("Format") == "HDF":
            name, _, dataset = item.text.strip().partition(":")
            item.text = f"{(series.file.parent / name).resolve()}:{dataset}"
        if item.get("NumberType", "Float") == "Float" and "Precision" not in item.attrib:
            item.set("Precision", "8")
    root = ET.Element("Xdmf", Version="3.0")
    ET.SubElement(root, "Domain").append(step)
    ET.ElementTree(root).write(target, xml_declaration=True)
    return target


def read_snapshot(series: FieldSeries, index: int) -> Any:
    """The mesh of ``series`` with the field's values at time step ``index`` (pyvista).

    Raises:
        CaseError: The HDF5 data cannot be read (a damaged or cut-short file).
    """
    pv = offscreen_pyvista()
    with tempfile.TemporaryDirectory(prefix="scalebridge-plot-") as scratch:
        path = _snapshot_xdmf(series, index, Path(scratch) / "snapshot.xdmf")
        with _stderr_into(Path(scratch) / "reader.log") as log:
            data = pv.get_reader(str(path)).read()
        if isinstance(data, pv.MultiBlock):
            data = next((block for block in data if block is not None), None)
        if data is None or series.name not in data.array_names:
            why = _reader_problem(log.read_text(errors="replace"))
            raise CaseError(
                str(series.file),
                f"cannot read '{series.name}' at t = {series.times[index]:g} s from its HDF5 "
                f"file ({why})",
                "the file is damaged or incomplete (a run still writing it, a copy cut short): "
                "run the case again",
            )
    return data


def _reader_problem(said: str) -> str:
    """The telling line of what the HDF5 library and VTK's XDMF reader printed."""
    for pattern in (
        r"\): (truncated file[^\n]*)",  # HDF5: a file cut short, with its expected size
        r"XDMF Error in [^(]*\((Can't Open Dataset [^)\n]*)\)",
        r"XDMF Error in [^(]*\(([^)\n]*)\)",
    ):
        found = re.search(pattern, said)
        if found:
            return found[1]
    return "the reader found no values"


@contextlib.contextmanager
def _stderr_into(path: Path) -> Iterator[Path]:
    """Send what this process writes to stderr (file descriptor 2) into ``path`` meanwhile:
    VTK's XDMF reader prints its errors there from C++, over a message of ours."""
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("wb") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield path
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def offscreen_pyvista() -> Any:
    # EGL renders without an X server; say so before VTK picks (and warns about) X.
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import pyvista

    pyvista.OFF_SCREEN = True
    return pyvista
