"""ParaView reads the XDMF a run writes: mesh size, time steps and field values all come through;
the run folder's ``view.py`` opens it headless with the expected arrays and colour maps.

The probe (tests/paraview_probe.py) and view.py run under ``pvbatch``, ParaView's own Python, in
a virtual X server, so this needs the Debian packages ``paraview`` and ``xvfb``; without them
these tests skip.
"""

import json
import os
import random
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import CASES, ROOT, have_pvbatch, read_quantities, scalebridge

PROBE = ROOT / "tests" / "paraview_probe.py"
CASE = CASES / "heated_plate.toml"
END, INTERVAL = 120.0, 60.0

# Evaluated once at import so the reason (which tool is missing) shows in `pytest -ra`.
_NO_PARAVIEW = have_pvbatch()


def _probe_env() -> dict[str, str]:
    """The environment for pvbatch, without the venv's Python settings.

    pvbatch embeds the system Python; a PYTHONPATH or PYTHONHOME pointing into our venv could
    make it pick up packages built for the venv's Python instead of its own.
    """
    dropped = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    return {key: value for key, value in os.environ.items() if key not in dropped}


def _xvfb() -> list[str]:
    """``xvfb-run -a`` from a random display number, with a server that does not reset.

    From the default :99, back-to-back or concurrent runs can hand pvbatch a server that is
    shutting down. And an X server resets when its last client disconnects, so a window opened
    after pvbatch closed its first connection (a second view) met a server in reset: "bad X
    server connection", about one run in ten under load. ``-noreset`` keeps it up; 24-bit
    colour is what OpenGL wants (xvfb-run's default screen is 8-bit).
    """
    server = "-screen 0 1280x1024x24 -noreset -nolisten tcp"
    return ["xvfb-run", "-a", "-n", str(random.randint(100, 30000)), "-s", server]


def _streams(process) -> str:
    """A process's (or a timed-out process's) stdout and stderr, labelled."""
    return f"stdout:\n{process.stdout}\nstderr:\n{process.stderr}"


