"""Nonlinear periodic cells with a J2 history (app.multiscale.plastic_cell) against closed forms.

A homogeneous cell is the material point; a laminate sheared along its layers carries one shear
stress, so its mean strain is the volume average of the phases' shear laws (Reuss); the tangent
is the derivative of the average stress; below yield the cell is the linear cell of rve.py.
"""

import itertools
import math

import numpy as np
import pytest
from mpi4py import MPI
from scipy.optimize import brentq

from app.errors import SolverError
from app.multiscale.materials import Elasticity
from app.multiscale.microstructure import Microstructure
from app.multiscale.plastic_cell import J2Phase, PlasticCell
from app.multiscale.rve import CellProblem
from tests.conftest import ROOT

SQRT2, SQRT3 = math.sqrt(2), math.sqrt(3)
# steel-like matrix, stiffer elastic inclusion (Pa)
STEEL = J2Phase(
    bulk=175e9, shear=80e9, yield_stress=250e6, isotropic_modulus=2e9, kinematic_modulus=1e9
)
INCLUSION = (350e9, 160e9)


def cell(script: str, fraction: float, size: float, **fixed):
    micro = Microstructure(f"meshes/{script}", "test", ROOT, fixed, ["volume_fraction"])
    return micro.mesh(np.array([fraction]), size, 1, MPI.COMM_WORLD)


@pytest.fixture(scope="module")
def inclusion_cell():
    return cell("rve_inclusion.py", 0.2, 0.1, shape="circle")


def deviator(tensor):
    return tensor - np.trace(tensor) / 3 * np.eye(3)


def material_point(strains, phase):
    """An independent return mapping of one point (linear isotropic and kinematic hardening,
    radial return: exact for these piecewise proportional paths): stress and eps_p per strain."""
    K, G, sy = phase.bulk, phase.shear, phase.yield_stress
    H, Hk = phase.isotropic_modulus, phase.kinematic_modulus
    plastic, p, back = np.zeros((3, 3)), 0.0, np.zeros((3, 3))
    states = []
    for strain in strains:
        elastic = strain - plastic
        trial = K * np.trace(elastic) * np.eye(3) + 2 * G * deviator(elastic)
        xi = deviator(trial) - back
        q = math.sqrt(1.5 * np.sum(xi * xi))
        f = q - sy - H * p
        stress = trial
        if f > 0:
            dp = f / (3 * G + H + Hk)
            N = 1.5 * xi / q
            stress = trial - 2 * G * dp * N
            plastic, p, back = plastic + dp * N, p + dp, back + 2 / 3 * Hk * dp * N
        states.append((stress, plastic.copy()))
    return states


def test_homogeneous_cell_is_the_material_point_in_uniaxial_strain():
    domain, tags, regions = cell("rve_inclusion.py", 0.2, 0.15, shape="circle")
    problem = PlasticCell(domain, tags, regions, {"matrix": STEEL, "inclusion": STEEL})
    yield_strain = STEEL.yield_stress / (2 * STEEL.shear)  # of uniaxial strain
    # load, unload elastically, reverse plastic flow, back to zero strain
    path = yield_strain * np.array([0, 1.5, 3, 2, 1, -1, -3, -1.5, 0])
    points = material_point([np.diag([e, 0, 0]) for e in path[1:]], STEEL)
    G, H, Hk = STEEL.shear, STEEL.isotropic_modulus, STEEL.kinematic_modulus
    peak = (2 * G * 3 * yield_strain - STEEL.yield_stress) / (3 * G + H + Hk)  # closed form
    assert points[1][1][0, 0] == pytest.approx(peak, rel=1e-12)
    for increment, (stress, plastic) in zip(np.diff(path), points, strict=True):
        response = problem.solve(np.array([increment, 0, 0]))
        problem.commit()
        expected = np.array([stress[0, 0], stress[1, 1], SQRT2 * stress[0, 1]])
        scale = np.abs(stress).max()
        assert np.abs(response.stress - expected).max() <= 1e-10 * scale
        assert np.abs(problem.average("plastic_strain") - plastic).max() <= 1e-10 * peak
    # the residual plastic strain at zero strain: a stress remains
    assert np.abs(plastic).max() > 0.1 * peak
    assert abs(points[-1][0][0, 0]) > 0.1 * STEEL.yield_stress


