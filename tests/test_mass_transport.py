"""Verification of the mass transport plug-in through the whole framework (case -> run -> results).

- Manufactured solutions: L2 rates 2 (P1) and 3 (P2) in space and 1 (BDF1) and 2 (BDF2) in time,
  in cartesian (with c-dependent diffusivity, advection, migration and a reaction: Newton),
  axisymmetric and spherical coordinates (1D, and the pseudo-2D (x, r) mesh of a battery model).
- VALIDATION.md A2 (transient Danckwerts), A3 (Fisher-KPP travelling wave), A7 (Li|Li cell:
  concentration drop and limiting current, with the electrolyte potential of electrostatics),
  Ogata-Banks advection-dispersion, a spherical particle under a constant flux (A11's profile).
- Discrete mass balance, positivity under strong consumption, SUPG at a high Péclet number,
  porosity (field) and effective diffusivity, tables by region, two instances side by side.
- 1 and 2 MPI ranks give the same quantities.
"""

import math

import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI

from app.errors import CaseError
from app.expressions import parse
from app.simulation import Simulation
from tests.conftest import assert_same_quantities, runs_on_ranks

FARADAY = 96485.33212331001
GAS_CONSTANT = 8.31446261815324


def l2_error(sim: Simulation, exact: str, field: str = "c", instance: str = "mass_transport"):
    """L2 norm of (solution - exact), with a high-degree quadrature."""
    u = sim.store[field].function
    reference = parse(exact).to_ufl(sim.context(instance).namespace())
    dx = ufl.dx(domain=u.function_space.mesh, metadata={"quadrature_degree": 10})
    local = fem.assemble_scalar(fem.form((u - reference) ** 2 * dx))
    return math.sqrt(MPI.COMM_WORLD.allreduce(local, op=MPI.SUM))


def slope(steps: list[float], errors: list[float]) -> float:
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


def nodal(sim: Simulation, field: str, x: float) -> float:
    """The value of a field at the node x (1D; this rank's copy, NaN if it has none)."""
    u = sim.store[field].function
    points = u.function_space.tabulate_dof_coordinates()[:, 0]
    hit = np.isclose(points, x)
    return float(u.x.array[hit][0]) if hit.any() else math.nan


def case(mesh: dict, physics: dict, **sections) -> dict:
    return {"mesh": mesh, "physics": physics, **sections}


def dirichlet(value: str, *sides: str) -> dict:
    return {side: {"type": "concentration", "value": value} for side in sides}


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


def bdf_rates(values: np.ndarray, dt: np.ndarray, scheme: str) -> list[float]:
    """d/dt of an output series with the weights the scheme applied (first step BDF1)."""
    rates = []
    for n in range(1, len(values)):
        if scheme == "bdf1" or n == 1:
            rates.append((values[n] - values[n - 1]) / dt[n])
        else:
            w = dt[n] / dt[n - 1]
            rates.append(
                (
                    (1 + 2 * w) / (1 + w) * values[n]
                    - (1 + w) * values[n - 1]
                    + w**2 / (1 + w) * values[n - 2]
                )
                / dt[n]
            )
    return rates


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


# --------------------------------------------------------------------------------------------
# A7: Li|Li symmetric cell (salt transport + electrolyte potential)
# --------------------------------------------------------------------------------------------
D_SALT, T_PLUS, GAP, C0 = 1.7694e-10, 0.2594, 100e-6, 1000.0
DIFFUSION_POTENTIAL = 2 * (1 - T_PLUS) * GAS_CONSTANT * 298.15 / FARADAY  # V


def limiting_current() -> float:
    return 2 * FARADAY * D_SALT * C0 / ((1 - T_PLUS) * GAP)


def cell_overrides(current: float) -> dict:
    salt = "physics.electrolyte.species.c_e.boundaries"
    return {
        f"{salt}.left.value": current,
        f"{salt}.right.value": -current,
        "physics.electrostatics.boundaries.right.value": -current,
    }


