"""ParaView view of a ScaleBridge run folder (copied into every run folder as ``view.py``).

It opens the run's field files (``fields.xdmf``, then one ``fields_<mesh>.xdmf`` per region or
boundary mesh, each in its own view), colours each view by the first field of its file (vectors
by magnitude; temperatures with Inferno, fields that change sign with Cool to Warm centred on
zero, anything else with Viridis) and goes to the last time. Every field also gets a pipeline
item of its own (hidden), so the GUI can switch fields with its eye icons::

    paraview --state=results/plate/view.py      # the ParaView GUI
    pvpython results/plate/view.py              # an interactive window
    pvbatch results/plate/view.py               # saves view.png next to this script
    xvfb-run -a pvbatch view.py --screenshot shot.png --report   # headless, for tests

``--report`` prints one line of JSON: the files, the time shown, and per field the array's
association (point or cell), components, range at that time (vectors and tensors: of the
magnitude), the colour map, whether it is shown and its colour bar's title (with the units
from ``fields.json``). ``--field NAME`` colours the view of NAME's file by NAME.

It runs under ParaView's own Python, so it imports only ``paraview`` and the standard library.
Paths are found from this script's own location (ParaView's XDMF reader needs absolute paths);
``paraview --script`` gives the script no ``__file__``, so RUN_FOLDER, written when the run
folder was made, is the fallback.
"""

import glob
import json
import os
import sys
import xml.etree.ElementTree as ET

from paraview import servermanager, simple

RUN_FOLDER = None  # the run folder's absolute path, filled in when copied there


def run_folder():
    """The folder this script belongs to."""
    here = globals().get("__file__")
    if here:
        return os.path.dirname(os.path.abspath(here))
    if RUN_FOLDER and os.path.isdir(RUN_FOLDER):
        return RUN_FOLDER
    return os.getcwd()


def field_files(folder):
    """``fields.xdmf`` first, then the files of other meshes, with their field names in order."""
    paths = sorted(glob.glob(os.path.join(folder, "fields*.xdmf")))
    paths.sort(key=lambda path: os.path.basename(path) != "fields.xdmf")
    files = []
    for path in paths:
        domain = ET.parse(path).getroot().find("Domain")
        grids = domain.findall("Grid") if domain is not None else []
        names = [g.get("Name") for g in grids if g.get("CollectionType") == "Temporal"]
        if names:
            files.append((path, names))
    return files


def field_units(folder):
    """Each field's units from the run's ``fields.json`` (empty for runs without one)."""
    try:
        with open(os.path.join(folder, "fields.json")) as stream:
            table = json.load(stream)
    except (OSError, ValueError):
        return {}
    if not isinstance(table, dict):
        return {}
    return {name: entry.get("units", "") for name, entry in table.items() if type(entry) is dict}


def colour_map(name, components, low, high):
    """The preset and range for a field: (preset, low, high)."""
    if components == 1 and low < 0 < high:
        bound = max(-low, high)
        return "Cool to Warm", -bound, bound
    if "temperature" in name:
        return "Inferno (matplotlib)", low, high
    return "Viridis (matplotlib)", low, high


PICK = """
name = {name!r}
source = self.GetInputDataObject(0, 0)
found = source if not source.IsA("vtkCompositeDataSet") else None
if found is None:
    leaves = source.NewIterator()
    leaves.UnRegister(None)
    leaves.InitTraversal()
    while not leaves.IsDoneWithTraversal():
        leaf = leaves.GetCurrentDataObject()
        if leaf.GetPointData().HasArray(name) or leaf.GetCellData().HasArray(name):
            found = leaf
            break
        leaves.GoToNextItem()
if found is not None:
    self.GetOutputDataObject(0).ShallowCopy(found)
"""


def pick(reader, name, label):
    """A pipeline item holding only the grid of field ``name``.

    DOLFINx writes each function as its own grid on the same mesh; shown together they would
    overlap, so each field is picked out of the reader's multiblock by a programmable filter.
    """
    item = simple.ProgrammableFilter(registrationName=label, Input=reader)
    item.OutputDataSetType = "vtkUnstructuredGrid"
    item.Script = PICK.format(name=name)
    return item


def describe(item, name, time):
    """Association, components and range of field ``name`` on ``item`` at ``time``."""
    item.UpdatePipeline(time)
    for association, arrays in (("POINTS", item.PointData), ("CELLS", item.CellData)):
        array = arrays.GetArray(name)
        if array is not None:
            components = array.GetNumberOfComponents()
            low, high = array.GetRange(-1 if components > 1 else 0)
            return association, components, [low, high]
    raise SystemExit(f"view.py: no array {name!r} in the data at t = {time}")


