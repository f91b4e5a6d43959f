"""Verification of the Butler-Volmer plug-in through the whole framework (case -> run -> results).

- VALIDATION.md A8: a galvanostatic electrode with a uniform reaction. With alpha = 0.5 the
  computed overpotential equals the exact inverse eta = (2RT/F) asinh(j/(2 i0)); with
  asymmetric transfer coefficients it is the root of the Butler-Volmer equation (scipy), and
  the linearised law gives eta = j/(i0 (alpha_a + alpha_c) F/RT).
- A porous electrode (cases/porous_electrode.toml): two electrostatics instances (solid and
  electrolyte potentials) coupled by the kinetics. Linear kinetics against the Newman-Tobias
  closed form of the reaction distribution (second order in h); Butler-Volmer with an ideal
  solid against the exact first integral of eta'' = (2 a i0/kappa) sinh(F eta/(2RT)) and the
  position integral (scipy quad); charge conservation; 1 vs 2 MPI ranks.
- The molar source feeds mass transport (closed form of the salt inventory), the reaction heat
  feeds heat (same number on both sides), the open-circuit potential as a function of the
  surface stoichiometry, and input checks.
"""

import math
import tomllib

import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI
from scipy.integrate import quad
from scipy.optimize import brentq

from app.errors import CaseError
from app.simulation import Simulation
from tests.conftest import assert_same_quantities, runs_on_ranks

FARADAY = 96485.33212331001
GAS_CONSTANT = 8.31446261815324
F_RT = FARADAY / (GAS_CONSTANT * 298.15)


def conductor(potential: str, source: str, conductivity: float, boundaries: dict) -> dict:
    """An electrostatics instance in conduction mode with renamed fields."""
    return {
        "type": "electrostatics",
        "mode": "conduction",
        "conductivity": conductivity,
        "boundaries": boundaries,
        "fields": {
            "potential": potential,
            "current_source": source,
            "electric_field": f"E_{potential}",
            "current_density": f"i_{potential}",
        },
    }


def galvanostatic(current: float, kinetics: dict, phi_s: float = 0.0, **extra) -> dict:
    """phi_s = 0 (prescribed, or the given value); the electrolyte (sigma = 1e8: nearly
    equipotential) takes the current `current` (A/m^2) in at x = 1 and gives all of it to the
    reaction, uniformly."""
    electrolyte = conductor(
        "phi_e", "electrolyte_current_source", 1e8, {"right": {"type": "current", "value": current}}
    )
    return {
        "mesh": {"type": "interval", "cells": [4]},
        "physics": {
            "electrode": {
                "type": "prescribed",
                "fields": {"phi_s": {"units": "V", "value": phi_s}},
            },
            "electrolyte": electrolyte,
            "kinetics": {"type": "butler_volmer", **kinetics},
            **extra,
        },
    }


def uniform_eta(sim: Simulation) -> float:
    """The mean overpotential -int phi_e dx (phi_s = U = 0, unit length). It varies by
    I L/sigma ~ 1e-6 V over the electrode, but int j(eta) dx = j(mean eta) + O(1e-12)."""
    phi_e = sim.store["phi_e"].function
    local = fem.assemble_scalar(fem.form(phi_e * ufl.dx(domain=phi_e.function_space.mesh)))
    return -MPI.COMM_WORLD.allreduce(local, op=MPI.SUM)


# --------------------------------------------------------------------------------------------
# A8: the Butler-Volmer law and its inverse
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ratio", [0.1, 3.0, -40.0])
def test_symmetric_inverse_a8(ratio: float):
    """alpha_a = alpha_c = 0.5: eta = (2RT/F) asinh(j/(2 i0)) for j/i0 = ratio."""
    i0, area = 2.0, 3.0
    j = ratio * i0
    case = galvanostatic(-j * area, {"specific_area": area, "exchange_current_density": i0})
    sim = Simulation.from_case(case)
    q = sim.run().quantities
    assert uniform_eta(sim) == pytest.approx(2 / F_RT * math.asinh(j / (2 * i0)), rel=1e-8)
    assert q["kinetics_total_current_A_per_m2"][-1] == pytest.approx(j * area, rel=1e-9)