def _pvbatch(label: str, script: Path, *args: str, cwd: Path | None = None) -> tuple[dict, str]:
    """Run ``script`` under headless pvbatch; returns the JSON report it prints last and its
    output for failure messages."""
    command = [*_xvfb(), "pvbatch", str(script), *args]
    try:
        process = subprocess.run(
            command, capture_output=True, text=True, timeout=120, env=_probe_env(), cwd=cwd
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{label} timed out after 120 s\n{_streams(error)}")
    output = f"{label} exit code {process.returncode}\n{_streams(process)}"
    # ParaView may log to stdout as well, so take the last line that looks like our JSON.
    lines = [line for line in process.stdout.splitlines() if line.startswith("{")]
    assert process.returncode == 0 and lines, output
    return json.loads(lines[-1]), output


def _run_probe(xdmf: Path) -> tuple[dict, str]:
    """Run the probe on ``xdmf``."""
    # Absolute path: ParaView's Xdmf3 reader mis-resolves the HDF5 file for bare file names.
    return _pvbatch("probe", PROBE, str(xdmf.resolve()))


def _array(report: dict, kind: str, name: str) -> dict:
    """The probe's entry for the ``kind`` ("point" or "cell") array called ``name``."""
    for entry in report[f"{kind}_arrays"]:
        if entry["name"] == name:
            return entry
    raise KeyError(name)


@pytest.mark.skipif(_NO_PARAVIEW is not None, reason=_NO_PARAVIEW or "")
def test_paraview_reads_heated_plate_fields(tmp_path):
    """A short heated-plate run opens in ParaView with the right mesh, times and values."""
    run_dir = tmp_path / "plate"
    process = scalebridge(
        "run",
        CASE,
        "-o",
        run_dir,
        "--set",
        f"time.end={END:g}",
        "--set",
        f"output.interval={INTERVAL:g}",
        "-q",
        cwd=tmp_path,
        timeout=120,
    )
    assert process.returncode == 0, process.stdout + process.stderr

    report, output = _run_probe(run_dir / "fields.xdmf")

    # The case meshes a rectangle into nx x ny squares, each split into two triangles.
    with CASE.open("rb") as stream:
        nx, ny = tomllib.load(stream)["mesh"]["cells"]
    assert report["number_of_points"] == (nx + 1) * (ny + 1), output
    assert report["number_of_cells"] == 2 * nx * ny, output

    steps = round(END / INTERVAL)
    assert report["time_values"] == pytest.approx([k * INTERVAL for k in range(steps + 1)]), output
    assert report["data_time"] == pytest.approx(END), output

    # ParaView reads the values as float32 (the XDMF gives no Precision, and Xdmf's default is
    # 4 bytes), which is still well inside 1e-6 relative.
    quantities = read_quantities(run_dir)
    temperature = _array(report, "point", "temperature")
    assert temperature["components"] == 1, output
    assert temperature["range"] == pytest.approx(
        [quantities["min_temperature_K"][-1], quantities["max_temperature_K"][-1]], rel=1e-6
    ), output

    # DOLFINx pads 2D vectors to 3 components in XDMF; accept either layout.
    heat_flux = _array(report, "cell", "heat_flux")
    assert heat_flux["components"] >= 2, output
    assert heat_flux["magnitude_range"][1] > 0, output


def _run_view(script: Path, cwd: Path, *args: str) -> tuple[dict, str]:
    """Run a run folder's view.py under pvbatch with ``args``; returns its --report JSON."""
    return _pvbatch("view.py", script, *args, "--report", cwd=cwd)


@pytest.mark.skipif(_NO_PARAVIEW is not None, reason=_NO_PARAVIEW or "")
def test_view_script_shows_the_run_headless(tmp_path):
    """view.py opens a run folder even after it was moved, colours the temperature with
    Inferno at the last time and renders a screenshot that is not blank."""
    from tests.test_plot import colour_map_pixels, distinct, pixels

    written = tmp_path / "plate"
    process = scalebridge(
        "run", CASE, "-o", written, "-q", "--set", f"time.end={END:g}",
        "--set", f"output.interval={INTERVAL:g}", cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert process.returncode == 0, process.stdout + process.stderr
    moved = tmp_path / "elsewhere" / "plate"  # the script finds its files next to itself
    moved.parent.mkdir()
    written.rename(moved)
    shot = tmp_path / "shot.png"
    report, output = _run_view(moved / "view.py", tmp_path, "--screenshot", str(shot))

    assert report["files"] == ["fields.xdmf"], output
    assert report["time"] == pytest.approx(END), output
    fields = report["fields"]
    assert set(fields) == {"temperature", "heat_flux"}, output
    temperature, flux = fields["temperature"], fields["heat_flux"]
    assert (temperature["association"], temperature["components"]) == ("POINTS", 1), output
    assert temperature["preset"] == "Inferno (matplotlib)" and temperature["shown"], output
    assert temperature["title"] == "temperature [K]", output  # units from fields.json
    quantities = read_quantities(moved)
    expected = [quantities["min_temperature_K"][-1], quantities["max_temperature_K"][-1]]
    assert temperature["range"] == pytest.approx(expected, rel=1e-6), output  # float32
    assert (flux["association"], flux["components"], flux["shown"]) == ("CELLS", 3, False)
    assert flux["range"][1] > 1e4, output  # magnitude; 40 kW/m^2 enter under the heater

    rgb = pixels(shot)
    assert len(rgb) == 900 * 600
    assert rgb.mean(axis=1).std() > 20  # measured: 40.7 (of 255)
    assert len(distinct(rgb)[0]) > 500  # measured: 1581
    fraction, levels = colour_map_pixels(shot, "inferno")
    assert fraction > 0.15 and levels > 200, (fraction, levels)  # measured: 0.236, 256


@pytest.mark.skipif(_NO_PARAVIEW is not None, reason=_NO_PARAVIEW or "")
def test_view_script_opens_each_mesh_in_its_own_view(tmp_path):
    """A run with a field on a region (matrix_uptake): fields.xdmf and fields_matrix.xdmf
    side by side, each coloured by its first field, B with the range in quantities.csv."""
    run = tmp_path / "uptake"
    process = scalebridge("run", CASES / "matrix_uptake.toml", "-o", run, "-q", timeout=120)
    assert process.returncode == 0, process.stdout + process.stderr
    report, output = _run_view(run / "view.py", tmp_path)
    assert report["files"] == ["fields.xdmf", "fields_matrix.xdmf"], output
    fields = report["fields"]
    assert set(fields) == {"A", "A_flux", "B (matrix)", "B_flux (matrix)"}, output
    assert [name for name, entry in fields.items() if entry["shown"]] == ["A", "B (matrix)"]
    quantities = read_quantities(run)
    expected = [quantities[f"transport_{kind}_B_mol_per_m3"][-1] for kind in ("min", "max")]
    assert fields["B (matrix)"]["range"] == pytest.approx(expected, rel=1e-6), output
    assert fields["B (matrix)"]["file"] == "fields_matrix.xdmf", output


PULLED_PLATE = """
title = "A plate pulled along y (plane stress): sigma_yy = 3 MPa, every other component 0"
[mesh]
type = "rectangle"
length = [1.0, 2.0]
cells = [4, 8]
[physics.mechanics]
formulation = "plane_stress"
youngs_modulus = 1e9
poisson_ratio = 0.25
boundaries.left = { type = "displacement", x = 0 }
boundaries.bottom = { type = "displacement", y = 0 }
boundaries.top = { type = "traction", value = [0, "3 MPa"] }
"""


@pytest.mark.skipif(_NO_PARAVIEW is not None, reason=_NO_PARAVIEW or "")
def test_paraview_reads_2d_tensors_and_vectors_in_its_layout(tmp_path):
    """ParaView reads 9 components as XX, XY, XZ, YX, YY, YZ, ZX, ZY, ZZ: the pulled plate's
    stress shows sigma_yy as YY (component 4; DOLFINx's own padding put it in YX, and YY read
    0), and its displacement as X, Y and a zero Z."""
    case = tmp_path / "pulled.toml"
    case.write_text(PULLED_PLATE)
    run = tmp_path / "pulled"
    process = scalebridge("run", case, "-o", run, "-q", cwd=tmp_path, timeout=120)
    assert process.returncode == 0, process.stdout + process.stderr
    report, output = _run_probe(run / "fields.xdmf")

    stress = _array(report, "cell", "stress")
    assert stress["components"] == 9, output
    yy = 3e6
    assert stress["range"][4] == pytest.approx([yy, yy], rel=1e-6), output
    for component in (0, 1, 2, 3, 5, 6, 7, 8):
        assert np.abs(stress["range"][component]).max() < 1e-6 * yy, (component, output)
    displacement = _array(report, "point", "displacement")
    assert displacement["components"] == 3, output
    strain = yy / 1e9  # u_y = strain y, u_x = -nu strain x
    assert displacement["range"][0] == pytest.approx([-0.25 * strain, 0], abs=1e-6 * strain)
    assert displacement["range"][1] == pytest.approx([0, 2 * strain], abs=1e-6 * strain)
    assert displacement["range"][2] == [0, 0], output

    # view.py colours by the stress's magnitude (that of the 3x3 tensor), titled with its units.
    report, output = _run_view(run / "view.py", tmp_path, "--field", "stress")
    entry = report["fields"]["stress"]
    assert (entry["association"], entry["components"], entry["shown"]) == ("CELLS", 9, True)
    assert entry["title"] == "stress [Pa] (magnitude)", output
    assert entry["range"] == pytest.approx([yy, yy], rel=1e-6), output
