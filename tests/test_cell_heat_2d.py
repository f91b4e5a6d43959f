"""A distributed temperature heated by a porous electrode on a 2D mesh (heat on the parent
mesh, sources from the plug-ins: Joule heat of the solid and the electrolyte, reaction heat).

- Energy: the heat generated is the electrical power the electrode dissipates, I times the
  voltage across it (U = 0): Joule heat of both phases plus reaction heat, within 1e-3 on 40
  cells (the sources are integrated exactly, the potentials' equations at their quadrature).
- The stored heat's BDF rate equals generated minus what leaves through the cooled side.
- The 2D electrode (uniform across its height) gives the 1D temperatures (to 1e-5).
"""

import tomllib
from pathlib import Path

import numpy as np
import pytest

from app.simulation import Simulation

CASE = Path(__file__).parent.parent / "cases" / "porous_electrode.toml"
CURRENT, HEIGHT = 20.0, 20e-6  # A/m^2 entering the electrolyte, m (the 2D mesh's y)


def heated_electrode(dimension: int) -> dict:
    case = tomllib.loads(CASE.read_text())
    if dimension == 2:
        case["mesh"] = {"type": "rectangle", "length": [100e-6, HEIGHT], "cells": [40, 3]}
    physics = case["physics"]
    for instance, source in (("solid", "q_s"), ("electrolyte", "q_e")):
        physics[instance]["joule_heating"] = True
        physics[instance]["fields"]["heat_source"] = source
    physics["kinetics"]["fields"] = {"heat_source": "q_rxn"}
    physics["heat"] = {
        "conductivity": 0.5,
        "volumetric_heat_capacity": 2e3,  # small: a visible rise in 50 ms
        "initial": 298.15,
        "heat_sources": ["q_s", "q_e", "q_rxn"],
        "boundaries": {"right": {"type": "convection", "h": 10, "ambient": 298.15}},
    }
    case["time"] = {"scheme": "bdf2", "end": 0.05, "dt": 0.005}
    case["solver"] = {"newton": {"rtol": 1e-12, "atol": 1e-12}}
    return case


@pytest.fixture(scope="module")
def runs() -> dict[int, dict]:
    return {
        dimension: {
            k: np.asarray(v)
            for k, v in Simulation.from_case(heated_electrode(dimension)).run().quantities.items()
        }
        for dimension in (1, 2)
    }


def test_heat_generated_is_the_power_dissipated(runs):
    q = runs[2]
    drop = np.maximum(
        np.abs(q["electrolyte_max_potential_V"]), np.abs(q["electrolyte_min_potential_V"])
    )
    power = CURRENT * drop * HEIGHT  # W per metre of depth
    assert q["heat_generated_W_per_m"] == pytest.approx(power, rel=1e-3)


def test_stored_heat_follows_generated_minus_cooled(runs):
    q = runs[2]
    energy, dt = q["stored_energy_J_per_m"], q["dt_s"]
    net = q["heat_generated_W_per_m"] - q["heat_flow_right_W_per_m"]
    assert q["heat_flow_right_W_per_m"][-1] > 0.1 * q["heat_generated_W_per_m"][-1]
    for n in range(1, len(energy)):
        if n == 1:
            rate = (energy[n] - energy[n - 1]) / dt[n]
        else:
            w = dt[n] / dt[n - 1]
            rate = (1 + 2 * w) / (1 + w) * energy[n] - (1 + w) * energy[n - 1]
            rate = (rate + w**2 / (1 + w) * energy[n - 2]) / dt[n]
        assert rate == pytest.approx(net[n], rel=1e-8)


def test_the_2d_electrode_has_the_1d_temperatures(runs):
    flat, plane = runs[1], runs[2]
    for column in ("max_temperature_K", "min_temperature_K"):
        rise_1d, rise_2d = flat[column] - 298.15, plane[column] - 298.15
        assert rise_2d == pytest.approx(rise_1d, rel=1e-5, abs=1e-12)
    assert plane["max_temperature_K"][-1] - 298.15 > 1e-3
