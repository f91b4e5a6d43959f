"""Verification of the heat plug-in through the whole framework (case dict -> run -> fields).

- Manufactured solutions: spatial L2 rates 2 (P1) and 3 (P2), for a linear and a
  temperature-dependent conductivity (the Newton path); time order 1 (BDF1) and 2 (BDF2).
- The slab series solution (shared/VALIDATION.md A1).
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
