"""Analytic benchmarks of the mechanics plug-in (shared/VALIDATION.md A4, A5, A11), run through the
whole framework (case dict -> Simulation -> fields and quantities).

- Lamé thick cylinder (plane strain, internal pressure; cases/thick_cylinder.toml).
- Kirsch plate with a hole (plane stress): stress concentration 3 at the hole.
- Thermal stress: a bar restrained axially (sigma = -E alpha dT), a fully clamped block
  (sigma = -E alpha dT/(1 - 2 nu)), and a free sphere with a radial temperature (axisymmetric).
- Diffusion-induced stress in a sphere (swelling eigenstrain, steady galvanostatic profile).
- A body under equal and opposite tractions only (exact nullspace), direct and CG + GAMG.
- Orthotropic regions, reactions that balance the loads, GAMG iteration counts, bad input.
"""

import math

import numpy as np
import pytest
import ufl
from dolfinx import fem, geometry
from mpi4py import MPI

from app.errors import CaseError
from app.simulation import Simulation
from tests.conftest import assert_same_quantities, read_quantities, runs_on_ranks, scalebridge

COMM = MPI.COMM_WORLD


# Helpers ------------------------------------------------------------------------------------
def values_at(function: fem.Function, points: list[list[float]]) -> np.ndarray:
    """Values of a function at points (any rank may own them); one row per point."""
    msh = function.function_space.mesh
    xyz = np.zeros((len(points), 3))
    xyz[:, : len(points[0])] = points
    tree = geometry.bb_tree(msh, msh.topology.dim)
    cells = geometry.compute_colliding_cells(
        msh, geometry.compute_collisions_points(tree, xyz), xyz
    )
    size = int(np.prod(function.ufl_shape))
    local = np.full((len(points), size), np.nan)
    for i in range(len(points)):
        if len(cells.links(i)):
            local[i] = function.eval(xyz[i], cells.links(i)[:1])
    values = np.full_like(local, np.nan)
    for block in COMM.allgather(local):
        values = np.where(np.isnan(values), block, values)
    return values


def norm(expression, x, weight=1) -> float:
    """L2 norm over the mesh of the coordinates ``x``, with a generous quadrature."""
    dx = ufl.dx(domain=ufl.domain.extract_unique_domain(x), metadata={"quadrature_degree": 8})
    local = fem.assemble_scalar(fem.form(expression**2 * weight * dx))
    return math.sqrt(COMM.allreduce(local, op=MPI.SUM))


def polar(sigma, x):
    """Radial, tangential and shear components of an in-plane tensor about the origin."""
    n = x / ufl.sqrt(ufl.dot(x, x))
    t = ufl.as_vector([-n[1], n[0]])
    return ufl.dot(n, sigma * n), ufl.dot(t, sigma * t), ufl.dot(n, sigma * t)


def material(E: float = 200e9, nu: float = 0.3, **more) -> dict:
    return {"youngs_modulus": E, "poisson_ratio": nu, **more}


# A4: Lamé thick cylinder --------------------------------------------------------------------
A_IN, B_OUT, PRESSURE, NU = 0.1, 0.2, 100e6, 0.3
LAME_A = PRESSURE * A_IN**2 / (B_OUT**2 - A_IN**2)
LAME_B = PRESSURE * A_IN**2 * B_OUT**2 / (B_OUT**2 - A_IN**2)


@pytest.fixture(scope="module")
def cylinder(request):
    sim = Simulation.from_case(request.config.rootpath / "cases" / "thick_cylinder.toml")
    return sim, sim.run()


def test_lame_stresses_in_l2(cylinder):
    _, result = cylinder
    sigma = result.fields["stress"]
    x = ufl.SpatialCoordinate(sigma.function_space.mesh)
    r2 = ufl.dot(x, x)
    radial, hoop, shear = polar(sigma, x)
    scale = norm(LAME_A + LAME_B / r2, x)
    assert norm(radial - (LAME_A - LAME_B / r2), x) / scale < 0.01
    assert norm(hoop - (LAME_A + LAME_B / r2), x) / scale < 0.01
    assert norm(shear, x) / scale < 0.01
    sigma_z = result.fields["out_of_plane_stress"]
    assert norm(sigma_z / (2 * NU * LAME_A) - 1, x) / norm(1, x) < 0.01


