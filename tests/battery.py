"""Runs of cases/battery_discharge.toml and cases/battery_cycling.toml compared with the PyBaMM
references in tests/data (written by benchmarks/pybamm_reference.py, which documents each
PyBaMM call: the DFN with default options, or ``options={"thermal": "lumped"}`` for the lumped
runs, Chen2020 or Marquis2019 from ``set_initial_state(1.0)``, 160 points per domain, IDAKLU at
rtol 1e-8).

Used by tests/test_battery.py and tests/test_battery_cycling.py, and on its own for the
full-size figures::

    .venv/bin/python -m tests.battery Chen2020_DFN_1C [--set KEY=VALUE ...]
    .venv/bin/python -m tests.battery Chen2020_DFN_lumped_1C
    .venv/bin/python -m tests.battery Chen2020_DFN_CCCV
    .venv/bin/python -m tests.battery Marquis2019_DFN_lumped_1C

prints the differences from PyBaMM's run of the same name: capacity and voltage RMS for a
discharge, the temperature rise for the lumped run, the voltage RMS step by step for a cycle.
"""

from __future__ import annotations

import sys
import tempfile
import tomllib
from pathlib import Path

import numpy as np

from tests.conftest import CASES, ROOT, read_quantities, scalebridge

CASE = CASES / "battery_discharge.toml"
CYCLING = CASES / "battery_cycling.toml"
#: Newton's tolerance of the battery cases (every field's residual below this fraction of its
#: scale, app/newton.py): what a quantity that should not move may move by
FIELD_RTOL = tomllib.loads(CASE.read_text())["solver"]["newton"]["field_rtol"]
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
#: reference name -> the settings of cases/battery_cycling.toml for the same run (the
#: reference CC-CV cycle is isothermal: thermal off, no heat, so T stays at T_amb)
ISOTHERMAL = ["physics.heat.heat_sources=[]", "physics.heat.source=0"]
CYCLES = {
    "Chen2020_DFN_lumped_1C": [
        'protocol.steps=["Discharge at 1C until 2.5 V"]',
        "protocol.repeat=1",
    ],
    "Chen2020_DFN_CCCV": [*ISOTHERMAL, "protocol.repeat=1"],
    "Marquis2019_DFN_lumped_1C": [
        "parameters.set=Marquis2019",
        'protocol.steps=["Discharge at 1C until 3.105 V"]',
        "protocol.repeat=1",
    ],
}
#: a mesh small enough for the test suite (the case's default is 20 + 20 + 20 by 10)
SMALL_MESH = [
    'mesh.layers=[{ name = "negative", thickness = "L_n", cells = 8 },'
    ' { name = "separator", thickness = "L_s", cells = 4 },'
    ' { name = "positive", thickness = "L_p", cells = 8 }]',
    "mesh.radial_cells=6",
]


def every_step(folder: Path, case: Path = CASE) -> Path:
    """The case with a quantities row at every step (its output interval removed), no fields."""
    text = case.read_text().replace('interval = "1 min"\n', "")
    assert text != case.read_text(), "the case's output interval moved: update tests/battery.py"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{case.stem}_every_step.toml"
    path.write_text(text.replace("[output]\n", "[output]\nxdmf = false\n", 1))
    return path


def discharge(
    folder: Path, *settings: str, ranks: int = 1, case: Path = CASE
) -> dict[str, np.ndarray]:
    """quantities.csv of the case run with ``settings`` (``--set`` values), as arrays."""
    out = folder / "run"
    args = [a for setting in settings for a in ("--set", setting)]
    run = scalebridge("run", every_step(folder, case), *args, "-o", out, "-q", ranks=ranks)
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


def temperature_rise_difference(ours: dict, theirs: dict) -> tuple[float, float]:
    """(largest difference of the temperature rise T - T(0) on the reference's times up to the
    earlier end [K], the difference of the final rises [K]): ours interpolated."""
    t = theirs["time_s"]
    common = t <= ours["time_s"][-1]
    rise = np.interp(t[common], ours["time_s"], ours["temperature_K"]) - ours["temperature_K"][0]
    theirs_rise = theirs["temperature_K"] - theirs["temperature_K"][0]
    final = (ours["temperature_K"][-1] - ours["temperature_K"][0]) - theirs_rise[-1]
    return float(np.abs(rise - theirs_rise[common]).max()), float(final)


def step_by_step(ours: dict, theirs: dict, column: str) -> np.ndarray:
    """Differences of ``column`` at the reference's rows, step by step in the time since each
    step began (ours interpolated within the same step, up to the earlier end of the two), so
    a cut-off reached a second apart compares each step with itself, not with the next."""
    differences = []
    for step in np.unique(theirs["step"]):
        mine, reference_rows = ours["step"] == step, theirs["step"] == step
        t_ours, t_theirs = ours["time_s"][mine], theirs["time_s"][reference_rows]
        since = t_theirs - t_theirs[0]
        common = since <= t_ours[-1] - t_ours[0]
        value = np.interp(since[common], t_ours - t_ours[0], ours[column][mine])
        differences.append(value - theirs[column][reference_rows][common])
    return np.concatenate(differences)


def compare(name: str, ours: dict) -> str:
    """The figures of a run against the PyBaMM reference ``name``, as a line of text."""
    theirs, steps = reference(name), len(ours["time_s"]) - 1
    if name in DISCHARGES:
        capacity, rms = differences(ours, theirs)
        return f"{name}: capacity {capacity:+.3%}, voltage RMS {rms * 1e3:.3f} mV, {steps} steps"
    if "step" in theirs:
        voltage = step_by_step(ours, theirs, "voltage_V")
        rms = np.sqrt(np.mean(voltage**2))
        return f"{name}: voltage RMS {rms * 1e3:.3f} mV step by step, {steps} steps"
    largest, final = temperature_rise_difference(ours, theirs)
    rise = theirs["temperature_K"][-1] - theirs["temperature_K"][0]
    capacity, rms = differences(ours, theirs)
    return (
        f"{name}: temperature rise {rise:.3f} K (PyBaMM), ours {final:+.4f} K at the end, "
        f"at most {largest:.4f} K apart; capacity {capacity:+.3%}, voltage RMS "
        f"{rms * 1e3:.3f} mV, {steps} steps"
    )


if __name__ == "__main__":
    name, settings = sys.argv[1], [a for a in sys.argv[2:] if a != "--set"]
    case, preset = (CASE, DISCHARGES[name]) if name in DISCHARGES else (CYCLING, CYCLES[name])
    with tempfile.TemporaryDirectory() as tmp:
        ours = discharge(Path(tmp), *preset, *settings, case=case)
    print(compare(name, ours))
