"""The biomineral strut with its stiffness from RVEs (cases/biomineral_strut_surrogate.toml,
issue 17) against the homogenisation plug-in's Mori-Tanaka law for the same spheres, and the
Sobol' study of the strut's stiffness (cases/studies/biomineral_strut_sobol.toml, issue 18) in
a tiny version.

Mori-Tanaka with spheres is the Hashin-Shtrikman lower bound. A simple cubic array of stiff
spheres agrees with it to first order in the mineral fraction (the surrogate's backbone is
exact there) and is stiffer as the spheres approach each other along the cell axes.
"""

import json
import tomllib

import numpy as np
import pytest
import tomli_w

from app.simulation import Simulation
from app.studies.runner import Study
from physics_modules import homogenisation
from tests.conftest import CASES

DAY = 86400.0
SURROGATE_CASE = "biomineral_strut_surrogate"
COLLAGEN = (1.5e9 / (3 * (1 - 0.56)), 1.5e9 / 2.56)  # (K, G) of E = 1.5 GPa, nu = 0.28
HA = (82.6e9, 44.9e9)
SMALL = {"size": "50 um", "end": "100 day"}


def case(name: str) -> dict:
    return tomllib.loads((CASES / f"{name}.toml").read_text())


def small(spec: dict) -> dict:
    spec["mesh"]["size"] = SMALL["size"]
    spec["time"]["end"] = SMALL["end"]
    spec["output"]["xdmf"] = False
    return spec


def at(q: dict, column: str, days: float) -> float:
    (index,) = np.flatnonzero(np.isclose(q["time_s"], days * DAY, rtol=1e-9, atol=1e-6))
    return float(q[column][index])


def mori_tanaka_modulus(fraction):
    """E of HA spheres in collagen by Mori-Tanaka (the Hashin-Shtrikman lower bound)."""
    return homogenisation.youngs(*homogenisation.mori_tanaka(fraction, COLLAGEN, HA, 1.0))


@pytest.fixture(scope="module")
def surrogate_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("strut") / "run"
    result = Simulation.from_case(small(case(SURROGATE_CASE)), base_dir=CASES).run(folder)
    return result, folder


@pytest.fixture(scope="module")
def mori_tanaka_run():
    spec = small(case("biomineral_growth"))
    spec["physics"]["stiffness"] |= {"scheme": "mori_tanaka", "aspect_ratio": 1.0}
    for column, region in (("packet_modulus", "packets"), ("core_modulus", "core")):
        spec["output"]["quantities"][column] = {
            "value": "youngs_modulus",
            "over": region,
            "units": "Pa",
        }
    return Simulation.from_case(spec, base_dir=CASES).run()


def test_the_surrogate_case_is_case_b_but_for_its_stiffness():
    """Every section of biomineral_growth but its stiffness is the surrogate case's, so the
    comparison with the plug-in compares stiffness laws, nothing else."""
    served, closed = case(SURROGATE_CASE), case("biomineral_growth")
    for section in ("mesh", "solver", "time"):
        assert served[section] == closed[section]
    for name in ("transport", "chemistry"):
        assert served["physics"][name] == closed["physics"][name]
    # the Carter stimulus reads the plug-in's youngs_modulus field (plug-in expressions cannot
    # read fields a surrogate serves)
    closed["physics"]["bone"]["fields"].pop("daily_stimulus")
    assert served["physics"]["bone"] == closed["physics"]["bone"]
    mechanics = closed["physics"]["mechanics"]
    mechanics |= {p: {"surrogate": "composite"} for p in ("youngs_modulus", "poisson_ratio")}
    assert served["physics"]["mechanics"] == mechanics
    assert "stiffness" not in served["physics"] and "stiffness" in closed["physics"]
    quantities = served["output"].pop("quantities")
    assert quantities.items() >= closed["output"].pop("quantities").items()
    assert served["output"] == closed["output"]


@pytest.mark.slow
def test_the_packets_drive_refreshes_and_the_surrogate_stays_within_tolerance(surrogate_run):
    q = surrogate_run[0].quantities
    solves = q["surrogate_composite_rve_solves"]
    assert solves[0] == 4  # the design, all in the core's range 0.35-0.42
    assert solves[-1] > 4  # the packets, mineralising from 0, left it
    assert q["surrogate_composite_max_uncertainty"].max() <= 0.003  # the case's tolerance
    assert q["surrogate_composite_calls"][-1] > 0


@pytest.mark.slow
def test_every_cell_modulus_lies_within_the_hashin_shtrikman_bounds(surrogate_run):
    """A cubic array of spheres is nearly isotropic: the isotropic projection of its stiffness
    lies within the bounds of isotropic composites, which the surrogate (bounded by Voigt and
    Reuss by construction) keeps to."""
    fields = surrogate_run[0].fields
    fraction = fields["mineral"].x.array
    modulus = fields["composite_youngs_modulus"].x.array
    assert fraction.min() < 0.3 < 0.4 < fraction.max()  # packets and core
    lower = homogenisation.youngs(*homogenisation.hashin_shtrikman(fraction, COLLAGEN, HA, False))
    upper = homogenisation.youngs(*homogenisation.hashin_shtrikman(fraction, COLLAGEN, HA, True))
    assert np.all(lower * (1 - 1e-9) <= modulus) and np.all(modulus <= upper)