def test_lame_stresses_at_points(cylinder):
    _, result = cylinder
    for r, angle in [(A_IN * 1.001, 0.3), (0.15, 0.7), (B_OUT * 0.999, 1.2)]:  # inside the arcs
        c, s = math.cos(angle), math.sin(angle)
        (sxx, sxy, _, syy), (szz,) = (
            values_at(result.fields[name], [[r * c, r * s]])[0]
            for name in ("stress", "out_of_plane_stress")
        )
        radial = sxx * c * c + 2 * sxy * c * s + syy * s * s
        hoop = sxx * s * s - 2 * sxy * c * s + syy * c * c
        scale = LAME_A + LAME_B / A_IN**2
        assert abs(radial - (LAME_A - LAME_B / r**2)) / scale < 0.01, (r, radial)
        assert abs(hoop - (LAME_A + LAME_B / r**2)) / scale < 0.01, (r, hoop)
        assert szz == pytest.approx(2 * NU * LAME_A, rel=0.01)


def test_lame_reactions_balance_the_pressure(cylinder):
    _, result = cylinder
    q = {name: values[-1] for name, values in result.quantities.items()}
    # The x = 0 cut carries the hoop force p a (per metre); the pressure on the quarter bore
    # pushes with p a along x and along y.
    assert q["reaction_left_x_N_per_m"] == pytest.approx(-PRESSURE * A_IN, rel=1e-9)
    assert q["reaction_bottom_y_N_per_m"] == pytest.approx(-PRESSURE * A_IN, rel=1e-9)
    assert q["load_inner_x_N_per_m"] == pytest.approx(PRESSURE * A_IN, rel=1e-9)
    assert q["reaction_left_x_N_per_m"] + q["load_inner_x_N_per_m"] == pytest.approx(0, abs=1e-6)
    # Energy = work of the pressure / 2, with u_r(a) of plane strain.
    E = 210e9
    u_a = (1 + NU) / E * ((1 - 2 * NU) * LAME_A * A_IN + LAME_B / A_IN)
    work = PRESSURE * u_a * math.pi * A_IN / 2 / 2
    assert q["strain_energy_J_per_m"] == pytest.approx(work, rel=1e-3)


@pytest.mark.mpi
def test_thick_cylinder_on_one_and_two_ranks(tmp_path):
    assert_same_quantities(*runs_on_ranks("cases/thick_cylinder.toml", tmp_path), floor=1e-6)


FLOATING_CASE = """
title = "A free block pulled by equal and opposite tractions"
[mesh]
type = "box"
length = [2, 1, 1]
cells = [8, 4, 4]
[physics.mechanics]
youngs_modulus = 1e9
poisson_ratio = 0.3
boundaries.left = { type = "traction", value = [-1e6, 0, 0] }
boundaries.right = { type = "traction", value = [1e6, 0, 0] }
[solver]
preset = "cg_gamg"
"""


@pytest.mark.mpi
def test_floating_body_with_cg_gamg_on_two_ranks(tmp_path):
    """The exact-nullspace path in parallel: same quantities on 1 and 2 ranks."""
    case = tmp_path / "floating.toml"
    case.write_text(FLOATING_CASE)
    results = {}
    for ranks in (1, 2):
        out = tmp_path / f"np{ranks}"
        process = scalebridge("run", case, "-o", out, "-q", ranks=ranks)
        assert process.returncode == 0, process.stderr
        results[ranks] = read_quantities(out)
    for q in results.values():
        assert q["max_von_mises_Pa"][-1] == pytest.approx(1e6, rel=1e-8)
        assert q["load_right_x_N"][-1] == pytest.approx(1e6)
    energy = [results[r]["strain_energy_J"][-1] for r in (1, 2)]
    assert energy[0] == pytest.approx(energy[1], rel=1e-8)
    assert energy[0] == pytest.approx((1e6) ** 2 / (2 * 1e9) * 2, rel=1e-8)  # s^2/(2E) V


