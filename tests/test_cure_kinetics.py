"""Cure kinetics (reaction_kinetics conversions) through the framework (case -> run -> results).

- Isothermal cure at three temperatures against scipy's solve_ivp (rtol 1e-12) within 1e-5, for
  the autocatalytic Kamal-Sourour law (Bogetti & Gillespie's polyester) and the piecewise law of
  Hercules 3501-6 (Lee, Loos & Springer); BDF2's observed order is 2.
- Diffusion control: DiBenedetto's Tg(alpha) stops the cure where Tg(alpha) passes T.
- Adiabatic cure of a block: the temperature rise is the released heat over the heat capacity,
  to 1e-8 relative at every time (the heat joins heat through the monolithic Newton solve).
- Bad input: one message naming the case path, what was expected and the fix.
"""

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from app.errors import CaseError
from app.simulation import Simulation

GAS_CONSTANT = 8.31446261815324

# Bogetti & Gillespie 1992, E-glass/polyester (CURE_MODEL.md): k1 = 0, so cure starts at alpha_0.
POLYESTER = {"A": 6.167e20, "E": 167.4e3, "m": 0.524, "n": 1.476, "alpha0": 0.01}
KAMAL_SOUROUR = {
    "law": "kamal_sourour",
    "rate_constants": [
        {"pre_exponential": 0.0},
        {"pre_exponential": "6.167e20 1/s", "activation_energy": "167.4 kJ/mol"},
    ],
    "exponents": [POLYESTER["m"], POLYESTER["n"]],
    "initial": POLYESTER["alpha0"],
}
# Hercules 3501-6 (Lee, Loos & Springer 1982), A per minute as published.
EPOXY = {"A": (2.101e9 / 60, -2.014e9 / 60, 1.960e5 / 60), "E": (80.7e3, 77.8e3, 56.6e3)}
LEE_LOOS_SPRINGER = {
    "law": "lee_loos_springer",
    "rate_constants": [
        {"pre_exponential": "2.101e9 1/min", "activation_energy": "80.7 kJ/mol"},
        {"pre_exponential": "-2.014e9 1/min", "activation_energy": "77.8 kJ/mol"},
        {"pre_exponential": "1.960e5 1/min", "activation_energy": "56.6 kJ/mol"},
    ],
}


def batch(conversion: dict, temperature: float, end: float, steps: int, scheme="bdf2") -> dict:
    """One cell held at a temperature: a batch reactor (a DSC sample)."""
    kinetics = {
        "type": "reaction_kinetics",
        "temperature": temperature,
        "conversions": {"degree_of_cure": conversion},
    }
    return {
        "mesh": {"type": "interval", "cells": [1]},
        "physics": {"cure": kinetics},
        "time": {"scheme": scheme, "end": end, "dt": end / steps},
        "output": {"xdmf": False},
    }


def run(case: dict) -> tuple[np.ndarray, np.ndarray]:
    q = Simulation.from_case(case).run().quantities
    return np.asarray(q["time_s"]), np.asarray(q["cure_max_degree_of_cure"])


def arrhenius(A: float, E: float, T: float) -> float:
    return A * math.exp(-E / (GAS_CONSTANT * T))


def kamal_sourour_reference(T: float, times: np.ndarray) -> np.ndarray:
    k = arrhenius(POLYESTER["A"], POLYESTER["E"], T)
    m, n = POLYESTER["m"], POLYESTER["n"]

    def rate(t, a):
        return [k * max(a[0], 0.0) ** m * max(1 - a[0], 0.0) ** n]

    solution = solve_ivp(
        rate, (0, times[-1]), [POLYESTER["alpha0"]], "Radau", times, rtol=1e-12, atol=1e-14
    )
    return solution.y[0]


def lee_loos_springer_reference(T: float, times: np.ndarray) -> np.ndarray:
    """solve_ivp of the law with its jump at alpha = 0.3 spread over 1e-3 (the default)."""
    k1, k2, k3 = (arrhenius(A, E, T) for A, E in zip(EPOXY["A"], EPOXY["E"], strict=True))

    def rate(t, a):
        early = (k1 + k2 * a[0]) * (1 - a[0]) * (0.47 - a[0])
        blend = min(max((a[0] - 0.3) / 1e-3, 0.0), 1.0)
        return [early + blend * (k3 * (1 - a[0]) - early)]

    return solve_ivp(rate, (0, times[-1]), [0.0], "Radau", times, rtol=1e-12, atol=1e-14).y[0]


