"""Looking at results: ``scalebridge plot`` PNGs, field files per mesh, VTX and thinned output.

Pixel checks read the PNGs back: a blank or empty image has almost no pixels of the colour map
or of the line colours, which is what the tests count.
"""

import re
import shutil
from types import SimpleNamespace

import matplotlib.image
import numpy as np
import pytest
from matplotlib import colormaps

from app import plotting, run_reader
from app.cli import main
from tests.conftest import CASES, read_quantities, scalebridge

SHORT_PLATE = ["--set", "time.end=120", "--set", "output.interval=60"]
C0, C1 = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)  # matplotlib's first two line colours


@pytest.fixture(scope="module")
def plate_np2(tmp_path_factory):
    """The heated plate for 2 minutes on 2 ranks, with VTX output too."""
    out = tmp_path_factory.mktemp("plot") / "plate_np2"
    process = scalebridge(
        "run", CASES / "heated_plate.toml", "-o", out, "-q", *SHORT_PLATE,
        "--set", "output.vtx=true", ranks=2, timeout=180,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    return out


@pytest.fixture(scope="module")
def plate_weak_p2(tmp_path_factory):
    """The same on 1 rank with P2 temperature and half the heater power (VTX too)."""
    out = tmp_path_factory.mktemp("plot") / "plate_weak_p2"
    process = scalebridge(
        "run", CASES / "heated_plate.toml", "-o", out, "-q", *SHORT_PLATE,
        "--set", "output.vtx=true", "--set", "physics.heat.degree=2",
        "--set", "physics.heat.boundaries.heater.value=2e4", timeout=180,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    return out


def pixels(path) -> np.ndarray:
    """The RGB pixels of a PNG as an (n, 3) array of 0-255 integers."""
    image = matplotlib.image.imread(path)[..., :3]
    return (image * 255).round().astype(int).reshape(-1, 3)


def distinct(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct colours of ``rgb`` and, per pixel, the index of its colour among them."""
    codes, inverse = np.unique(rgb @ np.array([65536, 256, 1]), return_inverse=True)
    return np.stack([codes // 65536, codes // 256 % 256, codes % 256], axis=1), inverse


def near(rgb: np.ndarray, colours: np.ndarray, tolerance: float = 6.0) -> np.ndarray:
    """For each pixel, the index of the closest of ``colours`` within ``tolerance``, else -1."""
    unique, inverse = distinct(rgb)
    distance = np.linalg.norm(unique[:, None, :] - colours[None, :, :], axis=2)
    closest = np.where(distance.min(axis=1) < tolerance, distance.argmin(axis=1), -1)
    return closest[inverse.reshape(-1)]


def colour_map_pixels(path, name: str) -> tuple[float, int]:
    """Fraction of the image drawn in colour map ``name`` and how many of its 256 levels show."""
    levels = near(pixels(path), colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255)
    return float((levels >= 0).mean()), len(np.unique(levels[levels >= 0]))


def test_plot_heat_case_pngs_are_not_blank(plate_np2):
    """Default plot of a 2-rank heat run: quantity panels and a snapshot of each field."""
    process = scalebridge("plot", plate_np2)
    assert process.returncode == 0, process.stderr
    plots = plate_np2 / "plots"
    names = {path.name for path in plots.iterdir()}
    # 5 columns that change, on one page; both fields at the last time (120 s).
    assert names == {"quantities.png", "temperature_t120s.png", "heat_flux_t120s.png"}
    for name in names:
        assert name in process.stdout
        rgb = pixels(plots / name)
        assert rgb.mean(axis=1).std() > 20, name  # measured: 26-92 (of 255)
        assert len(distinct(rgb)[0]) > 300, name  # measured: 680-1000
    # The plate covers ~17% of the snapshot; the temperature spans most of Inferno.
    fraction, levels = colour_map_pixels(plots / "temperature_t120s.png", "inferno")
    assert fraction > 0.1 and levels > 150, (fraction, levels)  # measured: 0.155, 256
    fraction, levels = colour_map_pixels(plots / "heat_flux_t120s.png", "viridis")
    assert fraction > 0.1 and levels > 100, (fraction, levels)
    # Line plots: the curves are drawn in the first line colour.
    assert (near(pixels(plots / "quantities.png"), np.array([C0])) == 0).sum() > 1000


def test_default_columns_leave_out_flat_ones(plate_np2, tmp_path, capsys):
    """The plate's insulated sides and absent source give zero heat flows, and its heater
    delivers a constant 2 kW/m for these two minutes: by default only the columns that change
    are drawn, temperatures among them (the headline plot showed four flat zeros first)."""
    run = run_reader.open_run(plate_np2)
    assert plotting.quantity_columns([run], None) == [
        "heat_flow_right_W_per_m", "heat_flow_top_W_per_m", "stored_energy_J_per_m",
        "max_temperature_K", "min_temperature_K",
    ]  # fmt: skip
    assert main(["plot", str(plate_np2), "--fields", "none", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert (
        "left out (zero or constant in every run): heat_flow_left_W_per_m, "
        "heat_flow_bottom_W_per_m, heat_flow_heater_W_per_m, heat_generated_W_per_m"
    ) in printed
    assert f"wrote 1 PNG file to {tmp_path}:\n  quantities.png" in printed  # not "1 PNG files"
    # Asked for, a flat column is drawn; a steady run's single values are not flat.
    assert plotting.quantity_columns([run], ["heat_flow_left_W_per_m"]) == [
        "heat_flow_left_W_per_m"
    ]
    steady = SimpleNamespace(quantities={"time_s": np.zeros(1), "flow_W": np.array([2.0])})
    assert plotting.quantity_columns([steady], None) == ["flow_W"]
    # A column flat in one run but not in the other is drawn.
    other = SimpleNamespace(
        quantities={name: values * 0 + 1 for name, values in run.quantities.items()}
    )
    assert "heat_flow_left_W_per_m" not in plotting.quantity_columns([run, other], None)
    other.quantities["heat_flow_left_W_per_m"] = np.linspace(0, 1, 3)
    assert "heat_flow_left_W_per_m" in plotting.quantity_columns([run, other], None)


def test_colour_bars_carry_the_units(plate_np2, tmp_path, monkeypatch):
    """The run folder's fields.json gives each field's units; the snapshots' colour bars show
    them (as their titles, read from the plotter before it draws)."""
    assert run_reader.open_run(plate_np2).units == {"temperature": "K", "heat_flux": "W/m^2"}
    pv = run_reader.offscreen_pyvista()
    titles, screenshot = [], pv.Plotter.screenshot

    def record(plotter, *args, **kwargs):
        titles.extend(plotter.scalar_bars.keys())
        return screenshot(plotter, *args, **kwargs)

    monkeypatch.setattr(pv.Plotter, "screenshot", record)
    assert main(["plot", str(plate_np2), "--columns", "none", "--out", str(tmp_path)]) == 0
    assert titles == ["temperature [K]", "heat_flux [W/m^2] (magnitude)"]


def test_snapshot_holds_the_written_values(plate_np2):
    """What the snapshots draw: the whole mesh and the field's values at each output time."""
    run = run_reader.open_run(plate_np2)
    assert set(run.fields) == {"temperature", "heat_flux"}
    series = run.fields["temperature"]
    assert series.times == [0.0, 60.0, 120.0]
    quantities = read_quantities(plate_np2)
    for index in range(3):
        data = run_reader.read_snapshot(series, index)
        assert (data.n_points, data.n_cells) == (41 * 21, 2 * 40 * 20)
        values = np.asarray(data.point_data["temperature"])
        assert values.min() == pytest.approx(quantities["min_temperature_K"][index], rel=1e-11)
        assert values.max() == pytest.approx(quantities["max_temperature_K"][index], rel=1e-11)
    flux = run_reader.read_snapshot(run.fields["heat_flux"], -1).cell_data["heat_flux"]
    assert flux.shape == (1600, 3) and np.abs(flux[:, 2]).max() == 0
    assert np.linalg.norm(flux, axis=1).max() > 1e4  # 40 kW/m^2 enters under the heater


def test_two_runs_overlaid(plate_np2, plate_weak_p2, tmp_path):
    """One line per run, in two colours, with the run names in the legend."""
    out = tmp_path / "compare"
    code = main(["plot", str(plate_np2), str(plate_weak_p2), "--columns",
                 "max_temperature_K", "--fields", "none", "--out", str(out)])  # fmt: skip
    assert code == 0
    assert [path.name for path in out.iterdir()] == ["quantities.png"]
    lines = near(pixels(out / "quantities.png"), np.array([C0, C1]))
    # Half the heater power: a visibly lower curve, so neither line hides the other.
    assert (lines == 0).sum() > 300 and (lines == 1).sum() > 300  # measured: 717, 715


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--columns", "max_temp"], "--columns: unknown column 'max_temp' (did you mean "
                                    "'max_temperature_K'?)"),
        (["--fields", "temprature"], "--fields: unknown field 'temprature' (did you mean "
                                     "'temperature'?)"),
        (["--times", "3 h"], "--times: t = 10800 s is outside the times 'temperature' was "
                             "written at (0 to 120 s)"),
        (["--times", "2 kg"], "--times: '2 kg' has units of kg but s was expected"),
        (["--times", "nan"], "--times: expected a finite number in s, got nan"),
    ],
)  # fmt: skip
def test_plot_bad_input(plate_np2, tmp_path, capsys, arguments, message):
    code = main(["plot", str(plate_np2), "--out", str(tmp_path / "p"), *arguments])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("scalebridge: error: ") and message in err
    assert not (tmp_path / "p").exists()  # checked before anything is drawn


def test_plot_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "not a ScaleBridge run folder (no provenance.json)" in capsys.readouterr().err


@pytest.mark.parametrize("ranks", [1, 2])
def test_a_field_file_cut_short_is_one_message(plate_np2, tmp_path, ranks):
    """fields.h5 cut to 500 bytes (a copy that ran out of room): the plot names the file and
    what the HDF5 library said, exit code 2, without VTK's screenfuls on stderr; it was an
    internal error (exit 70)."""
    run = tmp_path / "run"
    shutil.copytree(plate_np2, run)
    with (run / "fields.h5").open("r+b") as stream:
        stream.truncate(500)
    process = scalebridge("plot", run, "--columns", "none", ranks=ranks)
    assert process.returncode == 2, process.stderr[-3000:]
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, process.stderr[-3000:]
    assert (
        f"{run / 'fields.xdmf'}: cannot read 'temperature' at t = 120 s from its HDF5 "
        in (lines[0])
    )
    assert "(truncated file: eof = 500, " in lines[0]
    assert "Fix: the file is damaged or incomplete" in lines[0]


def bp_arrays(folder) -> tuple[set[str], int]:
    """The data arrays a VTX folder declares (its embedded vtk.xml) and its number of steps."""
    metadata = (folder / "md.0").read_bytes().decode("latin-1")
    names = set(re.findall(r'<DataArray Name="([^"]+)"', metadata))
    # BP4's md.idx: a 64-byte header, then one 64-byte record per step.
    steps = ((folder / "md.idx").stat().st_size - 64) // 64
    return names - {"TIME", "connectivity", "geometry", "types", "vtkGhostType",
                    "vtkOriginalPointIds"}, steps  # fmt: skip


@pytest.mark.parametrize(("fixture", "flux"), [("plate_np2", "DG0"), ("plate_weak_p2", "DG1")])
def test_vtx_files_per_element_type(fixture, flux, request):
    """VTX beside XDMF, on 2 ranks (P1) and 1 rank (P2 kept at degree 2): the temperature in
    fields.bp, the flux (DG0 for P1, DG1 for P2) in fields_DG<k>.bp, every output in each."""
    run = request.getfixturevalue(fixture)
    assert {p.name for p in run.glob("*.bp")} == {"fields.bp", f"fields_{flux}.bp"}
    assert bp_arrays(run / "fields.bp") == ({"temperature"}, 3)
    assert bp_arrays(run / f"fields_{flux}.bp") == ({"heat_flux"}, 3)
    p1 = (run / "fields.bp" / "data.0").stat().st_size
    assert p1 > 3 * 861 * 8  # at least three steps of values at the 861 vertices


def test_p2_vtx_is_written_at_degree_two(plate_np2, plate_weak_p2):
    """P2 on the same mesh has 3281 nodes against P1's 861: the VTX data grows accordingly,
    while the XDMF (interpolated to the mesh's degree) does not."""
    ratio = (plate_weak_p2 / "fields.bp" / "data.0").stat().st_size / (
        plate_np2 / "fields.bp" / "data.0"
    ).stat().st_size
    assert ratio > 2.5, ratio
    p2 = run_reader.open_run(plate_weak_p2).fields["temperature"]
    assert run_reader.read_snapshot(p2, -1).n_points == 861


def test_every_cycle_thins_field_output(tmp_path):
    """heat_cycling with every_cycle = 2: fields in cycles 0 and 2 (the initial state is the
    first row of cycle 0), quantities.csv at every step of all three cycles."""
    out = tmp_path / "cycling"
    process = scalebridge(
        "run", CASES / "heat_cycling.toml", "-o", out, "-q", "--set", "output.every_cycle=2"
    )
    assert process.returncode == 0, process.stderr
    cycles = np.array(read_quantities(out)["cycle"])
    assert set(cycles) == {0, 1, 2}
    written = run_reader.open_run(out).fields["temperature"].times
    times = np.array(read_quantities(out)["time_s"])
    kept = times[np.isin(cycles, [0, 2])]
    assert len(written) == len(kept) < len(times)  # measured: 135 of 199
    assert written == pytest.approx(list(kept))
    assert "view.py" in {path.name for path in out.iterdir()}


def test_fields_on_a_submesh_get_their_own_files(tmp_path):
    """A field on a submesh (built by hand) goes to fields_<mesh.name>.xdmf/.bp, the parent's
    fields to fields.xdmf; plot reads each on its own mesh."""
    from dolfinx import fem, mesh
    from mpi4py import MPI

    from app.output import FieldOutput, FieldWriter

    parent = mesh.create_unit_square(MPI.COMM_SELF, 8, 4)
    parent.name = "mesh"
    dim = parent.topology.dim
    left = mesh.locate_entities(parent, dim, lambda x: x[0] <= 0.5 + 1e-12)
    region = mesh.create_submesh(parent, dim, left)[0]
    region.name = "left"
    u = fem.Function(fem.functionspace(parent, ("Lagrange", 1)), name="u")
    c = fem.Function(fem.functionspace(region, ("Lagrange", 2)), name="c")
    mesh_data = SimpleNamespace(mesh=parent, regions={"all": 1}, cell_tags=None)
    writer = FieldWriter(tmp_path, mesh_data, [u, c], FieldOutput(vtx=True))
    for t in (0.0, 1.0):
        u.interpolate(lambda x, t=t: x[0] + t)
        c.interpolate(lambda x, t=t: (x[1] - 0.5) * (1 + t))
        writer.write(t)
    writer.close()
    names = {path.name for path in tmp_path.iterdir()}
    assert {"fields.xdmf", "fields_left.xdmf", "fields.bp", "fields_left.bp"} <= names
    assert "view.py" in names
    files = {s.name: s for path in tmp_path.glob("*.xdmf") for s in run_reader._index_xdmf(path)}
    assert files["u"].file.name == "fields.xdmf" and files["c"].file.name == "fields_left.xdmf"
    data = run_reader.read_snapshot(files["c"], -1)
    assert data.n_cells == len(left) == 32  # the left half of 8 x 4 x 2 triangles
    values = np.asarray(data.point_data["c"])
    assert values.min() == pytest.approx(-1.0) and values.max() == pytest.approx(1.0)
    assert bp_arrays(tmp_path / "fields_left.bp") == ({"c"}, 2)
    # The snapshot of a signed field is drawn with Cool to Warm, centred on zero.
    colours, (low, high) = plotting.colour_map("c", values)
    assert colours == "coolwarm" and low == -high == pytest.approx(-1.0)


def test_discontinuous_fields_are_written_alike_on_any_partition(plate_weak_p2, tmp_path):
    """The P2 plate's heat flux (DG1) goes to XDMF as its lumped projection onto P1: the same
    nodal values on 2 ranks as on 1 (interpolation took a shared node's value from whichever
    cell came last)."""
    out = tmp_path / "np2"
    process = scalebridge(
        "run", CASES / "heated_plate.toml", "-o", out, "-q", *SHORT_PLATE,
        "--set", "physics.heat.degree=2", "--set", "physics.heat.boundaries.heater.value=2e4",
        ranks=2, timeout=180,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    nodal = []
    for run in (plate_weak_p2, out):
        data = run_reader.read_snapshot(run_reader.open_run(run).fields["heat_flux"], -1)
        points = np.round(np.asarray(data.points), 9)
        order = np.lexsort(points.T[::-1])
        nodal.append(np.asarray(data.point_data["heat_flux"])[order])
    serial, parallel = nodal
    scale = np.abs(serial).max()
    assert scale > 0 and np.abs(serial - parallel).max() < 1e-10 * scale
