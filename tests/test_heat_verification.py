"""Verification of the heat plug-in through the whole framework (case dict -> run -> fields).

- Manufactured solutions: spatial L2 rates 2 (P1) and 3 (P2), for a linear and a
  temperature-dependent conductivity (the Newton path), in 2D and in 3D; time order 1 (BDF1)
  and 2 (BDF2).
- The slab series solution and the semi-infinite solid (shared/VALIDATION.md A1), the latter
  also from a case written in mm, min, g/cm^3 and degC.
- Discrete energy conservation: stored energy changes by exactly the boundary flows and sources
  the quantities report, for BDF1 and for variable-step BDF2; for Crank-Nicolson by their
  trapezoidal rule, to second order.
"""

import math

import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI

from app.expressions import parse
from app.simulation import Simulation
from tests.conftest import assert_same_quantities

SINE = "sin(pi*x)*sin(pi*y)"
EXACT_STEADY = f"1 + {SINE}"
# -div(k grad u) for u = 1 + s, s = sin(pi x) sin(pi y):
#   k = 2:           4 pi^2 s
#   k = 1 + u^2:     2 pi^2 s (1 + u^2) - 2 u |grad s|^2,
#                    |grad s|^2 = pi^2 (cos^2(pi x) sin^2(pi y) + sin^2(pi x) cos^2(pi y))
GRAD2 = "(cos(pi*x)**2*sin(pi*y)**2 + sin(pi*x)**2*cos(pi*y)**2)"
U = f"(1 + {SINE})"
SOURCES = {
    "2": f"4*pi**2*{SINE}",
    "1 + temperature**2": f"2*pi**2*{SINE}*(1 + {U}**2) - 2*pi**2*{U}*{GRAD2}",
}


def l2_error(sim: Simulation, exact: str, field: str = "temperature") -> float:
    """L2 norm of (solution - exact), with a high-degree quadrature."""
    ctx = sim.context("heat")
    u = sim.store[field].function
    reference = parse(exact).to_ufl(ctx.namespace())
    dx = ufl.dx(domain=u.function_space.mesh, metadata={"quadrature_degree": 10})
    local = fem.assemble_scalar(fem.form((u - reference) ** 2 * dx))
    return math.sqrt(MPI.COMM_WORLD.allreduce(local, op=MPI.SUM))


def slope(steps: list[float], errors: list[float]) -> float:
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


def steady_case(cells: int, degree: int, conductivity: str) -> dict:
    return {
        "mesh": {"type": "rectangle", "cells": [cells, cells]},
        "physics": {
            "heat": {
                "degree": degree,
                "conductivity": conductivity,
                "source": SOURCES[conductivity],
                "initial": 1.0,
                "boundaries": {
                    side: {"type": "temperature", "value": EXACT_STEADY}
                    for side in ("left", "right", "bottom", "top")
                },
            }
        },
    }


@pytest.mark.parametrize("conductivity", list(SOURCES))
@pytest.mark.parametrize(("degree", "meshes"), [(1, (8, 16, 32)), (2, (4, 8, 16))])
def test_spatial_convergence_rate(degree: int, meshes: tuple, conductivity: str):
    errors = []
    for cells in meshes:
        sim = Simulation.from_case(steady_case(cells, degree, conductivity))
        sim.run()
        errors.append(l2_error(sim, EXACT_STEADY))
    rate = slope([1 / n for n in meshes], errors)
    assert abs(rate - (degree + 1)) < 0.1, (rate, errors)
    if conductivity != "2":
        assert sim.describe_solvers().count("nonlinear, Newton") == 1


