"""Verification of the reaction kinetics plug-in through the framework (case -> run -> results).

- The equation parser (accepted forms, and one clear error with the accepted form for bad ones).
- VALIDATION.md B1: kinetic calcite in a batch, the "simple" rate law as an expression and as a
  reversible mass-action law with reaction orders, against c = sqrt(a/b) tanh(sqrt(ab) t).
- VALIDATION.md B2: the TST law in a batch against its closed form, with the mineral volume
  fraction and the porosity kept exactly in step with the dissolved amount.
- Arrhenius temperature dependence, from the parameter and from a temperature field.
- Clean switch-off: saturation-driven precipitation depletes a reactant to ~0 without negative
  concentrations; dissolution stops when the mineral is used up; precipitation stops when the
  pore space reaches its minimum.
- A closed reacting system with transport and porosity feedback conserves every element.
- VALIDATION.md A9: a precipitation front (mass transport + kinetics) against the Stefan/Neumann
  solution, and 1 vs 2 MPI ranks.
"""

import math
import tomllib

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import erf

from app.cli import main
from app.errors import CaseError, SolverError
from app.simulation import Simulation
from physics_modules.reaction_kinetics import parse_equation
from tests.conftest import CASES, assert_same_quantities, runs_on_ranks

GAS_CONSTANT = 8.31446261815324
# B1's "simple" rate r = a - b c^2, in SI: mol/(m^3 s) and m^3/(mol s) (1 kgw = 1e-3 m^3).
A_B1, B_B1 = 1e3 * 10**-6.91, 1e-3 * 10**-1.52


def batch(species: dict, reactions: dict, end: float, dt: float, scheme="bdf2", **chem) -> dict:
    """A one-cell (well-mixed) reactor with one reaction_kinetics instance 'chemistry'."""
    physics = {"type": "reaction_kinetics", "species": species, "reactions": reactions, **chem}
    return {
        "mesh": {"type": "interval", "cells": [1]},
        "physics": {"chemistry": physics},
        "time": {"scheme": scheme, "end": end, "dt": dt},
        "output": {"xdmf": False},
    }


def column(q: dict, name: str) -> np.ndarray:
    """A quantities column by the start of its name (units vary with the mesh dimension)."""
    (key,) = [key for key in q if key.startswith(name + "_") or key == name]
    return np.asarray(q[key])


# --------------------------------------------------------------------------------------------
# Equations
# --------------------------------------------------------------------------------------------
def test_equations_are_parsed():
    eq = parse_equation("Ca + 2 OH -> CaOH2")
    assert eq == ({"Ca": 1.0, "OH": 2.0}, {"CaOH2": 1.0}, False)
    eq = parse_equation(" 2OH+Ca<->0.5*X2 + Y ")
    assert eq == ({"OH": 2.0, "Ca": 1.0}, {"X2": 0.5, "Y": 1.0}, True)
    assert parse_equation("A + A + E -> B + E").net == {"A": -2.0, "E": 0.0, "B": 1.0}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Ca + CO3 = calcite", "no arrow"),
        ("A -> B -> C", "2 arrows"),
        ("Ca+2 + CO3-2 -> calcite", "'2' is not a species"),
        ("A + -> B", "a term is empty"),
        ("0 A -> B", "coefficients must be positive"),
        ("A -> 2 3B", "'2 3B' is not a species"),
    ],
)
def test_malformed_equations_are_refused(text: str, problem: str):
    with pytest.raises(ValueError, match=problem) as error:
        parse_equation(text)
    assert "write a reaction as '2 A + B -> C'" in str(error.value)