@pytest.mark.parametrize(("anodic", "cathodic"), [(0.7, 0.3), (0.3, 0.7)])
@pytest.mark.parametrize("ratio", [5.0, -5.0])
def test_asymmetric_transfer_coefficients(anodic: float, cathodic: float, ratio: float):
    """eta solves i0 (exp(alpha_a f eta) - exp(-alpha_c f eta)) = j (scipy root); the branch
    with the larger alpha needs the smaller overpotential."""
    i0 = 1.5
    j = ratio * i0
    kinetics = {
        "exchange_current_density": i0,
        "anodic_transfer": anodic,
        "cathodic_transfer": cathodic,
    }
    sim = Simulation.from_case(galvanostatic(-j, kinetics))
    sim.run()

    def law(eta: float) -> float:
        return i0 * (math.exp(anodic * F_RT * eta) - math.exp(-cathodic * F_RT * eta)) - j

    exact = brentq(law, -1.0, 1.0, xtol=1e-15)
    assert uniform_eta(sim) == pytest.approx(exact, rel=1e-9)
    alpha = anodic if ratio > 0 else cathodic
    tafel = math.log(abs(ratio)) / (alpha * F_RT)  # the dominant branch alone (5 % off here)
    assert abs(exact) == pytest.approx(tafel, rel=0.1)


def test_linear_kinetics():
    i0, j = 4.0, 0.3
    kinetics = {"kinetics": "linear", "exchange_current_density": i0, "anodic_transfer": 0.6}
    sim = Simulation.from_case(galvanostatic(-j, kinetics))
    sim.run()
    assert uniform_eta(sim) == pytest.approx(j / (i0 * 1.1 * F_RT), rel=1e-8)


def test_open_circuit_potential_of_the_stoichiometry():
    """No current: the electrolyte settles at phi_s - U(theta), theta = c_s/c_max. (phi_s is
    set near U: Newton starts from phi_e = 0, and exp(F eta/2RT) at eta = -4 V is 1e-34.)"""
    kinetics = {
        "exchange_current_density": "1e-3*sqrt(c_s*(2000 - c_s))",
        "stoichiometry": "c_s/2000",
        "open_circuit_potential": "4.2 - 0.5*theta + 0.1*tanh(10*(theta - 0.5))",
        "fields": {"stoichiometry": "theta"},
    }
    particles = {"type": "prescribed", "fields": {"c_s": {"units": "mol/m^3", "value": 600.0}}}
    sim = Simulation.from_case(galvanostatic(0.0, kinetics, phi_s=4.0, particles=particles))
    result = sim.run()
    theta = 0.3
    ocp = 4.2 - 0.5 * theta + 0.1 * math.tanh(10 * (theta - 0.5))
    assert np.allclose(result.fields["phi_e"].x.array, 4.0 - ocp, rtol=1e-10)
    assert np.allclose(result.fields["theta"].x.array, theta, rtol=1e-12)


def test_the_docstring_example():
    """The module docstring's graphite electrode (Chen2020 i0 and U_n(theta)) with prescribed
    potentials and concentrations: j = 2 i0 sinh(F eta/(2RT)), eta = phi_s - phi_e - U_n."""
    import physics_modules.butler_volmer as module

    text = module.__doc__.split("the Chen2020 cell)::")[1]
    case = tomllib.loads("\n".join(line[4:] for line in text.splitlines()))
    values = {"c_e": ("mol/m^3", 1000.0), "c_s_n": ("mol/m^3", 20000.0)}
    values |= {"phi_s": ("V", 0.15), "phi_e": ("V", 0.0)}
    fields = {name: {"units": units, "value": value} for name, (units, value) in values.items()}
    case["physics"]["given"] = {"type": "prescribed", "fields": fields}
    case["mesh"] = {"type": "interval", "cells": [2]}
    result = Simulation.from_case(case).run()
    theta = 20000 / 33133
    ocp = (
        1.9793 * math.exp(-39.3631 * theta)
        + 0.2482
        - 0.0909 * math.tanh(29.8538 * (theta - 0.1234))
        - 0.04478 * math.tanh(14.9159 * (theta - 0.2769))
        - 0.0205 * math.tanh(30.4444 * (theta - 0.6103))
    )
    i0 = 6.48e-7 * math.sqrt(1000 * 20000 * (33133 - 20000))
    j = 2 * i0 * math.sinh(F_RT * (0.15 - ocp) / 2)
    assert np.allclose(result.fields["interfacial_current"].x.array, j, rtol=1e-12)
    assert np.allclose(result.fields["a_j_e"].x.array, 3.84e5 * j, rtol=1e-12)
    assert np.allclose(result.fields["theta_n"].x.array, theta, rtol=1e-14)


