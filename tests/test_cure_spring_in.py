"""Spring-in of a thin L-section (cases/l_section_cure.toml, meshes/l_section.py).

Cured at a uniform temperature and freed from the tool, the bend closes by the cool-down and the
chemical shrinkage, both orthotropic in the fibre frame that follows the part. Against Radford &
Diefendorf's formula within 5 % (measured 0.9 %), with and without the shrinkage term; the part
is stress free (the eigenstrain is compatible); 1 and 2 MPI ranks agree. The angle is the
mechanics quantity angle_<name> (the rotation of one boundary minus another's).
"""

import math

import pytest

from app.cli import main
from tests.conftest import CASES, read_quantities, runs_on_ranks, scalebridge

CASE = CASES / "l_section_cure.toml"
ALPHA_L, ALPHA_T, PHI_L, PHI_T, COOLING = 6e-6, 2.5e-5, -3e-4, -1e-2, -100.0


def radford_diefendorf(shrinkage: bool) -> float:
    thermal = (ALPHA_L - ALPHA_T) * COOLING / (1 + ALPHA_T * COOLING)
    chemical = (PHI_L - PHI_T) / (1 + PHI_T) if shrinkage else 0.0
    return math.pi / 2 * (thermal + chemical)


def test_spring_in_with_shrinkage_on_one_and_two_ranks(tmp_path):
    serial, parallel = runs_on_ranks(CASE, tmp_path)
    angle = serial["angle_spring_in_rad"][-1]
    assert angle == pytest.approx(radford_diefendorf(True), rel=0.05)
    # the small-strain angle is theta (eps_tt - eps_nn): the formula without denominators
    small_strain = math.pi / 2 * ((ALPHA_L - ALPHA_T) * COOLING + PHI_L - PHI_T)
    assert angle == pytest.approx(small_strain, rel=1e-4)
    # stress free: the largest stress is round-off of E |eps*| = 2e8 Pa
    assert serial["max_von_mises_Pa"][-1] < 1e-2 * 20e9 * abs(PHI_T)
    # the same angle on 2 ranks; the reactions are round-off of zero (1e-7 N/m) on both
    assert parallel["angle_spring_in_rad"][-1] == pytest.approx(angle, rel=1e-8)
    for column in ("reaction_pin_x_N_per_m", "reaction_pin_y_N_per_m"):
        assert abs(serial[column][-1]) < 1e-5 and abs(parallel[column][-1]) < 1e-5


def test_spring_in_of_the_cool_down_alone(tmp_path):
    process = scalebridge(
        "run",
        CASE,
        "-o",
        tmp_path / "thermal",
        "-q",
        "--set",
        'physics.mechanics.eigenstrains=["thermal_strain"]',
    )
    assert process.returncode == 0, process.stderr
    angle = read_quantities(tmp_path / "thermal")["angle_spring_in_rad"][-1]
    assert angle == pytest.approx(radford_diefendorf(False), rel=0.05)
    assert angle == pytest.approx(math.pi / 2 * (ALPHA_L - ALPHA_T) * COOLING, rel=1e-4)


def test_an_angle_between_unknown_boundaries_is_a_case_error(capsys):
    code = main(
        ["check", str(CASE), "--set", 'physics.mechanics.angles.spring_in=["end_a", "end"]']
    )
    assert code == 2
    message = capsys.readouterr().err
    assert "physics.mechanics.angles.spring_in.[1]: unknown boundary or region 'end'" in message