@pytest.mark.slow
def test_rve_solves_meet_mori_tanaka_when_dilute_and_exceed_it_as_spheres_crowd(surrogate_run):
    """Each RVE of the run's database against Mori-Tanaka at its fraction: equal to first
    order in the fraction (within 0.5 % below 0.1) and stiffer the more the spheres crowd the
    cell (a gap of 0.07 of the cell between neighbours at 0.42): monotone, and 10-25 % at the
    core's 0.4."""
    from app.multiscale.materials import isotropic_moduli

    lines = (surrogate_run[1] / "surrogate_composite.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    fractions = np.array([r["inputs"]["volume_fraction"] for r in records])
    moduli = np.array(
        [homogenisation.youngs(*isotropic_moduli(np.array(r["tensor"]))) for r in records]
    )
    order = np.argsort(fractions)
    excess = (moduli / mori_tanaka_modulus(fractions) - 1)[order]
    fractions = fractions[order]
    assert np.all(excess > 0) and np.all(np.diff(excess) > 0)
    assert np.all(excess[fractions < 0.1] < 5e-3)
    assert 0.10 < np.interp(0.4, fractions, excess) < 0.25


@pytest.mark.slow
def test_strut_stiffness_against_the_plug_ins_mori_tanaka_law(surrogate_run, mori_tanaka_run):
    """The same run with the plug-in's Mori-Tanaka spheres: the same mineral (mechanics does
    not feed back with the case's feedback = 0; the adaptive steps differ a little, as the
    surrogate run retries steps whose properties moved), moduli equal where the mineral is
    dilute and stiffer where the spheres crowd: at 100 days the packets (phi_m 0.26) by
    1-4 %, the core (0.42) by 12-20 %, the strut's apparent modulus, carried mostly by the
    core, by 6-12 % (measured: 2.1 %, 16.3 %, 9.4 % at 50 um)."""
    served, closed = surrogate_run[0].quantities, mori_tanaka_run.quantities
    assert served["packet_mineral_fraction"] == pytest.approx(
        closed["packet_mineral_fraction"], rel=5e-3, abs=1e-9
    )
    excess = {
        name: at(served, column, 100) / at(closed, column, 100) - 1
        for name, column in (
            ("packets", "packet_modulus_Pa"),
            ("core", "core_modulus_Pa"),
            ("strut", "axial_stiffness_Pa"),
        )
    }
    print("surrogate over Mori-Tanaka at 100 days:", excess)
    assert 0.01 < excess["packets"] < 0.04
    assert 0.12 < excess["core"] < 0.20
    assert excess["packets"] < excess["strut"] < excess["core"]
    assert 0.06 < excess["strut"] < 0.12
    # refreshed near phi_m = 0.07, the surrogate meets the dilute law at 20 days (phi_m 0.095)
    assert at(served, "packet_modulus_Pa", 20) == pytest.approx(
        at(closed, "packet_modulus_Pa", 20), rel=5e-3
    )


STUDY = CASES / "studies" / "biomineral_strut_sobol.toml"
TINY = ("t_prim", "D_Ca", "E_col")  # one rate constant, one diffusivity, the collagen


@pytest.mark.slow
def test_sobol_study_of_the_strut_in_a_tiny_version(tmp_path):
    """The study file as written, made tiny: three of its inputs, Saltelli's N = 2 (10
    members), a coarse strut up to 14 days (the primary mineral has just started). The table
    and indices come out, and they say what the model says: the collagen's modulus is all
    that moves the stiffness, and nothing of the mechanics reaches the mineral (feedback off),
    so the collagen's indices of the packets' mineral vanish."""
    spec = tomllib.loads(STUDY.read_text())
    spec["case"] = str(CASES / "biomineral_growth.toml")
    spec["parameters"] = {name: spec["parameters"][name] for name in TINY}
    spec["overrides"] |= {"mesh.size": "50 um", "time.end": "14 day"}
    for quantity in spec["quantities"].values():
        quantity["time"] = "14 day"
    spec["method"]["samples"] = 2
    path = tmp_path / "tiny.toml"
    path.write_text(tomli_w.dumps(spec))
    study = Study.from_file(path, tmp_path / "study")
    table = study.run()
    assert len(table) == 2 * (len(TINY) + 2) and table.completed.all()
    assert (tmp_path / "study" / "sobol_indices.csv").is_file()
    stiffness = table.quantities["stiffness"]
    assert np.all((stiffness > 1.5e9) & (stiffness < 30e9))
    mineral = table.quantities["packet_mineral"]
    assert np.all((mineral > 0) & (mineral < 0.121 * 2 / 8))  # at most 2 of t_prim >= 8 days
    sobol = study.analysis["sobol"]
    total = dict(zip(TINY, sobol["stiffness"]["ST"], strict=True))
    assert max(total, key=total.get) == "E_col"
    collagen = TINY.index("E_col")
    assert abs(sobol["packet_mineral"]["S1"][collagen]) < 1e-6
    assert abs(sobol["packet_mineral"]["ST"][collagen]) < 1e-6
