"""Field files: the same nodal values on any partition at any geometry order, and tensors of 2D
meshes in the 3x3 layout ParaView reads (XX, XY, XZ, YX, YY, ...), in XDMF and in VTX.

ParaView itself reads these files in tests/test_paraview.py.
"""

from types import SimpleNamespace

import numpy as np
import pytest
from dolfinx import fem, mesh
from mpi4py import MPI

from app import run_reader
from app.output import FieldOutput, FieldWriter, _OutputCopy
from app.simulation import Simulation
from tests.conftest import CASES, scalebridge


def nodal_values(run, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A field's values at the last output time, one row per node, sorted by coordinates."""
    data = run_reader.read_snapshot(run_reader.open_run(run).fields[name], -1)
    points = np.round(np.asarray(data.points), 12)
    order = np.lexsort(points.T[::-1])
    return points[order], np.asarray(data.point_data[name])[order]


@pytest.mark.mpi
def test_thick_cylinder_fields_equal_on_one_and_two_ranks(tmp_path):
    """Order-2 mesh, P2 displacement: the DG1 stress (and von Mises stress) at every one of the
    1249 nodes, gathered by coordinates, agree to 1e-10 of the peak (were 1.5 % apart)."""
    runs = []
    for ranks in (1, 2):
        out = tmp_path / f"np{ranks}"
        process = scalebridge("run", CASES / "thick_cylinder.toml", "-o", out, "-q", ranks=ranks)
        assert process.returncode == 0, process.stderr
        runs.append(out)
    for name in ("stress", "von_mises", "displacement"):
        (points, serial), (points_np2, parallel) = (nodal_values(run, name) for run in runs)
        assert np.array_equal(points, points_np2)
        assert len(points) == 1249
        peak = np.abs(serial).max()
        assert peak > 0
        assert np.abs(serial - parallel).max() <= 1e-10 * peak, name  # measured: 7e-14


def unit_square(cells: int = 4) -> mesh.Mesh:
    return mesh.create_unit_square(MPI.COMM_SELF, cells, cells)


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_averaging_keeps_a_field_the_nodes_agree_on(degree):
    """A continuous field held in DG_k (every cell has the same value at a shared node) comes
    out exactly at the P_k nodes, at any degree: the average of equal values."""
    msh = unit_square()
    source = fem.Function(fem.functionspace(msh, ("Discontinuous Lagrange", degree)))
    exact = lambda x: x[0] ** degree - 2 * x[0] * x[1] + x[1] ** 2 / 3  # noqa: E731
    source.interpolate(exact)
    copy = _OutputCopy(source, fem.functionspace(msh, ("Lagrange", degree)))
    copy.update()
    expected = fem.Function(copy.function.function_space)
    expected.interpolate(exact)
    assert np.abs(copy.function.x.array - expected.x.array).max() < 1e-13


def test_averaging_weights_the_cells_by_volume():
    """A cellwise constant written at the vertices: each vertex gets the volume-weighted mean of
    its cells' values. On a mesh of cells of two sizes, every vertex against the mean built from
    the connectivity; for the centroid's x on the uniform part this is x itself at interior
    vertices (the six centroids around one average to it)."""
    msh = unit_square()
    x = msh.geometry.x
    x[:, 0] = np.where(x[:, 0] > 0.5, 0.5 + 2 * (x[:, 0] - 0.5), x[:, 0])  # right half: wider
    source = fem.Function(fem.functionspace(msh, ("Discontinuous Lagrange", 0)))
    source.interpolate(lambda x: x[0])  # the centroid's x in each cell
    copy = _OutputCopy(source, fem.functionspace(msh, ("Lagrange", 1)))
    copy.update()

    cells = msh.geometry.dofmaps[0]
    corners = x[cells]
    edges = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    areas = 0.5 * np.abs(edges[:, 2])
    centroids = corners[:, :, 0].mean(axis=1)
    dofs = copy.function.function_space.dofmap.list
    weighted, weights = np.zeros(len(x)), np.zeros(len(x))
    np.add.at(weighted, dofs, (areas * centroids)[:, None] * np.ones(3))
    np.add.at(weights, dofs, areas[:, None] * np.ones(3))
    assert len(set(np.round(areas, 12))) == 2
    assert np.abs(copy.function.x.array - weighted / weights).max() < 1e-14

    nodes = copy.function.function_space.tabulate_dof_coordinates()
    uniform = (nodes[:, 0] > 1e-9) & (nodes[:, 0] < 0.5 - 1e-9)
    uniform &= (nodes[:, 1] > 1e-9) & (nodes[:, 1] < 1 - 1e-9)
    assert uniform.sum() == 3
    assert np.abs(copy.function.x.array[uniform] - nodes[uniform, 0]).max() < 1e-14


def tensor_fields(msh: mesh.Mesh) -> list[fem.Function]:
    """A cellwise and a nodal 2x2 tensor with distinct components (xx, xy, yx, yy)."""
    cellwise = fem.Function(fem.functionspace(msh, ("Discontinuous Lagrange", 0, (2, 2))), name="s")
    cellwise.interpolate(lambda x: np.vstack([1 + 0 * x[0], 2 + 0 * x[0], 3 + 0 * x[0], 4 + x[0]]))
    nodal = fem.Function(fem.functionspace(msh, ("Lagrange", 1, (2, 2))), name="e")
    nodal.interpolate(lambda x: np.vstack([5 + x[0], 6 + 0 * x[0], 7 + 0 * x[0], 8 + x[1]]))
    velocity = fem.Function(fem.functionspace(msh, ("Lagrange", 1, (2,))), name="v")
    velocity.interpolate(lambda x: np.vstack([9 + x[0], 10 + x[1]]))
    return [cellwise, nodal, velocity]


def write_once(folder, functions, vtx: bool = False) -> None:
    msh = functions[0].function_space.mesh
    mesh_data = SimpleNamespace(mesh=msh, regions={"all": 1}, cell_tags=None)
    writer = FieldWriter(folder, mesh_data, functions, FieldOutput(vtx=vtx))
    writer.write(0.0)
    writer.close()


def test_2d_tensors_are_written_as_3x3_in_xdmf(tmp_path):
    """[xx, xy, 0, yx, yy, 0, 0, 0, 0] (DOLFINx alone wrote [xx, xy, yx, yy, 0, ...]), read
    back as plot reads it; a 2D vector as [x, y, 0]."""
    msh = unit_square()
    write_once(tmp_path, tensor_fields(msh))
    run = {s.name: s for s in run_reader._index_xdmf(tmp_path / "fields.xdmf")}
    cellwise = run_reader.read_snapshot(run["s"], 0).cell_data["s"]
    assert cellwise.shape == (32, 9)
    x_mid = cellwise[:, 4] - 4  # yy = 4 + x at the centroid
    assert np.abs(cellwise - np.outer(np.ones(32), [1, 2, 0, 3, 4, 0, 0, 0, 0])
                  - np.outer(x_mid, [0, 0, 0, 0, 1, 0, 0, 0, 0])).max() < 1e-14  # fmt: skip
    assert x_mid.min() > 0 and x_mid.max() < 1
    data = run_reader.read_snapshot(run["e"], 0)
    points, nodal = np.asarray(data.points), np.asarray(data.point_data["e"])
    expected = np.zeros((len(points), 9))
    expected[:, [0, 1, 3, 4]] = np.column_stack(
        [5 + points[:, 0], 6 + 0 * points[:, 0], 7 + 0 * points[:, 0], 8 + points[:, 1]]
    )
    assert np.abs(nodal - expected).max() < 1e-14
    velocity = run_reader.read_snapshot(run["v"], 0).point_data["v"]
    assert velocity.shape == (25, 3) and np.abs(velocity[:, 2]).max() == 0


def float_rows(path, width: int) -> np.ndarray:
    """Every run of ``width`` consecutive float64 values in a binary file, at any byte offset."""
    raw = path.read_bytes()
    rows = []
    for offset in range(8):
        usable = (len(raw) - offset) // 8 * 8
        values = np.frombuffer(raw[offset : offset + usable], dtype="<f8")
        windows = np.lib.stride_tricks.sliding_window_view(values, width)
        rows.append(windows)
    return np.concatenate(rows)


def test_2d_tensors_are_written_as_3x3_in_vtx(tmp_path):
    """VTX's data holds each node's (or cell's) tensor as [xx, xy, 0, yx, yy, 0, 0, 0, 0]."""
    msh = unit_square(1)  # 2 cells, 4 vertices: few values to find in the binary data
    write_once(tmp_path, tensor_fields(msh), vtx=True)
    # The first element type (the cellwise s) goes to fields.bp, the nodal e and v to _P1.
    assert {p.name for p in tmp_path.glob("*.bp")} == {"fields.bp", "fields_P1.bp"}
    nodal = float_rows(tmp_path / "fields_P1.bp" / "data.0", 9)
    for x, y in [(0, 0), (1, 0), (0, 1), (1, 1)]:
        row = [5 + x, 6, 0, 7, 8 + y, 0, 0, 0, 0]
        assert (nodal == row).all(axis=1).any(), row
    cellwise = float_rows(tmp_path / "fields.bp" / "data.0", 9)
    found = cellwise[(cellwise[:, :4] == [1, 2, 0, 3]).all(axis=1)]
    assert len(found) == 2  # the two cells, yy = 4 + x at their centroids
    assert np.allclose(found[:, 5:], 0) and np.allclose(sorted(found[:, 4]), [4 + 1 / 3, 4 + 2 / 3])


def test_cellwise_constants_are_written_without_a_copy(tmp_path, monkeypatch):
    """A DG0 vector (a heat flux) is written as it is, read back cell for cell, with no
    interpolation into an output copy at each write."""
    msh = mesh.create_unit_cube(MPI.COMM_SELF, 2, 2, 2)
    flux = fem.Function(fem.functionspace(msh, ("Discontinuous Lagrange", 0, (3,))), name="q")
    flux.interpolate(lambda x: np.vstack([x[0], 2 * x[1], 3 + x[2]]))
    interpolations = []
    interpolate = fem.Function.interpolate
    monkeypatch.setattr(
        fem.Function,
        "interpolate",
        lambda f, *a, **k: interpolations.append(f) or interpolate(f, *a, **k),
    )
    write_once(tmp_path, [flux])
    assert interpolations == []
    (series,) = run_reader._index_xdmf(tmp_path / "fields.xdmf")
    written = run_reader.read_snapshot(series, 0).cell_data["q"]
    assert written.shape == (48, 3)
    np.testing.assert_array_equal(
        np.sort(written, axis=0), np.sort(flux.x.array.reshape(-1, 3), axis=0)
    )


@pytest.mark.parametrize("files", [{"xdmf": True}, {"xdmf": False, "vtx": True}])
def test_derived_fields_written_to_any_field_file_are_current_at_each_output(tmp_path, files):
    # a heated bar: the flux -k dT/dx grows from 0 as it heats; VTX alone once wrote the value
    # the field had when it was last refreshed (never, with no quantity reading it)
    case = {
        "mesh": {"type": "interval", "length": [1.0], "cells": [8]},
        "physics": {
            "heat": {
                "source": 1000.0,
                "initial": 0.0,
                "boundaries": {"left": {"type": "temperature", "value": 0.0}},
            }
        },
        "time": {"scheme": "bdf1", "end": 2.0, "dt": 1.0},
        "output": {"interval": 1.0, **files},
    }
    sim = Simulation.from_case(case)
    seen = []

    def compare(t):
        flux = sim.store["heat_flux"]
        written = flux.function.x.array.copy()
        flux.refresh()
        seen.append((np.abs(written - flux.function.x.array).max(), np.abs(written).max()))

    sim.output_observers.append(compare)
    sim.run(tmp_path / "run")
    assert [difference for difference, _ in seen] == [0.0, 0.0, 0.0]
    assert seen[-1][1] > 0  # the flux was there to be written
