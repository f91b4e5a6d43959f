"""Field files in segments: one XDMF time series that a restarted run continues.

DOLFINx's XDMF writer cannot append to a file, and a run restarted on another number of ranks
has another partition of its mesh, which the data of a file's time steps follow. So the field
files of a run are written in segments: segment 0 is ``fields.xdmf`` (+ ``.h5``) itself, as in a
run that never stops; every checkpoint closes the current segment (its files are then complete
and flushed), and the next output opens ``segments/fields.<k>.xdmf`` (+ ``.h5``), with the mesh
as partitioned now. ``fields.xdmf`` then becomes the index of all segments: one temporal
collection per field whose steps point at their segment's mesh and HDF5 file, which ParaView
and ``scalebridge plot`` read as one time series. The index is rewritten (atomically) after
each output. A restart deletes the segments begun after its checkpoint and takes the index as
the checkpoint saw it, so no time step is duplicated or lost.
"""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from pathlib import Path

SEGMENTS = "segments"
XINCLUDE_NS = "https://www.w3.org/2001/XInclude"
XINCLUDE = f"{{{XINCLUDE_NS}}}include"
_POSITION = re.compile(r"\[@GridType='Uniform'\]\[\d+\]")
_HEADER = '<?xml version="1.0"?>\n<!DOCTYPE Xdmf SYSTEM "Xdmf.dtd" []>\n'

ET.register_namespace("xi", XINCLUDE_NS)


def segment_path(folder: Path, stem: str, number: int, suffix: str) -> Path:
    """The file of segment ``number``: ``<stem><suffix>`` in the run folder for segment 0,
    ``segments/<stem>.<number><suffix>`` after it."""
    if number == 0:
        return folder / f"{stem}{suffix}"
    return folder / SEGMENTS / f"{stem}.{number}{suffix}"


def remove_segments_from(folder: Path, number: int) -> None:
    """Delete the segment files numbered ``number`` and later (those a stopped run began after
    the checkpoint a restart continues from)."""
    pattern = re.compile(r".*\.(\d+)(\.xdmf|\.h5|\.bp)$")
    for path in sorted((folder / SEGMENTS).glob("*")) if (folder / SEGMENTS).is_dir() else []:
        match = pattern.fullmatch(path.name)
        if match and int(match[1]) >= number:
            _remove(path)


def _remove(path: Path) -> None:
    if path.is_dir():
        for inner in sorted(path.rglob("*"), reverse=True):
            inner.rmdir() if inner.is_dir() else inner.unlink()
        path.rmdir()
    else:
        path.unlink()


def merge(index: str | None, segment: str, number: int) -> str:
    """The index with the time steps of segment ``number`` (the XML DOLFINx wrote for it)
    appended: the segment's mesh joins the index's grids, and its steps point at it and at
    their HDF5 file under ``segments/``. Segment 0 is its own index."""
    if index is None:
        return segment
    root = ET.fromstring(index)
    domain = root.find("Domain")
    added = ET.fromstring(segment).find("Domain")
    grids = added.findall("Grid")
    mesh = next(g for g in grids if g.get("GridType") == "Uniform")
    mesh = _relocated(copy.deepcopy(mesh))
    mesh.set("Name", f"{mesh.get('Name')}_{number}")
    series = [g for g in domain.findall("Grid") if g.get("CollectionType") == "Temporal"]
    position = 1 + sum(1 for g in domain.findall("Grid") if g.get("GridType") == "Uniform")
    domain.insert(list(domain).index(series[0]) if series else len(domain), mesh)
    for collection in grids:
        if collection.get("CollectionType") != "Temporal":
            continue
        target = next((g for g in series if g.get("Name") == collection.get("Name")), None)
        if target is None:
            target = ET.SubElement(domain, "Grid", collection.attrib)
            series.append(target)
        for step in collection.findall("Grid"):
            step = _relocated(copy.deepcopy(step))
            for include in step.findall(XINCLUDE):
                pointer = _POSITION.sub(
                    f"[@GridType='Uniform'][{position}]", include.get("xpointer")
                )
                include.set("xpointer", pointer)
            target.append(step)
    ET.indent(root, space="  ")
    return _HEADER + ET.tostring(root, encoding="unicode") + "\n"


def _relocated(grid: ET.Element) -> ET.Element:
    """A segment's grid with its HDF5 paths relative to the run folder."""
    for item in grid.iter("DataItem"):
        if item.get("Format") == "HDF" and item.text:
            item.text = f"{SEGMENTS}/{item.text.strip()}"
    return grid
