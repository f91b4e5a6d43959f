"""Von Mises plasticity through the whole framework, against closed forms.

- Uniaxial cyclic loading with linear kinematic hardening (cases/cyclic_bar.toml): the
  stress-strain loop is the 1D closed form to 1e-8, with the Bauschinger effect (plotted), in 3D
  and in axisymmetric.
- Voce hardening in tension: the monotonic curve sigma = sigma_y + R(p), eps = sigma/E + p.
- Elastic-perfectly plastic thick cylinder in plane strain (cases/plastic_cylinder.toml): the
  pressure against the elastic-plastic radius (Hill's closed form) within 1 % at P2, the
  residual stresses after unloading within 2 %.
- Newton converges quadratically in the plastic regime (consistent tangent); the Jacobian
  matches finite differences in the conformance kit; 1 and 2 ranks agree.
"""

import itertools
import math
import tomllib

import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI
from scipy.optimize import brentq

from app.simulation import Simulation
from app.testing import check_plugin
from tests.conftest import CASES, assert_same_by_units, runs_on_ranks

COMM = MPI.COMM_WORLD
E, SIGMA_Y, H_KIN = 200e9, 200e6, 20e9
AREA, LENGTH = 1e-4, 0.1  # the bar of cases/cyclic_bar.toml


def uniaxial(strains, E, sigma_y, H_kin=0.0, hardening=None):
    """The 1D elastic-plastic model along a strain path (exact for a linear path between the
    points: the return mapping of a rate-independent 1D model): |sigma - alpha| <= sigma_y +
    R(p), d alpha = H_kin d eps_p; R = 0 (perfect or kinematic only) or ``hardening(p)``."""
    plastic, p, alpha, stresses = 0.0, 0.0, 0.0, []
    R = hardening or (lambda p: 0.0)
    for eps in strains:
        trial = E * (eps - plastic) - alpha
        f = abs(trial) - sigma_y - R(p)
        if f > 0:
            dp = f / (E + H_kin)
            if hardening is not None:

                def g(dp, trial=trial, p=p):
                    return abs(trial) - (E + H_kin) * dp - sigma_y - R(p + dp)

                dp = brentq(g, 0.0, dp, xtol=1e-300, rtol=1e-15)
            plastic += dp * math.copysign(1, trial)
            alpha += H_kin * dp * math.copysign(1, trial)
            p += dp
        stresses.append(E * (eps - plastic))
    return np.array(stresses)


def march(sim, end, dt, start=0.0):
    """Step a simulation from ``start`` to ``end`` by hand, committing each step: the solve
    reports and the quantities after each step."""
    sim.compile()
    t, reports, rows = start, [], []
    while t < end - 1e-9:
        report = sim.step(t, dt)
        assert report.converged, report.reason
        t += dt
        rows.append(sim.evaluate_quantities())
        sim.commit()
        reports.append(report)
    return reports, {name: np.array([row[name] for row in rows]) for name in rows[0]}


def convergence_orders(norms, floor=1e-13):
    """Orders log(r_k+1/r_k)/log(r_k/r_k-1) of a Newton solve, from the norms above round-off
    (``floor`` times the first)."""
    norms = [r for r in norms if r > floor * norms[0]]
    return [
        math.log(c / b) / math.log(b / a)
        for a, b, c in zip(norms, norms[1:], norms[2:], strict=False)
    ]


def quadratic_constants(norms, floor=1e-10):
    """r_k+1 / r_k^2 after the first (elastic predictor) iteration, from the norms above
    round-off, and the factor the residual fell by over them. Newton's quadratic convergence
    keeps these constants within a narrow band while the residual falls by orders of magnitude
    (linear convergence would spread them by as much as it falls)."""
    norms = [r for r in norms[1:] if r > floor * norms[0]]
    constants = [b / a**2 for a, b in itertools.pairwise(norms)]
    return constants, norms[0] / norms[-1]


# Cyclic loading, kinematic hardening ----------------------------------------------------------
@pytest.fixture(scope="module")
def cyclic(request):
    sim = Simulation.from_case(request.config.rootpath / "cases" / "cyclic_bar.toml")
    return sim.run()