def test_symmetric_cell_concentration_drop(cases):
    """Steady dc = (1 - t+) i L/(F D); the potential drops by i L/kappa + k ln(c(0)/c(L));
    salt is conserved and the current is continuous."""
    current = 10.0
    q = Simulation.from_case(cases / "symmetric_cell.toml").run().quantities
    high, low = q["electrolyte_max_c_e_mol_per_m3"][-1], q["electrolyte_min_c_e_mol_per_m3"][-1]
    drop = (1 - T_PLUS) * current * GAP / (FARADAY * D_SALT)
    assert drop == pytest.approx(43.38, abs=0.01)
    assert high - low == pytest.approx(drop, rel=1e-2)
    assert (high + low) / 2 == pytest.approx(C0, rel=1e-9)  # linear profile about the mean
    assert q["electrolyte_amount_c_e_mol_per_m2"][-1] == pytest.approx(C0 * GAP, rel=1e-12)
    flux = (1 - T_PLUS) * current / FARADAY
    assert q["electrolyte_outflow_c_e_left_mol_per_s_per_m2"][-1] == pytest.approx(-flux)
    assert q["electrolyte_outflow_c_e_right_mol_per_s_per_m2"][-1] == pytest.approx(flux)
    phi = -current * GAP / 1.0 - DIFFUSION_POTENTIAL * math.log(high / low)
    assert q["min_potential_V"][-1] == pytest.approx(phi, rel=1e-3)
    assert q["current_left_A_per_m2"][-1] == pytest.approx(-current, rel=1e-9)  # enters


def test_symmetric_cell_limiting_current(cases):
    """i_lim = 2 F D c0/((1 - t+) L) = 461.0 A/m^2: at 0.99 i_lim the salt at the cathode
    falls to 1 % of c0 (c(L)/c0 = 1 - i/i_lim, so this pins i_lim to ~1e-4)."""
    i_lim = limiting_current()
    assert i_lim == pytest.approx(461.0, rel=1e-3)
    overrides = cell_overrides(0.99 * i_lim)
    q = Simulation.from_case(cases / "symmetric_cell.toml", overrides=overrides).run().quantities
    low, high = q["electrolyte_min_c_e_mol_per_m3"][-1], q["electrolyte_max_c_e_mol_per_m3"][-1]
    assert low / C0 == pytest.approx(0.01, abs=1e-3)
    assert high / C0 == pytest.approx(1.99, abs=1e-3)
    measured = 2 * C0 * 0.99 * i_lim / (high - low)  # the current that empties the cathode side
    assert measured == pytest.approx(i_lim, rel=1e-2)
    overpotential = DIFFUSION_POTENTIAL * math.log(high / low)  # diverges as i -> i_lim
    assert -q["min_potential_V"][-1] > overpotential > 0.19


