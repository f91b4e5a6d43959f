"""cases/battery_cell_2d_thermal.toml: a distributed temperature on the 2D cell's plane.

The cell's layers conduct heat across its 0.17 mm in about 0.1 s, so with tabs over the whole
edges its temperature stays uniform and equals the lumped cell's (battery_cycling.toml's heat
on the same plane): heat capacity and cooling spread over the stack's volume sum to the lumped
ones. Measured on this mesh after 10 minutes at 1C: a 7 K rise, max and min within 1e-4 K of
the lumped temperature, voltages within 1e-7 V.

The particles read the temperature of the plane as its extension along r (app/extensions.py).
Chen2020's particle diffusivities do not depend on T, so the runs here give them Arrhenius laws
(ARRHENIUS, 30 kJ/mol): the uniform cell then still has the lumped cell's temperature and
voltage (whose particles read the lumped temperature), and with narrow tabs the particles at
the local temperature lift the voltage above the T_amb particles' by 21.6 mV after 10 minutes
(measured), with the lithium conserved to 4e-15.
"""

import tomllib

import numpy as np
import pytest

from app.simulation import Simulation
from tests.conftest import CASES

CASE = CASES / "battery_cell_2d_thermal.toml"
SMALL = {"negative_cells": 8, "separator_cells": 4, "positive_cells": 8, "radial_cells": 6}
LUMPED = {
    "volume": "V_cell",
    "cross_section": "n_parallel*A_cc/L",  # the strip's depth
    "cooling_area": "A_cool",
    "h": "h_total",
    "ambient": "T_amb",
}


ARRHENIUS = "*exp(30000/GAS_CONSTANT*(1/298.15 - 1/T))"
NARROW = {"negative_tab_width": 43.2e-6, "positive_tab_width": 43.2e-6}


def short_discharge(
    lumped: bool, particles_at: str = "temperature", mesh: dict | None = None
) -> dict[str, np.ndarray]:
    """10 minutes at 1C with Arrhenius particle diffusivities at ``particles_at``."""
    case = tomllib.loads(CASE.read_text())
    case["mesh"]["parameters"] |= SMALL | {"height_cells": 2} | (mesh or {})
    case["protocol"]["steps"] = ["Discharge at 1C for 10 minutes"]
    case["output"] |= {"fields": [], "xdmf": False, "probes": {}}
    case["parameters"] |= {"D_s_n": "3.3e-14" + ARRHENIUS, "D_s_p": "4e-15" + ARRHENIUS}
    for particles in ("negative_particles", "positive_particles"):
        for species in case["physics"][particles]["species"].values():
            species["diffusivity"] = species["diffusivity"].replace("temperature", particles_at)
    if lumped:  # one temperature: no conduction, the cooling through the lumped body
        heat = case["physics"]["heat"]
        del heat["conductivity"]
        heat["volumetric_heat_capacity"] = "rho_cp_eff"
        heat["source"] = heat["source"].split(" - h_total")[0]
        heat["lumped"] = LUMPED
    quantities = Simulation.from_case(case, base_dir=CASES).run().quantities
    return {name: np.asarray(values) for name, values in quantities.items()}


@pytest.fixture(scope="module")
def runs() -> dict[str, dict[str, np.ndarray]]:
    return {"field": short_discharge(lumped=False), "lumped": short_discharge(lumped=True)}


def test_uniform_cell_has_the_lumped_temperature(runs):
    field, lumped = runs["field"], runs["lumped"]
    assert field["time_s"][-1] == lumped["time_s"][-1] == 600
    # the voltage limit places the steps: a row of one run is read at the other's times
    temperature = np.interp(field["time_s"], lumped["time_s"], lumped["temperature_K"])
    rise = temperature - temperature[0]
    assert rise[-1] > 3  # the heat is there to see
    for column in ("max_temperature_K", "min_temperature_K"):
        assert np.abs(field[column] - temperature).max() < 1e-3 * rise[-1], column
    voltage = np.interp(field["time_s"], lumped["time_s"], lumped["voltage_V"])
    assert np.abs(field["voltage_V"] - voltage).max() < 1e-5


def test_the_temperature_couples_back(runs):
    """The warmer cell's kinetics and transport lose less voltage than at T_amb: the voltage
    with heat lies above the isothermal cell's (heat sources off, same everything else)."""
    case = tomllib.loads(CASE.read_text())
    case["mesh"]["parameters"] |= SMALL | {"height_cells": 2}
    case["protocol"]["steps"] = ["Discharge at 1C for 10 minutes"]
    case["output"] |= {"fields": [], "xdmf": False, "probes": {}}
    heat = case["physics"]["heat"]
    heat["heat_sources"], heat["source"] = [], 0
    isothermal = Simulation.from_case(case, base_dir=CASES).run().quantities
    assert np.ptp(isothermal["max_temperature_K"]) < 1e-9
    warm = runs["field"]
    voltage = np.interp(isothermal["time_s"], warm["time_s"], warm["voltage_V"])
    gain = voltage - np.asarray(isothermal["voltage_V"])
    assert gain[-1] > 1e-3
    assert np.all(gain[1:] > -1e-6)


def test_the_particles_read_the_local_temperature():
    """Narrow tabs: the particles at the local temperature (its extension along r) against
    particles at T_amb; both conserve the lithium to round-off."""
    local = short_discharge(lumped=False, mesh=NARROW)
    ambient = short_discharge(lumped=False, particles_at="T_amb", mesh=NARROW)
    for run in (local, ambient):
        lithium = run["cyclable_lithium_mol"]
        assert np.abs(lithium - lithium[0]).max() < 1e-12 * lithium[0]
    assert local["max_temperature_K"][-1] > 306  # 8 K above T_amb after 10 minutes
    voltage = np.interp(local["time_s"], ambient["time_s"], ambient["voltage_V"])
    gain = local["voltage_V"] - voltage
    assert 0.015 < gain[-1] < 0.03  # faster diffusion in the warm particles (21.6 mV)
    assert np.all(gain >= -1e-6)


@pytest.mark.parametrize("arrhenius", [False, True])
def test_an_extension_only_where_the_temperature_is_read(arrhenius):
    """Chen2020's D_s_n(theta, T) ignores T: its particles need no extension of the plane's
    temperature (no unknowns for nothing); with an Arrhenius body they read it."""
    case = tomllib.loads(CASE.read_text())
    case["mesh"]["parameters"] |= SMALL | {"height_cells": 2}
    if arrhenius:
        case["parameters"] |= {"D_s_n": "3.3e-14" + ARRHENIUS}
    sim = Simulation.from_case(case, base_dir=CASES)
    sim.build()
    assert ("temperature_negative" in sim.store) is arrhenius
    assert "temperature_positive" not in sim.store
    assert "temperature_parent" not in sim.store