# A4: Kirsch plate with a hole ---------------------------------------------------------------
def test_kirsch_stress_concentration():
    """Quarter of a 40a x 40a plate (width >= 10a), pulled along x; P2 on curved cells."""
    a, remote = 0.01, 1e6
    case = {
        "mesh": {
            "type": "gmsh",
            "file": "meshes/plate_with_hole.py",
            "order": 2,
            "parameters": {"radius": a, "width": 20 * a, "height": 20 * a, "hole_size": a / 20},
        },
        "physics": {
            "mechanics": material(
                70e9,
                0.33,
                formulation="plane_stress",
                degree=2,
                boundaries={
                    "left": {"type": "displacement", "x": 0},
                    "bottom": {"type": "displacement", "y": 0},
                    "right": {"type": "traction", "value": ["1 MPa", 0]},
                },
            )
        },
    }
    result = Simulation.from_case(case).run()
    top, side = values_at(result.fields["stress"], [[0, a], [a, 0]])
    assert top[0] / remote == pytest.approx(3, rel=0.03)  # sigma_tt(a, 90 deg) = sigma_xx
    assert side[3] / remote == pytest.approx(-1, rel=0.03)  # sigma_tt(a, 0) = sigma_yy
    assert result.fields["out_of_plane_stress"].x.array == pytest.approx(0, abs=1e-6)


# A5: thermal stress -------------------------------------------------------------------------
E_STEEL, ALPHA, DT = 200e9, 1.2e-5, 80.0


def thermal_block(boundaries: dict, formulation: str = "3d") -> dict:
    three = formulation == "3d"
    return {
        "mesh": {
            "type": "box" if three else "rectangle",
            "length": [1.0, 0.2, 0.1] if three else [1.0, 0.2],
            "cells": [6, 2, 2] if three else [6, 2],
        },
        "physics": {
            "mechanics": material(
                E_STEEL,
                0.3,
                formulation=formulation,
                thermal_expansion="1.2e-5 1/K",
                reference_temperature="20 degC",
                boundaries=boundaries,
            ),
            "imposed": {
                "type": "prescribed",
                "fields": {"temperature": {"units": "K", "value": f"293.15 + {DT}"}},
            },
        },
    }


@pytest.mark.parametrize("formulation", ["3d", "plane_stress"])
def test_bar_restrained_axially(formulation):
    supports = {
        "left": {"type": "displacement", "x": 0},
        "right": {"type": "displacement", "x": 0},
        "bottom": {"type": "displacement", "y": 0},  # symmetry planes: lateral expansion free
    }
    if formulation == "3d":
        supports["back"] = {"type": "displacement", "z": 0}
    result = Simulation.from_case(thermal_block(supports, formulation)).run()
    d = 3 if formulation == "3d" else 2
    sigma = result.fields["stress"].x.array.reshape(-1, d * d)
    expected = -E_STEEL * ALPHA * DT
    assert sigma[:, 0] == pytest.approx(expected, rel=1e-9)
    assert np.abs(sigma[:, 1:]).max() < 1e-9 * abs(expected)
    q = result.quantities
    area = 0.2 * 0.1 if formulation == "3d" else 0.2  # per metre of depth in 2D
    force = "N" if formulation == "3d" else "N_per_m"
    assert q[f"reaction_left_x_{force}"][-1] == pytest.approx(-expected * area, rel=1e-9)


def test_clamped_block_is_hydrostatic():
    case = thermal_block({"left": {"type": "fixed"}, "right": {"type": "fixed"}})
    for side in ("bottom", "top", "back", "front"):
        case["physics"]["mechanics"]["boundaries"][side] = {"type": "fixed"}
    result = Simulation.from_case(case).run()
    sigma = result.fields["stress"].x.array.reshape(-1, 3, 3)
    expected = -E_STEEL * ALPHA * DT / (1 - 2 * 0.3)
    assert sigma[:, [0, 1, 2], [0, 1, 2]] == pytest.approx(expected, rel=1e-9)
    assert result.fields["von_mises"].x.array == pytest.approx(0, abs=1e-6 * abs(expected))


