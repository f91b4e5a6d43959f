"""cases/battery_cycling.toml: the DFN of battery_discharge.toml with a lumped cell temperature
coupled both ways and particle stress, cycled CC-CV; against PyBaMM (tests/battery.py).

Small meshes here (tests/battery.py SMALL_MESH); the full-size figures are in the branch report
(``python -m tests.battery Chen2020_DFN_lumped_1C`` and ``Chen2020_DFN_CCCV``).
"""

import shlex
import tomllib

import numpy as np
import pytest

from tests.battery import (
    CASE,
    CYCLES,
    CYCLING,
    FIELD_RTOL,
    ISOTHERMAL,
    SMALL_MESH,
    differences,
    discharge,
    every_step,
    reference,
    step_by_step,
    temperature_rise_difference,
)
from tests.conftest import assert_same_by_units, runs_on_ranks, scalebridge

#: the columns issue 12 asks of quantities.csv, then the stresses and heat terms of this case
COLUMNS = ["time_s", "current_A", "voltage_V", "discharge_capacity_Ah", "temperature_K"]
COLUMNS += ["cycle", "step", "heat_generated_W", "heat_flow_cooling_W", "stored_energy_J"]
COLUMNS += ["negative_reaction_heat_W_per_m2", "positive_reaction_heat_W_per_m2"]
COLUMNS += ["electrolyte_potential_power_W_per_m2", "solid_power_W_per_m2"]
STRESSES = [
    f"stress_{k}_{where}_Pa" for k in "np" for where in ("surface_hoop_stress", "centre_stress")
]
#: what the cycling case adds to an electrochemistry instance of battery_discharge.toml: its
#: heat and its entropic term; and where the discharge reads T_amb, the cycle reads the cell's
THERMAL_KEYS = {"joule_heating", "entropic_coefficient"}


def _thermal_free(section: dict) -> dict:
    """A physics section without the keys that couple it to the cell temperature."""
    kept = {key: value for key, value in section.items() if key not in THERMAL_KEYS}
    if "fields" in kept:
        kept["fields"] = {k: v for k, v in kept["fields"].items() if k != "heat_source"}
    kept.pop("temperature", None)  # the discharge's fixed temperature = "T_amb"
    return kept


def test_shared_sections_follow_battery_discharge():
    """No include mechanism for cases: the copy is kept equal here. Every section of the
    discharge is in the cycle unchanged, except the temperature (the field instead of T_amb),
    the heat the electrochemistry provides, the protocol's steps, the output's fields, and the
    kept Jacobian (the cycle is full Newton: its Marquis2019 test bounds Newton's iterations)."""
    discharge_case = tomllib.loads(CASE.read_text().replace("T_amb", "temperature"))
    cycle = tomllib.loads(CYCLING.read_text())
    assert discharge_case["solver"]["newton"].pop("jacobian_reuse") is True
    assert "jacobian_reuse" not in cycle["solver"]["newton"]
    for name in ("parameters", "mesh", "time", "solver"):
        assert cycle[name] == discharge_case[name], name
    for name, section in discharge_case["physics"].items():
        assert _thermal_free(cycle["physics"][name]) == _thermal_free(section), name
    assert set(cycle["physics"]) - set(discharge_case["physics"]) == {
        "heat",
        "stress_n",
        "stress_p",
    }
    protocol = {k: v for k, v in cycle["protocol"].items() if k not in ("steps", "repeat")}
    assert protocol == {k: v for k, v in discharge_case["protocol"].items() if k != "steps"}
    output, theirs = cycle["output"], discharge_case["output"]
    assert output["quantities"] == theirs["quantities"]
    assert output["probes"] == theirs["probes"] and output["interval"] == theirs["interval"]
    assert set(theirs["fields"]) < set(output["fields"])