def test_a_malformed_equation_is_one_message_with_exit_code_2(tmp_path, capsys):
    case = tmp_path / "bad.toml"
    text = (CASES / "calcite_batch.toml").read_text()
    case.write_text(text.replace('"calcite <-> Ca"', '"calcite <=> Ca"'))
    assert main(["check", str(case)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines  # one message, no traceback
    assert lines[0].startswith("scalebridge: error: ")
    assert (
        "bad.toml: physics.chemistry.reactions.dissolution.equation: cannot read "
        "'calcite <=> Ca': no arrow; write a reaction as '2 A + B -> C' (irreversible) or "
        "'A + B <-> C' (reversible)" in lines[0]
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"equation": "calcite <-> Ca + CO3"}, "species 'CO3' is not declared"),
        ({"law": "saturation", "rate_constant": 1.0}, "needs equilibrium_constant"),
        ({"rate_constant": 1.0}, "law = 'expression' does not use rate_constant"),
        (
            {
                "law": "tst",
                "equation": "calcite -> Ca",
                "rate_constant": 1.0,
                "equilibrium_constant": 1.0,
                "rate": None,
            },
            "runs both ways",
        ),
        (
            {
                "law": "mass_action",
                "equation": "calcite -> Ca",
                "rate": None,
                "rate_constant": "1 m/s",
            },
            "rate_constant (in mol/(m^3*s)): '1 m/s' has units of m / s but mol/(m^3*s) was "
            "expected",
        ),
    ],
)
def test_reaction_input_checks(change: dict, message: str):
    case = tomllib.loads((CASES / "calcite_batch.toml").read_text())
    reaction = case["physics"]["chemistry"]["reactions"]["dissolution"]
    for key, value in change.items():
        if value is None:
            reaction.pop(key)
        else:
            reaction[key] = value
    with pytest.raises(CaseError, match=r"^physics\.chemistry") as error:
        Simulation.from_case(case)
    assert message in str(error.value)


def test_the_docstring_example_is_a_valid_case():
    """The case in the module docstring, with a mesh and a transport for Ca and CO3, runs."""
    import physics_modules.reaction_kinetics as module

    text = module.__doc__.split("A case uses it as::")[1]
    case = tomllib.loads("\n".join(line[4:] for line in text.splitlines()))
    case["mesh"] = {"type": "interval", "cells": [2]}
    species = {"diffusivity": 1e-9, "initial": 1.0}
    case["physics"]["transport"] = {
        "type": "mass_transport",
        "porosity": "porosity",
        "species": {"Ca": species, "CO3": species},
    }
    case["time"] = {"scheme": "bdf1", "end": 10.0, "dt": 10.0}
    case["output"] = {"xdmf": False}
    q = Simulation.from_case(case).run().quantities
    assert q["chemistry_total_Ca_mol_per_m2"][-1] == pytest.approx(
        q["chemistry_total_Ca_mol_per_m2"][0], rel=1e-12
    )


def test_unbalanced_elements_are_refused():
    species = {
        "Ca": {"composition": {"Ca": 1}},
        "CO3": {"composition": {"C": 1, "O": 3}},
        "calcite": {"molar_volume": 3.69e-5, "composition": {"Ca": 1, "C": 1, "O": 2}},
    }
    reactions = {"r": {"equation": "Ca + CO3 -> calcite", "rate_constant": 1.0}}
    with pytest.raises(CaseError, match="element O does not balance"):
        Simulation.from_case(batch(species, reactions, 1.0, 1.0))


# --------------------------------------------------------------------------------------------
# B1: kinetic calcite, batch
# --------------------------------------------------------------------------------------------
def b1_exact(t: float) -> float:
    return math.sqrt(A_B1 / B_B1) * math.tanh(math.sqrt(A_B1 * B_B1) * t)


def test_calcite_batch_b1(cases):
    q = Simulation.from_case(cases / "calcite_batch.toml").run().quantities
    times = list(q["time_s"])
    for t in (1000.0, 5000.0, 10000.0, 30000.0):
        c = q["chemistry_max_Ca_mol_per_m3"][times.index(t)]
        assert c == pytest.approx(b1_exact(t), rel=5e-3), t
    c = q["chemistry_max_Ca_mol_per_m3"][times.index(10000.0)]
    assert abs(c / 1.0976 - 1) < 5e-3  # VALIDATION.md B1: 1.0976e-3 mol/kgw
    assert abs(c / b1_exact(1e4) - 1) < 1e-4  # measured 3.0e-5: the widening pore space
    # the calcite lost is the Ca gained (per bulk volume), to round-off
    gained = column(q, "chemistry_amount_Ca")[-1] - column(q, "chemistry_amount_Ca")[0]
    lost = column(q, "chemistry_amount_calcite")[0] - column(q, "chemistry_amount_calcite")[-1]
    assert gained == pytest.approx(lost, rel=1e-8)  # to Newton's tolerance (measured 1.2e-9)