def show(item, name, view, entry, units=""):
    """Show ``item`` in ``view``, coloured by ``name`` with its colour map; the colour bar's
    title carries the field's ``units``."""
    display = simple.Show(item, view)
    association, components = entry["association"], entry["components"]
    if components > 1:
        simple.ColorBy(display, (association, name, "Magnitude"))
    else:
        simple.ColorBy(display, (association, name))
    preset, low, high = colour_map(name, components, *entry["range"])
    if low == high:  # a constant: the middle of a narrow range around it
        pad = 1e-3 * abs(low) or 1.0
        low, high = low - pad, high + pad
    table = simple.GetColorTransferFunction(name)
    table.ApplyPreset(preset, True)
    table.RescaleTransferFunction(low, high)
    simple.GetOpacityTransferFunction(name).RescaleTransferFunction(low, high)
    display.SetScalarBarVisibility(view, True)
    bar = simple.GetScalarBar(table, view)
    bar.Title = name + (f" [{units}]" if units else "") + (" (magnitude)" if components > 1 else "")
    bar.ComponentTitle = ""
    bar.Orientation = "Horizontal"
    bar.WindowLocation = "Lower Center"
    bar.RangeLabelFormat = "%.5g"
    bar.TitleFontSize, bar.LabelFontSize = 12, 11
    if item.GetDataInformation().GetNumberOfPoints() and _dimension(item) == 1:
        display.LineWidth = 4.0
    entry["preset"] = preset
    entry["title"] = bar.Title
    entry["shown"] = True
    return display


def _dimension(item):
    """The dimension of the cells of ``item`` (1 for lines)."""
    bounds = item.GetDataInformation().GetBounds()
    flat = [bounds[2 * i + 1] - bounds[2 * i] <= 0 for i in range(3)]
    return 3 - sum(flat) if sum(flat) < 2 else 1


def frame(view, item):
    """Point the camera at ``item``: down the z axis for planar data, else from a corner."""
    bounds = item.GetDataInformation().GetBounds()
    centre = [(bounds[2 * i] + bounds[2 * i + 1]) / 2 for i in range(3)]
    planar = bounds[5] - bounds[4] <= 0
    direction = [0.0, 0.0, 1.0] if planar else [1.0, -1.0, 0.8]
    view.CameraPosition = [c + d for c, d in zip(centre, direction, strict=True)]
    view.CameraFocalPoint = centre
    view.CameraViewUp = [0.0, 1.0, 0.0] if planar else [0.0, 0.0, 1.0]
    if planar:
        view.InteractionMode = "2D"
    view.ResetCamera(False)
    if planar:
        view.CameraParallelScale *= 1.4  # room for the colour bar below the data
    else:
        view.GetActiveCamera().Zoom(0.75)


def build(folder, wanted=None):
    """Open every field file of ``folder`` and set up the views; returns the report."""
    files = field_files(folder)
    if not files:
        raise SystemExit(f"view.py: no fields*.xdmf in {folder}")
    scene = simple.GetAnimationScene()
    first_view = simple.GetActiveViewOrCreate("RenderView")
    layout = simple.GetLayout(first_view)
    report = {"folder": folder, "files": [], "fields": {}, "time": None}
    units = field_units(folder)
    readers = []
    for path, names in files:
        reader = simple.OpenDataFile(path)
        simple.RenameSource(os.path.basename(path), reader)
        readers.append((reader, path, names))
    scene.UpdateAnimationUsingDataTimeSteps()
    times = sorted({float(t) for reader, _, _ in readers for t in reader.TimestepValues or []})
    time = times[-1] if times else 0.0
    report["time"] = time
    for _, _, names in readers:
        if wanted in names:
            names.insert(0, names.pop(names.index(wanted)))
    for index, (reader, path, names) in enumerate(readers):
        mesh = os.path.basename(path)[len("fields") : -len(".xdmf")].lstrip("_")
        view = first_view if index == 0 else simple.CreateView("RenderView")
        if index > 0:
            simple.AssignViewToLayout(view=view, layout=layout, hint=0)
        view.OrientationAxesVisibility = 0
        report["files"].append(os.path.basename(path))
        for position, name in enumerate(names):
            label = name if not mesh else f"{name} ({mesh})"
            item = pick(reader, name, label)
            association, components, bounds = describe(item, name, time)
            entry = {
                "file": os.path.basename(path),
                "association": association,
                "components": components,
                "range": bounds,
                "preset": None,
                "title": None,
                "shown": False,
            }
            report["fields"][label] = entry
            if position == 0:
                show(item, name, view, entry, units.get(name, ""))
                frame(view, item)
    scene.AnimationTime = time
    for view in simple.GetViews():
        view.ViewTime = time
    simple.SetActiveView(first_view)
    simple.Render()
    return report, layout


def _option(argv, flag):
    """The value after ``flag`` in ``argv``, or None."""
    if flag in argv[:-1]:
        return argv[argv.index(flag) + 1]
    return None


def main():
    """Set up the views; then save, report or hand over to the user, as asked."""
    argv = list(getattr(sys, "argv", []) or [])
    folder = run_folder()
    report, layout = build(folder, wanted=_option(argv, "--field"))
    screenshot = _option(argv, "--screenshot")
    batch = servermanager.vtkProcessModule.GetProcessType() == (
        servermanager.vtkProcessModule.PROCESS_BATCH
    )
    if batch and screenshot is None and "--report" not in argv:
        screenshot = os.path.join(folder, "view.png")
    if screenshot:
        width = 900 * len(report["files"])
        simple.SaveScreenshot(screenshot, layout, ImageResolution=[width, 600])
        report["screenshot"] = os.path.abspath(screenshot)
    if "--report" in argv:
        print(json.dumps(report), flush=True)
    # pvpython: keep the window open. (The GUI runs this with __name__ != "__main__".)
    interactive = __name__ == "__main__" and argv and argv[0] and not batch
    if interactive and screenshot is None and "--report" not in argv:
        simple.Interact(simple.GetActiveView())


main()
