"""The PyBaMM reference data in tests/data: complete, self-consistent, and reproduced by
benchmarks/pybamm_reference.py when PyBaMM is installed."""

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

DATA = ROOT / "tests" / "data"
SCRIPT = ROOT / "benchmarks" / "pybamm_reference.py"
COLUMNS = ["time_s", "current_A", "voltage_V", "discharge_capacity_Ah", "temperature_K"]
#: name -> (nominal capacity [A h], C-rate, lower cut-off [V]) of the constant-current runs
DISCHARGES = {
    "Chen2020_DFN_0.5C": (5.0, 0.5, 2.5),
    "Chen2020_DFN_1C": (5.0, 1.0, 2.5),
    "Chen2020_DFN_2C": (5.0, 2.0, 2.5),
    "Chen2020_DFN_lumped_1C": (5.0, 1.0, 2.5),
    "Marquis2019_DFN_1C": (0.680616, 1.0, 3.105),
}


def read(path):
    """(header lines, columns by name) of a reference CSV."""
    lines = path.read_text().splitlines()
    header = [line[2:] for line in lines if line.startswith("# ")]
    names = lines[len(header)].split(",")
    values = np.loadtxt(path, delimiter=",", comments="#", skiprows=len(header) + 1, ndmin=2)
    return header, dict(zip(names, values.T, strict=True))


@pytest.mark.parametrize("name", sorted(DISCHARGES))
def test_constant_current_discharges_end_at_the_cut_off_with_the_capacity_they_drew(name):
    header, data = read(DATA / f"pybamm_{name}.csv")
    assert list(data)[:5] == COLUMNS
    assert any("mesh: 160 points per domain" in line for line in header)
    assert any(line.startswith("convergence: voltage RMS") for line in header)
    capacity, rate, cut_off = DISCHARGES[name]
    t, current = data["time_s"], data["current_A"]
    assert 150 <= len(t) <= 450 and np.all(np.diff(t) > 0)
    assert current == pytest.approx(rate * capacity, 1e-12)
    assert data["voltage_V"][-1] == pytest.approx(cut_off, abs=1e-6)
    assert np.all(data["voltage_V"][:-1] > cut_off)
    # discharge capacity is the running integral of the current
    assert data["discharge_capacity_Ah"] == pytest.approx(current * t / 3600, rel=1e-9, abs=1e-12)
    temperature = data["temperature_K"]
    if "lumped" in name:  # ~1 W of heat into 43 J/K, cooled by hA = 0.053 W/K: about 14 K
        assert temperature[0] == 298.15 and np.all(np.diff(temperature) > 0)
        assert 10 < temperature[-1] - 298.15 < 20
    else:
        assert np.all(temperature == 298.15)


def test_the_cccv_cycle_holds_until_c_over_20_and_rests():
    _, data = read(DATA / "pybamm_Chen2020_DFN_CCCV.csv")
    step, current, voltage = data["step"], data["current_A"], data["voltage_V"]
    assert list(np.unique(step)) == [0, 1, 2, 3, 4]
    assert voltage[step == 0][-1] == pytest.approx(2.5, abs=1e-6)  # 1C discharge to 2.5 V
    assert np.all(current[(step == 1) | (step == 4)] == 0)  # rests
    assert current[step == 2] == pytest.approx(-2.5, 1e-12)  # C/2 charge
    assert voltage[step == 2][-1] == pytest.approx(4.2, abs=1e-6)
    held = step == 3
    assert voltage[held] == pytest.approx(4.2, abs=1e-6)
    assert current[held][-1] == pytest.approx(-0.25, rel=1e-3)  # until C/20
    # the capacity bookkeeping follows the current through every step (trapezoids)
    t = data["time_s"]
    charge = np.concatenate([[0], np.cumsum(np.diff(t) * 0.5 * (current[1:] + current[:-1]))])
    jumps = np.flatnonzero(np.diff(step)) + 1  # a step's first row: the current jumped there
    smooth = np.setdiff1d(np.arange(1, len(t)), jumps)
    increments = np.diff(data["discharge_capacity_Ah"])[smooth - 1]
    assert increments == pytest.approx(np.diff(charge / 3600)[smooth - 1], rel=2e-3, abs=2e-5)


@pytest.mark.slow
def test_the_script_reproduces_a_committed_reference(tmp_path):
    pytest.importorskip("pybamm")
    name = "Marquis2019_DFN_1C"
    command = [sys.executable, str(SCRIPT), "--case", name, "--out", str(tmp_path)]
    process = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert process.returncode == 0, process.stderr[-3000:]
    header, again = read(tmp_path / f"pybamm_{name}.csv")
    _, committed = read(DATA / f"pybamm_{name}.csv")
    assert header[0].startswith("PyBaMM ") and again.keys() == committed.keys()
    for column, values in committed.items():
        assert again[column] == pytest.approx(values, rel=1e-8, abs=1e-12), column
