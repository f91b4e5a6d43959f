"""A cell cycled CC-CV by a protocol: the terminal switches between current and voltage control
inside one run, with a lumped temperature solved in the same Newton system
(cases/cell_protocol.toml: Chen2020, 1C = the set's Q_nom = 5 A h, two cycles).

- Constant current: the current is the C-rate times the nominal capacity, positive on
  discharge; the discharge capacity is its running integral (I t / 3600 in a CC step); the
  voltage cut-offs end their steps at the cut-off voltage.
- Constant-voltage hold: the terminal sits at the held voltage while the current decays, and
  the hold ends at C/20 within 1 %.
- Rest: no current; the voltage relaxes (its rate decays) and the overpotentials shrink.
- Two cycles, each through every step; the lumped energy balance closes on every row
  (stored = generated - cooled, with the time scheme's weights); 1 and 2 ranks agree.
"""

import tomllib
from pathlib import Path

import numpy as np
import pytest

from app.errors import CaseError
from app.simulation import Simulation
from tests.conftest import read_quantities, runs_on_ranks, scalebridge

# One worker runs the module: its tests share the two runs of the fixture.
pytestmark = [pytest.mark.xdist_group("cell_protocol"), pytest.mark.slow, pytest.mark.mpi]

CASE = Path(__file__).parent.parent / "cases" / "cell_protocol.toml"
ONE_C = 5.0  # A: Q_nom of Chen2020 over one hour
DISCHARGE, REST, CHARGE, HOLD, REST_AFTER_HOLD = range(5)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[dict, dict]:
    # about a minute each on an idle machine; generous for a loaded one
    serial, parallel = runs_on_ranks(CASE, tmp_path_factory.mktemp("cell"), timeout=1800)
    as_arrays = [{k: np.asarray(v) for k, v in run.items()} for run in (serial, parallel)]
    return as_arrays[0], as_arrays[1]


def rows(q: dict, step: int, cycle: int) -> np.ndarray:
    """The rows of one step of the protocol (numbered through the cycles) in one cycle."""
    return np.flatnonzero(q["step"] == step + 5 * cycle)


@pytest.mark.parametrize("cycle", [0, 1])
def test_constant_current_to_the_cut_offs(runs, cycle: int):
    q = runs[0]
    for step, current, cut_off in ((DISCHARGE, ONE_C, 3.4), (CHARGE, -ONE_C, 4.0)):
        taken = rows(q, step, cycle)
        assert len(taken) > 5
        assert q["current_A"][taken[1:]] == pytest.approx(current, rel=1e-9)
        assert q["voltage_V"][taken[-1]] == pytest.approx(cut_off, abs=1e-3)
        start = max(taken[0] - 1, 0)  # the row before the step: its starting state
        delivered = np.diff(q["discharge_capacity_Ah"][[start, taken[-1]]])[0]
        duration = q["time_s"][taken[-1]] - q["time_s"][start]
        assert delivered == pytest.approx(current * duration / 3600, rel=1e-6)


@pytest.mark.parametrize("cycle", [0, 1])
def test_hold_ends_at_c_over_20(runs, cycle: int):
    q = runs[0]
    held = rows(q, HOLD, cycle)
    assert q["voltage_V"][held] == pytest.approx(4.0, abs=1e-9)
    charging = -q["current_A"][held]
    assert np.all(np.diff(charging) < 0) and charging[0] > 0.5 * ONE_C
    assert charging[-1] == pytest.approx(ONE_C / 20, rel=0.01)


@pytest.mark.parametrize(("step", "direction"), [(REST, 1), (REST_AFTER_HOLD, -1)])
def test_rest_relaxes_toward_open_circuit(runs, step: int, direction: int):
    """After a discharge the voltage rises, after a charge it falls; it settles (its rate
    decays twentyfold) and the reactions' overpotentials shrink."""
    q = runs[0]
    for cycle in (0, 1):
        rested = rows(q, step, cycle)
        assert q["current_A"][rested] == pytest.approx(0.0, abs=1e-12)
        voltage, time = q["voltage_V"][rested], q["time_s"][rested]
        rate = np.diff(voltage) / np.diff(time)
        assert direction * (voltage[-1] - voltage[0]) > 0
        assert abs(rate[-1]) < 0.05 * abs(rate[0])
        overpotential = np.max(
            [
                np.abs(q[f"{side}_{end}_overpotential_V"])
                for side in ("negative", "positive")
                for end in ("max", "min")
            ],
            axis=0,
        )
        before = rows(q, step - 1, cycle)[-1]
        assert overpotential[rested[-1]] < 0.75 * overpotential[before]


def test_the_second_cycle_repeats_the_first_from_the_cut_off(runs):
    """Both cycles take every step; from the discharge cut-off on, the second repeats the
    first: the charge put back by CC + CV and the voltage after the last rest agree."""
    q = runs[0]
    assert set(q["cycle"]) == {0, 1}
    for cycle in (0, 1):
        assert all(len(rows(q, step, cycle)) > 0 for step in range(5))
    capacity, charged, rested = q["discharge_capacity_Ah"], [], []
    for cycle in (0, 1):
        before_charge, end_of_hold = rows(q, CHARGE, cycle)[0] - 1, rows(q, HOLD, cycle)[-1]
        charged.append(capacity[before_charge] - capacity[end_of_hold])
        rested.append(q["voltage_V"][rows(q, REST_AFTER_HOLD, cycle)[-1]])
    assert charged[0] > 0.4 * ONE_C
    assert charged[1] == pytest.approx(charged[0], rel=1e-3)
    assert rested[1] == pytest.approx(rested[0], abs=1e-3)