def sphere_case(eigenstrain: dict, prescribed: dict, size: float, radius: float) -> dict:
    """One eighth of a free sphere: axisymmetric quarter disk, u_r = 0 on the axis and u_z = 0
    on the equatorial plane (symmetry), the surface free."""
    return {
        "mesh": {
            "type": "gmsh",
            "file": "meshes/quarter_disk.py",
            "order": 2,
            "size": size,
            "parameters": {"radius": radius},
        },
        "physics": {
            "mechanics": material(
                E_STEEL,
                0.3,
                formulation="axisymmetric",
                degree=2,
                boundaries={
                    "axis": {"type": "displacement", "x": 0},
                    "bottom": {"type": "displacement", "y": 0},
                },
                **eigenstrain,
            ),
            "imposed": {"type": "prescribed", "fields": prescribed},
        },
    }


def check_sphere_stresses(result, radial_exact, hoop_exact, tolerance: float) -> None:
    """Spherical radial and tangential stresses (both the in-plane and the hoop one) in a
    volume-weighted L2 norm, relative to the norm of the tangential stress."""
    sigma = result.fields["stress"]
    x = ufl.SpatialCoordinate(sigma.function_space.mesh)
    radial, tangential, shear = polar(sigma, x)
    hoop = result.fields["hoop_stress"]
    rho2 = ufl.dot(x, x)
    r = x[0]  # volume weight of the axisymmetric meridian
    scale = norm(hoop_exact(rho2), x, r)
    assert norm(radial - radial_exact(rho2), x, r) / scale < tolerance
    assert norm(tangential - hoop_exact(rho2), x, r) / scale < tolerance
    assert norm(hoop - hoop_exact(rho2), x, r) / scale < tolerance
    assert norm(shear, x, r) / scale < tolerance


def test_free_sphere_with_radial_temperature():
    """Timoshenko & Goodier: T = T0 + dT (rho/R)^2 gives sigma_r = 2k/5 (1 - x^2),
    sigma_t = k (2/5 - 4 x^2/5), k = alpha E dT/(1 - nu)."""
    radius = 0.05
    temperature = {"units": "K", "value": f"300 + {DT}*(x**2 + y**2)/{radius}**2"}
    case = sphere_case(
        {"thermal_expansion": ALPHA, "reference_temperature": 300.0},
        {"temperature": temperature},
        radius / 20,
        radius,
    )
    result = Simulation.from_case(case).run()
    k = ALPHA * E_STEEL * DT / (1 - 0.3)
    check_sphere_stresses(
        result,
        lambda rho2: 2 * k / 5 * (1 - rho2 / radius**2),
        lambda rho2: k * (2 / 5 - 4 / 5 * rho2 / radius**2),
        0.01,
    )


def test_diffusion_induced_stress_in_a_sphere():
    """A11, steady galvanostatic: c - cbar = (JR/D)(x^2/2 - 3/10) gives
    sigma_r = K (1 - x^2)/15, sigma_t = K (1 - 2x^2)/15 with K = Omega E (JR/D)/(1 - nu)."""
    radius, omega, jr_d, cbar = 5e-6, 3.5e-6, 2000.0, 15000.0
    profile = f"{cbar} + {jr_d}*((x**2 + y**2)/{radius}**2/2 - 0.3)"
    case = sphere_case(
        {
            "swelling": {
                "field": "concentration",
                "partial_molar_volume": omega,
                "reference": "10 mol/L",  # any stress-free state: uniform swelling is free
            }
        },
        {"concentration": {"units": "mol/m^3", "value": profile}},
        radius / 20,
        radius,
    )
    result = Simulation.from_case(case).run()
    K = omega * E_STEEL * jr_d / (1 - 0.3)
    check_sphere_stresses(
        result,
        lambda rho2: K * (1 - rho2 / radius**2) / 15,
        lambda rho2: K * (1 - 2 * rho2 / radius**2) / 15,
        0.02,
    )
    surface, centre = values_at(result.fields["hoop_stress"], [[radius, 0], [0, 0]])
    assert surface[0] == pytest.approx(-K / 15, rel=0.02)  # sigma_t(R) = -sigma_t(0)
    assert centre[0] == pytest.approx(K / 15, rel=0.02)


