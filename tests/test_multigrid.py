"""Geometric multigrid on the meshes of ``mesh.refine`` (presets cg_gmg/gmres_gmg,
app/multigrid.py, app/prolongation.py): the prolongation reproduces what the coarse space
contains, the preset gives the direct answer in iteration counts that do not grow with the
refinement (where Jacobi-CG's double), on 1 and 2 ranks, and a case it cannot serve is told why.
"""

import json
import textwrap

import numpy as np
import pytest

from app.errors import CaseError
from app.simulation import Simulation
from tests.cantilever import WEIGHT, cantilever
from tests.conftest import assert_same_quantities, mpi_python, runs_on_ranks, scalebridge

# Each P1/P2, scalar/vector space of a 2D and a 3D mesh refined twice: a function of the coarse
# space (a polynomial of the element's degree) interpolated there and prolonged, against the
# same function interpolated on the fine mesh; the largest difference over every level and rank.
PROLONGATION_SCRIPT = textwrap.dedent(
    """
    import json
    import app
    import numpy as np
    from dolfinx import fem, mesh
    from mpi4py import MPI
    from app.mesh_refine import refine
    from app.prolongation import prolongation

    comm = MPI.COMM_WORLD

    def polynomial(degree, components):
        def values(x):
            rows = [1 + 2 * x[0] - x[1] + 0.5 * x[2] + 0.3 * (degree - 1) * x[0] * x[1]]
            rows += [x[1] - 3 * x[2] + 0.7 * (degree - 1) * x[0] ** 2 for _ in [1]]
            rows += [x[0] + 0.2 * (degree - 1) * x[1] * x[2] - 4]
            return np.array(rows[:components]) if components > 1 else rows[0]
        return values

    errors = {}
    for dim, coarse in ((2, mesh.create_unit_square(comm, 3, 2)),
                        (3, mesh.create_unit_cube(comm, 2, 2, 3))):
        _, _, hierarchy = refine(coarse, {}, 2, keep_coarse=True)
        for degree in (1, 2):
            for shape in ((), (dim,)):
                f = polynomial(degree, dim if shape else 1)
                spaces = [fem.functionspace(m, ("Lagrange", degree, shape))
                          for m in hierarchy.meshes]
                worst, rows = 0.0, 0
                for k in range(1, len(spaces)):
                    coarse_u, fine_u = fem.Function(spaces[k - 1]), fem.Function(spaces[k])
                    coarse_u.interpolate(f)
                    fine_u.interpolate(f)
                    P = prolongation(spaces[k - 1], spaces[k], hierarchy.parents[k - 1])
                    prolonged = P.createVecLeft()
                    P.mult(coarse_u.x.petsc_vec, prolonged)
                    owned = fine_u.x.array[: len(prolonged.array)]
                    worst = max(worst, float(np.abs(prolonged.array - owned).max(initial=0)))
                    rows += P.getSize()[0]
                errors[f"{dim}D P{degree} {'vector' if shape else 'scalar'}"] = (
                    comm.allreduce(worst, op=MPI.MAX), rows)
    if comm.rank == 0:
        print(json.dumps(errors))
    """
)


@pytest.mark.parametrize("ranks", [1, 2])
def test_prolongation_reproduces_the_coarse_functions_on_the_fine_mesh(ranks, tmp_path):
    script = tmp_path / "prolong.py"
    script.write_text(PROLONGATION_SCRIPT)
    process = mpi_python(script, ranks=ranks)
    assert process.returncode == 0, process.stderr
    errors = json.loads(process.stdout.strip().splitlines()[-1])
    assert len(errors) == 8, errors
    for name, (error, rows) in errors.items():
        assert error < 1e-12, (name, error)
        assert rows > 0, name


def heated_square(n: int, refine: int, preset: str, conductivity: str = "15") -> dict:
    """Steady conduction in a unit square heated throughout, held at 300 K on its left side."""
    return {
        "mesh": {"type": "rectangle", "length": [1, 1], "cells": [n, n], "refine": refine},
        "physics": {
            "heat": {
                "conductivity": conductivity,
                "source": "2e4 W/m^3",
                "boundaries": {"left": {"type": "temperature", "value": "300 K"}},
            }
        },
        "solver": {"preset": preset, "rtol": 1e-10},
        "output": {"xdmf": False},
    }


