"""Verification of the mass transport plug-in through the whole framework (case -> run -> results).

- Manufactured solutions: L2 rates 2 (P1) and 3 (P2) in space and 1 (BDF1) and 2 (BDF2) in time,
  in cartesian (with c-dependent diffusivity, advection, migration and a reaction: Newton),
  axisymmetric and spherical coordinates (1D, and the pseudo-2D (x, r) mesh of a battery model).
- VALIDATION.md A2 (transient Danckwerts), A3 (Fisher-KPP travelling wave), A7 (Li|Li cell:
  concentration drop and limiting current: tests/test_mass_transport_media.py, with advection,
  migration, porous media and parameter errors).
- Discrete mass balance; 1 and 2 MPI ranks give the same quantities.
"""

import math

import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI

from app.expressions import parse
from app.simulation import Simulation
from tests.conftest import assert_same_quantities, runs_on_ranks
from tests.mass_transport_cases import FARADAY, GAS_CONSTANT, bdf_rates, case, dirichlet, nodal


def l2_error(sim: Simulation, exact: str, field: str = "c", instance: str = "mass_transport"):
    """L2 norm of (solution - exact), with a high-degree quadrature."""
    u = sim.store[field].function
    reference = parse(exact).to_ufl(sim.context(instance).namespace())
    dx = ufl.dx(domain=u.function_space.mesh, metadata={"quadrature_degree": 10})
    local = fem.assemble_scalar(fem.form((u - reference) ** 2 * dx))
    return math.sqrt(MPI.COMM_WORLD.allreduce(local, op=MPI.SUM))


def slope(steps: list[float], errors: list[float]) -> float:
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


# --------------------------------------------------------------------------------------------
# Manufactured solutions in space: one per coordinate system
# --------------------------------------------------------------------------------------------
SX, CX, SY, CY = "sin(pi*x)", "cos(pi*x)", "sin(pi*y)", "cos(pi*y)"
U = f"(1 + {SX}*{SY})"
# Cartesian: c = U = 1 + s, s = sin(pi x) sin(pi y), D = 1 + c, q = (1, 0.5), z = 1 in phi = x
# with F/(RT) = 1, source -c + f:
#   div N = 2 pi^2 (1 + U) s - |grad s|^2 + q . grad c - (1 + 2U) dc/dx,   f = div N + U.
CARTESIAN_FORCING = (
    f"2*pi**2*(1 + {U})*{SX}*{SY} - pi**2*({CX}**2*{SY}**2 + {SX}**2*{CY}**2)"
    f" + pi*({CX}*{SY} + 0.5*{SX}*{CY}) - (1 + 2*{U})*pi*{CX}*{SY} + {U}"
)
# Axisymmetric (x = r, y = z): c = 1 + g, g = (1 - r^2)^2 sin(pi z), D = 2:
#   (1/r)(r g_r)_r + g_zz = (16 r^2 - 8) sin(pi z) - pi^2 (1 - r^2)^2 sin(pi z).
AXISYMMETRIC = f"1 + (1 - x**2)**2*{SY}"
AXISYMMETRIC_SOURCE = f"-2*((16*x**2 - 8)*{SY} - pi**2*(1 - x**2)**2*{SY})"
# Spherical (x = r): c = 1 + f(s), s = r^2, f = cos(pi s/2), D = 2 (a function of r^2 keeps the
# source regular at r = 0, where degree 1 evaluates it):
#   r^-2 (r^2 c_r)_r = 6 f' + 4 s f'' = -3 pi sin(pi s/2) - pi^2 s cos(pi s/2).
SPHERICAL = "1 + cos(pi*x**2/2)"
SPHERICAL_SOURCE = "2*(3*pi*sin(pi*x**2/2) + pi**2*x**2*cos(pi*x**2/2))"
# Pseudo-2D (x, r = y): c = 1 + (1 + x^2)(1 - r^2)^2, D = 1 + x, diffusion along r only:
#   r^-2 (r^2 c_r)_r = (1 + x^2)(20 r^2 - 12).
PSEUDO = "1 + (1 + x**2)*(1 - y**2)**2"
PSEUDO_SOURCE = "-(1 + x)*(1 + x**2)*(20*y**2 - 12)"


