"""cases/battery_discharge.toml: the DFN composed from the generic plug-ins, against PyBaMM.

Small meshes here (tests/battery.py SMALL_MESH: 8 + 4 + 8 cells by 6); the case's default mesh
and the full-size figures are in the branch report (``python -m tests.battery <reference>``).
"""

import json

import numpy as np
import pytest

from tests.battery import (
    CASE,
    DISCHARGES,
    FIELD_RTOL,
    SMALL_MESH,
    differences,
    discharge,
    every_step,
    reference,
)
from tests.conftest import assert_same_by_units, read_quantities, runs_on_ranks, scalebridge

#: reference -> (C-rate, nominal capacity [A h], lower cut-off [V]) as in the case's set
RUNS = {
    "Chen2020_DFN_0.5C": (0.5, 5.0, 2.5),
    "Chen2020_DFN_1C": (1.0, 5.0, 2.5),
    "Chen2020_DFN_2C": (2.0, 5.0, 2.5),
    "Marquis2019_DFN_1C": (1.0, 0.680616, 3.105),
}


@pytest.mark.parametrize("name", sorted(DISCHARGES))
def test_constant_current_discharge_matches_pybamm(tmp_path, name):
    q = discharge(tmp_path, *DISCHARGES[name], *SMALL_MESH)
    capacity, rms = differences(q, reference(name))
    assert abs(capacity) < 1e-3  # 0.1 %
    assert rms < 3e-3
    rate, nominal, cut_off = RUNS[name]
    t, current, voltage = q["time_s"], q["current_A"], q["voltage_V"]
    assert current == pytest.approx(rate * nominal, rel=1e-12)  # positive on discharge
    # the cut-off event is located on the voltage, which stays above it until then
    assert voltage[-1] == pytest.approx(cut_off, abs=1e-6)
    assert np.all(voltage[:-1] > cut_off)
    # discharge capacity: the running integral of the current
    assert q["discharge_capacity_Ah"] == pytest.approx(current * t / 3600, rel=1e-9, abs=1e-12)
    # the reaction runs one way through each electrode: anodic (eta > 0) in the negative,
    # cathodic in the positive, at every node of the electrode itself (the extremes of a
    # field on part of the cell's mesh; its expression means nothing in the separator)
    assert np.all(q["negative_min_overpotential_V"] > 0)
    assert np.all(q["positive_max_overpotential_V"] < 0)
    for side in ("negative", "positive"):
        lowest, highest = q[f"{side}_min_stoichiometry"], q[f"{side}_max_stoichiometry"]
        assert np.all((lowest > 0) & (lowest <= highest) & (highest < 1)), side
    # lithium leaves one electrode's particles for the other's; the salt stays in the cell
    for column in ("cyclable_lithium_mol", "electrolyte_salt_mol"):
        amount = q[column]
        assert np.abs(amount / amount[0] - 1).max() < 1e-10, column


def test_a_particle_surface_that_fills_before_the_cut_off_ends_the_discharge(tmp_path):
    """Large, slow positive particles (R_p x1.25, D_p / 2: a Morris member) fill their surface
    before the voltage falls to 2.5 V, where the kinetics have no solution that carries the
    current; the case's event ends the run at the surface stoichiometry 0.999, located
    between output rows (1 min apart: the derived stoichiometry is refreshed for the event)."""
    out = tmp_path / "run"
    slow = [
        "output.xdmf=false",
        "parameters.R_p=6.525e-06",
        "physics.positive_particles.species.c_s_p.diffusivity=2e-15",
        *SMALL_MESH,
    ]
    args = [a for setting in slow for a in ("--set", setting)]
    run = scalebridge("run", CASE, *args, "-o", out, "-q")
    assert run.returncode == 0, run.stderr[-3000:]
    q = read_quantities(out)
    assert q["positive_max_stoichiometry"][-1] == pytest.approx(0.999, abs=1e-6)
    assert q["voltage_V"][-1] > 2.6
    assert np.all(np.diff(q["time_s"][:-1]) == pytest.approx(60))  # rows a minute apart


@pytest.mark.parametrize("soc, voltage", [(1.0, 4.2), (0.0, 2.5), (0.5, None)])
def test_at_zero_current_the_voltage_is_the_open_circuit_difference(tmp_path, soc, voltage):
    """SOC 1 and 0 are the open-circuit voltages at the set's cut-offs (PyBaMM's
    set_initial_state); at rest the cell stays there, and in between the voltage lies strictly
    within them."""
    q = discharge(
        tmp_path,
        *SMALL_MESH,
        f"parameters.initial_soc={soc}",
        'protocol.steps=["Rest for 10 minutes"]',
    )
    assert np.all(q["current_A"] == 0)
    assert q["time_s"][-1] == pytest.approx(600)
    if voltage is None:
        assert 2.5 + 0.1 < q["voltage_V"][0] < 4.2 - 0.1
    else:
        assert q["voltage_V"][0] == pytest.approx(voltage, abs=1e-6)
    assert np.ptp(q["voltage_V"]) < FIELD_RTOL * 4.2  # at rest nothing moves beyond Newton's
    assert np.ptp(q["cyclable_lithium_mol"]) <= 1e-12 * q["cyclable_lithium_mol"][0]