# Per law: conversion, reference, (temperature K, end s) x 3, steps within 1e-5.
LAWS = {
    "kamal_sourour": (
        KAMAL_SOUROUR,
        kamal_sourour_reference,
        [(360.0, 13500.0), (370.0, 3000.0), (380.0, 700.0)],
        1500,
    ),
    "lee_loos_springer": (
        LEE_LOOS_SPRINGER,
        lee_loos_springer_reference,
        [(400.0, 9000.0), (420.0, 4000.0), (450.0, 900.0)],
        6000,
    ),
}


@pytest.mark.parametrize("law", sorted(LAWS))
def test_isothermal_cure_matches_solve_ivp(law: str):
    conversion, reference, runs, steps = LAWS[law]
    for temperature, end in runs:
        times, alpha = run(batch(conversion, temperature, end, steps))
        assert alpha[-1] > 0.6, (temperature, alpha[-1])  # well past the switch / the peak
        error = np.max(np.abs(alpha - reference(temperature, times)))
        assert error < 1e-5, (temperature, error)


def test_bdf2_order_is_two():
    """Halving dt divides the largest error by 4 (Kamal-Sourour, 370 K)."""
    errors = []
    for steps in (100, 200, 400):
        times, alpha = run(batch(KAMAL_SOUROUR, 370.0, 3000.0, steps))
        errors.append(np.max(np.abs(alpha - kamal_sourour_reference(370.0, times))))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 2) < 0.15), orders
    times, alpha = run(batch(KAMAL_SOUROUR, 370.0, 3000.0, 100, scheme="bdf1"))
    assert np.max(np.abs(alpha - kamal_sourour_reference(370.0, times))) > 5 * errors[0]


def test_diffusion_control_stops_cure_at_vitrification():
    """Cured at 380 K, a resin whose Tg rises from 250 K to 450 K (DiBenedetto, lambda = 0.5)
    follows solve_ivp of the law times 1 / (1 + exp(C (Tg(alpha) - T - offset))) and stalls
    once Tg(alpha) has risen past T + offset, while the same resin without diffusion control
    cures fully."""
    glass = {"uncured": 250.0, "cured": 450.0, "ratio": 0.5, "sharpness": 0.5, "offset": 10.0}
    k = arrhenius(POLYESTER["A"], POLYESTER["E"], 380.0)
    m, n = POLYESTER["m"], POLYESTER["n"]

    def tg(a):
        return 250.0 + 200.0 * 0.5 * a / (1 - 0.5 * a)

    def rate(t, a):
        factor = 1 / (1 + math.exp(0.5 * (tg(a[0]) - 380.0 - 10.0)))
        return [k * a[0] ** m * (1 - a[0]) ** n * factor]

    results = {}
    for name, extra in (("free", {}), ("controlled", {"glass_transition": glass})):
        results[name] = run(batch(KAMAL_SOUROUR | extra, 380.0, 10000.0, 1000))
    times, alpha = results["controlled"]
    exact = solve_ivp(rate, (0, times[-1]), [0.01], "Radau", times, rtol=1e-12, atol=1e-14).y[0]
    assert np.max(np.abs(alpha - exact)) < 5e-3  # BDF2 at dt = 10 s (measured 2.8e-3)
    # vitrified: Tg has risen past T + offset, a few 1/C beyond it (measured 12 K = 6/C)
    assert 0.0 < tg(alpha[-1]) - 390.0 < 20.0
    assert alpha[-1] < 0.95
    assert results["free"][1][-1] > 0.99