def test_a_dissolution_faster_than_its_mineral_ends_with_the_mineral_gone(cases):
    """1000 mol/(m^3 s) per fluid volume dissolves the reactor's 965 mol/m^3 of calcite within
    a second. With 100 s steps the step's equations had a root with calcite beyond the pore
    space (porosity -0.36, Ca -35851 mol/m^2) where the rate, times that porosity, reversed:
    Newton found it and the run completed. Now the fixed steps fail, and adaptive steps end
    with every mole of calcite in solution."""
    fast = {"physics.chemistry.reactions.dissolution.rate": "1e3"}
    with pytest.raises(SolverError, match="the solve failed at t = 100 s"):
        Simulation.from_case(cases / "calcite_batch.toml", fast).run()
    adaptive = fast | {"time.adaptive": {"dt_max": 1000.0}}
    q = Simulation.from_case(cases / "calcite_batch.toml", adaptive).run().quantities
    calcite, ca = column(q, "chemistry_amount_calcite"), column(q, "chemistry_amount_Ca")
    assert min(q["chemistry_min_porosity"]) >= 0.9644 - 1e-12  # the pores never shrink
    assert min(q["chemistry_min_Ca_mol_per_m3"]) >= 0
    assert abs(calcite[-1]) < 1e-12 * calcite[0]
    assert ca[-1] == pytest.approx(calcite[0], rel=1e-10)  # every mole of calcite dissolved
    assert max(q["chemistry_min_porosity"]) == pytest.approx(1.0, rel=1e-12)


def test_calcite_batch_b1_as_reversible_mass_action():
    """The same law as r = k_f - k_b Ca^2: calcite (a mineral, activity 1) <-> Ca with a
    reverse order 2 in Ca; k_f and k_b in the SI units the orders imply (strings with units)."""
    species = {"Ca": {}, "calcite": {"initial": 1e-6, "molar_volume": 1e-12}}
    reactions = {
        "dissolution": {
            "equation": "calcite <-> Ca",
            "rate_constant": f"{A_B1} mol/(m^3*s)",
            "reverse_rate_constant": f"{B_B1 * 1e3} L/(mol*s)",  # 1 L = 1e-3 m^3
            "reverse_orders": {"Ca": 2},
        }
    }
    sim = Simulation.from_case(batch(species, reactions, 10000.0, 50.0))
    q = sim.run().quantities
    assert sim.physics["chemistry"].params.reactions["dissolution"].reverse_rate_constant.value == (
        pytest.approx(B_B1)
    )
    assert q["chemistry_max_Ca_mol_per_m3"][-1] == pytest.approx(b1_exact(1e4), rel=1e-4)


# --------------------------------------------------------------------------------------------
# Arrhenius
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", ["parameter", "field"])
def test_arrhenius_first_order_decay(source: str):
    """A -> B with k(T) = k_ref exp(-E_a/R (1/T - 1/T_ref)): A = A0 exp(-k t)."""
    k_ref, energy, temperature = 2e-3, 40e3, 330.0
    species = {"A": {"initial": 3.0}, "B": {}}
    reactions = {
        "decay": {"equation": "A -> B", "rate_constant": k_ref, "activation_energy": energy}
    }
    case = batch(species, reactions, 200.0, 0.5)
    if source == "parameter":
        case["physics"]["chemistry"]["temperature"] = temperature
    else:
        case["physics"]["heat_bath"] = {
            "type": "prescribed",
            "fields": {"temperature": {"units": "K", "value": temperature}},
        }
    sim = Simulation.from_case(case)
    q = sim.run().quantities
    k = k_ref * math.exp(-energy / GAS_CONSTANT * (1 / temperature - 1 / 298.15))
    assert q["chemistry_max_A_mol_per_m3"][-1] == pytest.approx(3 * math.exp(-k * 200), rel=1e-4)
    assert q["chemistry_max_B_mol_per_m3"][-1] == pytest.approx(
        3 - q["chemistry_max_A_mol_per_m3"][-1]
    )
    if source == "field":
        assert (
            "temperature [scalar, K, derived] from heat_bath -> chemistry" in sim.graph.describe()
        )