def solve(case: dict, field: str) -> tuple[np.ndarray, float, Simulation]:
    sim = Simulation.from_case(case)
    result = sim.run()
    return result.fields[field].x.array.copy(), result.quantities["linear_iterations"][-1], sim


def test_poisson_gives_the_direct_answer_in_iterations_that_do_not_grow():
    """CG + GMG at 8x8 refined 1, 2, 3 times: the direct solution to the tolerance, and the
    iteration counts flat within 30 %, where Jacobi-CG's double with each refinement."""
    counts, jacobi = [], []
    for levels in (1, 2, 3):
        exact = solve(heated_square(8, levels, "direct"), "temperature")[0]
        values, iterations, sim = solve(heated_square(8, levels, "cg_gmg"), "temperature")
        rise = np.abs(exact - 300).max()
        assert np.abs(values - exact).max() < 1e-8 * rise, levels
        pc = sim.groups[0].solver.problem.solver.getPC()
        assert pc.getMGLevels() == levels + 1
        assert pc.getMGCoarseSolve().getPC().getType() == "cholesky"  # CG: symmetric
        counts.append(iterations)
        jacobi.append(solve(heated_square(8, levels, "cg_jacobi"), "temperature")[1])
    assert max(counts) <= 1.3 * min(counts), counts
    assert max(jacobi) > 1.3 * min(jacobi), jacobi  # the bound means something


def test_a_newton_jacobian_is_preconditioned_on_the_same_levels():
    """Conductivity growing with temperature: Newton's linearised systems preconditioned by
    GMRES + GMG give the direct Newton solution."""
    k = "15*(1 + 1e-3*(temperature - 300))"
    exact = solve(heated_square(8, 2, "direct", k), "temperature")[0]
    values, iterations, sim = solve(heated_square(8, 2, "gmres_gmg", k), "temperature")
    assert np.abs(values - exact).max() < 1e-7 * np.abs(exact - 300).max()
    pc = sim.groups[0].solver.problem.solver.getKSP().getPC()
    assert pc.getType() == "mg" and pc.getMGCoarseSolve().getPC().getType() == "lu"
    newton = sim.groups[0].solver.problem.solver.getIterationNumber()
    assert newton >= 2 and iterations <= 12 * newton, (newton, iterations)


def test_elasticity_gives_the_direct_answer_in_iterations_that_do_not_grow():
    """The cantilever at [8, 2, 2] refined once and twice (1.3k to 8k unknowns): displacements
    of the direct solve to the tolerance, the support carries the weight, and the iteration
    counts stay flat where Jacobi-CG's grow."""
    counts, jacobi = [], []
    for levels in (1, 2):
        exact = solve(cantilever(2, levels, "direct"), "displacement")[0]
        values, iterations, _ = solve(cantilever(2, levels, "cg_gmg"), "displacement")
        assert np.abs(values - exact).max() < 1e-8 * np.abs(exact).max(), levels
        counts.append(iterations)
        jacobi.append(solve(cantilever(2, levels, "cg_jacobi"), "displacement")[1])
    assert max(counts) <= 1.3 * min(counts), counts
    assert max(jacobi) > 1.3 * min(jacobi), jacobi


def test_two_ranks_give_the_answer_of_one(tmp_path, cases):
    """The cantilever on 2 ranks: the same quantities (to the solver's tolerance) as on 1."""
    case = tmp_path / "cantilever.toml"
    case.write_text(
        (cases.parent / "benchmarks" / "elasticity_3d_gmg.toml").read_text(encoding="utf-8")
    )
    serial, parallel = runs_on_ranks(
        case, tmp_path, "--set", "mesh.cells=[12,3,3]", "--set", "mesh.refine=2"
    )
    iterations = serial.pop("linear_iterations"), parallel.pop("linear_iterations")
    assert abs(iterations[0][-1] - iterations[1][-1]) <= 1, iterations
    assert serial["reaction_left_z_N"][-1] == pytest.approx(WEIGHT, rel=1e-7)
    for transverse in ("reaction_left_x_N", "reaction_left_y_N"):  # zero to the tolerance
        for run in (serial, parallel):
            assert abs(run.pop(transverse)[-1]) < 1e-7 * WEIGHT, transverse
    assert_same_quantities(serial, parallel, rtol=1e-7)