# --------------------------------------------------------------------------------------------
# Porous electrode: Newman-Tobias (linear) and a nonlinear first integral (Butler-Volmer)
# --------------------------------------------------------------------------------------------
LENGTH, SIGMA, KAPPA, CURRENT, AREA, I0 = 100e-6, 2.0, 1.0, 20.0, 1e5, 45.0  # the case file


def newman_tobias(x: ufl.core.expr.Expr) -> ufl.core.expr.Expr:
    """eta(x) of linear kinetics (cases/porous_electrode.toml's header)."""
    nu = math.sqrt(LENGTH**2 * (1 / KAPPA + 1 / SIGMA) * AREA * I0 * F_RT)
    a = -(CURRENT * LENGTH / nu) * (1 / SIGMA + math.cosh(nu) / KAPPA) / math.sinh(nu)
    b = CURRENT * LENGTH / (KAPPA * nu)
    return a * ufl.cosh(nu * x / LENGTH) + b * ufl.sinh(nu * x / LENGTH)


def relative_l2(sim: Simulation, field: str, exact: ufl.core.expr.Expr) -> float:
    u = sim.store[field].function
    dx = ufl.dx(domain=u.function_space.mesh, metadata={"quadrature_degree": 8})
    error, norm = (fem.form(e**2 * dx) for e in (u - exact, exact))
    comm = MPI.COMM_WORLD
    total = [comm.allreduce(fem.assemble_scalar(f), op=MPI.SUM) for f in (error, norm)]
    return math.sqrt(total[0] / total[1])


def test_newman_tobias_reaction_distribution(cases):
    """a j(x) = a i0 (2 alpha) F/(RT) eta(x) against the closed form, at second order; all
    the current crosses from the electrolyte to the solid."""
    errors = []
    for cells in (20, 40, 80):
        sim = Simulation.from_case(
            cases / "porous_electrode.toml", overrides={"mesh.cells": [cells]}
        )
        q = sim.run().quantities
        x = ufl.SpatialCoordinate(sim.store["volumetric_current"].function.function_space.mesh)[0]
        exact = AREA * I0 * F_RT * newman_tobias(x)
        errors.append(relative_l2(sim, "volumetric_current", exact))
        assert q["kinetics_total_current_A_per_m2"][-1] == pytest.approx(-CURRENT, rel=1e-12)
        # Currents leaving: the current enters the electrolyte at x = 0 and leaves the solid.
        assert q["solid_current_right_A_per_m2"][-1] == pytest.approx(CURRENT, rel=1e-12)
        assert q["electrolyte_current_left_A_per_m2"][-1] == pytest.approx(-CURRENT, rel=1e-12)
    rate = math.log(errors[0] / errors[-1]) / math.log(4)
    assert abs(rate - 2) < 0.1, errors
    assert errors[1] < 2e-4, errors  # the case's 40 cells (measured 9.9e-5)
    # nonuniform: at the separator (x = 0) the reaction is the strongest, 1.6x the collector's
    assert q["kinetics_min_overpotential_V"][-1] < 1.5 * q["kinetics_max_overpotential_V"][-1]