# --------------------------------------------------------------------------------------------
# B2: TST, batch; minerals and porosity
# --------------------------------------------------------------------------------------------
def test_tst_batch_b2():
    """quartz <-> SiO2 with r = k A (1 - c/K): c = K + (c0 - K) exp(-k A t/(eps K)), eps the
    pore (fluid) volume per bulk volume; the quartz fraction loses V_m times what dissolves."""
    k, area, K, c0, quartz0, vm = 1e-7, 1000.0, 0.2, 0.02, 0.4, 2.269e-5
    species = {"SiO2": {"initial": c0}, "quartz": {"initial": quartz0, "molar_volume": vm}}
    reactions = {
        "dissolution": {
            "equation": "quartz <-> SiO2",
            "law": "tst",
            "rate_constant": k,
            "surface_area": area,
            "equilibrium_constant": K,
        }
    }
    q = Simulation.from_case(batch(species, reactions, 2000.0, 2.0, porosity=1.0)).run().quantities
    eps = 1.0 - quartz0
    t = np.asarray(q["time_s"])
    exact = K + (c0 - K) * np.exp(-k * area * t / (eps * K))
    c = np.asarray(q["chemistry_max_SiO2_mol_per_m3"])
    assert np.abs(c / exact - 1).max() < 1e-4  # BDF2 and the porosity change (3e-6)
    assert c[-1] > c0 + 0.6 * (K - c0)  # most of the way to equilibrium
    quartz = np.asarray(q["chemistry_max_quartz"])
    dissolved = (1 - quartz) * c - eps * c0  # per bulk volume, with the current porosity
    assert np.abs(quartz - (quartz0 - vm * dissolved)).max() < 1e-13  # Newton tol.: 1.2e-14
    assert np.allclose(q["chemistry_min_porosity"], 1 - quartz, rtol=0, atol=1e-15)


def test_saturation_law_from_a_solution_without_the_ion():
    """Ca + CO3 <-> calcite with no Ca at the start: Omega = K Ca CO3 = 0 (no reciprocal of
    Ca, which would make the Jacobian NaN), so calcite dissolves until K Ca (1 + Ca) = 1,
    i.e. Ca = 1 for K = 0.5 (CO3 starts at 1)."""
    species = {
        "Ca": {"initial": 0.0},
        "CO3": {"initial": 1.0},
        "calcite": {"initial": 0.01, "molar_volume": "36.9 cm^3/mol"},
    }
    growth = {
        "equation": "Ca + CO3 <-> calcite",
        "law": "saturation",
        "rate_constant": 1e-3,
        "equilibrium_constant": 0.5,
        "surface_area": 10.0,
    }
    q = (
        Simulation.from_case(batch(species, {"growth": growth}, 3000.0, 50.0, porosity=0.5))
        .run()
        .quantities
    )
    ca, co3 = q["chemistry_max_Ca_mol_per_m3"][-1], q["chemistry_max_CO3_mol_per_m3"][-1]
    assert 0.5 * ca * co3 == pytest.approx(1.0, rel=1e-8)  # at saturation
    # CO3 - Ca = 1 up to the widened pore space (2e-5 of it)
    assert ca == pytest.approx(1.0, rel=1e-4) and co3 == pytest.approx(2.0, rel=1e-4)