def shear_law(phase: J2Phase, tau: float, peak: float) -> tuple[float, float]:
    """(eps12, p) of a J2 phase with linear isotropic hardening in simple shear at the shear
    stress tau, after a monotonic loading to ``peak`` (elastic since: |tau| <= peak):
    q = sqrt3 |tau| and eps_p12 = sqrt3/2 p."""
    p = max(0.0, (SQRT3 * peak - phase.yield_stress) / phase.isotropic_modulus)
    return tau / (2 * phase.shear) + SQRT3 / 2 * p, p


def test_laminate_in_shear_along_its_layers_is_the_reuss_average_of_the_phases():
    fraction = 0.4
    domain, tags, regions = cell("rve_laminate.py", fraction, 0.2, normal=1)
    soft = J2Phase(bulk=60e9, shear=25e9, yield_stress=100e6, isotropic_modulus=5e9)
    hard = J2Phase(bulk=160e9, shear=80e9, yield_stress=150e6, isotropic_modulus=10e9)
    phases = {"matrix": soft, "inclusion": hard}
    weights = {"matrix": 1 - fraction, "inclusion": fraction}
    problem = PlasticCell(domain, tags, regions, phases)

    def mean_strain(tau, peak):
        return sum(w * shear_law(phases[name], tau, peak)[0] for name, w in weights.items())

    # E12 past both yield points (tau 58 and 87 MPa), then back through tau = 0, short of
    # reverse yielding
    shears = np.array([0, 1e-3, 3e-3, 6e-3, 1e-2, 9.1e-3, 8.5e-3])
    peak = 0.0
    for previous, shear in itertools.pairwise(shears):
        response = problem.solve(np.array([0, 0, SQRT2 * (shear - previous)]))
        problem.commit()
        loading = shear > previous
        if loading:
            peak = brentq(lambda tau, e=shear: mean_strain(tau, tau) - e, 0, 1e10, xtol=1e-6)
            tau = peak
        else:
            tau = brentq(lambda tau, e=shear, top=peak: mean_strain(tau, top) - e, -1e10, peak)
            assert abs(tau) < peak  # the closed form's elastic unloading
        assert response.stress[2] / SQRT2 == pytest.approx(tau, rel=1e-10)
        assert np.abs(response.stress[:2]).max() < 1e-10 * peak
        p = sum(w * shear_law(phases[name], tau, peak)[1] for name, w in weights.items())
        assert problem.average("equivalent_plastic_strain") == pytest.approx(p, rel=1e-10)
    assert shear_law(hard, peak, peak)[1] > 0  # both phases yielded


def test_tangent_is_the_derivative_of_the_average_stress_and_newton_is_quadratic(
    inclusion_cell,
):
    problem = PlasticCell(*inclusion_cell, {"matrix": STEEL, "inclusion": INCLUSION})
    for _ in range(3):  # plastic history first
        response = problem.solve(np.array([1e-3, 0, 2e-4]))
        problem.commit()
        plastic = [r for r in response.residuals if 0 < r < 1e-2]
        for before, after in itertools.pairwise(plastic):
            assert after <= 10 * before**2 + 1e-14
    increment = np.array([5e-4, -2e-4, 3e-4])  # not along the previous path
    tangent = problem.solve(increment).tangent
    assert np.abs(tangent - tangent.T).max() < 1e-10 * np.abs(tangent).max()
    phases = {"matrix": (STEEL.bulk, STEEL.shear), "inclusion": INCLUSION}
    elastic = CellProblem(*inclusion_cell, Elasticity(phases), 1).solve("periodic")
    # yielding softens the cell in every direction
    assert np.linalg.eigvalsh(elastic - tangent).min() > 0.05 * np.abs(elastic).max()
    step, columns = 1e-7, []
    for j in range(3):
        shift = np.eye(3)[j] * step
        ahead, behind = problem.solve(increment + shift), problem.solve(increment - shift)
        columns.append((ahead.stress - behind.stress) / (2 * step))
    difference = np.array(columns).T
    assert np.abs(difference - tangent).max() < 1e-6 * np.abs(tangent).max()