def test_lumped_temperature_rise_matches_pybamm(tmp_path):
    """A 1C discharge with the lumped cell temperature against PyBaMM's DFN with
    options={"thermal": "lumped"} (same h, cooling area, cell volume and stack heat capacity):
    the rise T - T_amb within 0.2 K all along (about 14 K at the end). The stored heat changes by
    the heat generated less the heat lost on every step (BDF weights, as the solver does), to
    Newton's tolerance on T (field_rtol of 298 K, times the heat capacity, ten times over)."""
    q = discharge(tmp_path, *CYCLES["Chen2020_DFN_lumped_1C"], *SMALL_MESH, case=CYCLING)
    assert all(column in q for column in COLUMNS + STRESSES)
    largest, final = temperature_rise_difference(q, reference("Chen2020_DFN_lumped_1C"))
    assert largest < 0.2 and abs(final) < 0.2
    assert q["temperature_K"][0] == pytest.approx(298.15, abs=1e-9)
    assert np.all(np.diff(q["temperature_K"]) > 0)
    energy, dt, net = q["stored_energy_J"], q["dt_s"], q["heat_generated_W"]
    net = net - q["heat_flow_cooling_W"]
    heat_capacity = energy[0] / (q["temperature_K"][0] - 293.15)  # J/K: the heat's reference T
    newton = 10 * FIELD_RTOL * 298.15 * heat_capacity
    for n in range(2, len(energy)):
        w = dt[n] / dt[n - 1]
        change = (1 + 2 * w) / (1 + w) * energy[n] - (1 + w) * energy[n - 1]
        change += w**2 / (1 + w) * energy[n - 2]
        assert change == pytest.approx(net[n] * dt[n], abs=newton)


def test_marquis2019_lumped_discharge_matches_pybamm(tmp_path):
    """Marquis2019 (Arrhenius particle diffusivities: the particles on the (x, r) mesh read the
    cell temperature of the line 'top' through its copy on the parent) at 1C with the lumped
    temperature, against PyBaMM's DFN with options={"thermal": "lumped"}: voltage within 3 mV
    RMS and capacity within 0.1 %, the rise T - T_amb (about 0.36 K at h = 10 W/m^2/K) within
    0.2 K all along, as issue 12 asks, and within 5 % of itself (0.018 K)."""
    q = discharge(tmp_path, *CYCLES["Marquis2019_DFN_lumped_1C"], *SMALL_MESH, case=CYCLING)
    theirs = reference("Marquis2019_DFN_lumped_1C")
    capacity, rms = differences(q, theirs)
    assert rms < 3e-3 and abs(capacity) < 1e-3
    largest, final = temperature_rise_difference(q, theirs)
    rise = theirs["temperature_K"][-1] - theirs["temperature_K"][0]
    assert rise > 0.3
    assert largest < 0.2 and abs(final) < 0.2
    assert largest < 0.05 * rise
    assert q["newton_iterations"].max() <= 4


def test_marquis2019_lumped_on_two_ranks(tmp_path):
    """The copy of the cell temperature on the parent mesh (one real dof, dense coupling) gives
    the same rows on 1 and 2 ranks: a short 2C discharge of Marquis2019 with the lumped T."""
    settings = [
        *SMALL_MESH,
        "parameters.set=Marquis2019",
        'protocol.steps=["Discharge at 2C for 3 minutes"]',
        "protocol.repeat=1",
    ]
    args = [arg for setting in settings for arg in ("--set", setting)]
    serial, parallel = runs_on_ranks(every_step(tmp_path, CYCLING), tmp_path, *args)
    assert serial["time_s"] == parallel["time_s"]
    assert max(serial["temperature_K"]) > 298.15 + 0.05
    assert_same_by_units(serial, parallel, rtol=1e-8, round_off=1e-9)


