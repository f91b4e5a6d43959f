"""Report what ParaView sees in a ScaleBridge XDMF file, as one line of JSON on stdout.

Runs under ParaView's own Python, not the project venv, so it imports only ``paraview`` and the
standard library::

    xvfb-run -a pvbatch tests/paraview_probe.py /abs/path/fields.xdmf

The file is opened at its last time step. The JSON object holds:

* ``reader``: the reader proxy ParaView chose; ``paraview_version``.
* ``time_values``: the reader's time steps; ``time``: the one requested (the last);
  ``data_time``: the time stamped on the data that came back (None when unstamped).
* ``number_of_points`` / ``number_of_cells``: of the grid that holds ``temperature`` (the
  first grid when there is none); ``total_points`` / ``total_cells``: summed over all grids.
* ``blocks``: per leaf grid, its flat index, class, point and cell counts and array names.
* ``point_arrays`` / ``cell_arrays``: per array name, ``components``, ``data_type``, ``range``
  (``[min, max]`` for one component, a list of per-component ``[min, max]`` otherwise) and, for
  vectors, ``magnitude_range``. An array found on several grids gets the union of its ranges.
"""

import json
import os
import sys

from paraview import servermanager, simple


def _union(first, second):
    """The smallest interval containing both ``[min, max]`` intervals."""
    return [min(first[0], second[0]), max(first[1], second[1])]


def _describe(array):
    """Name, component count, type and value ranges of one VTK data array."""
    components = array.GetNumberOfComponents()
    ranges = [list(array.GetRange(i)) for i in range(components)]
    entry = {
        "name": array.GetName(),
        "components": components,
        "data_type": array.GetDataTypeAsString(),
        "range": ranges[0] if components == 1 else ranges,
    }
    if components > 1:
        # Component -1 is VTK's convention for the Euclidean norm of each tuple.
        entry["magnitude_range"] = list(array.GetRange(-1))
    return entry


def _merge(found, entry):
    """Add ``entry`` to ``found`` (keyed by name), widening ranges when the name repeats."""
    previous = found.get(entry["name"])
    if previous is None:
        found[entry["name"]] = entry
        return
    if entry["components"] == 1:
        previous["range"] = _union(previous["range"], entry["range"])
    else:
        pairs = zip(previous["range"], entry["range"], strict=True)
        previous["range"] = [_union(a, b) for a, b in pairs]
        previous["magnitude_range"] = _union(previous["magnitude_range"], entry["magnitude_range"])


def _leaves(data):
    """The non-composite datasets inside ``data``, with their flat indices.

    A DOLFINx XDMF with several functions comes back from ``Fetch`` as a vtkMultiBlockDataSet
    holding a vtkMultiPieceDataSet whose pieces are the per-function grids, so nesting depth is
    not fixed; VTK's tree iterator walks any mix of multiblock and multipiece levels.
    """
    if not data.IsA("vtkCompositeDataSet"):
        return [(0, data)]
    leaves = []
    iterator = data.NewIterator()
    iterator.UnRegister(None)  # NewIterator hands over a reference Python already holds
    iterator.SkipEmptyNodesOn()
    iterator.InitTraversal()
    while not iterator.IsDoneWithTraversal():
        leaves.append((iterator.GetCurrentFlatIndex(), iterator.GetCurrentDataObject()))
        iterator.GoToNextItem()
    return leaves


def probe(path):
    """Open ``path`` at its last time step and summarise the data ParaView delivers."""
    # ParaView 5.11's Xdmf3 reader joins the XDMF's directory and the HDF5 name by plain string
    # concatenation: for a bare "fields.xdmf" it opens "fields.xdmffields.h5" and pvbatch dies
    # with SIGABRT. An absolute path always has a directory part, so it is safe.
    path = os.path.abspath(path)
    reader = simple.OpenDataFile(path)
    if reader is None:
        raise SystemExit(f"paraview_probe: ParaView has no reader for {path!r}")
    time_values = [float(t) for t in (reader.TimestepValues or [])]
    time = time_values[-1] if time_values else None
    if time is None:
        reader.UpdatePipeline()
        source = reader
    else:
        reader.UpdatePipeline(time)
        # Fetch re-executes the pipeline without a time request and would hand back time 0;
        # ForceTime pins the request so the fetched data is the last step whatever Fetch does.
        source = simple.ForceTime(Input=reader, ForcedTime=time, IgnorePipelineTime=1)
    data = servermanager.Fetch(source)

    info = data.GetInformation()
    data_time = info.Get(data.DATA_TIME_STEP()) if info.Has(data.DATA_TIME_STEP()) else None

    point_arrays, cell_arrays, blocks = {}, {}, []
    holder = None
    for index, leaf in _leaves(data):
        if not leaf.IsA("vtkDataSet"):
            continue
        names = {"point": [], "cell": []}
        for kind, attributes, found in (
            ("point", leaf.GetPointData(), point_arrays),
            ("cell", leaf.GetCellData(), cell_arrays),
        ):
            for i in range(attributes.GetNumberOfArrays()):
                array = attributes.GetArray(i)
                if array is None:  # a non-numeric (string) array has no range
                    continue
                names[kind].append(array.GetName())
                _merge(found, _describe(array))
        block = {
            "flat_index": index,
            "class": leaf.GetClassName(),
            "points": leaf.GetNumberOfPoints(),
            "cells": leaf.GetNumberOfCells(),
            "point_arrays": names["point"],
            "cell_arrays": names["cell"],
        }
        blocks.append(block)
        if holder is None and "temperature" in names["point"]:
            holder = block
    holder = holder or (blocks[0] if blocks else {"points": 0, "cells": 0})

    return {
        "file": path,
        "reader": reader.GetXMLName(),
        "paraview_version": servermanager.vtkSMProxyManager.GetParaViewSourceVersion(),
        "data_class": data.GetClassName(),
        "time_values": time_values,
        "time": time,
        "data_time": data_time,
        "number_of_points": holder["points"],
        "number_of_cells": holder["cells"],
        "total_points": sum(block["points"] for block in blocks),
        "total_cells": sum(block["cells"] for block in blocks),
        "blocks": blocks,
        "point_arrays": list(point_arrays.values()),
        "cell_arrays": list(cell_arrays.values()),
    }


def main(argv):
    """Entry point: one XDMF path in, one JSON line out."""
    if len(argv) != 2:
        raise SystemExit("usage: pvbatch paraview_probe.py /abs/path/fields.xdmf")
    # One line, so a caller can find the report among anything ParaView itself prints.
    print(json.dumps(probe(argv[1])), flush=True)


if __name__ == "__main__":
    main(sys.argv)