def spatial_case(setup: str, cells: int, degree: int) -> dict:
    if setup == "cartesian":
        species = {
            "diffusivity": "1 + c",
            "charge": 1,
            "source": f"-c + {CARTESIAN_FORCING}",
            "initial": 1.0,
            "boundaries": dirichlet(U, "left", "right", "bottom", "top"),
        }
        physics = {
            "mass_transport": {
                "degree": degree,
                "velocity": "velocity",
                "potential": "phi",
                "temperature": f"{FARADAY}/{GAS_CONSTANT}",  # F/(RT) = 1
                "species": {"c": species},
            },
            "given": {
                "type": "prescribed",
                "fields": {
                    "velocity": {"units": "m/s", "value": ["1", "0.5"]},
                    "phi": {"units": "V", "value": "x"},
                },
            },
        }
        return case({"type": "rectangle", "cells": [cells, cells]}, physics)
    table = {
        "axisymmetric": (AXISYMMETRIC, AXISYMMETRIC_SOURCE, 2.0, ("right", "bottom", "top")),
        "spherical": (SPHERICAL, SPHERICAL_SOURCE, 2.0, ("right",)),
        "pseudo2d": (PSEUDO, PSEUDO_SOURCE, "1 + x", ("top",)),
    }
    exact, source, diffusivity, sides = table[setup]
    species = {
        "diffusivity": diffusivity,
        "source": source,
        "initial": 1.0,
        "boundaries": dirichlet(exact, *sides),
    }
    params = {"degree": degree, "coordinates": setup, "species": {"c": species}}
    mesh = {"type": "rectangle", "cells": [cells, cells]}
    if setup == "spherical":
        mesh = {"type": "interval", "cells": [4 * cells]}
    if setup == "pseudo2d":
        params |= {"coordinates": "spherical", "radial_axis": 1}
        mesh["cell"] = "quadrilateral"
    return case(mesh, {"mass_transport": params})


SPATIAL_EXACT = {
    "cartesian": U,
    "axisymmetric": AXISYMMETRIC,
    "spherical": SPHERICAL,
    "pseudo2d": PSEUDO,
}


@pytest.mark.parametrize("setup", list(SPATIAL_EXACT))
@pytest.mark.parametrize(("degree", "meshes"), [(1, (8, 16, 32)), (2, (4, 8, 16))])
def test_spatial_convergence_rate(setup: str, degree: int, meshes: tuple):
    errors = []
    for cells in meshes:
        sim = Simulation.from_case(spatial_case(setup, cells, degree))
        sim.run()
        errors.append(l2_error(sim, SPATIAL_EXACT[setup]))
    rate = slope([1 / n for n in meshes], errors)
    assert abs(rate - (degree + 1)) < 0.15, (rate, errors)
    if setup == "cartesian":
        assert "nonlinear, Newton" in sim.describe_solvers()


# --------------------------------------------------------------------------------------------
# Manufactured solutions in time: exact in P2 at every t, so the error is the time error
# --------------------------------------------------------------------------------------------
# Cartesian with porosity 0.25 (capacity 0.25, Bruggeman D_eff = 0.125):
#   0.25 c_t - 0.125 c_xx = S,   c = (1 + x^2)(1 + sin t).
TRANSIENT = {
    "cartesian": (
        "(1 + x**2)*(1 + sin(t))",
        "0.25*(1 + x**2)*cos(t) - 0.25*(1 + sin(t))",
        {"interval": ["left", "right"]},
    ),
    "axisymmetric": (
        "(1 + x**2 + y)*(1 + sin(t))",
        "(1 + x**2 + y)*cos(t) - 4*(1 + sin(t))",
        {"rectangle": ["right", "bottom", "top"]},
    ),
    "spherical": (
        "(1 + x**2)*(1 + sin(t))",
        "(1 + x**2)*cos(t) - 6*(1 + sin(t))",
        {"interval": ["right"]},
    ),
    "pseudo2d": (
        "(1 + x + y**2)*(1 + sin(t))",
        "(1 + x + y**2)*cos(t) - 6*(1 + sin(t))",
        {"rectangle": ["top"]},
    ),
}