def test_cccv_cycle_matches_pybamm(tmp_path):
    """PyBaMM's Experiment (1C to 2.5 V, rest 1 h, C/2 to 4.2 V, hold at 4.2 V until C/20,
    rest 1 h; isothermal) on the cycling case with its thermal part off: voltage within 5 mV RMS
    step by step, the hold ending at C/20 within 1 %, the temperature at T_amb throughout.
    The particle stresses follow the direction of the current: on discharge the negative
    particles empty from their surface and the positive ones fill from theirs, so with
    Omega_n > 0 > Omega_p both surfaces are in tension (sigma_t(R) = Omega E (cbar - c(R)) /
    (3 (1 - nu)) > 0) and both centres in compression; on charge the signs turn; the final
    hour's rest (over five times R_n^2/D_n, half of R_p^2/D_p) relaxes them."""
    q = discharge(tmp_path, *CYCLES["Chen2020_DFN_CCCV"], *SMALL_MESH, case=CYCLING)
    theirs = reference("Chen2020_DFN_CCCV")
    voltage = step_by_step(q, theirs, "voltage_V")
    assert np.sqrt(np.mean(voltage**2)) < 5e-3
    assert list(np.unique(q["step"])) == [0, 1, 2, 3, 4]
    assert np.all(q["temperature_K"] == 298.15)
    held = q["current_A"][q["step"] == 3]
    assert held[-1] == pytest.approx(-5.0 / 20, rel=0.01)
    discharging = (q["step"] == 0) & (q["time_s"] > 60)
    charging = (q["step"] == 2) & (q["time_s"] > q["time_s"][q["step"] == 2][0] + 60)
    for k in "np":
        surface, centre = q[f"stress_{k}_surface_hoop_stress_Pa"], q[f"stress_{k}_centre_stress_Pa"]
        assert np.all(surface[discharging] > 0) and np.all(centre[discharging] < 0), k
        assert np.all(surface[charging] < 0) and np.all(centre[charging] > 0), k
        assert abs(surface[-1]) < 0.1 * np.abs(surface).max(), k


def test_same_cycle_on_two_ranks(tmp_path):
    """Discharge, rest, charge, hold and rest with the lumped temperature: the same rows on 1
    and 2 ranks."""
    steps = [
        "Discharge at 2C for 2 minutes",
        "Rest for 1 minute",
        "Charge at 1C until 4.2 V",
        "Hold at 4.2 V until C/2",
        "Rest for 1 minute",
    ]
    settings = [*SMALL_MESH, f"protocol.steps={steps!r}".replace("'", '"'), "protocol.repeat=1"]
    args = [arg for setting in settings for arg in ("--set", setting)]
    serial, parallel = runs_on_ranks(every_step(tmp_path, CYCLING), tmp_path, *args)
    # the step sizes follow the voltage (its local error): a round-off difference of the
    # factorisations may move the 12th digit of a time written with 12
    np.testing.assert_allclose(serial["time_s"], parallel["time_s"], rtol=1e-11, atol=0)
    assert sorted(set(serial["step"])) == [0, 1, 2, 3, 4]
    assert max(serial["temperature_K"]) > 298.15 + 0.5  # the lumped temperature is coupled
    # zeros (the rest's current) carry Newton's tolerance (field_rtol) of their units
    assert_same_by_units(serial, parallel, rtol=1e-8, round_off=1e-9)


def header_commands(case) -> list[list[str]]:
    """The ``scalebridge run`` command lines of a case's header (continued lines joined)."""
    lines = [line[1:].strip() for line in case.read_text().splitlines() if line.startswith("#")]
    text = "\n".join(lines).replace("\\\n", " ")
    return [
        shlex.split(line, comments=True)
        for line in text.splitlines()
        if line.startswith("scalebridge run")
    ]


def test_header_commands_are_valid_cases():
    """The header's ways to set the C-rate (protocol steps), the initial SOC, thermal off
    (the ISOTHERMAL settings the CC-CV comparison runs) and the parameter set all check."""
    commands = header_commands(CYCLING)
    settings = [arg for command in commands for arg in command]
    needed_settings = ("parameters.initial_soc=0.5", "parameters.set=Chen2020", *ISOTHERMAL)
    for needed in (*needed_settings, "parameters.set=Marquis2019"):
        assert needed in settings, needed
    assert any("Discharge at 2C" in arg for arg in settings)
    for command in commands:
        assert command[:3] == ["scalebridge", "run", "cases/battery_cycling.toml"]
        process = scalebridge("check", *command[2:])
        assert process.returncode == 0, (command, process.stderr[-2000:])