def bv_first_integral(current: float, kappa: float, a_i0: float) -> tuple[float, float]:
    """eta(0) and eta(L) for symmetric Butler-Volmer with an ideal solid (phi_s = 0).

    eta'' = (2 a i0/kappa) sinh(f eta/2), eta'(0) = I/kappa, eta'(L) = 0. Multiplying by eta'
    gives the first integral (eta')^2/2 = k (cosh(f eta/2) - cosh(f eta_L/2)), k = 4 a i0/(kappa
    f), which links eta(0) to eta(L); eta(L) follows from L = int deta/eta' (quad, with
    eta = eta_L - s^2 taking the root singularity out and cosh a - cosh b = 2 sinh((a+b)/2)
    sinh((a-b)/2) the cancellation).
    """
    f, k = F_RT, 4 * a_i0 / (kappa * F_RT)

    def eta_0(eta_l: float) -> float:
        return -2 / f * math.acosh(math.cosh(f * eta_l / 2) + (current / kappa) ** 2 / (2 * k))

    def length(eta_l: float) -> float:
        def integrand(s: float) -> float:
            gap = 2 * math.sinh(f * (2 * eta_l - s * s) / 4) * math.sinh(-f * s * s / 4)
            return 2 * s / math.sqrt(2 * k * gap)

        return quad(integrand, 0, math.sqrt(eta_l - eta_0(eta_l)), limit=200, epsrel=1e-12)[0]

    eta_l = brentq(lambda e: length(e) - LENGTH, -30 / f, -1e-9 / f, xtol=1e-16)
    return eta_0(eta_l), eta_l


def test_porous_electrode_butler_volmer_first_integral(cases):
    """Butler-Volmer, strongly nonuniform (f eta/2 from -3.1 at the separator to -0.17 at the
    collector), ideal solid: eta at both ends against the exact first integral and the
    position integral."""
    current, i0 = 8000.0, 300.0
    overrides = {
        "physics.kinetics.kinetics": "butler_volmer",
        "physics.kinetics.exchange_current_density": i0,
        "physics.solid.conductivity": 1e8,
        "physics.electrolyte.boundaries.left.value": current,
        "mesh.cells": [80],
    }
    sim = Simulation.from_case(cases / "porous_electrode.toml", overrides=overrides)
    result = sim.run()
    q = result.quantities
    eta_0, eta_l = bv_first_integral(current, KAPPA, AREA * i0)
    phi_e = result.fields["phi_e"]
    x = phi_e.function_space.tabulate_dof_coordinates()[:, 0]
    ends = {
        "left": -phi_e.x.array[np.isclose(x, 0)],
        "right": -phi_e.x.array[np.isclose(x, LENGTH)],
    }
    if ends["left"].size:  # the rank holding x = 0 (phi_s = 0 within 1e-8 V)
        assert ends["left"][0] == pytest.approx(eta_0, rel=2e-3)  # measured 2.8e-4
    if ends["right"].size:
        assert ends["right"][0] == pytest.approx(eta_l, rel=2e-3)  # measured 5.6e-4
    assert eta_0 * F_RT / 2 < -3 and eta_0 < 15 * eta_l  # far from linear, and nonuniform
    assert q["kinetics_total_current_A_per_m2"][-1] == pytest.approx(-current, rel=1e-9)
    assert q["solid_current_right_A_per_m2"][-1] == pytest.approx(current, rel=1e-9)


@pytest.mark.mpi
def test_porous_electrode_one_and_two_ranks_agree(tmp_path):
    nonlinear = ("--set", "physics.kinetics.kinetics=butler_volmer")
    assert_same_quantities(*runs_on_ranks("cases/porous_electrode.toml", tmp_path, *nonlinear))


# --------------------------------------------------------------------------------------------
# Sources for mass transport and heat
# --------------------------------------------------------------------------------------------
def test_molar_source_feeds_mass_transport():
    """A cathodic current I consumes the salt at (1 - t+) I/F per m^2: the inventory falls
    linearly, int eps c dx = eps c0 L - (1 - t+) I t/F."""
    current, transference, eps, c0, end = 30.0, 0.3, 0.4, 1000.0, 100.0
    case = galvanostatic(
        current,
        {
            "exchange_current_density": "0.3*sqrt(salt)",
            "transference": transference,
            "fields": {"molar_source": "salt_source"},
        },
        electrolyte_salt={
            "type": "mass_transport",
            "porosity": eps,
            "species": {"salt": {"diffusivity": 1e-9, "initial": c0}},
        },
    )
    case["time"] = {"scheme": "bdf1", "end": end, "dt": 10.0}
    case["output"] = {"xdmf": False}
    q = Simulation.from_case(case).run().quantities
    t = np.asarray(q["time_s"])
    expected = eps * c0 - (1 - transference) * current * t / FARADAY
    assert np.allclose(q["electrolyte_salt_amount_salt_mol_per_m2"], expected, rtol=1e-12)