def test_lumped_energy_balance_closes_on_every_row(runs):
    """rho c V dT/dt = Q - h A (T - T_amb): the stored energy's change over each step, by the
    BDF weights the step used (BDF1 when a protocol step begins), equals the net heat."""
    q = runs[0]
    energy, dt, step = q["stored_energy_J"], q["dt_s"], q["step"]
    net = q["heat_generated_W"] - q["heat_flow_cooling_W"]
    assert np.ptp(q["temperature_K"]) > 1.0  # the cell does heat up
    for n in range(1, len(energy)):
        if n == 1 or step[n] != step[n - 1]:
            change = energy[n] - energy[n - 1]
        else:
            w = dt[n] / dt[n - 1]
            change = (1 + 2 * w) / (1 + w) * energy[n] - (1 + w) * energy[n - 1]
            change += w**2 / (1 + w) * energy[n - 2]
        scale = 1e-9 * abs(energy[n]) + 1e-8 * abs(net[n] * dt[n])
        assert abs(change - net[n] * dt[n]) <= scale, (n, change, net[n] * dt[n])


def test_two_ranks_give_the_same_cycle(runs):
    """The same rows to the solver's tolerance (1e-6, and 1e-9 of the largest value in the same
    units for a quantity that is zero in a rest). The bookkeeping may differ by round-off: a
    Newton solve just at its tolerance takes one iteration more or less, and the last trial
    steps of an event's location (microseconds) end anywhere within its tolerance."""
    serial, parallel = runs
    bookkeeping = ("dt_s", "newton_iterations", "linear_iterations")
    assert serial.keys() == parallel.keys()
    largest: dict[str, float] = {}
    for column, values in serial.items():
        unit = column.rsplit("_", 1)[-1]
        largest[unit] = max(largest.get(unit, 0.0), float(np.max(np.abs(values))))
    for column in serial.keys() - set(bookkeeping):
        a, b = serial[column], parallel[column]
        noise = 1e-9 * largest[column.rsplit("_", 1)[-1]]
        assert np.all(np.abs(a - b) <= 1e-6 * np.maximum(np.abs(a), np.abs(b)) + noise), column


def case_with(path: str, value) -> dict:
    case = tomllib.loads(CASE.read_text())
    *parents, key = path.split(".")
    table = case
    for part in parents:
        table = table[part]
    table[key] = value
    return case


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ("physics.heat.conductivity", 45.0, "a lumped temperature has one value"),
        ("physics.heat.lumped.volume", -1.0, "physics.heat.lumped.volume"),
        ("physics.solid_p.boundaries.right.cross_section", 0.0, "physics.solid_p.boundaries"),
    ],
)
def test_bad_cell_input_names_the_case_path(path: str, value, where: str):
    with pytest.raises(CaseError) as caught:
        Simulation.from_case(case_with(path, value)).build()
    assert where in str(caught.value)
    assert path.rpartition(".")[0] in str(caught.value)


def test_a_discharge_past_empty_ends_at_the_voltage_window_not_frozen(tmp_path):
    """1C "for 10 hours" empties the negative electrode after about 51 min: its Newton steps
    then reach c < 0, where every residual PETSc's line search tries is NaN, which PETSc calls
    converged by the step norm, leaving the state frozen while time and the discharge capacity
    ran on (50 A h from a 5 A h cell). Such a step is rejected; the run ends at the event of
    the set's voltage window widened by 1 V, as PyBaMM's experiment stops."""
    steps = ['protocol.steps=["Discharge at 1C for 10 hours"]', "protocol.repeat=1"]
    args = [a for s in ("output.xdmf=false", *steps) for a in ("--set", s)]
    run = scalebridge("run", CASE, *args, "-o", tmp_path / "run", "-q", timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    q = {name: np.asarray(values) for name, values in read_quantities(tmp_path / "run").items()}
    assert q["voltage_V"][-1] == pytest.approx(2.5 - 1, abs=1e-3)
    assert q["time_s"][-1] < 3600 and q["discharge_capacity_Ah"][-1] < ONE_C


def test_charging_a_full_cell_ends_at_the_filled_electrode_not_in_nan(tmp_path):
    """1C charge "for 10 hours" from SOC 1 fills the negative electrode after about 12 min;
    past it sqrt(c_max - c) in the exchange current has no real value. The case's event at a
    stoichiometry of 0.999 ends the run there (it failed with 'j_n is nan' before)."""
    steps = ['protocol.steps=["Charge at 1C for 10 hours"]', "protocol.repeat=1"]
    args = [a for s in ("output.xdmf=false", *steps) for a in ("--set", s)]
    run = scalebridge("run", CASE, *args, "-o", tmp_path / "run", "-q", timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    q = {name: np.asarray(values) for name, values in read_quantities(tmp_path / "run").items()}
    assert q["negative_max_stoichiometry"][-1] == pytest.approx(0.999, abs=1e-6)
    assert np.all(q["current_A"] == pytest.approx(-ONE_C))
