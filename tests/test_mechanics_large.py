"""Large deformation (compressible Neo-Hookean) of the mechanics plug-in.

Homogeneous deformations have closed forms: with F = diag(l1, l2, l3) and J = l1 l2 l3 the first
Piola stress is P_ii = mu (l_i - 1/l_i) + lambda ln(J)/l_i, the Cauchy stress P_ii l_i/J. P1
elements hold homogeneous states exactly, so the results must match to solver tolerance:

- a prescribed triaxial stretch (3D) and a prescribed stretch of a solid cylinder (axisymmetric):
  reactions = P times the reference area, Cauchy stress, Green-Lagrange strain, stored energy;
- a nominal (dead) traction in plane strain: the stretches solve two nonlinear equations, and
  Newton converges quadratically;
- a follower pressure: the Cauchy stress equals the pressure whatever the stretch;
- a free thermal expansion is stress free and stretches by 1 + alpha dT.
"""

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import fsolve

from app.simulation import Simulation

E, NU = 1e6, 0.3
LAM, MU = E * NU / ((1 + NU) * (1 - 2 * NU)), E / (2 * (1 + NU))


def piola(stretches: np.ndarray) -> np.ndarray:
    J = np.prod(stretches)
    return MU * (stretches - 1 / stretches) + LAM * math.log(J) / stretches


def energy(stretches: np.ndarray) -> float:
    log_j = math.log(np.prod(stretches))
    return MU / 2 * (np.sum(stretches**2) - 3) - MU * log_j + LAM / 2 * log_j**2


def neo_hookean(mesh: dict, boundaries: dict, **more) -> dict:
    return {
        "mesh": mesh,
        "physics": {
            "mechanics": {
                "large_deformation": True,
                "youngs_modulus": E,
                "poisson_ratio": NU,
                "boundaries": boundaries,
                **more,
            }
        },
        "solver": {"newton": {"rtol": 1e-12, "atol": 1e-10}},
    }


def test_prescribed_triaxial_stretch():
    stretch = np.array([1.3, 0.9, 1.1])
    size = [2.0, 1.0, 0.5]
    planes = {"x": "left", "y": "bottom", "z": "back"}
    faces = {"x": "right", "y": "top", "z": "front"}
    boundaries = {planes[c]: {"type": "displacement", c: 0} for c in "xyz"}
    for c, s in zip("xyz", stretch, strict=True):
        boundaries[faces[c]] = {"type": "displacement", c: f"{s - 1}*{c}"}
    mesh = {"type": "box", "length": size, "cells": [4, 2, 2]}
    result = Simulation.from_case(neo_hookean(mesh, boundaries)).run()
    q = {k: v[-1] for k, v in result.quantities.items()}
    P = piola(stretch)
    areas = [size[1] * size[2], size[0] * size[2], size[0] * size[1]]
    for i, c in enumerate("xyz"):
        assert q[f"reaction_{faces[c]}_{c}_N"] == pytest.approx(P[i] * areas[i], rel=1e-8)
        assert q[f"reaction_{planes[c]}_{c}_N"] == pytest.approx(-P[i] * areas[i], rel=1e-8)
    sigma = result.fields["stress"].x.array.reshape(-1, 3, 3)
    cauchy = P * stretch / np.prod(stretch)
    assert sigma[:, [0, 1, 2], [0, 1, 2]] == pytest.approx(np.tile(cauchy, (len(sigma), 1)))
    strain = result.fields["strain"].x.array.reshape(-1, 3, 3)
    assert strain[0].diagonal() == pytest.approx((stretch**2 - 1) / 2, rel=1e-10)
    assert q["strain_energy_J"] == pytest.approx(energy(stretch) * np.prod(size), rel=1e-10)


def test_prescribed_stretch_of_a_solid_cylinder_axisymmetric():
    """Radius R, height H: u_r = (lr - 1) r on the mantle, u_z = (lz - 1) z on top; the hoop
    stretch is lr too. The axial reaction is P_zz pi R^2 (the full revolution)."""
    lr, lz, R, H = 0.95, 1.2, 0.5, 1.0
    boundaries = {
        "left": {"type": "displacement", "x": 0},  # the axis
        "bottom": {"type": "displacement", "y": 0},
        "right": {"type": "displacement", "x": f"{lr - 1}*x"},
        "top": {"type": "displacement", "y": f"{lz - 1}*y"},
    }
    mesh = {"type": "rectangle", "length": [R, H], "cells": [4, 6]}
    case = neo_hookean(mesh, boundaries, formulation="axisymmetric")
    result = Simulation.from_case(case).run()
    stretch = np.array([lr, lz, lr])
    P = piola(stretch)
    q = result.quantities
    assert q["reaction_top_y_N"][-1] == pytest.approx(P[1] * math.pi * R**2, rel=1e-8)
    hoop = result.fields["hoop_stress"].x.array
    assert hoop == pytest.approx(P[2] * lr / np.prod(stretch), rel=1e-8)
    volume = math.pi * R**2 * H
    assert q["strain_energy_J"][-1] == pytest.approx(energy(stretch) * volume, rel=1e-8)


