"""``[output.plot]`` (app/run_plot.py): a run draws its chosen columns into its own folder; and
``make run``, the headline: the battery cycling case on a short cycle."""

import re
import subprocess

import matplotlib.image
import numpy as np
import pytest

from tests.conftest import CASES, ROOT, read_quantities, scalebridge

FIRST_LINE_COLOUR = np.array([0x1F, 0x77, 0xB4]) / 255  # matplotlib's C0


def line_pixels(png) -> int:
    """Pixels of the first line colour in a PNG (a blank or empty plot has none)."""
    rgb = matplotlib.image.imread(png)[..., :3]
    return int((np.abs(rgb - FIRST_LINE_COLOUR).max(axis=-1) < 0.02).sum())


@pytest.mark.slow
def test_make_run_draws_voltage_current_and_temperature_beside_the_fields(tmp_path):
    """`make run` runs cases/battery_cycling.toml on its short CC-CV cycle and leaves
    quantities.png (three panels: voltage, current, temperature) next to the ParaView files."""
    folder = tmp_path / "headline"
    stamp = ".venv/.scalebridge-installed"  # set up already: not remade by the test
    make = ["make", "-o", stamp, "run", f"HEADLINE_DIR={folder}"]
    process = subprocess.run(make, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    assert (folder / "quantities.png").is_file() and (folder / "fields_top.xdmf").is_file()
    assert line_pixels(folder / "quantities.png") > 1500  # three curves drawn
    q = read_quantities(folder)
    assert sorted(set(q["step"])) == [0, 1, 2, 3, 4]
    voltage, current = np.array(q["voltage_V"]), np.array(q["current_A"])
    assert current[0] == pytest.approx(5.0) and voltage.max() == pytest.approx(4.2, abs=1e-6)
    assert max(q["temperature_K"]) > q["temperature_K"][0] + 1  # the cell warms on the 1C steps


def test_plot_section_draws_only_its_columns(tmp_path):
    """A plot section of any case: one panel per chosen column, in the run folder; the
    snapshot of a chosen field beside it."""
    out = tmp_path / "plate"
    settings = ["time.end=120", "output.interval=60", 'output.plot.columns=["max_temperature_K"]']
    args = [a for s in settings for a in ("--set", s)]
    process = scalebridge("run", CASES / "heated_plate.toml", "-o", out, "-q", *args)
    assert process.returncode == 0, process.stderr
    assert sorted(p.name for p in out.glob("*.png")) == ["quantities.png"]
    assert line_pixels(out / "quantities.png") > 200


@pytest.mark.parametrize(
    "setting, message",
    [
        (
            'output.plot.columns=["max_temperatur_K"]',
            "output.plot.columns: unknown column 'max_temperatur_K' "
            "(did you mean 'max_temperature_K'?)",
        ),
        (
            'output.plot.fields=["temperatur"]',
            "output.plot.fields: unknown field written to a file 'temperatur' "
            "(did you mean 'temperature'?)",
        ),
    ],
)
def test_bad_plot_section_is_refused_before_the_run(tmp_path, setting, message):
    process = scalebridge("check", CASES / "heated_plate.toml", "--set", setting)
    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert message in re.sub(r"\s+", " ", process.stderr)