# Tractions only: the body floats ------------------------------------------------------------
@pytest.mark.parametrize("preset", ["direct", "cg_gamg"])
@pytest.mark.parametrize("dim", [2, 3])
def test_free_body_under_balanced_tractions(dim, preset):
    zero = [0] * (dim - 1)
    mesh = (
        {"type": "rectangle", "length": [2, 1], "cells": [16, 8]}
        if dim == 2
        else {"type": "box", "length": [2, 1, 1], "cells": [8, 4, 4]}
    )
    case = {
        "mesh": mesh,
        "physics": {
            "mechanics": material(
                1e9,
                0.3,
                formulation="plane_stress" if dim == 2 else "3d",
                boundaries={
                    "left": {"type": "traction", "value": ["-1 MPa", *zero]},
                    "right": {"type": "traction", "value": ["1 MPa", *zero]},
                },
            )
        },
        "solver": {"preset": preset},
    }
    sim = Simulation.from_case(case)
    result = sim.run()
    assert sim.groups[0].system.modes.exact
    sigma = result.fields["stress"].x.array.reshape(-1, dim, dim)
    assert sigma[:, 0, 0] == pytest.approx(1e6, rel=1e-8)
    assert np.abs(sigma).max(axis=0)[1:, 1:].max() < 1e-8 * 1e6
    # The solver returns the solution without rigid-body motion: zero mean translation.
    u = result.fields["displacement"].x.array.reshape(-1, dim)
    assert np.abs(u.mean(axis=0)).max() < 1e-10 * np.abs(u).max()
    if preset == "cg_gamg":
        assert result.quantities["linear_iterations"][-1] < 40


# Reactions and loads ------------------------------------------------------------------------
def test_reactions_balance_loads_and_body_force():
    """A clamped 3D cantilever under a shear end traction, a pressure on top and gravity:
    reactions + loads + weight = 0 in every direction, to round-off."""
    weight = [0, 0, "-7850*9.81"]
    case = {
        "mesh": {"type": "box", "length": [1, 0.2, 0.2], "cells": [10, 3, 3]},
        "physics": {
            "mechanics": material(
                body_force=weight,
                boundaries={
                    "left": {"type": "fixed"},
                    "right": {"type": "traction", "value": [1e5, "2e5*y", "-3e5"]},
                    "top": {"type": "pressure", "value": "1e4*(1 + x)"},
                    "front": {"type": "spring", "stiffness": 1e9, "normal_only": True},
                },
            )
        },
    }
    q = {k: v[-1] for k, v in Simulation.from_case(case).run().quantities.items()}
    volume = 1 * 0.2 * 0.2
    body = [0, 0, -7850 * 9.81 * volume]
    for i, axis in enumerate("xyz"):
        loads = sum(q[f"load_{b}_{axis}_N"] for b in ("right", "top", "front"))
        total = q[f"reaction_left_{axis}_N"] + loads + body[i]
        assert abs(total) < 1e-9 * 1e5 * 0.04, (axis, total)
    assert q["load_right_z_N"] == pytest.approx(-3e5 * 0.04)
    assert q["load_top_y_N"] == pytest.approx(-1e4 * 1.5 * 0.2)  # the outward normal of top is +y
    assert q["strain_energy_J"] > 0