def test_precipitation_depletes_a_reactant_without_going_negative():
    """Ca + CO3 <-> calcite, far supersaturated (Omega = 2e10 at the start): Ca falls to its
    equilibrium K_sp/CO3 ~ 1e-10 while nothing turns negative."""
    ksp = 1e-10
    species = {
        "Ca": {"initial": 1.0},
        "CO3": {"initial": 2.0},
        "calcite": {"initial": 0.01, "molar_volume": 3.69e-5},
    }
    reactions = {
        "growth": {
            "equation": "Ca + CO3 <-> calcite",
            "law": "saturation",
            "rate_constant": 1e-12,
            "surface_area": 1.0,
            "equilibrium_constant": 1 / ksp,  # of the precipitation as written
        }
    }
    case = batch(species, reactions, 4000.0, 20.0, porosity=0.5)
    case["solver"] = {"newton": {"atol": 0.0}}  # resolve amounts far below the default 1e-10
    q = Simulation.from_case(case).run().quantities
    ca, co3 = np.asarray(q["chemistry_min_Ca_mol_per_m3"]), q["chemistry_min_CO3_mol_per_m3"]
    assert ca.min() >= -1e-12 * ca[0]
    assert ca[-1] < 1e-6 * ca[0]  # depleted (e^-40 of the way from the start)
    assert ca[-1] * co3[-1] == pytest.approx(ksp, rel=0.05)  # near equilibrium, from above
    assert co3[-1] == pytest.approx(1.0, rel=1e-3)


def test_dissolution_stops_when_the_mineral_is_used_up():
    """A far undersaturated mineral dissolves at a constant rate until it is gone: its fraction
    never turns negative and the dissolved amount ends at everything the mineral held."""
    vm, phi0, porosity = 3e-5, 3e-3, 0.3
    species = {"M": {"initial": phi0, "molar_volume": vm, "threshold": 1e-8}, "X": {}}
    reactions = {
        "dissolution": {
            "equation": "M <-> X",
            "law": "tst",
            "rate_constant": 0.1,
            "surface_area": 1.0,
            "equilibrium_constant": 1e6,
        }
    }
    case = batch(species, reactions, 1500.0, 5.0, scheme="bdf1", porosity=porosity)
    q = Simulation.from_case(case).run().quantities
    mineral = np.asarray(q["chemistry_min_M"])
    assert mineral.min() >= 0
    assert mineral[-1] < 1e-8 * phi0
    x = column(q, "chemistry_amount_X")
    assert x[-1] == pytest.approx(phi0 / vm, rel=1e-6)  # all of it dissolved, no more
    rate = column(q, "chemistry_rate_dissolution")
    assert rate[-1] < 1e-6 * rate[1]  # switched off


def test_precipitation_stops_when_the_pores_fill():
    """A constant precipitation rate fills the pore space down to the minimum porosity and
    stops there; the supplying species never goes negative."""
    vm, porosity, minimum = 4e-5, 0.2, 0.05
    species = {"S": {"initial": 5e4}, "M": {"initial": 0.0, "molar_volume": vm}}
    reactions = {
        "growth": {"equation": "S -> M", "law": "expression", "rate": 10.0, "volume": "bulk"}
    }
    chem = {"porosity": porosity, "minimum_porosity": minimum, "porosity_cutoff": 1e-3}
    q = Simulation.from_case(batch(species, reactions, 600.0, 2.0, "bdf1", **chem)).run()
    q = q.quantities
    pores = np.asarray(q["chemistry_min_porosity"])
    assert pores.min() >= minimum
    assert pores[-1] == pytest.approx(minimum, abs=1e-9)
    assert q["chemistry_max_M"][-1] == pytest.approx(porosity - minimum, abs=1e-9)
    assert min(q["chemistry_min_S_mol_per_m3"]) > 0