def test_reaction_heat_feeds_heat():
    """With an entropic coefficient and T from heat: heat receives a j (eta + T dU/dT), the
    same number the kinetics reports; both parts heat a cathodic electrode with dU/dT < 0."""
    case = galvanostatic(
        50.0,
        {
            "exchange_current_density": 10.0,
            "entropic_coefficient": "-2e-4 V/K",
            "fields": {"heat_source": "heat_source"},
        },
        heat={"conductivity": 0.5, "boundaries": {"left": {"type": "temperature", "value": 300}}},
    )
    sim = Simulation.from_case(case)
    q = sim.run().quantities
    assert "heat_source [scalar, W/m^3, derived] from kinetics -> heat" in sim.graph.describe()
    generated, reported = q["heat_generated_W_per_m2"][-1], q["kinetics_reaction_heat_W_per_m2"][-1]
    assert generated == pytest.approx(reported, rel=1e-12)
    # a j = -50 A/m^3 over a unit length: heat = -50 (mean eta) + 50 * 2e-4 (mean T)
    eta = q["kinetics_min_overpotential_V"][-1], q["kinetics_max_overpotential_V"][-1]
    temperature = 300.0, q["max_temperature_K"][-1]
    assert eta[1] < 0 and temperature[1] > 300.1
    low = -50.0 * eta[1] + 50.0 * 2e-4 * temperature[0]
    high = -50.0 * eta[0] + 50.0 * 2e-4 * temperature[1]
    assert low < reported < high
    assert -50.0 * eta[1] > 0.5 * reported  # the irreversible part dominates here


def test_every_heat_source_reaches_heat(cases):
    """The porous electrode heats through three providers (Joule heat of the solid and of the
    electrolyte, reaction heat), which heat adds up (``heat_sources``). Their sum is the
    electrical power the cell takes, I phi_e(0) (phi_s = 0 at the collector, U = 0): the
    discrete energy identity of the two potential equations, to round-off."""
    case = tomllib.loads((cases / "porous_electrode.toml").read_text())
    sources = {"solid": "joule_solid", "electrolyte": "joule_electrolyte"}
    for instance, name in sources.items():
        case["physics"][instance] |= {"joule_heating": True}
        case["physics"][instance]["fields"]["heat_source"] = name
    case["physics"]["kinetics"]["fields"] = {"heat_source": "reaction_heat"}
    names = [*sources.values(), "reaction_heat"]
    case["physics"]["heat"] = {
        "type": "heat",
        "heat_sources": names,
        "density": "2000 kg/m^3",
        "specific_heat": "1000 J/(kg*K)",
        "initial": "298.15 K",
    }
    case["time"] = {"scheme": "bdf1", "end": 10.0, "dt": 5.0}
    sim = Simulation.from_case(case)
    q = sim.run().quantities
    graph = "\n".join(sim.graph.describe())
    for name in names:
        assert f"{name} [scalar, W/m^3, derived] from " in graph and "-> heat" in graph
    phi_e = sim.store["phi_e"].function
    at_separator = np.isclose(phi_e.function_space.tabulate_dof_coordinates()[:, 0], 0.0)
    power = CURRENT * phi_e.x.array[at_separator][0]
    generated = q["heat_generated_W_per_m2"][-1]
    assert generated == pytest.approx(power, rel=1e-9)  # measured 2e-16
    reaction = q["kinetics_reaction_heat_W_per_m2"][-1]
    assert 0.1 * power < reaction < 0.9 * power  # all three sources count


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"fields": {"solid_potential": "phi s"}}, "letters, digits and underscores"),
        ({"stoichiometry": "stoichiometry/2"}, "defines 'stoichiometry', so it cannot use it"),
        ({"electrons": 0}, "electrons must not be zero"),
        ({"kinetics": "tafel"}, "expected 'butler_volmer' or 'linear'"),
    ],
)
def test_bad_settings(settings: dict, message: str):
    case = galvanostatic(1.0, {"exchange_current_density": 1.0, **settings})
    with pytest.raises(CaseError, match=r"^physics\.kinetics") as error:
        Simulation.from_case(case)
    assert message in str(error.value)