# 3D, u = 1 + s, s = sin(pi x) sin(pi y) sin(pi z), k = 1 + u^2:
#   -div(k grad u) = 3 pi^2 s (1 + u^2) - 2 u |grad s|^2
SINE_3D = "sin(pi*x)*sin(pi*y)*sin(pi*z)"
U_3D = f"(1 + {SINE_3D})"
GRAD2_3D = (
    "(cos(pi*x)**2*sin(pi*y)**2*sin(pi*z)**2 + sin(pi*x)**2*cos(pi*y)**2*sin(pi*z)**2"
    " + sin(pi*x)**2*sin(pi*y)**2*cos(pi*z)**2)"
)
SOURCE_3D = f"3*pi**2*{SINE_3D}*(1 + {U_3D}**2) - 2*pi**2*{U_3D}*{GRAD2_3D}"


def test_spatial_convergence_rate_in_3d():
    """The nonlinear conductivity on a unit cube (P1, 6-12-24 cells a side): L2 rate 2 within
    0.1 (measured 1.96)."""
    sides = ("left", "right", "bottom", "top", "back", "front")
    errors = []
    for cells in (6, 12, 24):
        heat = {
            "conductivity": "1 + temperature**2",
            "source": SOURCE_3D,
            "initial": 1.0,
            "boundaries": {side: {"type": "temperature", "value": U_3D} for side in sides},
        }
        case = {"mesh": {"type": "box", "cells": [cells] * 3}, "physics": {"heat": heat}}
        sim = Simulation.from_case(case)
        sim.run()
        errors.append(l2_error(sim, U_3D))
    rate = slope([1 / 6, 1 / 12, 1 / 24], errors)
    assert abs(rate - 2) < 0.1, (rate, errors)


# T = (1 + x^2)(1 + sin t) lies in P2 at every t, so with P2 the error is the time error alone.
EXACT_TRANSIENT = "(1 + x**2)*(1 + sin(t))"
SOURCE_TRANSIENT = "(1 + x**2)*cos(t) - 2*(1 + sin(t))"


def transient_case(scheme: str, dt: float) -> dict:
    return {
        "mesh": {"type": "interval", "cells": [4]},
        "physics": {
            "heat": {
                "degree": 2,
                "source": SOURCE_TRANSIENT,
                "initial": EXACT_TRANSIENT,
                "boundaries": {
                    side: {"type": "temperature", "value": EXACT_TRANSIENT}
                    for side in ("left", "right")
                },
            }
        },
        "time": {"scheme": scheme, "end": 1.0, "dt": dt},
        "output": {"interval": 1.0},
    }


@pytest.mark.parametrize(("scheme", "order"), [("bdf1", 1), ("bdf2", 2)])
def test_time_order(scheme: str, order: int):
    steps = [0.1, 0.05, 0.025, 0.0125]
    errors = []
    for dt in steps:
        sim = Simulation.from_case(transient_case(scheme, dt))
        sim.run()
        errors.append(l2_error(sim, EXACT_TRANSIENT))
    assert abs(slope(steps, errors) - order) < 0.1, errors


def test_slab_series_solution_at_fourier_0_1(cases):
    """VALIDATION.md A1: u(L/2) at Fo = 0.1 is 0.474487 (series solution)."""
    sim = Simulation.from_case(cases / "slab_cooling.toml")
    result = sim.run()
    T = result.fields["temperature"]
    x = T.function_space.tabulate_dof_coordinates()[:, 0]
    centre = np.isclose(x, 0.5)
    assert centre.any()
    value = T.x.array[centre][0]
    assert abs(value / 0.474487 - 1) < 5e-3, value
    assert result.quantities["time_s"][-1] == pytest.approx(0.1)


def series_solution(x: float, fourier: float, terms: int = 200) -> float:
    n = np.arange(1, 2 * terms, 2)
    return float(
        np.sum(4 / (n * np.pi) * np.sin(n * np.pi * x) * np.exp(-(n**2) * np.pi**2 * fourier))
    )


