"""Cure-driven mechanics: a modulus that grows with the degree of cure, shrinkage from it.

cases/cure_shrinkage_bar.toml: a resin bar held between two walls cures uniformly (Bogetti &
Gillespie's polyester kinetics at 370 K); its eigenstrain is -beta (alpha - alpha_0) and its
modulus E(alpha) follows Bogetti & Gillespie's mixing law. The incremental (rate) form carries
sigma = beta * integral E(a) da from alpha_0 to alpha, whatever the temperature history:

- against that integral (scipy quad) within 2 % at dt = 30 s, first order in dt (the increment
  takes the modulus at the end of its step);
- a constant modulus, and the total form, give E beta (alpha - alpha_0) to round-off, more than
  twice as much: the test tells an evolving modulus from a constant one;
- 1 and 2 MPI ranks agree.
"""

import tomllib

import pytest
from scipy.integrate import quad

from app.simulation import Simulation
from tests.conftest import CASES, assert_same_by_units, runs_on_ranks

CASE = CASES / "cure_shrinkage_bar.toml"
BETA, ALPHA_0, AREA = 0.02, 0.01, 1e-4
E_0, E_INF, GEL, DISO, GAMMA = 2.757e6, 2.757e9, 0.2, 0.9, 0.5


def modulus(alpha: float) -> float:
    """Bogetti & Gillespie's resin modulus, as the case writes it."""
    a = min(max((alpha - GEL) / (DISO - GEL), 0.0), 1.0)
    return E_0 + (E_INF - E_0) * (a + GAMMA * a * (1 - a))


def locked_in(alpha: float) -> float:
    """The reaction of the incremental form: beta A integral E(a) da."""
    integral = quad(modulus, ALPHA_0, alpha, points=[GEL, DISO], epsabs=0, epsrel=1e-12)[0]
    return BETA * AREA * integral


def run(dt: float, **mechanics) -> tuple[float, float]:
    """(final degree of cure, final wall reaction in N) after 40 minutes."""
    case = tomllib.loads(CASE.read_text())
    case["time"] |= {"end": 2400.0, "dt": dt}
    case["physics"]["mechanics"] |= mechanics
    q = Simulation.from_case(case, base_dir=CASES).run().quantities
    return float(q["cure_max_degree_of_cure"][-1]), float(q["reaction_top_y_N"][-1])


def test_stress_is_the_integral_of_the_evolving_modulus_over_the_shrinkage():
    errors = []
    for dt in (60.0, 30.0):
        alpha, reaction = run(dt)
        errors.append(reaction / locked_in(alpha) - 1)
    assert 0 < errors[1] < 0.02
    assert errors[0] / errors[1] == pytest.approx(2.0, rel=0.1)  # first order in dt
    # the shrinkage before gelation (alpha < 0.2) carried a thousandth of the modulus
    assert alpha > 0.7


def test_constant_modulus_and_total_form_load_all_the_shrinkage():
    _, evolving = run(60.0)
    constant = run(60.0, youngs_modulus=E_INF)
    total = run(60.0, stress_form="total")
    assert constant[1] == pytest.approx(E_INF * BETA * (constant[0] - ALPHA_0) * AREA, rel=1e-9)
    assert total[1] == pytest.approx(modulus(total[0]) * BETA * (total[0] - ALPHA_0) * AREA, 1e-9)
    assert evolving < 0.5 * total[1] and evolving < 0.5 * constant[1]


@pytest.mark.mpi
def test_held_bar_on_one_and_two_ranks(tmp_path):
    serial, parallel = runs_on_ranks(CASE, tmp_path, "--set", "time.end=20 min")
    assert serial["reaction_top_y_N"][-1] > 1.0
    assert_same_by_units(serial, parallel, rtol=1e-9)