# --------------------------------------------------------------------------------------------
# A closed system with transport: element conservation
# --------------------------------------------------------------------------------------------
def test_closed_system_conserves_every_element():
    """Ca and CO3 diffuse (mass transport, porosity = this instance's porosity field) in a
    closed square while calcite precipitates where they are supersaturated and dissolves where
    not. Ca, C and O totals (dissolved, with the changing porosity, plus mineral) are constant
    to round-off, while a large part of the dissolved inventory reacts."""
    case = {
        "mesh": {"type": "rectangle", "cells": [6, 6]},
        "physics": {
            "transport": {
                "type": "mass_transport",
                "porosity": "porosity",
                "species": {
                    "Ca": {"diffusivity": 1e-2, "initial": "2 + cos(pi*x)"},
                    "CO3": {"diffusivity": 2e-2, "initial": "1.5 + sin(pi*y)"},
                },
            },
            "chemistry": {
                "type": "reaction_kinetics",
                "porosity": 0.5,
                "species": {
                    "Ca": {"transported": True, "composition": {"Ca": 1}},
                    "CO3": {"transported": True, "composition": {"C": 1, "O": 3}},
                    "calcite": {
                        "initial": "0.002 + 0.002*x",
                        "molar_volume": "36.9 cm^3/mol",
                        "composition": {"Ca": 1, "C": 1, "O": 3},
                    },
                },
                "reactions": {
                    "growth": {
                        "equation": "calcite <-> Ca + CO3",
                        "law": "saturation",
                        "rate_constant": 1e-3,
                        "equilibrium_constant": 1.5,
                        "exponent": 2,
                        "surface_area": "100*(calcite/0.002)**(2/3)",
                    }
                },
            },
        },
        "time": {"scheme": "bdf2", "end": 10.0, "dt": 0.5},
        "output": {"xdmf": False},
    }
    q = Simulation.from_case(case).run().quantities
    for element in ("Ca", "C", "O"):
        total = column(q, f"chemistry_total_{element}")
        assert np.abs(total / total[0] - 1).max() < 1e-10, element
    dissolved = column(q, "transport_amount_Ca")  # transport's own amount: eps c
    mineral = column(q, "chemistry_amount_calcite")
    assert np.allclose(dissolved + mineral, column(q, "chemistry_total_Ca"), rtol=1e-12)
    assert mineral[-1] - mineral[0] > 0.3 * dissolved[0]  # much of it precipitated
    assert q["chemistry_min_porosity"][-1] < q["chemistry_min_porosity"][0]


# --------------------------------------------------------------------------------------------
# A9: precipitation front
# --------------------------------------------------------------------------------------------
def neumann_lambda(stefan: float) -> float:
    """lambda of lambda exp(lambda^2) erf(lambda) = St/sqrt(pi)."""
    return brentq(lambda x: x * math.exp(x * x) * erf(x) - stefan / math.sqrt(math.pi), 1e-9, 5)


@pytest.mark.parametrize(
    ("stefan", "published", "at_end"),
    [(0.1, 0.22002, 1e-2), (0.5, 0.46479, 5e-3), (1.0, 0.62006, 5e-3), (2.0, 0.80060, 5e-3)],
)
def test_precipitation_front_a9(cases, stefan: float, published: float, at_end: float):
    """x_f/sqrt(D t) = 2 lambda at A9's four Stefan numbers St = C0/(nu b0) (b0 = C0/St), to
    2 % at t = 0.25, 0.5, 0.75, 1 and to ``at_end`` at t = 1 (measured 0.87 %, 0.25 %, 0.14 %,
    0.09 %: the slow front of St = 0.1 crosses 44 cells by then)."""
    spec = tomllib.loads((cases / "precipitation_front.toml").read_text())
    c0 = spec["physics"]["transport"]["species"]["A"]["boundaries"]["left"]["value"]
    b0 = c0 / stefan
    length = spec["mesh"]["length"][0]
    lam = neumann_lambda(stefan)
    assert lam == pytest.approx(published, abs=1e-5)  # VALIDATION.md A9
    overrides = {"physics.chemistry.species.B.initial": b0}
    q = (
        Simulation.from_case(cases / "precipitation_front.toml", overrides=overrides)
        .run()
        .quantities
    )
    for t, amount in zip(q["time_s"][1:], q["chemistry_amount_B_mol_per_m2"][1:], strict=True):
        front = length - amount / b0  # B is gone behind the front, untouched ahead of it
        assert front / math.sqrt(t) == pytest.approx(2 * lam, rel=0.02), t
    assert t == pytest.approx(1.0)
    assert front / math.sqrt(t) == pytest.approx(2 * lam, rel=at_end)
    assert min(q["chemistry_min_B_mol_per_m3"]) >= -1e-12 * b0  # B is never driven below 0


@pytest.mark.mpi
def test_front_one_and_two_ranks_agree(tmp_path):
    serial, parallel = runs_on_ranks(
        "cases/precipitation_front.toml", tmp_path, "--set", "time.end=0.25"
    )
    # values below 1e-20 are round-off of exponentially small fields (min of P far ahead of
    # the front, ~1e-49)
    assert_same_quantities(serial, parallel, floor=1e-20)