def test_below_yield_the_cell_is_the_linear_cell(inclusion_cell):
    problem = PlasticCell(*inclusion_cell, {"matrix": STEEL, "inclusion": INCLUSION})
    phases = {"matrix": (STEEL.bulk, STEEL.shear), "inclusion": INCLUSION}
    linear = CellProblem(*inclusion_cell, Elasticity(phases), 1).solve("periodic")
    strain = np.array([2e-4, -1e-4, 3e-4])  # von Mises stress about 100 MPa
    response = problem.solve(strain)
    assert np.abs(response.tangent - linear).max() < 1e-10 * np.abs(linear).max()
    assert np.abs(response.stress - linear @ strain).max() < 1e-10 * np.abs(linear @ strain).max()
    problem.commit()
    assert problem.average("equivalent_plastic_strain") == 0
    # back to zero strain, where the forces are round-off: one correction, no stress
    back = problem.solve(-strain)
    assert back.iterations == 1
    assert np.abs(back.stress).max() < 1e-10 * np.abs(response.stress).max()


def test_rollback_restores_the_accepted_state_and_solves_start_from_it(inclusion_cell):
    phases = {"matrix": STEEL, "inclusion": INCLUSION}
    first, second = PlasticCell(*inclusion_cell, phases), PlasticCell(*inclusion_cell, phases)
    small, large = np.array([1e-3, 0, 0]), np.array([2e-3, 1e-3, -1e-3])
    for problem in (first, second):
        problem.solve(small)
        problem.commit()
    first.solve(large)  # a rejected macro step
    first.rollback()
    again = first.solve(small)
    first.commit()
    reference = second.solve(small)
    second.commit()
    assert np.array_equal(again.stress, reference.stress)
    assert np.array_equal(again.tangent, reference.tangent)
    assert np.array_equal(first.average("plastic_strain"), second.average("plastic_strain"))
    assert np.array_equal(first.strain, 2 * small)
    # solving twice without a commit gives the same answer: both start from the history
    assert np.array_equal(first.solve(large).stress, first.solve(large).stress)


def test_a_failed_newton_raises_and_leaves_the_accepted_state(inclusion_cell):
    problem = PlasticCell(
        *inclusion_cell, {"matrix": STEEL, "inclusion": INCLUSION}, max_iterations=1
    )
    with pytest.raises(SolverError, match=r"did not converge in 1 iterations .* smaller macro"):
        problem.solve(np.array([3e-3, 0, 0]))
    with pytest.raises(RuntimeError, match="nothing to commit"):
        problem.commit()
    elastic = problem.solve(np.array([1e-4, 0, 0]))  # one correction suffices below yield
    assert elastic.iterations == 1


def test_bad_input_is_refused_with_the_value(inclusion_cell):
    with pytest.raises(ValueError, match=r"J2Phase.yield_stress must be finite and > 0, got -1"):
        J2Phase(bulk=1.0, shear=1.0, yield_stress=-1.0)
    with pytest.raises(ValueError, match=r"the cell has no regions"):
        PlasticCell(inclusion_cell[0], inclusion_cell[1], {}, {"matrix": STEEL})
    with pytest.raises(ValueError, match=r"regions \['inclusion'\] have no phase"):
        PlasticCell(*inclusion_cell, {"matrix": STEEL})
    with pytest.raises(ValueError, match=r"elastic phase needs finite K, G > 0, got \(1.0, 0.0\)"):
        PlasticCell(*inclusion_cell, {"matrix": STEEL, "inclusion": (1.0, 0.0)})
    problem = PlasticCell(*inclusion_cell, {"matrix": STEEL, "inclusion": INCLUSION})
    with pytest.raises(ValueError, match=r"3 finite Mandel components, got \[1.0, nan\]"):
        problem.solve(np.array([1.0, np.nan]))