def test_volumetric_electrode_current_with_porosity():
    """A uniform reaction current a j (A/m^3) in a closed pore space: eps dc/dt = (1 - t+) a j/F,
    so the mean concentration grows linearly (the DFN electrolyte source)."""
    a_j, eps, hours = 2e4, 0.4, 1.0
    species = {"diffusivity": 1e-10, "transference": T_PLUS, "current_source": "a_j"}
    physics = {
        "electrolyte": {"type": "mass_transport", "porosity": eps, "species": {"c_e": species}},
        "kinetics": {"type": "prescribed", "fields": {"a_j": {"units": "A/m^3", "value": a_j}}},
    }
    physics["electrolyte"]["species"]["c_e"]["initial"] = C0
    sim = Simulation.from_case(
        case(
            {"type": "interval", "length": [1e-4], "cells": [4]},
            physics,
            time={"scheme": "bdf1", "end": 3600 * hours, "dt": 900.0},
        )
    )
    q = sim.run().quantities
    grown = (1 - T_PLUS) * a_j * 3600 * hours / (eps * FARADAY)
    assert q["electrolyte_max_c_e_mol_per_m3"][-1] == pytest.approx(C0 + grown, rel=1e-10)
    assert q["electrolyte_min_c_e_mol_per_m3"][-1] == pytest.approx(C0 + grown, rel=1e-10)
    rate = (1 - T_PLUS) * a_j * 1e-4 / FARADAY
    assert q["electrolyte_generated_c_e_mol_per_s_per_m2"][-1] == pytest.approx(rate, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Advection: Ogata-Banks, free outflow, SUPG
# --------------------------------------------------------------------------------------------
def column_case(end: float, dt: float, diffusivity: float = 0.02, **params) -> dict:
    species = {
        "diffusivity": diffusivity,
        "boundaries": {
            "left": {"type": "concentration", "value": 1.0},
            "right": {"type": "outflow"},
        },
    }
    return case(
        {"type": "interval", "length": [2.0], "cells": [100]},
        {
            "mass_transport": {"velocity": "velocity", "species": {"c": species}, **params},
            "flow": {
                "type": "prescribed",
                "fields": {"velocity": {"units": "m/s", "value": ["1"]}},
            },
        },
        time={"scheme": "bdf2", "end": end, "dt": dt},
    )


def ogata_banks(x: np.ndarray, t: float, v: float, D: float) -> np.ndarray:
    from scipy.special import erfc

    s = 2 * np.sqrt(D * t)
    return 0.5 * (erfc((x - v * t) / s) + np.exp(v * x / D) * erfc((x + v * t) / s))


def test_ogata_banks_advection_dispersion():
    """A step at the inlet of a column (v = 1, D = 0.02): the profile when the front is halfway
    matches Ogata-Banks to 0.5 % of the step."""
    sim = Simulation.from_case(column_case(1.0, 0.01))
    c = sim.run().fields["c"]
    x = c.function_space.tabulate_dof_coordinates()[:, 0]
    error = np.abs(c.x.array - ogata_banks(x, 1.0, 1.0, 0.02)).max(initial=0.0)
    assert MPI.COMM_WORLD.allreduce(error, op=MPI.MAX) < 5e-3


def test_outflow_boundary_flushes_the_column():
    """After the front has left, the column is full (c = 1) and carries q c = 1 out; the mass
    balance with the advective outflow closes every step."""
    q = Simulation.from_case(column_case(3.0, 0.02)).run().quantities
    assert q["min_c_mol_per_m3"][-1] > 0.99
    assert q["outflow_c_right_mol_per_s_per_m2"][-1] == pytest.approx(1.0, abs=1e-2)
    net = -q["outflow_c_left_mol_per_s_per_m2"] - q["outflow_c_right_mol_per_s_per_m2"]
    rates = bdf_rates(q["amount_c_mol_per_m2"], q["dt_s"], "bdf2")
    assert max(abs(r - n) for r, n in zip(rates, net[1:], strict=True)) < 1e-10


@pytest.mark.parametrize("stabilization", ["none", "supg"])
def test_supg_at_high_peclet(stabilization: str):
    """Steady advection-diffusion at a cell Péclet number of 25: Galerkin oscillates, SUPG is
    monotone and nodally accurate outside the outlet layer."""
    species = {
        "diffusivity": 1e-3,
        "boundaries": dirichlet("1", "left") | dirichlet("0", "right"),
    }
    sim = Simulation.from_case(
        case(
            {"type": "interval", "cells": [20]},
            {
                "mass_transport": {
                    "velocity": "velocity",
                    "stabilization": stabilization,
                    "species": {"c": species},
                },
                "flow": {
                    "type": "prescribed",
                    "fields": {"velocity": {"units": "m/s", "value": ["1"]}},
                },
            },
        )
    )
    q = sim.run().quantities
    if stabilization == "none":
        assert q["max_c_mol_per_m3"][-1] > 1.5  # the wiggles SUPG removes
        return
    assert q["max_c_mol_per_m3"][-1] <= 1 + 1e-9
    assert q["min_c_mol_per_m3"][-1] >= -1e-12
    interior = nodal(sim, "c", 0.5)
    assert math.isnan(interior) or interior == pytest.approx(1.0, abs=1e-6)


def test_migration_reaches_boltzmann_equilibrium():
    """A cation (z = 1) in a closed box under a fixed potential phi = 0.05 x V at a temperature
    read from a field: at equilibrium diffusion balances migration, c(1)/c(0) =
    exp(-z F 0.05/(R T)), and the amount is conserved."""
    species = {"diffusivity": 1.0, "charge": 1, "initial": 1.0}
    physics = {
        "mass_transport": {
            "potential": "phi",
            "temperature": "temperature",
            "species": {"c": species},
        },
        "given": {
            "type": "prescribed",
            "fields": {
                "phi": {"units": "V", "value": "0.05*x"},
                "temperature": {"units": "K", "value": 298.15},
            },
        },
    }
    sim = Simulation.from_case(
        case(
            {"type": "interval", "cells": [40]},
            physics,
            time={"scheme": "bdf2", "end": 10.0, "dt": 0.25},
        )
    )
    q = sim.run().quantities
    ratio = q["min_c_mol_per_m3"][-1] / q["max_c_mol_per_m3"][-1]
    assert ratio == pytest.approx(math.exp(-FARADAY * 0.05 / (GAS_CONSTANT * 298.15)), rel=2e-3)
    assert nodal(sim, "c", 1.0) == pytest.approx(q["min_c_mol_per_m3"][-1])  # cations go left
    assert q["amount_c_mol_per_m2"] == pytest.approx(1.0, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Positivity under strong consumption
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reaction", "lumped"),
    [("-1e4*c", True), ("-1e3*c/(1e-3 + c)", True), ("-1e4*c", False)],
)
def test_consumption_keeps_concentration_non_negative(reaction: str, lumped: bool):
    """A species fed at x = 0 and consumed fast (first order, k h^2/D = 25, or Michaelis-Menten)
    in a reaction layer thinner than a cell: nodal (lumped) sources keep c >= 0; consistent
    ones undershoot (and Michaelis-Menten then meets its pole at c = -K: Newton fails), which
    is why lumping is the default for degree 1."""
    species = {"diffusivity": 1.0, "source": reaction, "boundaries": dirichlet("1", "left")}
    sim = Simulation.from_case(
        case(
            {"type": "interval", "cells": [20]},
            {"mass_transport": {"lumped_sources": lumped, "species": {"c": species}}},
            time={"scheme": "bdf1", "end": 0.05, "dt": 5e-3},
        )
    )
    lowest = sim.run().quantities["min_c_mol_per_m3"]
    if lumped:
        assert lowest.min() >= -1e-12, lowest.min()
    else:
        assert lowest.min() < -1e-3  # the test can see an undershoot


# --------------------------------------------------------------------------------------------
# Porosity, effective diffusivity, spherical particle, two instances side by side
# --------------------------------------------------------------------------------------------
def two_instances(law: str, particle_species: str = "li") -> dict:
    electrolyte = {
        "type": "mass_transport",
        "porosity": "porosity",  # a field another plug-in provides
        "effective_diffusivity": law,
        "species": {
            "salt": {
                "diffusivity": 2.0,
                "initial": 1.0,
                "boundaries": {
                    "left": {"type": "flux", "value": 0.5},
                    "right": {"type": "concentration", "value": 1.0},
                },
            }
        },
    }
    particle = {
        "type": "mass_transport",
        "coordinates": "spherical",
        "species": {
            particle_species: {
                "diffusivity": 1.0,
                "initial": 2.0,
                "boundaries": {"right": {"type": "flux", "value": 0.3}},
            }
        },
    }
    matrix = {"type": "prescribed", "fields": {"porosity": {"value": 0.25}}}
    return case(
        {"type": "interval", "cells": [40]},
        {"electrolyte": electrolyte, "particle": particle, "matrix": matrix},
        time={"scheme": "bdf2", "end": 10.0, "dt": 0.2},
    )


@pytest.mark.parametrize(("law", "factor"), [("bruggeman", 0.25**1.5), ("archie", 0.25**2)])
def test_porous_electrolyte_beside_a_spherical_particle(law: str, factor: float):
    """Electrolyte (porosity from a field, D_eff = eps^b D): steady c(0) = 1 + g L/D_eff and the
    amount int eps c. Particle (spherical, flux J = 0.3 in at r = R = 1): the amount grows by
    4 pi R^2 J t exactly, and the profile settles to c(R) - c(0) = J R/(2 D) (VALIDATION A11)."""
    sim = Simulation.from_case(two_instances(law))
    q = sim.run().quantities
    d_eff = 2.0 * factor
    assert q["electrolyte_max_salt_mol_per_m3"][-1] == pytest.approx(1 + 0.5 / d_eff, rel=1e-4)
    steady = 0.25 * (1 + 0.5 / d_eff / 2)  # int eps (1 + g (1 - x)/D_eff) dx
    assert q["electrolyte_amount_salt_mol_per_m2"][-1] == pytest.approx(steady, rel=1e-4)
    assert q["electrolyte_outflow_salt_right_mol_per_s_per_m2"][-1] == pytest.approx(0.5, rel=1e-4)
    amount = q["particle_amount_li_mol"]
    expected = 2.0 * 4 * math.pi / 3 + 4 * math.pi * 0.3 * q["time_s"]
    assert amount == pytest.approx(expected, rel=1e-10)
    assert q["particle_outflow_li_right_mol_per_s"][-1] == pytest.approx(-4 * math.pi * 0.3)
    surface_minus_centre = q["particle_max_li_mol_per_m3"][-1] - q["particle_min_li_mol_per_m3"][-1]
    assert surface_minus_centre == pytest.approx(0.3 / 2, rel=2e-3)


def test_species_names_must_differ_between_instances():
    with pytest.raises(CaseError, match="'salt' is provided by both"):
        Simulation.from_case(two_instances("bruggeman", particle_species="salt"))


def test_region_table_and_amount_per_region():
    """D by region (1 on x < 0.5, 4 beyond): steady flux g through the two layers,
    c(0) = g (0.5/1 + 0.5/4); amounts reported per region."""
    species = {
        "diffusivity": {"inner": 1.0, "outer": 4.0},
        "boundaries": {
            "left": {"type": "flux", "value": 2.0},
            "right": {"type": "concentration", "value": 0.0},
        },
    }
    sim = Simulation.from_case(
        case(
            {
                "type": "interval",
                "cells": [20],
                "regions": {"inner": "x < 0.5", "outer": "x > 0.5"},
            },
            {"mass_transport": {"species": {"c": species}}},
        )
    )
    q = sim.run().quantities
    assert q["max_c_mol_per_m3"][-1] == pytest.approx(2.0 * (0.5 + 0.125), rel=1e-10)
    inner, outer = q["amount_c_inner_mol_per_m2"][-1], q["amount_c_outer_mol_per_m2"][-1]
    assert inner == pytest.approx(0.5 * (1.25 + 0.25) / 2, rel=1e-10)  # trapezoid: exact
    assert outer == pytest.approx(0.5 * 0.25 / 2, rel=1e-10)
    assert inner + outer == pytest.approx(q["amount_c_mol_per_m2"][-1], rel=1e-12)


@pytest.mark.parametrize(
    ("setup", "column", "amount"),
    [
        ("axisymmetric", "amount_c_mol", 2 * math.pi),  # 2 * (pi R^2 H)
        ("cylinder", "amount_c_mol_per_m", 2 * math.pi),  # 1D axisymmetric: per m of length
        ("spherical", "amount_c_mol", 2 * 4 * math.pi / 3),
        ("pseudo2d", "amount_c_mol_m", 2 * 4 * math.pi / 3),  # per particle, times 1 m of x
    ],
)
def test_amounts_carry_the_coordinate_measure(setup: str, column: str, amount: float):
    params = {"coordinates": setup, "species": {"c": {"diffusivity": 1.0, "initial": 2.0}}}
    mesh = {"type": "rectangle"}
    if setup in ("spherical", "cylinder"):
        mesh = {"type": "interval", "cells": [8]}
        params["coordinates"] = "axisymmetric" if setup == "cylinder" else setup
    if setup == "pseudo2d":
        params |= {"coordinates": "spherical", "radial_axis": 1}
        mesh |= {"cell": "quadrilateral", "cells": [4, 8]}
    sim = Simulation.from_case(
        case(mesh, {"mass_transport": params}, time={"scheme": "bdf1", "end": 0.1, "dt": 0.1})
    )
    q = sim.run().quantities
    assert q[column][-1] == pytest.approx(amount, rel=1e-3)  # polygonal r-integrals, P1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"species": {"c": {"diffusivity": 1, "charge": 2}}}, "migration needs the potential"),
        ({"species": {"x": {"diffusivity": 1}}}, "species name 'x'"),
        (
            {"species": {"c": {"diffusivity": 1}, "c_source": {"diffusivity": 1}}},
            "clashes with the field 'c_source'",
        ),
        (
            {"species": {"c": {"diffusivity": 1, "boundaries": {"right": {"type": "outflow"}}}}},
            "needs advection",
        ),
        ({"radial_axis": 1, "species": {"c": {"diffusivity": 1}}}, "only read with"),
    ],
)
def test_bad_parameters_are_case_errors(params: dict, message: str):
    with pytest.raises(CaseError, match=message):
        Simulation.from_case(case({"type": "interval"}, {"mass_transport": params}))