def test_quasi_static_loading_reuses_the_operator():
    """A traction growing with t, solved as a sequence of steady steps: the reaction follows the
    load at every output time, and the constant operator is assembled once."""
    case = {
        "mesh": {"type": "rectangle", "length": [2, 1], "cells": [8, 4]},
        "physics": {
            "mechanics": material(
                boundaries={
                    "left": {"type": "fixed"},
                    "right": {"type": "traction", "value": ["1e6*t", "-2e5*t"]},
                }
            )
        },
        "time": {"end": 3.0, "dt": 1.0},
    }
    sim = Simulation.from_case(case)
    q = sim.run().quantities
    assert q["time_s"] == pytest.approx([1, 2, 3])
    assert q["reaction_left_x_N_per_m"] == pytest.approx(-1e6 * q["time_s"], rel=1e-9)
    assert q["reaction_left_y_N_per_m"] == pytest.approx(2e5 * q["time_s"], rel=1e-9)
    assert sim.groups[0].solver.matrix_assemblies == 1
    energy = q["strain_energy_J_per_m"]
    assert energy[1:] / energy[0] == pytest.approx([4, 9], rel=1e-9)  # quadratic in the load


def test_stiffness_from_a_field():
    """E = E0 (1 + 9 phi) with a prescribed phi = x: a bar under uniaxial stress s stretches by
    int s/E dx = s ln(10)/(9 E0)."""
    case = {
        "mesh": {"type": "rectangle", "length": [1, 0.1], "cells": [200, 2]},
        "physics": {
            "mechanics": material(
                "1e9*(1 + 9*mineral_fraction)",
                0.0,
                formulation="plane_stress",
                boundaries={
                    "left": {"type": "displacement", "x": 0},
                    "bottom": {"type": "displacement", "y": 0},
                    "right": {"type": "traction", "value": [1e6, 0]},
                },
            ),
            "mineral": {
                "type": "prescribed",
                "fields": {"mineral_fraction": {"units": "dimensionless", "value": "x"}},
            },
        },
    }
    result = Simulation.from_case(case).run()
    end = values_at(result.fields["displacement"], [[1, 0.05]])[0]
    assert end[0] == pytest.approx(1e6 * math.log(10) / 9e9, rel=1e-4)


# Orthotropic regions ------------------------------------------------------------------------
ORTHO = {"E": [200.0, 50.0, 80.0], "nu": [0.5, 0.5, 0.2], "G": [20.0, 30.0, 25.0]}


def box_case(boundaries: dict, regions: dict | None = None, **params) -> dict:
    return {
        "mesh": {
            "type": "box",
            "length": [2, 1, 1],
            "cells": [4, 2, 2],
            "regions": regions or {},
        },
        "physics": {"mechanics": material(100.0, 0.25, boundaries=boundaries, **params)},
    }


def uniaxial(axis: str, stress: float) -> dict:
    """Symmetry planes at the low faces, a traction on the high face normal to ``axis``."""
    low = {"x": "left", "y": "bottom", "z": "back"}
    high = {"x": "right", "y": "top", "z": "front"}
    boundaries = {low[c]: {"type": "displacement", c: 0} for c in "xyz"}
    value = [stress if c == axis else 0 for c in "xyz"]
    return boundaries | {high[axis]: {"type": "traction", "value": value}}


def test_orthotropic_region_in_series_with_an_isotropic_one():
    """Under uniaxial stress along x the strains are sigma/E1, -nu12 sigma/E1, -nu13 sigma/E1
    in the orthotropic half; with the same nu/E as the isotropic half the state stays
    homogeneous in each, and the end displacement adds both compliances."""
    case = box_case(uniaxial("x", 1.0), {"fibre": "x > 1"}, orthotropic={"fibre": ORTHO})
    result = Simulation.from_case(case).run()
    u = result.fields["displacement"]
    end = values_at(u, [[2, 1, 1]])[0]
    assert end[0] == pytest.approx(1 / 100 + 1 / 200, rel=1e-9)
    assert end[1] == pytest.approx(-0.0025, rel=1e-9)
    strain = result.fields["strain"]
    iso, fibre = values_at(strain, [[0.5, 0.5, 0.5], [1.5, 0.5, 0.5]])
    assert iso[0] == pytest.approx(0.01, rel=1e-9)
    assert fibre[[0, 4, 8]] == pytest.approx([1 / 200, -0.5 / 200, -0.5 / 200], rel=1e-9)
    assert values_at(result.fields["stress"], [[1.5, 0.5, 0.5]])[0][0] == pytest.approx(1.0)


