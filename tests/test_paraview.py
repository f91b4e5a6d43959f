"""ParaView reads the XDMF a run writes: mesh size, time steps and field values all come through.

The probe (tests/paraview_probe.py) runs under ``pvbatch``, ParaView's own Python, in a virtual
X server, so this needs the Debian packages ``paraview`` and ``xvfb``; without them it skips.
"""

import json
import os
import subprocess
import tomllib
from pathlib import Path

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


def _streams(process) -> str:
    """A process's (or a timed-out process's) stdout and stderr, labelled."""
    return f"stdout:\n{process.stdout}\nstderr:\n{process.stderr}"


def _run_probe(xdmf: Path) -> tuple[dict, str]:
    """Run the probe on ``xdmf``; returns its JSON report and its output for failure messages."""
    # Absolute path: ParaView's Xdmf3 reader mis-resolves the HDF5 file for bare file names.
    command = ["xvfb-run", "-a", "pvbatch", str(PROBE), str(xdmf.resolve())]
    try:
        process = subprocess.run(
            command, capture_output=True, text=True, timeout=120, env=_probe_env()
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"probe timed out after 120 s\n{_streams(error)}")
    output = f"probe exit code {process.returncode}\n{_streams(process)}"
    # ParaView may log to stdout as well, so take the last line that looks like our JSON.
    lines = [line for line in process.stdout.splitlines() if line.startswith("{")]
    assert process.returncode == 0 and lines, output
    return json.loads(lines[-1]), output


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
