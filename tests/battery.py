"""Discharges of cases/battery_discharge.toml compared with the PyBaMM references in tests/data.

Used by tests/test_battery.py, and on its own for the full-size figures::

    .venv/bin/python -m tests.battery Chen2020_DFN_1C [--set KEY=VALUE ...]

prints the capacity and voltage differences from PyBaMM's run of the same name.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from tests.conftest import CASES, ROOT, read_quantities, scalebridge

CASE = CASES / "battery_discharge.toml"
DATA = ROOT / "tests" / "data"
#: reference name -> the case settings of the same discharge
DISCHARGES = {
    "Chen2020_DFN_0.5C": ['protocol.steps=["Discharge at 0.5C until 2.5 V"]'],
    "Chen2020_DFN_1C": [],
    "Chen2020_DFN_2C": ['protocol.steps=["Discharge at 2C until 2.5 V"]'],
    "Marquis2019_DFN_1C": [
        "parameters.set=Marquis2019",
        'protocol.steps=["Discharge at 1C until 3.105 V"]',
    ],
}
#: a mesh small enough for the test suite (the case's default is 20 + 20 + 20 by 10)
SMALL_MESH = [
    'mesh.layers=[{ name = "negative", thickness = "L_n", cells = 8 },'
    ' { name = "separator", thickness = "L_s", cells = 4 },'
    ' { name = "positive", thickness = "L_p", cells = 8 }]',
    "mesh.radial_cells=6",
]


def every_step(folder: Path) -> Path:
    """The case with a quantities row at every step (its output interval removed), no fields."""
    text = CASE.read_text().replace('interval = "1 min"\n', "")
    assert text != CASE.read_text(), "the case's output interval moved: update tests/battery.py"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "battery_every_step.toml"
    path.write_text(text.replace("[output]\n", "[output]\nxdmf = false\n", 1))
    return path


def discharge(folder: Path, *settings: str, ranks: int = 1) -> dict[str, np.ndarray]:
    """quantities.csv of the case run with ``settings`` (``--set`` values), as arrays."""
    out = folder / "run"
    args = [a for setting in settings for a in ("--set", setting)]
    run = scalebridge("run", every_step(folder), *args, "-o", out, "-q", ranks=ranks)
    assert run.returncode == 0, run.stderr[-3000:]
    return {name: np.array(values) for name, values in read_quantities(out).items()}


def reference(name: str) -> dict[str, np.ndarray]:
    """A PyBaMM reference run (tests/data/pybamm_<name>.csv) by column."""
    path = DATA / f"pybamm_{name}.csv"
    lines = path.read_text().splitlines()
    skip = sum(line.startswith("#") for line in lines)
    values = np.loadtxt(path, delimiter=",", skiprows=skip + 1, ndmin=2)
    return dict(zip(lines[skip].split(","), values.T, strict=True))


def differences(ours: dict, theirs: dict) -> tuple[float, float]:
    """(relative difference of the final discharge capacity, voltage RMS difference [V] on the
    reference's times up to the earlier of the two cut-offs: our voltage interpolated)."""
    capacity = ours["discharge_capacity_Ah"][-1] / theirs["discharge_capacity_Ah"][-1] - 1
    t = theirs["time_s"]
    common = t <= ours["time_s"][-1]
    voltage = np.interp(t[common], ours["time_s"], ours["voltage_V"])
    rms = float(np.sqrt(np.mean((voltage - theirs["voltage_V"][common]) ** 2)))
    return float(capacity), rms


if __name__ == "__main__":
    name, settings = sys.argv[1], [a for a in sys.argv[2:] if a != "--set"]
    with tempfile.TemporaryDirectory() as tmp:
        ours = discharge(Path(tmp), *DISCHARGES[name], *settings)
    capacity, rms = differences(ours, reference(name))
    steps = len(ours["time_s"]) - 1
    print(f"{name}: capacity {capacity:+.3%}, voltage RMS {rms * 1e3:.3f} mV, {steps} steps")