def test_a_step_that_drives_the_voltage_past_the_window_ends_the_run_as_in_pybamm(tmp_path):
    """A discharge "for 10 hours" has no voltage condition of its own: the run ends where the
    voltage leaves the set's window by 1 V (V_min - 1 = 1.5 V for Chen2020), where PyBaMM's
    experiment stops as infeasible, and says which protocol step the event cut short."""
    out = tmp_path / "run"
    steps = 'protocol.steps=["Discharge at 1C for 10 hours", "Rest for 1 hour"]'
    args = [a for s in ("output.xdmf=false", steps, *SMALL_MESH) for a in ("--set", s)]
    run = scalebridge("run", CASE, *args, "-o", out)
    assert run.returncode == 0, run.stderr[-3000:]
    q = {name: np.array(values) for name, values in read_quantities(out).items()}
    assert q["voltage_V"][-1] == pytest.approx(1.5, abs=1e-3)
    assert np.all(q["voltage_V"] > 1.5 - 1e-3) and np.all(q["step"] == 0)
    assert "during protocol step 0 (cycle 0): Discharge at 1C for 10 hours; the protocol's " in (
        run.stderr + run.stdout
    )
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["stopped_by_event"] == "voltage_outside_window_V > 1"


def test_a_rest_after_a_discharge_relaxes_toward_open_circuit(tmp_path):
    """The overpotentials vanish at once when the current stops; the concentration gradients
    then relax, raising the voltage monotonically (a discharge leaves the particle surfaces
    more lithiated in the positive, less in the negative than their means)."""
    q = discharge(
        tmp_path,
        *SMALL_MESH,
        'protocol.steps=["Discharge at 1C for 20 minutes", "Rest for 30 minutes"]',
    )
    resting = q["step"] == 1
    voltage = q["voltage_V"][resting]
    loaded = q["voltage_V"][~resting][-1]
    assert voltage[0] > loaded + 0.02  # the ohmic and kinetic drops go with the current
    assert np.all(np.diff(voltage) > -1e-9)
    assert voltage[-1] - voltage[0] > 1e-3
    assert q["discharge_capacity_Ah"][-1] == pytest.approx(5.0 * 20 / 60, rel=1e-9)


def test_same_discharge_on_two_ranks(tmp_path):
    settings = [*SMALL_MESH, 'protocol.steps=["Discharge at 2C for 5 minutes"]']
    args = [arg for setting in settings for arg in ("--set", setting)]
    serial, parallel = runs_on_ranks(every_step(tmp_path), tmp_path, *args)
    # the step sizes follow the voltage (its limit per step): a round-off difference of the
    # factorisations may move the 12th digit of a time written with 12
    np.testing.assert_allclose(serial["time_s"], parallel["time_s"], rtol=1e-11, atol=0)
    assert serial["newton_iterations"] == parallel["newton_iterations"]
    assert_same_by_units(serial, parallel, rtol=1e-8)


@pytest.mark.parametrize(
    "limits, message",
    [
        ('{ voltag_V = "10 mV" }', "unknown column 'voltag_V' (did you mean 'voltage_V'?)"),
        ('{ voltage_V = "-1 mV" }', "a limit is positive"),
        ('{ voltage_V = "10 s" }', "'10 s' has units of s but V was expected"),
    ],
)
def test_bad_step_limits_name_their_place(tmp_path, limits, message):
    settings = [*SMALL_MESH, f"time.adaptive.limits={limits}"]
    run = scalebridge(
        "run", CASE, *[a for s in settings for a in ("--set", s)], "-o", tmp_path / "r", "-q"
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    name = limits.split()[1]
    assert f"time.adaptive.limits.{name}" in run.stderr
    assert message in run.stderr


def test_a_constant_voltage_hold_ends_at_c_over_20(tmp_path):
    """The DFN's positive collector is a terminal: a Hold switches it from current to voltage
    control inside the run. The held voltage stays put, the current decays monotonically from
    the charging current and the hold ends at C/20 (5 A / 20) within 1 %; the discharge
    capacity keeps integrating the current through the switch."""
    q = discharge(
        tmp_path,
        *SMALL_MESH,
        "parameters.initial_soc=0.5",
        'protocol.steps=["Charge at 1C until 4.1 V", "Hold at 4.1 V until C/20"]',
    )
    charging, holding = q["step"] == 0, q["step"] == 1
    assert np.all(q["current_A"][charging] == pytest.approx(-5.0, rel=1e-12))
    assert q["voltage_V"][charging][-1] == pytest.approx(4.1, abs=1e-6)
    assert q["voltage_V"][holding] == pytest.approx(4.1, abs=1e-9)
    held = q["current_A"][holding]
    assert held[0] < 0 and np.all(np.diff(held) > 0)  # the charging current fades
    assert held[-1] == pytest.approx(-5.0 / 20, rel=0.01)
    t, current = q["time_s"], q["current_A"]
    trapezoids = np.concatenate([[0], np.cumsum(np.diff(t) * (current[1:] + current[:-1]) / 2)])
    assert q["discharge_capacity_Ah"][-1] == pytest.approx(trapezoids[-1] / 3600, rel=1e-3)