# A steel bar (k = 45 W/(m K), rho c_p = 4.5e6 J/(m^3 K): alpha = 1e-5 m^2/s) 0.3 m long, its
# end stepped from 20 to 100 degC: semi-infinite for a minute (erfc(0.3/(2 sqrt(alpha t))) ~ 1e-12).
SEMI_ALPHA, SEMI_T = 1e-5, 60.0
SEMI_WIDTH = 2 * math.sqrt(SEMI_ALPHA * SEMI_T)  # x/(2 sqrt(alpha t)) = 1 there
SEMI_POINTS = {"half": 0.5, "one": 1.0}  # probe -> x/(2 sqrt(alpha t))


def semi_infinite_case(si: bool) -> dict:
    """The bar in SI numbers, or the same bar in mm, min, ms, g/cm^3, J/(g K), W/(cm K), degC."""
    if si:
        heat = {"conductivity": 45.0, "density": 7500.0, "specific_heat": 600.0}
        heat |= {"initial": 293.15, "reference": 293.15}
        heat["boundaries"] = {"left": {"type": "temperature", "value": 373.15}}
        length, end, dt, interval = 0.3, SEMI_T, 0.25, SEMI_T
        probes = {name: [eta * SEMI_WIDTH] for name, eta in SEMI_POINTS.items()}
    else:
        heat = {"conductivity": "0.45 W/(cm*K)", "density": "7.5 g/cm^3"}
        heat |= {"specific_heat": "0.6 J/(g*K)", "initial": "20 degC", "reference": "20 degC"}
        heat["boundaries"] = {"left": {"type": "temperature", "value": "100 degC"}}
        length, end, dt, interval = "300 mm", "1 min", "250 ms", "1 min"
        probes = {name: [f"{eta * SEMI_WIDTH * 1e3!r} mm"] for name, eta in SEMI_POINTS.items()}
    return {
        "mesh": {"type": "interval", "length": [length], "cells": [300]},
        "physics": {"heat": heat},
        "time": {"scheme": "bdf2", "end": end, "dt": dt},
        "output": {"interval": interval, "probes": probes},
    }


def test_semi_infinite_solid_in_any_units():
    """A1: (T - T_i)/(T_s - T_i) = erfc(x/(2 sqrt(alpha t))) = 0.479500 and 0.157299 where the
    argument is 1/2 and 1, to 1e-3 (measured 5e-5 and 1.4e-5); the heat entering,
    k (T_s - T_i)/sqrt(pi alpha t), and the heat stored, 2 k (T_s - T_i) sqrt(t/(pi alpha)), to
    0.1 % (measured 4e-5 and 3e-5). The case written in other units runs the same numbers:
    every column equal to 1e-9."""
    si = Simulation.from_case(semi_infinite_case(si=True)).run().quantities
    other = Simulation.from_case(semi_infinite_case(si=False)).run().quantities
    assert_same_quantities(si, other, rtol=1e-9)
    assert si["time_s"][-1] == pytest.approx(SEMI_T)
    rise = 80.0
    for name, reference in (("half", 0.479500), ("one", 0.157299)):
        value = (si[f"{name}_temperature_K"][-1] - 293.15) / rise
        assert value == pytest.approx(reference, abs=1e-3), name
    k = 45.0
    entering = k * rise / math.sqrt(math.pi * SEMI_ALPHA * SEMI_T)
    assert -si["heat_flow_left_W_per_m2"][-1] == pytest.approx(entering, rel=1e-3)
    stored = 2 * k * rise * math.sqrt(SEMI_T / (math.pi * SEMI_ALPHA))
    assert si["stored_energy_J_per_m2"][-1] == pytest.approx(stored, rel=1e-3)


def test_slab_series_reference_values():
    """The reference numbers themselves (guards the test above against a wrong constant)."""
    assert series_solution(0.5, 0.05) == pytest.approx(0.772312, abs=1e-6)
    assert series_solution(0.5, 0.10) == pytest.approx(0.474487, abs=1e-6)
    assert series_solution(0.5, 0.20) == pytest.approx(0.176867, abs=1e-6)