@pytest.mark.parametrize("formulation", ["3d", "plane_stress"])
def test_orthotropic_transverse_compliance(formulation):
    """Loaded along y: eps_yy = sigma/E2, eps_xx = -nu12 sigma/E1, eps_zz = -nu23 sigma/E2."""
    case = box_case(uniaxial("y", 1.0), orthotropic={"domain": ORTHO})
    if formulation == "plane_stress":
        case["mesh"] = {"type": "rectangle", "length": [2, 1], "cells": [4, 2]}
        case["physics"]["mechanics"]["formulation"] = formulation
        case["physics"]["mechanics"]["boundaries"] = {
            "left": {"type": "displacement", "x": 0},
            "bottom": {"type": "displacement", "y": 0},
            "top": {"type": "traction", "value": [0, 1.0]},
        }
    result = Simulation.from_case(case).run()
    d = 3 if formulation == "3d" else 2
    strain = result.fields["strain"].x.array.reshape(-1, d, d)
    assert strain[:, 1, 1] == pytest.approx(1 / 50, rel=1e-9)
    assert strain[:, 0, 0] == pytest.approx(-0.5 / 200, rel=1e-9)
    if d == 3:
        assert strain[:, 2, 2] == pytest.approx(-0.2 / 50, rel=1e-9)


# Solver -------------------------------------------------------------------------------------
def test_cg_gamg_iterations_with_rigid_body_modes():
    """A 3D cantilever under gravity (~25k unknowns): CG + GAMG with the six rigid-body modes
    as near-nullspace converges in few iterations to the direct solution."""
    results = {}
    for preset in ("direct", "cg_gamg"):
        case = {
            "mesh": {"type": "box", "length": [4, 1, 1], "cells": [48, 12, 12]},
            "physics": {
                "mechanics": material(
                    body_force=[0, 0, "-7850*9.81"], boundaries={"left": {"type": "fixed"}}
                )
            },
            "solver": {"preset": preset, "rtol": 1e-10},
        }
        sim = Simulation.from_case(case)
        results[preset] = sim.run()
        assert len(sim.groups[0].system.modes.vectors) == 6
    iterations = results["cg_gamg"].quantities["linear_iterations"][-1]
    assert iterations <= 40, iterations
    direct, iterative = (results[p].fields["displacement"].x.array for p in ("direct", "cg_gamg"))
    assert np.abs(iterative - direct).max() < 1e-7 * np.abs(direct).max()


# Bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "where", "words"),
    [
        ({"poisson_ratio": 0.5}, "physics.mechanics.poisson_ratio", "< 0.5"),
        ({"formulation": "3d"}, "physics.mechanics", "does not fit a 2D mesh"),
        ({"boundaries": {"left": {"type": "displacement"}}}, "boundaries.left", "at least one"),
        ({"boundaries": {"left": {"type": "displacement", "z": 0}}}, "left.z", "mesh is 2D"),
        ({"body_force": [0, 0, 1]}, "body_force", "2 components"),
        ({"orthotropic": {"core": ORTHO}}, "orthotropic.core", "unknown region"),
        (
            {"orthotropic": {"domain": ORTHO | {"nu": [0.5, 0.5, 2]}}},
            "orthotropic.domain",
            "not positive definite",
        ),
    ],
)
def test_bad_input_is_reported_at_its_place(change, where, words):
    case = {
        "mesh": {"type": "rectangle", "cells": [2, 2]},
        "physics": {"mechanics": material(boundaries={"left": {"type": "fixed"}}) | change},
    }
    with pytest.raises(CaseError) as error:
        Simulation.from_case(case).build()
    assert where in error.value.path and words in error.value.problem, str(error.value)