def transient_case(setup: str, scheme: str, dt: float) -> dict:
    exact, source, mesh_sides = TRANSIENT[setup]
    ((kind, sides),) = mesh_sides.items()
    species = {
        "diffusivity": 1.0,
        "source": source,
        "initial": exact,
        "boundaries": dirichlet(exact, *sides),
    }
    params = {"degree": 2, "coordinates": setup, "species": {"c": species}}
    if setup == "cartesian":
        params["porosity"] = 0.25
    if setup == "pseudo2d":
        params |= {"coordinates": "spherical", "radial_axis": 1}
    mesh = {"type": kind, "cells": [3] * (1 if kind == "interval" else 2)}
    return case(
        mesh,
        {"mass_transport": params},
        time={"scheme": scheme, "end": 1.0, "dt": dt},
        output={"interval": 1.0},
    )


@pytest.mark.parametrize("setup", list(TRANSIENT))
@pytest.mark.parametrize(("scheme", "order"), [("bdf1", 1), ("bdf2", 2)])
def test_time_order(setup: str, scheme: str, order: int):
    steps = [0.1, 0.05, 0.025]
    errors = []
    for dt in steps:
        sim = Simulation.from_case(transient_case(setup, scheme, dt))
        sim.run()
        errors.append(l2_error(sim, TRANSIENT[setup][0]))
    assert abs(slope(steps, errors) - order) < 0.15, errors


# --------------------------------------------------------------------------------------------
# A2: diffusion with a first-order reaction (Danckwerts), mass balance, 1 vs 2 ranks
# --------------------------------------------------------------------------------------------
def danckwerts(x: float, t: float, D: float = 1.0, k: float = 1.0) -> float:
    m, s = math.sqrt(k / D), x / (2 * math.sqrt(D * t))
    return 0.5 * (
        math.exp(-m * x) * math.erfc(s - math.sqrt(k * t))
        + math.exp(m * x) * math.erfc(s + math.sqrt(k * t))
    )


def test_danckwerts_reference_value():
    """The reference number itself (VALIDATION.md A2), and the steady limit exp(-1)."""
    assert danckwerts(1.0, 1.0) == pytest.approx(0.325748, abs=1e-6)
    assert danckwerts(1.0, 50.0) == pytest.approx(math.exp(-1), rel=1e-9)


def test_transient_danckwerts(cases):
    """c(1, 1) within 0.5 % of 0.325748 (D = k = 1, a bar of length 10 is semi-infinite)."""
    sim = Simulation.from_case(cases / "reaction_diffusion.toml")
    result = sim.run()
    value = MPI.COMM_WORLD.allreduce(np.nan_to_num(nodal(sim, "c", 1.0), nan=-1.0), op=MPI.MAX)
    assert abs(value / 0.325748 - 1) < 5e-3, value
    assert result.quantities["time_s"][-1] == pytest.approx(1.0)
    profile = [danckwerts(x, 1.0) for x in (0.5, 2.0, 4.0)]
    assert [nodal(sim, "c", x) for x in (0.5, 2.0, 4.0)] == pytest.approx(profile, abs=1e-3)


