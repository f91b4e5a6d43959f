"""heat with ``lumped``: one temperature for a whole body, heated by the integral of its
sources over the mesh times a cross-section and cooled by convection through an area.

- Constant heating: T(t) = T_amb + (Q / hA)(1 - exp(-t hA / (rho c V))) on a 1D mesh (the
  cross-section an area) and a 2D mesh (a depth), second order in dt under BDF2.
- A source that grows with the temperature (Arrhenius) is solved with T in one Newton system:
  the steady state balances heating and cooling, Q(T*) = hA (T* - T_amb).
- 1 and 2 MPI ranks agree; settings of a conducting body are refused with the reason.
"""

import math

import numpy as np
import pytest
import tomli_w

from app.errors import CaseError
from app.simulation import Simulation
from tests.conftest import assert_same_quantities, runs_on_ranks

LENGTH, SOURCE = 0.1, 5e4  # m, W/m^3
RHO_C, VOLUME, AREA, H, AMBIENT = 2e6, 2e-3, 0.05, 20.0, 300.0
HEATING = SOURCE * LENGTH * 0.01  # W: the source over 0.1 m times a 0.01 m^2 cross-section
TAU = RHO_C * VOLUME / (H * AREA)  # s


def body(dimension: int = 1, dt: float = 40.0, end: float = TAU, source=SOURCE) -> dict:
    if dimension == 1:
        mesh = {"type": "interval", "length": [LENGTH], "cells": [4]}
        cross_section = 0.01  # m^2
    else:
        mesh = {"type": "rectangle", "length": [LENGTH, 0.01], "cells": [4, 2]}
        cross_section = 1.0  # m of depth
    lumped = {
        "volume": VOLUME,
        "cross_section": cross_section,
        "cooling_area": AREA,
        "h": H,
        "ambient": AMBIENT,
    }
    heat = {
        "volumetric_heat_capacity": RHO_C,
        "source": source,
        "initial": AMBIENT,
        "lumped": lumped,
    }
    return {
        "mesh": mesh,
        "physics": {"heat": heat},
        "time": {"scheme": "bdf2", "end": end, "dt": dt},
        "solver": {"newton": {"rtol": 1e-12, "atol": 1e-10}},
    }


def rise_error(case: dict) -> tuple[float, dict]:
    q = Simulation.from_case(case).run().quantities
    exact = HEATING / (H * AREA) * (1 - np.exp(-np.asarray(q["time_s"]) / TAU))
    return float(np.max(np.abs(np.asarray(q["temperature_K"]) - AMBIENT - exact))), q


@pytest.mark.parametrize("dimension", [1, 2])
def test_constant_heating_against_the_closed_form(dimension: int):
    coarse, q = rise_error(body(dimension, dt=80.0))
    fine, _ = rise_error(body(dimension, dt=40.0))
    rise = HEATING / (H * AREA) * (1 - math.exp(-1))
    assert q["temperature_K"][-1] - AMBIENT == pytest.approx(rise, rel=1e-3)
    assert q["heat_generated_W"][-1] == pytest.approx(HEATING, rel=1e-12)
    cooled = H * AREA * (q["temperature_K"][-1] - AMBIENT)
    assert q["heat_flow_cooling_W"][-1] == pytest.approx(cooled, rel=1e-12)
    stored = RHO_C * VOLUME * (q["temperature_K"][-1] - 293.15)  # from heat's reference
    assert q["stored_energy_J"][-1] == pytest.approx(stored, rel=1e-12)
    assert 3.5 < coarse / fine < 4.5, (coarse, fine)


def test_a_source_that_follows_the_temperature_is_solved_with_it():
    """q = q0 exp(200 K (1/T_amb - 1/T)): the steady temperature solves
    L X q(T*) = hA (T* - T_amb), found here by bisection."""
    source = f"{SOURCE}*exp(200*(1/{AMBIENT} - 1/temperature))"
    case = body(end=12 * TAU, dt=100.0, source=source)
    case["time"]["adaptive"] = {"dt_max": 2000.0}
    q = Simulation.from_case(case).run().quantities

    def imbalance(t: float) -> float:
        return HEATING * math.exp(200 * (1 / AMBIENT - 1 / t)) - H * AREA * (t - AMBIENT)

    low, high = AMBIENT, AMBIENT + 1000.0
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if imbalance(middle) > 0 else (low, middle)
    assert q["temperature_K"][-1] == pytest.approx(low, abs=1e-3)
    assert q["heat_generated_W"][-1] > 1.05 * HEATING  # the heating did follow T


def test_two_ranks_give_the_same_temperature(tmp_path):
    case = tmp_path / "body.toml"
    case.write_text(tomli_w.dumps(body(2, dt=200.0)))
    assert_same_quantities(*runs_on_ranks(case, tmp_path), rtol=1e-10)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("conductivity", 2.0, "a lumped temperature has one value"),
        ("boundaries", {"left": {"type": "temperature", "value": 300}}, "cooling_area"),
        ("density", 2.0, "volumetric_heat_capacity replaces density"),
    ],
)
def test_settings_of_a_conducting_body_are_refused(setting: str, value, message: str):
    case = body()
    case["physics"]["heat"][setting] = value
    with pytest.raises(CaseError) as caught:
        Simulation.from_case(case).build()
    assert message in str(caught.value)
    assert "physics.heat" in str(caught.value)