def balance_case(scheme: str, adaptive: bool) -> dict:
    """A plate heated on one side, cooled by convection and radiation, held at a varying
    temperature on another, with an internal source: flows through natural boundaries are the
    prescribed fluxes, through the fixed-temperature side the reaction, so the balance must close
    to solver tolerance. (Integrands are polynomials: quadrature is exact.)"""
    case = {
        "mesh": {"type": "rectangle", "length": [0.2, 0.1], "cells": [12, 6]},
        "physics": {
            "heat": {
                "conductivity": "45*(1 - 3e-4*(temperature - 293.15))",
                "density": 7850,
                "specific_heat": 470,
                "source": "4e8*x*(0.2 - x)*y",
                "initial": 293.15,
                "boundaries": {
                    "left": {"type": "temperature", "value": "293.15 + 20*sin(t/100)"},
                    "bottom": {"type": "flux", "value": "4e4*min(1, t/100)"},
                    "top": {"type": "convection", "h": 25, "ambient": 293.15},
                    "right": {"type": "radiation", "emissivity": 0.8, "ambient": 293.15},
                },
            }
        },
        "time": {"scheme": scheme, "end": 600.0, "dt": 20.0},
        "solver": {"newton": {"rtol": 1e-12, "atol": 1e-9}},
    }
    if adaptive:
        case["time"]["adaptive"] = {"dt_max": 120.0}
    return case


@pytest.mark.parametrize(("scheme", "adaptive"), [("bdf1", False), ("bdf2", True)])
def test_discrete_energy_balance(scheme: str, adaptive: bool):
    result = Simulation.from_case(balance_case(scheme, adaptive)).run()
    q = result.quantities
    energy, dt = q["stored_energy_J_per_m"], q["dt_s"]
    net = q["heat_generated_W_per_m"] - sum(
        q[f"heat_flow_{side}_W_per_m"] for side in ("left", "right", "bottom", "top")
    )
    # BDF weights of every step, as the scheme applies them (first step BDF1).
    residuals = []
    for n in range(1, len(energy)):
        if scheme == "bdf1" or n == 1:
            rate = (energy[n] - energy[n - 1]) / dt[n]
        else:
            w = dt[n] / dt[n - 1]
            rate = (
                (1 + 2 * w) / (1 + w) * energy[n]
                - (1 + w) * energy[n - 1]
                + w**2 / (1 + w) * energy[n - 2]
            ) / dt[n]
        residuals.append(abs(rate - net[n]) / max(abs(net[n]), 1.0))
    assert max(residuals) < 1e-8, residuals
    assert len(set(np.round(dt[1:], 9))) > 1 or not adaptive  # adaptive dt really adapted
    assert q["max_temperature_K"][-1] > 300


def test_crank_nicolson_energy_balance_is_trapezoidal():
    """Under CN every row's flows are the flows at its time (rates at that instant for the
    held side, prescribed fluxes at that time elsewhere), so the stored energy changes by the
    trapezoidal rule of the net flow, to O(dt^2). The step-averaged reaction written at the
    step's end next to end-time fluxes left 8 % that did not shrink with dt."""
    worst = []
    for dt in (20.0, 10.0):
        case = balance_case("cn", adaptive=False)
        case["time"]["dt"] = dt
        q = Simulation.from_case(case).run().quantities
        energy = q["stored_energy_J_per_m"]
        net = q["heat_generated_W_per_m"] - sum(
            q[f"heat_flow_{side}_W_per_m"] for side in ("left", "right", "bottom", "top")
        )
        trapezoid = (net[1:] + net[:-1]) / 2
        residuals = np.abs(np.diff(energy) / dt - trapezoid) / np.maximum(np.abs(net[1:]), 1.0)
        worst.append(residuals.max())
    assert worst[0] < 5e-4, worst
    assert 3.5 < worst[0] / worst[1] < 4.5, worst