def test_steady_reaction_diffusion_in_a_finite_slab():
    """A2 steady: c(0) = c0, no flux at L = 1, D = 1, k = 4 (m = 2): c = c0 cosh(m (L - x))/
    cosh(m L) at the nodes within 1e-4 c0 (P2, 10 cells; measured 6.5e-7), and the uptake through
    x = 0, D c0 m tanh(m L), within 1e-4 (measured 9.4e-7: the reaction of the discrete
    equations)."""
    species = {
        "diffusivity": 1.0,
        "source": "-4*c",
        "boundaries": dirichlet("1", "left"),
    }
    physics = {"mass_transport": {"degree": 2, "species": {"c": species}}}
    sim = Simulation.from_case(case({"type": "interval", "cells": [10]}, physics))
    q = sim.run().quantities
    c = sim.store["c"].function
    x = c.function_space.tabulate_dof_coordinates()[:, 0]
    exact = np.cosh(2 * (1 - x)) / math.cosh(2)
    error = MPI.COMM_WORLD.allreduce(np.abs(c.x.array - exact).max(initial=0.0), op=MPI.MAX)
    assert error < 1e-4
    uptake = -q["outflow_c_left_mol_per_s_per_m2"][-1]
    assert uptake == pytest.approx(2 * math.tanh(2), rel=1e-4)


@pytest.mark.parametrize(("scheme", "degree"), [("bdf1", 1), ("bdf2", 2)])
def test_discrete_mass_balance(cases, scheme: str, degree: int):
    """d(amount)/dt = generated - outflows every step: the uptake through the fixed end is the
    reaction of the discrete equations, so the balance closes to round-off."""
    overrides = {
        "output.interval": 0.05,
        "time.dt": 0.05,
        "time.scheme": scheme,
        "physics.mass_transport.degree": degree,
    }
    q = (
        Simulation.from_case(cases / "reaction_diffusion.toml", overrides=overrides)
        .run()
        .quantities
    )
    amount, dt = q["amount_c_mol_per_m2"], q["dt_s"]
    net = q["generated_c_mol_per_s_per_m2"] - q["outflow_c_left_mol_per_s_per_m2"]
    assert q["outflow_c_left_mol_per_s_per_m2"][-1] < 0  # the species enters there
    assert np.all(q["outflow_c_right_mol_per_s_per_m2"] == 0)
    rates = bdf_rates(amount, dt, scheme)
    residuals = [abs(r - n) / max(abs(n), 1e-3) for r, n in zip(rates, net[1:], strict=True)]
    assert max(residuals) < 1e-9, residuals


@pytest.mark.mpi
def test_one_and_two_ranks_agree(tmp_path):
    assert_same_quantities(*runs_on_ranks("cases/reaction_diffusion.toml", tmp_path))


# --------------------------------------------------------------------------------------------
# A3: Fisher-KPP travelling wave (Ablowitz-Zeppetella)
# --------------------------------------------------------------------------------------------
FISHER = "(1 + exp(x/sqrt(6) - 5*t/6))**(-2)"


def fisher_case(cells: int, dt: float) -> dict:
    species = {
        "diffusivity": 1.0,
        "source": "u*(1 - u)",
        "initial": FISHER,
        "boundaries": dirichlet(FISHER, "left", "right"),
    }
    return case(
        {"type": "interval", "length": [30.0], "origin": [-10.0], "cells": [cells]},
        {"mass_transport": {"species": {"u": species}}},
        time={"scheme": "bdf2", "end": 2.0, "dt": dt},
        output={"interval": 2.0},
    )


def test_fisher_kpp_travelling_wave():
    """The exact wave as Dirichlet data and reference: h and dt halved together, L2 error
    falls at rate 2 (P1, BDF2); the wave moves at 5/sqrt(6) = 1.02 c*."""
    errors = []
    runs = [(60, 0.2), (120, 0.1), (240, 0.05)]
    for cells, dt in runs:
        sim = Simulation.from_case(fisher_case(cells, dt))
        sim.run()
        errors.append(l2_error(sim, FISHER, "u"))
    assert abs(slope([dt for _, dt in runs], errors) - 2) < 0.15, errors
    assert errors[-1] < 2e-3  # of a wave with L2 norm ~3
    assert "nonlinear, Newton" in sim.describe_solvers()
