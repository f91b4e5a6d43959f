"""Spring-in of a thin L-section (cases/l_section_cure.toml, meshes/l_section.py).

Cured at a uniform temperature (reaction_kinetics: Bogetti & Gillespie's polyester) and cooled
free of the tool, the bend closes by the chemical shrinkage, which grows with the degree of cure,
and by the cool-down, both orthotropic in the fibre frame that follows the part; the modulus
grows with the cure and the stress is built by increments. Against Radford & Diefendorf's
formula within 5 % (measured 0.9 %), with and without the shrinkage term, its shrinkage the
fraction of a full cure reached; during the isothermal cure the angle follows the degree of cure
at every step; the part is stress free (the eigenstrain is compatible); 1 and 2 MPI ranks agree.
The angle is the mechanics quantity angle_<name> (the rotation of one boundary minus
another's). The 3D section (cases/l_section_cure_3d.toml, the section extruded) on 2 ranks
springs in as the plane-strain one; its whole run is documented in its header, not run here.
"""

import math

import pytest

from app.cli import main
from tests.conftest import CASES, read_quantities, runs_on_ranks, scalebridge

CASE = CASES / "l_section_cure.toml"
CASE_3D = CASES / "l_section_cure_3d.toml"
ALPHA_L, ALPHA_T, PHI_L, PHI_T, COOLING = 6e-6, 2.5e-5, -3e-4, -1e-2, -100.0
ALPHA_0, COOL_DOWN_STARTS = 0.01, 1800.0


def cured(alpha: float) -> float:
    """The fraction of a full cure's shrinkage reached at a degree of cure alpha."""
    return (alpha - ALPHA_0) / (1 - ALPHA_0)


def radford_diefendorf(cure: float) -> float:
    """The spring-in after the cool-down with the fraction ``cure`` of the shrinkage."""
    thermal = (ALPHA_L - ALPHA_T) * COOLING / (1 + ALPHA_T * COOLING)
    phi_l, phi_t = PHI_L * cure, PHI_T * cure
    return math.pi / 2 * (thermal + (phi_l - phi_t) / (1 + phi_t))


def test_spring_in_with_shrinkage_on_one_and_two_ranks(tmp_path):
    serial, parallel = runs_on_ranks(CASE, tmp_path)
    alpha = serial["cure_max_degree_of_cure"]
    assert serial["cure_min_degree_of_cure"] == pytest.approx(alpha, rel=1e-10)  # uniform
    cure = cured(alpha[-1])
    assert cure > 0.95
    angle = serial["angle_spring_in_rad"][-1]
    assert angle == pytest.approx(radford_diefendorf(cure), rel=0.05)
    # the small-strain angle is theta (eps_tt - eps_nn): the formula without denominators
    small_strain = math.pi / 2 * ((ALPHA_L - ALPHA_T) * COOLING + (PHI_L - PHI_T) * cure)
    assert angle == pytest.approx(small_strain, rel=1e-4)
    # before the cool-down the bend closes with the shrinkage, in step with the cure
    history = zip(serial["time_s"], alpha, serial["angle_spring_in_rad"], strict=True)
    for time, a, opening in history:
        if 0 < time <= COOL_DOWN_STARTS:
            assert opening == pytest.approx(math.pi / 2 * (PHI_L - PHI_T) * cured(a), rel=1e-4)
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
    assert angle == pytest.approx(radford_diefendorf(0.0), rel=0.05)
    assert angle == pytest.approx(math.pi / 2 * (ALPHA_L - ALPHA_T) * COOLING, rel=1e-4)


def test_an_angle_between_unknown_boundaries_is_a_case_error(capsys):
    code = main(
        ["check", str(CASE), "--set", 'physics.mechanics.angles.spring_in=["end_a", "end"]']
    )
    assert code == 2
    message = capsys.readouterr().err
    assert "physics.mechanics.angles.spring_in.[1]: unknown boundary or region 'end'" in message


@pytest.mark.mpi
def test_3d_section_on_two_ranks_springs_in_as_the_plane_strain_one(tmp_path):
    """The first two minutes of the cure (the full run takes minutes: see the case header)."""
    early = ("--set", "time.end=2 min")
    process = scalebridge("run", CASE_3D, "-o", tmp_path / "3d", "-q", *early, ranks=2)
    assert process.returncode == 0, process.stderr
    process = scalebridge("run", CASE, "-o", tmp_path / "2d", "-q", *early)
    assert process.returncode == 0, process.stderr
    solid, section = read_quantities(tmp_path / "3d"), read_quantities(tmp_path / "2d")
    alpha = solid["cure_max_degree_of_cure"][-1]
    assert alpha == pytest.approx(section["cure_max_degree_of_cure"][-1], rel=1e-9)
    assert alpha > 0.1
    angle = solid["angle_spring_in_rad"][-1]
    assert angle == pytest.approx(section["angle_spring_in_rad"][-1], rel=1e-4)
    assert angle == pytest.approx(math.pi / 2 * (PHI_L - PHI_T) * cured(alpha), rel=1e-4)
    assert solid["max_von_mises_Pa"][-1] < 1e-2 * 20e9 * abs(PHI_T) * cured(alpha)