def test_a_mesh_without_refinement_levels_is_refused_at_the_preset():
    with pytest.raises(CaseError) as error:
        Simulation.from_case(cantilever(2, 0, "cg_gmg"))
    message = str(error.value)
    assert "solver.preset" in message
    assert "mesh.refine >= 1" in message and "'cg_gamg'" in message


def test_a_group_of_two_fields_is_refused_at_the_preset():
    case = heated_square(4, 1, "cg_gmg")
    case["physics"]["mechanics"] = {
        "youngs_modulus": "210 GPa",
        "poisson_ratio": 0.3,
        "formulation": "plane_strain",
        "boundaries": {"left": {"type": "fixed"}},
        "thermal_expansion": "1e-5 1/K",
        "reference_temperature": "300 K",
    }
    case["coupling"] = {"groups": [{"name": "both", "physics": ["heat", "mechanics"]}]}
    sim = Simulation.from_case(case)
    with pytest.raises(CaseError) as error:
        sim.run()
    message = str(error.value)
    assert "solver.preset" in message and "several" in message and "'fieldsplit'" in message


def test_a_field_on_a_region_is_refused_at_the_preset():
    case = heated_square(4, 1, "cg_gmg")
    case["mesh"]["regions"] = {"hot": "x < 0.5"}
    case["physics"]["heat"]["domain"] = "hot"
    sim = Simulation.from_case(case)
    with pytest.raises(CaseError) as error:
        sim.run()
    message = str(error.value)
    assert "solver.preset" in message and "'temperature' lives on a region" in message
    assert "'cg_gamg'" in message


def test_the_cli_says_what_the_preset_needs_and_exits_2(cases):
    process = scalebridge(
        "check", cases.parent / "benchmarks" / "elasticity_3d_gmg.toml", "--set", "mesh.refine=0"
    )
    assert process.returncode == 2, process.stderr
    assert "Traceback" not in process.stderr
    assert "solver.preset" in process.stderr and "mesh.refine >= 1" in process.stderr


def test_a_cached_mesh_is_not_read_when_the_coarse_meshes_are_needed(tmp_path):
    """The mesh cache holds only the refined mesh: with geometric multigrid the mesh is built
    (and solved on its levels) even where a cache is named, and nothing is stored there."""
    case = heated_square(4, 1, "cg_gmg")
    case["mesh"]["cache"] = str(tmp_path / "meshes")
    sim = Simulation.from_case(case)
    sim.run()
    assert sim.mesh_data.hierarchy is not None and len(sim.mesh_data.hierarchy.meshes) == 2
    assert not any((tmp_path / "meshes").glob("**/*"))


def test_a_field_of_degree_3_is_refused_at_the_preset():
    case = heated_square(4, 1, "cg_gmg")
    case["physics"]["heat"]["degree"] = 3
    sim = Simulation.from_case(case)
    with pytest.raises(CaseError) as error:
        sim.run()
    message = str(error.value)
    assert "solver.preset" in message and "'temperature' (degree 3)" in message
    assert "'cg_gamg'" in message


def test_p2_elasticity_gives_the_direct_answer():
    """Quadratic displacements: the prolongation of P2 (ten coarse weights a row) serves the
    solve as P1's does."""
    answers = {}
    for preset in ("direct", "cg_gmg"):
        case = cantilever(2, 1, preset)
        case["physics"]["mechanics"]["degree"] = 2
        answers[preset], iterations, _ = solve(case, "displacement")
    error = np.abs(answers["cg_gmg"] - answers["direct"]).max()
    assert error < 1e-8 * np.abs(answers["direct"]).max()
    assert iterations < 20


def test_the_rigid_body_modes_are_not_made_for_geometric_multigrid():
    """PCMG reads no near-nullspace: the six modes (six vectors of the field's size, each
    interpolated) are made for GAMG only."""
    for preset, modes in (("cg_gmg", 0), ("cg_gamg", 6)):
        sim = Simulation.from_case(cantilever(2, 1, preset))
        sim.run()
        nullspace = sim.groups[0].solver.problem.A.getNearNullSpace()
        assert (len(nullspace.getVecs()) if nullspace.handle else 0) == modes, preset
