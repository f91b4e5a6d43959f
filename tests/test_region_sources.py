"""Sources provided per region: one Butler-Volmer instance per electrode feeding one electrolyte.

A 1D cell: negative electrode [0, 50 um], separator, positive electrode [75, 125 um]. Each
electrode has its solid potential and its kinetics placed on its region (``domain``); the
electrolyte potential and the salt live everywhere and add up the two reactions' sources, each
integrated over the electrode it lives in. The current I enters the positive collector and
leaves the negative one: every reaction current and collector current is I to Newton's
tolerance, the salt one electrode produces the other consumes (the amount is conserved), and
the salt coupling through the current sources with (1 - t+) equals the coupling through the
molar sources butler_volmer derives. 1 and 2 ranks agree.
"""

import pytest
import tomli_w

from app.errors import CaseError
from app.simulation import Simulation
from tests.conftest import assert_same_quantities, runs_on_ranks

FARADAY = 96485.33212331001
CURRENT, TRANSFERENCE, POROSITY, SALT = 20.0, 0.4, 0.4, 1000.0
PRODUCED = (1 - TRANSFERENCE) * CURRENT / FARADAY  # salt per electrode, mol/(m^2 s)


def solid(potential: str, region: str, boundary: dict, source: str) -> dict:
    return {
        "type": "electrostatics",
        "mode": "conduction",
        "domain": region,
        "conductivity": 10.0,
        "boundaries": boundary,
        "fields": {
            "potential": potential,
            "current_source": source,
            "electric_field": f"E_{potential}",
            "current_density": f"i_{potential}",
        },
    }


def kinetics(region: str, suffix: str) -> dict:
    fields = ["overpotential", "current_density", "volumetric_current", "solid_current_source"]
    return {
        "type": "butler_volmer",
        "domain": region,
        "specific_area": "1e5 1/m",
        "exchange_current_density": "2*sqrt(c_e/1000)",
        "transference": TRANSFERENCE,
        "fields": {name: f"{name}_{suffix}" for name in fields}
        | {
            "solid_potential": f"phi_s_{suffix}",
            "electrolyte_potential": "phi_e",
            "electrolyte_current_source": f"a_j_e_{suffix}",
            "molar_source": f"c_e_source_{suffix}",
        },
    }


def cell(coupling: str) -> dict:
    """The cell; the salt reads the molar sources (``molar``) or the current sources with its
    transference number (``current``)."""
    salt = {"diffusivity": 2e-10, "initial": SALT}
    if coupling == "molar":
        salt["sources"] = ["c_e_source_n", "c_e_source_p"]
    else:
        salt |= {"transference": TRANSFERENCE, "current_source": ["a_j_e_n", "a_j_e_p"]}
    collector_n = {"left": {"type": "potential", "value": 0.0}}
    collector_p = {"right": {"type": "current", "value": CURRENT}}
    return {
        "mesh": {
            "type": "interval",
            "length": [125e-6],
            "cells": [25],
            "regions": {"negative": "x < 50e-6", "positive": "x > 75e-6"},
        },
        "physics": {
            "solid_n": solid("phi_s_n", "negative", collector_n, "solid_current_source_n"),
            "solid_p": solid("phi_s_p", "positive", collector_p, "solid_current_source_p"),
            "electrolyte": {
                "type": "electrostatics",
                "mode": "conduction",
                "conductivity": 1.0,
                "fields": {
                    "potential": "phi_e",
                    "current_source": ["a_j_e_n", "a_j_e_p"],
                    "electric_field": "E_e",
                    "current_density": "i_e",
                },
            },
            "salt": {
                "type": "mass_transport",
                "porosity": POROSITY,
                "lumped_sources": False,  # the quadrature of the charge the reactions exchange
                "species": {"c_e": salt},
            },
            "negative": kinetics("negative", "n"),
            "positive": kinetics("positive", "p"),
        },
        "time": {"scheme": "bdf1", "end": 20.0, "dt": 10.0},
        "solver": {"newton": {"rtol": 1e-12, "atol": 1e-14}},
        "output": {"xdmf": False},
    }


@pytest.fixture(scope="module")
def runs() -> dict:
    return {c: Simulation.from_case(cell(c)).run().quantities for c in ("molar", "current")}


def test_each_electrode_reaction_carries_the_cell_current(runs):
    q = {name: values[-1] for name, values in runs["molar"].items()}
    # Boundary currents are what leaves the domain: the cell current enters on the right.
    assert q["solid_p_current_right_A_per_m2"] == pytest.approx(-CURRENT, rel=1e-12)
    assert q["positive_total_current_A_per_m2"] == pytest.approx(CURRENT, rel=1e-9)
    assert q["negative_total_current_A_per_m2"] == pytest.approx(-CURRENT, rel=1e-9)
    assert q["solid_n_current_left_A_per_m2"] == pytest.approx(CURRENT, rel=1e-9)
    # anodic in the positive electrode only, cathodic in the negative only
    assert q["positive_min_overpotential_V"] > 0 > q["negative_max_overpotential_V"]


def test_salt_moves_from_one_electrode_to_the_other(runs):
    q = runs["molar"]
    assert abs(q["salt_generated_c_e_mol_per_s_per_m2"][-1]) < 1e-9 * PRODUCED
    amount = q["salt_amount_c_e_mol_per_m2"]
    assert amount[-1] == pytest.approx(amount[0], rel=1e-13)
    gained = q["salt_amount_c_e_positive_mol_per_m2"][-1] - POROSITY * SALT * 50e-6
    lost = POROSITY * SALT * 50e-6 - q["salt_amount_c_e_negative_mol_per_m2"][-1]
    assert 0 < gained < PRODUCED * 20.0 and 0 < lost < PRODUCED * 20.0  # some diffused on


def test_current_and_molar_coupling_agree(runs):
    assert_same_quantities(runs["molar"], runs["current"], rtol=1e-9, floor=PRODUCED)


@pytest.mark.mpi
def test_one_and_two_ranks_agree(tmp_path):
    case = tmp_path / "cell.toml"
    case.write_text(tomli_w.dumps(cell("molar")))
    assert_same_quantities(*runs_on_ranks(case, tmp_path), floor=PRODUCED)


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("electrolyte", "fields", "current_source"), ["a_j_e_n", "a_j_e_n"], "fields"),
        (("salt", "species", "c_e", "sources"), ["s", "s"], "species.c_e"),
        (("salt", "species", "c_e", "current_source"), ["a j"], "species.c_e"),
    ],
)
def test_bad_source_lists(path, value, where):
    case = cell("molar")
    table = case["physics"]
    for key in path[:-1]:
        table = table[key]
    table[path[-1]] = value
    with pytest.raises(CaseError, match=rf"^physics\.{path[0]}\.{where}\.{path[-1]}"):
        Simulation.from_case(case)