def test_dead_traction_and_quadratic_newton_convergence():
    """Plane strain, symmetry planes at x = 0 and y = 0, a nominal traction T on x = 2."""
    T = 3e5
    boundaries = {
        "left": {"type": "displacement", "x": 0},
        "bottom": {"type": "displacement", "y": 0},
        "right": {"type": "traction", "value": [T, 0]},
    }
    mesh = {"type": "rectangle", "length": [2, 1], "cells": [8, 4]}
    sim = Simulation.from_case(neo_hookean(mesh, boundaries, formulation="plane_strain"))
    sim.compile()
    snes = sim.groups[0].solver.problem.solver
    snes.setConvergenceHistory()
    result = sim.run()

    def equations(s: np.ndarray) -> list[float]:
        P = piola(np.array([s[0], s[1], 1.0]))
        return [P[0] - T, P[1]]

    l1, l2 = fsolve(equations, [1.2, 0.95], xtol=1e-14)
    u = result.fields["displacement"]
    X = u.function_space.tabulate_dof_coordinates()[:, :2]
    exact = X * [l1 - 1, l2 - 1]
    assert np.abs(u.x.array.reshape(-1, 2) - exact).max() < 1e-10 * l1
    assert result.quantities["reaction_left_x_N_per_m"][-1] == pytest.approx(-T, rel=1e-9)
    sigma = result.fields["stress"].x.array.reshape(-1, 2, 2)
    assert sigma[:, 0, 0] == pytest.approx(T * l1 / (l1 * l2), rel=1e-9)
    # Quadratic convergence: r_{k+1} / r_k^2 stays about constant until round-off.
    residuals = snes.getConvergenceHistory()[0]
    assert len(residuals) - 1 <= 6, residuals
    floor = 1e-9 * residuals[0]
    ratios = [b / a**2 for a, b in itertools.pairwise(residuals) if b > floor]
    assert len(ratios) >= 3 and max(ratios) / min(ratios) < 10, residuals


def test_follower_pressure_gives_the_cauchy_stress():
    p = 2e5
    boundaries = {
        "left": {"type": "displacement", "x": 0},
        "bottom": {"type": "displacement", "y": 0},
        "right": {"type": "pressure", "value": p},
    }
    mesh = {"type": "rectangle", "length": [2, 1], "cells": [4, 2]}
    result = Simulation.from_case(neo_hookean(mesh, boundaries)).run()
    sigma = result.fields["stress"].x.array.reshape(-1, 2, 2)
    assert sigma[:, 0, 0] == pytest.approx(-p, rel=1e-9)
    assert np.abs(sigma[:, 1, 1]).max() < 1e-9 * p
    # The load acts on the deformed face: p times its current height (per unit depth).
    u = result.fields["displacement"].x.array.reshape(-1, 2)
    height = 1 + u[:, 1].max()
    q = result.quantities
    assert q["load_right_x_N_per_m"][-1] == pytest.approx(-p * height, rel=1e-9)
    assert q["reaction_left_x_N_per_m"][-1] == pytest.approx(p * height, rel=1e-9)


def test_free_thermal_expansion_is_stress_free():
    alpha, dT = 1e-3, 50.0
    boundaries = {
        "left": {"type": "displacement", "x": 0},  # the axis
        "bottom": {"type": "displacement", "y": 0},
    }
    mesh = {"type": "rectangle", "length": [2, 1], "cells": [4, 2]}
    case = neo_hookean(
        mesh,
        boundaries,
        formulation="axisymmetric",
        thermal_expansion=alpha,
        reference_temperature=300,
    )
    case["physics"]["heated"] = {
        "type": "prescribed",
        "fields": {"temperature": {"units": "K", "value": 300 + dT}},
    }
    result = Simulation.from_case(case).run()
    u = result.fields["displacement"]
    X = u.function_space.tabulate_dof_coordinates()[:, :2]
    assert u.x.array.reshape(-1, 2) == pytest.approx(alpha * dT * X, abs=1e-12)
    assert np.abs(result.fields["stress"].x.array).max() < 1e-6