def test_spherical_coordinates_need_a_1d_or_2d_mesh():
    params = {"coordinates": "spherical", "species": {"c": {"diffusivity": 1}}}
    sim = Simulation.from_case(
        case({"type": "box", "cells": [2, 2, 2]}, {"mass_transport": params})
    )
    with pytest.raises(CaseError, match="need a 1D or 2D mesh"):
        sim.build()


@pytest.mark.parametrize("scheme", ["bdf1", "bdf2"])
def test_changing_porosity_conserves_the_amount(scheme):
    """A closed column whose pore space grows, eps = 0.5 + 0.3 t: the amount eps c is stored,
    so it stays 0.5 exactly and c = 0.5/eps(t) to round-off (a capacity eps dc/dt would not)."""
    case = {
        "mesh": {"type": "interval", "cells": [10]},
        "physics": {
            "mass_transport": {
                "porosity": "0.5 + 0.3*t",
                "species": {"c": {"diffusivity": 1.0, "initial": 1.0}},
            }
        },
        "time": {"scheme": scheme, "end": 1.0, "dt": 0.05},
        "output": {"interval": 0.25},
    }
    q = Simulation.from_case(case).run().quantities
    t = q["time_s"]
    np.testing.assert_allclose(q["amount_c_mol_per_m2"], 0.5, rtol=1e-12)
    np.testing.assert_allclose(q["max_c_mol_per_m3"], 0.5 / (0.5 + 0.3 * t), rtol=1e-12)
    np.testing.assert_allclose(q["min_c_mol_per_m3"], 0.5 / (0.5 + 0.3 * t), rtol=1e-12)