def test_adiabatic_block_rise_is_released_heat_over_capacity():
    """An insulated block (no boundary conditions): rho c_p (T - T0) = H (alpha - alpha0) at
    every time, H = rho_r (1 - V_f) H_r, to 1e-8 relative."""
    rho, cp, heat_release = 1890.0, 1260.0, 1200.0 * (1 - 0.54) * 77.5e3
    case = batch(KAMAL_SOUROUR | {"heat_release": heat_release}, 370.0, 3000.0, 60)
    kinetics = case["physics"]["cure"]
    del kinetics["temperature"]
    kinetics["fields"] = {"heat_source": "cure_heat"}
    case["mesh"] = {"type": "rectangle", "length": [0.02, 0.01], "cells": [2, 1]}
    case["physics"]["heat"] = {
        "density": rho,
        "specific_heat": cp,
        "initial": 370.0,
        "heat_sources": ["cure_heat"],
    }
    q = Simulation.from_case(case).run().quantities
    rise = np.asarray(q["max_temperature_K"]) - 370.0
    released = heat_release * (np.asarray(q["cure_max_degree_of_cure"]) - 0.01) / (rho * cp)
    assert rise[-1] > 10.0  # the exotherm heats the block by ~ H/(rho c_p) = 18 K
    assert np.max(np.abs(rise - released) / released[-1]) < 1e-8
    # uniform: no point lags another
    assert np.allclose(q["min_temperature_K"], q["max_temperature_K"], rtol=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"rate_constants": KAMAL_SOUROUR["rate_constants"][:1]},
            "conversions.degree_of_cure: law = 'kamal_sourour' takes 2 rate_constants, not 1",
        ),
        ({"exponents": None}, "law = 'kamal_sourour' needs exponents = [m, n]"),
        ({"exponents": [-0.5, 1.0]}, "exponents m, n must be >= 0, got [-0.5, 1.0]"),
        ({"initial": 0.0}, "never starts from alpha = 0: give initial > 0"),
        (
            {"glass_transition": {"uncured": 400, "cured": 300, "ratio": 0.5, "sharpness": 1}},
            "cured (300 K) must exceed uncured (400 K)",
        ),
        (
            {"heat_release": "3 W"},
            "heat_release",
        ),
    ],
)
def test_bad_conversions_are_one_case_error(change: dict, message: str):
    conversion = {k: v for k, v in (KAMAL_SOUROUR | change).items() if v is not None}
    with pytest.raises(CaseError, match=r"^physics\.cure") as error:
        Simulation.from_case(batch(conversion, 370.0, 10.0, 1))
    assert message in str(error.value)


def test_until_min_degree_of_cure_ends_the_run_at_the_crossing():
    """``events = [{ when = "min(degree_of_cure) > 0.95" }]`` finds the column of the
    instance that reports it (cure_min_degree_of_cure) and stops where alpha crosses 0.95."""
    case = batch(KAMAL_SOUROUR, 380.0, 5000.0, 500)
    case["events"] = [{"when": "min(degree_of_cure) > 0.95", "tolerance": 1e-3}]
    times, alpha = run(case)
    assert alpha[-2] < 0.95 <= alpha[-1] < 0.95 + 1e-6  # located within the event's tolerance
    exact = kamal_sourour_reference(380.0, times)[-1]
    assert exact == pytest.approx(0.95, abs=1e-3)  # BDF2 at dt = 10 s


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("min(degree_of_cur) > 0.95", "no quantity column matches 'min(degree_of_cur)'"),
        ("min(degree_of_cure) > 0.95 K", "dimensionless"),
    ],
)
def test_a_reduction_that_matches_no_column_is_a_case_error(when: str, message: str):
    case = batch(KAMAL_SOUROUR, 380.0, 10.0, 1)
    case["events"] = [{"when": when}]
    with pytest.raises(CaseError) as error:
        Simulation.from_case(case).run()
    assert message in str(error.value)


def test_a_steady_run_refuses_a_degree_of_cure():
    """A steady solve drops the time derivative, so d(alpha)/dt = rate becomes rate = 0, which
    picks an end state (or none: alpha = -0.0096 was served) rather than a cure history."""
    case = batch(KAMAL_SOUROUR, 380.0, 5000.0, 500)
    case["time"] = {"scheme": "steady"}
    with pytest.raises(CaseError) as error:
        Simulation.from_case(case).run()
    assert error.value.path == "physics.cure.conversions.degree_of_cure"
    assert "a steady run has no history for it" in str(error.value)
    assert "set time.scheme (bdf1, bdf2 or cn), time.end and time.dt" in str(error.value)


def test_bdf2_does_not_cure_beyond_complete():
    # Kamal-Sourour's rate is 0 at alpha = 1, but BDF2 extrapolates from two levels: at 470 K
    # with growing steps a step landed at alpha = 1.07, an exact root of its equations (the
    # rate is 0 there), and the run 'completed' with more than all of the resin cured
    case = batch(KAMAL_SOUROUR, 470.0, 3600.0, 120)
    case["time"]["adaptive"] = {"dt_max": 60.0}
    result = Simulation.from_case(case).run()
    alpha = result.quantities["cure_max_degree_of_cure"]
    assert alpha.max() <= 1.0 + 1e-9
    assert alpha[-1] == pytest.approx(1.0, abs=1e-6)
    assert result.rejected > 0  # the steps that overshot, retried shorter