def test_hysteresis_loop_is_the_closed_form(cyclic):
    q = cyclic.quantities
    strain = q["displacement_top_y_m"] / LENGTH
    stress = q["reaction_top_y_N"] / AREA
    exact = uniaxial(strain, E, SIGMA_Y, H_KIN)
    assert np.abs(stress - exact).max() < 1e-8 * SIGMA_Y
    assert strain.max() == pytest.approx(3e-3, rel=1e-3) and strain.min() < -2.9e-3
    # Plastic work = dissipation sigma_y p + the energy stored in the back stress, 3/4 b:b/H
    # = alpha^2/(2 H) in 1D: the return mapping's bookkeeping closes.
    plastic = strain - stress / E
    alpha = H_KIN * plastic[-1]
    volume = AREA * LENGTH
    stored = alpha**2 / (2 * H_KIN) * volume
    assert q["plastic_work_J"][-1] == pytest.approx(q["dissipated_energy_J"][-1] + stored, rel=0.02)
    p_end = q["dissipated_energy_J"][-1] / (SIGMA_Y * volume)
    assert q["max_equivalent_plastic_strain"][-1] == pytest.approx(p_end, rel=1e-9)


def test_bauschinger_effect_in_the_loop(cyclic, tmp_path):
    """After hardening in tension to sigma_max the bar unloads elastically over 2 sigma_y only
    and yields again in compression at sigma_max - 2 sigma_y, well above -sigma_y (isotropic
    hardening would wait for -sigma_max); the loop is plotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    q = cyclic.quantities
    strain = q["displacement_top_y_m"] / LENGTH
    stress = q["reaction_top_y_N"] / AREA
    top = int(np.argmax(stress[: len(stress) // 2]))  # the first tension peak
    unloading = np.arange(top, int(np.argmin(stress)) + 1)
    slope = np.diff(stress[unloading]) / np.diff(strain[unloading])
    assert slope[0] == pytest.approx(E, rel=1e-6)  # elastic unloading first
    assert slope[-1] == pytest.approx(E * H_KIN / (E + H_KIN), rel=1e-6)  # then hardening
    plastic = strain - stress / E
    last_elastic = unloading[np.argmax(np.abs(np.diff(plastic[unloading])) > 1e-12)]
    reverse_strain = strain[top] - 2 * SIGMA_Y / E  # the end of the elastic range
    assert strain[last_elastic + 1] < reverse_strain <= strain[last_elastic] + 1e-15
    reverse = stress[top] - 2 * SIGMA_Y
    assert reverse > -SIGMA_Y + 0.15 * SIGMA_Y  # the Bauschinger effect: 36 MPa early
    figure, axes = plt.subplots()
    axes.plot(strain * 100, stress / 1e6, "o-", label="ScaleBridge (3D bar)")
    axes.axhline(reverse / 1e6, ls=":", label="reverse yield, sigma_max - 2 sigma_y")
    axes.axhline(-SIGMA_Y / 1e6, ls="--", label="-sigma_y (no Bauschinger effect)")
    axes.set(xlabel="strain (%)", ylabel="stress (MPa)", title="Kinematic hardening loop")
    axes.legend()
    figure.savefig(tmp_path / "loop.png")
    assert (tmp_path / "loop.png").stat().st_size > 10_000


def test_axisymmetric_bar_is_the_same_loop(tmp_path):
    """A solid round bar in axisymmetric (r = x, z = y), uniaxial stress: the 1D closed form."""
    case = tomllib.loads((CASES / "cyclic_bar.toml").read_text())
    case["mesh"] = {"type": "rectangle", "length": [0.005, 0.1], "cells": [2, 4]}
    mechanics = case["physics"]["mechanics"]
    mechanics["formulation"] = "axisymmetric"
    del mechanics["boundaries"]["back"]
    case["time"]["end"] = 0.6
    q = Simulation.from_case(case, base_dir=CASES).run().quantities
    strain = q["displacement_top_y_m"] / LENGTH
    stress = q["reaction_top_y_N"] / (math.pi * 0.005**2)
    assert np.abs(stress - uniaxial(strain, E, SIGMA_Y, H_KIN)).max() < 1e-8 * SIGMA_Y


# Voce hardening -----------------------------------------------------------------------------------
def test_voce_hardening_in_tension_converges_quadratically():
    """Monotonic tension with R(p) = H p + Q (1 - exp(-b p)): every step on the closed-form
    curve to 1e-8 (the unrolled local Newton is exact to round-off), and the global Newton
    quadratic."""
    case = tomllib.loads((CASES / "cyclic_bar.toml").read_text())
    H, Q, b = 2e9, 150e6, 300.0
    case["physics"]["mechanics"]["plasticity"] = {
        "yield_stress": SIGMA_Y,
        "isotropic_modulus": H,
        "saturation_stress": Q,
        "saturation_rate": b,
    }
    case["physics"]["mechanics"]["boundaries"]["top"]["y"] = "2e-3*t"  # strain 2 % at t = 1
    case["solver"]["newton"] = {"rtol": 1e-14, "atol": 1e-12}  # to see the asymptotic rate
    sim = Simulation.from_case(case, base_dir=CASES)
    reports, q = march(sim, 1.0, 0.1)
    strain = q["displacement_top_y_m"] / LENGTH
    stress = q["reaction_top_y_N"] / AREA
    exact = uniaxial(strain, E, SIGMA_Y, hardening=lambda p: H * p + Q * (1 - math.exp(-b * p)))
    assert np.abs(stress - exact).max() < 1e-8 * SIGMA_Y
    assert stress[-1] > SIGMA_Y + 0.9 * Q  # well into the saturation
    assert all(report.iterations <= 4 for report in reports)
    # After the elastic predictor: orders of 2.00 (e.g. 3e4 -> 7.4 -> 4.4e-7 N).
    asymptotic = [convergence_orders(r.residual_norms)[1:] for r in reports]
    asymptotic = [orders[-1] for orders in asymptotic if orders]
    assert len(asymptotic) >= 4
    assert all(1.9 < order < 2.2 for order in asymptotic), asymptotic


def test_jacobian_of_the_return_mapping_in_the_conformance_kit():
    """Kinematic and Voce hardening: J d against finite differences inside a plastic step."""
    case = tomllib.loads((CASES / "cyclic_bar.toml").read_text())
    case["time"]["end"] = 0.2
    report = check_plugin("mechanics", case, checks=("schema", "fields", "jacobian"))
    assert "inside one more step" in report.checks["jacobian"]
    case["physics"]["mechanics"]["plasticity"] |= {
        "saturation_stress": 1e8,
        "saturation_rate": 50,
        "isotropic_modulus": 1e9,
    }
    check_plugin("mechanics", case, checks=("jacobian",))


# Thick cylinder, perfectly plastic ------------------------------------------------------------
A_IN, B_OUT, YIELD = 0.1, 0.2, 240e6
K = YIELD / math.sqrt(3)


def pressure_of_radius(c):
    """Hill: the pressure that makes the tube plastic out to radius c (von Mises, nu = 1/2)."""
    return K * (2 * math.log(c / A_IN) + 1 - c**2 / B_OUT**2)


@pytest.fixture(scope="module")
def cylinder():
    sim = Simulation.from_case(CASES / "plastic_cylinder.toml")
    reports, q = march(sim, 2.0, 0.1)
    return sim, reports, q


def test_pressure_against_plastic_radius(cylinder):
    """The plastic zone a < r < c, from the yielded area pi/4 (c^2 - a^2): p(c) within 1 %."""
    _, _, q = cylinder
    loading = q["load_inner_x_N_per_m"] / A_IN  # the pressure (per unit depth over a)
    first = K * (1 - A_IN**2 / B_OUT**2)
    checked = 0
    for pressure, area in zip(loading[:10], q["yielded_volume_m3_per_m"][:10], strict=True):
        if pressure < first * 1.02:
            assert area == 0  # still elastic
            continue
        c = math.sqrt(A_IN**2 + 4 * area / math.pi)
        assert pressure_of_radius(c) == pytest.approx(pressure, rel=0.01)
        checked += 1
    assert checked >= 4


def test_residual_stresses_after_unloading(cylinder):
    """Residual stresses = Hill's elastic-plastic stresses at p_max minus Lamé's: within 2 %
    (L2 over the section, relative to the residual hoop stress)."""
    sim, _, q = cylinder
    assert abs(q["load_inner_x_N_per_m"][-1]) < 1e-6
    sim.store["stress"].refresh()
    p = 1.8e8
    c = brentq(lambda r: pressure_of_radius(r) - p, A_IN, B_OUT)
    sigma = sim.store["stress"].function
    x = ufl.SpatialCoordinate(sigma.function_space.mesh)
    r = ufl.sqrt(ufl.dot(x, x))
    n = x / r
    t = ufl.as_vector([-n[1], n[0]])
    radial, hoop = ufl.dot(n, sigma * n), ufl.dot(t, sigma * t)
    plastic_r = -p + 2 * K * ufl.ln(r / A_IN)
    elastic = K * c**2 / B_OUT**2
    hill_r = ufl.conditional(ufl.lt(r, c), plastic_r, -elastic * (B_OUT**2 / r**2 - 1))
    hill_t = ufl.conditional(ufl.lt(r, c), plastic_r + 2 * K, elastic * (B_OUT**2 / r**2 + 1))
    lame_a, lame_b = (
        p * A_IN**2 / (B_OUT**2 - A_IN**2),
        p * A_IN**2 * B_OUT**2 / (B_OUT**2 - A_IN**2),
    )
    residual_r, residual_t = hill_r - (lame_a - lame_b / r**2), hill_t - (lame_a + lame_b / r**2)
    degree = sim.store["stress"].spec.space[1]  # at the stress's own quadrature points
    dx = ufl.dx(domain=sigma.function_space.mesh, metadata={"quadrature_degree": degree})

    def norm(e):
        return math.sqrt(COMM.allreduce(fem.assemble_scalar(fem.form(e**2 * dx)), op=MPI.SUM))

    scale = norm(residual_t)
    assert norm(radial - residual_r) / scale < 0.02
    assert norm(hoop - residual_t) / scale < 0.02
    bore = (-p + 2 * K) - (lame_a + lame_b / A_IN**2)  # -203 MPa
    assert bore == pytest.approx(-203e6, rel=0.01)


def test_newton_is_quadratic_in_the_plastic_regime(cylinder):
    """Iterations per step stay few while the plastic zone spreads, and r_k+1/r_k^2 stays in a
    narrow band while the residual falls by orders of magnitude (consistent tangent; the first
    iterations also settle which points yield): within about 50x here, over falls of 1e5-1e9."""
    _, reports, _ = cylinder
    iterations = [report.iterations for report in reports]
    assert max(iterations) <= 6  # 4 to 6 while loading, 1 (elastic) while unloading
    plastic = [report for report in reports[:10] if report.iterations >= 4]
    assert len(plastic) >= 4
    for report in plastic:
        constants, fall = quadratic_constants(report.residual_norms)
        assert fall > 1e4, report.residual_norms  # linear convergence: a spread of 1e4 too
        assert max(constants) / min(constants) < 1e2, report.residual_norms


# Parallel ---------------------------------------------------------------------------------------
@pytest.mark.mpi
def test_plastic_cases_on_one_and_two_ranks(tmp_path):
    """Same loop, same plastic zone, same Newton iterations on 1 and 2 ranks."""
    assert_same_by_units(*runs_on_ranks("cases/cyclic_bar.toml", tmp_path / "bar"), rtol=1e-9)
    coarse = ("--set", "mesh.size=0.02", "--set", "time.end=1.2")
    cylinder = runs_on_ranks("cases/plastic_cylinder.toml", tmp_path / "cylinder", *coarse)
    assert_same_by_units(*cylinder, rtol=1e-8)
    assert max(cylinder[0]["yielded_volume_m3_per_m"]) > 0.005
