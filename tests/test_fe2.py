"""FE2: a macro mechanics problem whose stress comes from a nonlinear unit cell per quadrature
point (``constitutive = { rve = ... }``, app/pointwise_law.py, app/multiscale/fe2.py).

* Homogeneous cells of one J2 phase are the material point: the FE2 answer is the mechanics
  plug-in's own J2 plasticity over a loading-unloading cycle that leaves plastic strain.
* A rejected macro step leaves the cells' histories as they were.
* cases/fe2_plate.toml: in the elastic range the answer of the macro problem with the linear
  homogenised stiffness (app.multiscale.rve, as orthotropic constants of the plug-in); then
  yield; Newton's rate is quadratic; 1 and 2 ranks agree.
"""

import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest
import tomli_w
import ufl
from dolfinx import fem
from dolfinx.fem.petsc import LinearProblem
from mpi4py import MPI
from petsc4py import PETSc

from app import Simulation
from app.cli import main
from app.multiscale.materials import Elasticity
from app.multiscale.microstructure import Microstructure
from app.multiscale.plastic_cell import J2Phase
from app.multiscale.rve import CellProblem
from app.multiscale.rve_spec import PhaseSpec
from tests.conftest import CASES, ROOT, read_quantities, scalebridge

STEEL = {
    "youngs_modulus": "200 GPa",
    "poisson_ratio": 0.3,
    "yield_stress": "250 MPa",
    "isotropic_modulus": "2 GPa",
    "kinematic_modulus": "1 GPa",
}
INCLUSION = str(ROOT / "meshes" / "rve_inclusion.py")
PLASTICITY = {key: STEEL[key] for key in ("yield_stress", "isotropic_modulus", "kinematic_modulus")}
# a cantilever bent by its end (non-uniform stress), loaded past yield and back to zero
CANTILEVER = {
    "mesh": {"type": "rectangle", "length": ["20 mm", "10 mm"], "cells": [4, 2]},
    "physics": {
        "mechanics": {
            "formulation": "plane_strain",
            "boundaries": {
                "left": {"type": "fixed"},
                "right": {"type": "displacement", "y": "1e-4*min(t, 2 - t)"},
            },
        }
    },
    "time": {"end": 2.0, "dt": 0.25},
    "solver": {"newton": {"rtol": 1e-12, "atol": 1e-9}},
}


def own_plasticity() -> dict:
    case = copy.deepcopy(CANTILEVER)
    case["physics"]["mechanics"] |= {
        "youngs_modulus": STEEL["youngs_modulus"],
        "poisson_ratio": STEEL["poisson_ratio"],
        "plasticity": PLASTICITY,
    }
    return case


def homogeneous_cells() -> dict:
    case = copy.deepcopy(CANTILEVER)
    case["physics"]["mechanics"]["constitutive"] = {"rve": "point"}
    case["rves"] = {
        "point": {
            "microstructure": "homogeneous",
            "mesh_size": 0.5,
            "phases": {"matrix": dict(STEEL)},
        }
    }
    return case


def march(sim, steps, reject=None, after=None):
    """Step by hand and commit; ``reject = (i, dt)`` first takes a converged step of ``dt``
    before step i and rejects it; ``after(i)`` is called after each step's solve. Returns the
    reports and the quantities after each step."""
    sim.compile()
    t, reports, rows = 0.0, [], []
    for i, dt in enumerate(steps):
        if reject is not None and reject[0] == i:
            trial = sim.step(t, reject[1])
            assert trial.converged, trial.reason
            sim.rollback()
        report = sim.step(t, dt)
        assert report.converged, report.reason
        t += dt
        if after is not None:
            after(i)
        rows.append(sim.evaluate_quantities())
        sim.commit()
        reports.append(report)
    return reports, {name: np.array([row[name] for row in rows]) for name in rows[0]}


def test_homogeneous_cells_are_the_plugins_own_plasticity():
    own = Simulation.from_case(own_plasticity()).run()
    fe2 = Simulation.from_case(homogeneous_cells()).run()
    force = "reaction_right_y_N_per_m"
    reference = own.quantities[force]
    assert own.quantities["max_equivalent_plastic_strain"][-1] > 1e-3  # it yielded
    # back at zero displacement, the plastic strain leaves a force
    assert abs(reference[-1]) > 0.2 * np.abs(reference).max()
    scale = np.abs(reference).max()
    assert np.abs(fe2.quantities[force] - reference).max() <= 1e-8 * scale
    # the stress of the outputs too, sigma_zz of plane strain included
    stress = own.quantities["max_von_mises_Pa"]
    assert np.abs(fe2.quantities["max_von_mises_Pa"] - stress).max() <= 1e-8 * stress.max()
    u, v = (r.fields["displacement"].x.array for r in (own, fe2))
    assert np.abs(u - v).max() <= 1e-8 * np.abs(u).max()
    # the same Newton iterates: the cells' tangent is the return mapping's consistent one,
    # also at a step's first iterate (the elastic predictor of the new history)
    assert list(fe2.quantities["newton_iterations"]) == list(own.quantities["newton_iterations"])


def test_a_rejected_step_leaves_the_cells_histories_as_they_were():
    steps = [0.25] * 6  # loading past yield, then unloading
    straight = Simulation.from_case(homogeneous_cells())
    _, expected = march(straight, steps)
    retried = Simulation.from_case(homogeneous_cells())
    # from t = 0.5 a converged step to t = 1.5 that yields far more, then rejected
    _, got = march(retried, steps, reject=(2, 1.0))
    force = "reaction_right_y_N_per_m"
    cells = [sim.multiscale.rves["point"] for sim in (straight, retried)]
    assert cells[1].solves > cells[0].solves  # the rejected step was solved
    assert np.abs(got[force] - expected[force]).max() <= 1e-12 * np.abs(expected[force]).max()
    plastic = [material.ensemble.averages("equivalent_plastic_strain") for material in cells]
    assert plastic[0].max() > 1e-3
    assert np.abs(plastic[1] - plastic[0]).max() <= 1e-12 * plastic[0].max()


def composite_cells(max_iterations: int, adaptive: bool) -> dict:
    """The cantilever with cells of a stiff circular inclusion in the steel (one point per
    triangle), whose Newton may take ``max_iterations``."""
    case = copy.deepcopy(CANTILEVER)
    case["physics"]["mechanics"]["constitutive"] = {"rve": "composite"}
    case["solver"]["quadrature_degree"] = 1
    inclusion = {"youngs_modulus": "400 GPa", "poisson_ratio": 0.2}
    case["rves"] = {
        "composite": {
            "microstructure": INCLUSION,
            "parameters": {"shape": "circle", "volume_fraction": 0.2},
            "mesh_size": 0.25,
            "max_iterations": max_iterations,
            "phases": {"matrix": dict(STEEL), "inclusion": inclusion},
        }
    }
    case["time"] = {"end": 2.0, "dt": 1.0} | ({"adaptive": {"dt_min": 0.01}} if adaptive else {})
    return case


def test_steps_whose_cells_fail_are_retried_smaller_and_leave_no_trace():
    # four cell iterations are too few at the steps where the matrix starts to yield: the
    # macro step fails and the adaptive controller retries it smaller
    retried = Simulation.from_case(composite_cells(4, adaptive=True)).run()
    assert retried.rejected >= 2
    steps = np.diff(np.r_[0.0, retried.quantities["time_s"]])
    _, straight = march(Simulation.from_case(composite_cells(25, adaptive=False)), list(steps))
    force = "reaction_right_y_N_per_m"
    scale = np.abs(straight[force]).max()
    assert np.abs(retried.quantities[force] - straight[force]).max() <= 1e-10 * scale


# cases/fe2_plate.toml -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def plate():
    """The case's run by hand: the simulation, the solver reports, the quantities, the tangents
    the forms read (Mandel, per point) after the first step and the cells' largest Newton
    count in each step."""
    sim = Simulation.from_case(CASES / "fe2_plate.toml")
    tangents, iterations = [], []

    def inspect(step):
        iterations.append(sim.multiscale.rves["composite"].iterations)
        if step == 0:
            law = sim.groups[0].laws[0]
            tangents.append(law.tangent.x.array.reshape(-1, 3, 3).copy())

    reports, quantities = march(sim, [0.25] * 8, after=inspect)
    return SimpleNamespace(
        sim=sim,
        reports=reports,
        quantities=quantities,
        tangents=tangents[0],
        cell_iterations=iterations,
    )


def linear_plate_reaction(sim, stiffness: np.ndarray, pull: float) -> float:
    """The reaction on 'right' of the case's plate with the constant Mandel stiffness of the
    linear cell (plane strain, the same mesh, supports and quadrature), by plain DOLFINx."""
    data = sim.mesh_data
    domain, tags = data.mesh, data.facet_tags
    V = fem.functionspace(domain, ("Lagrange", 1, (2,)))
    C = ufl.as_matrix(stiffness.tolist())

    def mandel(w):
        return ufl.as_vector([w[0].dx(0), w[1].dx(1), (w[0].dx(1) + w[1].dx(0)) / math.sqrt(2)])

    dx = ufl.Measure("dx", domain, metadata={"quadrature_degree": 1})
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    zero = fem.Function(V)

    def dofs(name, axis):
        facets = tags.find(data.boundaries[name])
        return fem.locate_dofs_topological(V.sub(axis), 1, facets)

    held = {("left", 0): 0.0, ("bottom", 1): 0.0, ("right", 0): pull}
    bcs = [
        fem.dirichletbc(PETSc.ScalarType(value), dofs(name, axis), V.sub(axis))
        for (name, axis), value in held.items()
    ]
    problem = LinearProblem(
        ufl.inner(C * mandel(u), mandel(v)) * dx,
        ufl.inner(zero, v) * dx,
        bcs=bcs,
        petsc_options_prefix="linear_plate_",
        petsc_options={"ksp_type": "preonly", "pc_type": "lu"},
    )
    displacement = problem.solve()
    indicator = fem.Function(V)
    indicator.x.array[dofs("right", 0)] = 1.0  # the virtual motion of the support's dofs
    local = fem.assemble_scalar(
        fem.form(ufl.inner(C * mandel(displacement), mandel(indicator)) * dx)
    )
    return domain.comm.allreduce(local)


def test_plate_is_the_linear_homogenised_plate_until_it_yields(plate):
    sim, quantities = plate.sim, plate.quantities
    spec = sim.case.rves["composite"]
    micro = Microstructure(spec.microstructure, "t", CASES, dict(spec.parameters), [])
    domain, tags, regions = micro.mesh(np.zeros(0), spec.mesh_size, 1, MPI.COMM_WORLD)
    laws = {name: spec.phases[name].law() for name in regions}
    phases = {
        name: (law.bulk, law.shear) if isinstance(law, J2Phase) else law
        for name, law in laws.items()
    }
    stiffness = CellProblem(domain, tags, regions, Elasticity(phases), 1).solve("periodic")
    # every cell's consistent tangent in the elastic step is the linear cell's stiffness
    assert np.abs(plate.tangents - stiffness).max() <= 1e-8 * np.abs(stiffness).max()
    # the first step (pulled by 7.5 um) is elastic: the linear homogenised plate to 1e-8
    force = quantities["reaction_right_x_N_per_m"]
    elastic = linear_plate_reaction(sim, stiffness, 7.5e-6)
    assert force[0] == pytest.approx(elastic, rel=1e-8)
    # the matrix yields at the hole before the second: the plate is softer from then on
    for step in (1, 2, 3):
        assert force[step] < (1 - 1e-3) * elastic * (step + 1)


def test_plate_newton_is_quadratic_while_the_cells_yield(plate):
    reports = plate.reports
    step = int(np.argmax([report.iterations for report in reports]))
    # above the round-off of the cells' stresses (their Newton stops at 1e-10)
    norms = [r for r in reports[step].residual_norms if r > 1e-11 * reports[step].residual_norms[0]]
    orders = [
        math.log(c / b) / math.log(b / a)
        for a, b, c in zip(norms, norms[1:], norms[2:], strict=False)
    ]
    print("macro Newton residuals", norms, "orders", orders)
    assert plate.cell_iterations[step] >= 2  # the cells yield: their own Newton iterates
    assert orders[-1] >= 1.8


def test_plate_on_one_and_two_ranks(tmp_path):
    tables = []
    for ranks in (1, 2):
        # loading past yield and the first unloading step
        process = scalebridge(
            "run",
            CASES / "fe2_plate.toml",
            "-o",
            tmp_path / f"np{ranks}",
            "-q",
            "--set",
            "time.end=1.25",
            ranks=ranks,
        )
        assert process.returncode == 0, process.stderr
        tables.append(read_quantities(tmp_path / f"np{ranks}"))
    serial, parallel = tables
    forces = max(np.abs(v).max() for k, v in serial.items() if k.startswith("reaction"))
    for column, values in serial.items():
        if column.endswith("seconds"):
            continue
        scale = forces if column.startswith("reaction") else np.abs(values).max()
        assert np.abs(np.subtract(values, parallel[column])).max() <= 1e-10 * scale, column


# Bad input ------------------------------------------------------------------------------------
def _rve(case):
    return case["rves"]["point"]


def _mechanics(case):
    return case["physics"]["mechanics"]


BAD = {
    "unknown name": (
        lambda c: _mechanics(c).update(constitutive={"rve": "piont"}),
        "physics.mechanics.constitutive: unknown rve 'piont' (did you mean 'point'?)",
    ),
    "wrong units": (
        lambda c: _rve(c)["phases"]["matrix"].update(yield_stress="250 m"),
        "rves.point.phases.matrix.yield_stress: '250 m' has units of m but Pa was expected",
    ),
    "hardening without yield stress": (
        lambda c: _rve(c)["phases"]["matrix"].pop("yield_stress"),
        "rves.point.phases.matrix: isotropic_modulus is a plastic phase's hardening, but the "
        "phase has no yield_stress",
    ),
    "no such script": (
        lambda c: _rve(c).update(microstructure="no_such_cell.py"),
        "rves.point.microstructure: file 'no_such_cell.py' not found",
    ),
    "3D cell under a 2D macro problem": (
        lambda c: _rve(c).update(
            microstructure=INCLUSION,
            parameters={"shape": "sphere", "volume_fraction": 0.1},
            phases={"matrix": dict(STEEL), "inclusion": dict(STEEL)},
        ),
        "rves.point.microstructure: rve_inclusion.py builds a 3D cell, but the macro mesh is 2D",
    ),
    "a region no cell has": (
        lambda c: _rve(c)["phases"].update(fibre=dict(STEEL)),
        "rves.point.phases: a cell's regions are 'matrix' and 'inclusion', got 'fibre'",
    ),
    "stiffness twice": (
        lambda c: _mechanics(c).update(youngs_modulus="1 GPa"),
        "physics.mechanics: youngs_modulus and constitutive both give the stiffness",
    ),
    "with the plug-in's plasticity": (
        lambda c: _mechanics(c).update(plasticity=PLASTICITY),
        "physics.mechanics: choose one of constitutive and plasticity",
    ),
    "axisymmetric": (
        lambda c: _mechanics(c).update(formulation="axisymmetric"),
        "physics.mechanics.formulation: constitutive cells take plane strain or 3D strains",
    ),
    "a zero Young's modulus": (  # it was taken as not given: 'got poisson_ratio'
        lambda c: _rve(c)["phases"]["matrix"].update(youngs_modulus=0),
        "rves.point.phases.matrix: need E > 0 and -1 < nu < 0.5, got E = 0, nu = 0.3",
    ),
    "a cell no memory holds": (  # 2e10 triangles: DOLFINx filled the memory making them
        lambda c: _rve(c).update(mesh_size=1e-5),
        "rves.point.mesh_size: mesh_size = 1e-05 makes 2e+10 triangle cells of the 2D unit "
        "cell, which need about 4.6 TB of memory",
    ),
    "no stiffness at all": (
        lambda c: _mechanics(c).pop("constitutive"),
        "physics.mechanics: give youngs_modulus and poisson_ratio",
    ),
}


@pytest.mark.parametrize("change, message", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_case_error(change, message, tmp_path, capsys):
    case = homogeneous_cells()
    change(case)
    path = tmp_path / "case.toml"
    path.write_text(tomli_w.dumps(case))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("scalebridge: error:") == 1 and "Traceback" not in err


def test_a_cell_region_without_a_phase_stops_the_run_with_exit_code_2(tmp_path):
    case = homogeneous_cells()
    _rve(case).update(
        microstructure=INCLUSION, parameters={"shape": "circle", "volume_fraction": 0.2}
    )
    path = tmp_path / "case.toml"
    path.write_text(tomli_w.dumps(case))
    process = scalebridge("run", path, "-o", tmp_path / "run")
    assert process.returncode == 2
    assert process.stderr.strip() == (
        f"scalebridge: error: {path}: rves.point.phases: the cell has a region 'inclusion' "
        "without a phase. Fix: add phases.inclusion"
    )


def test_a_restart_of_an_fe2_run_is_refused(tmp_path):
    path = tmp_path / "case.toml"
    path.write_text(tomli_w.dumps(homogeneous_cells() | {"time": {"end": 0.5, "dt": 0.25}}))
    assert scalebridge("run", path, "-o", tmp_path / "run", "-q").returncode == 0
    process = scalebridge("restart", tmp_path / "run", "--set", "time.end=1")
    assert process.returncode == 2
    assert "rves: a restart cannot continue an FE2 run" in process.stderr
    assert "Traceback" not in process.stderr


def test_cells_on_an_instance_placed_on_a_region_are_refused(capsys):
    case = str(CASES / "fe2_plate.toml")
    assert main(["check", case, "--set", "physics.mechanics.domain=solid"]) == 2
    err = capsys.readouterr().err
    assert (
        "physics.mechanics.domain: a pointwise law (rve 'composite') needs its instance on " in err
    )


def test_a_phase_with_a_poisson_ratio_of_zero_is_complete():
    # nu = 0 (cork, some foams) was dropped as if not given: 'give exactly one pair ... got
    # youngs_modulus'; with nu = 0, K = E/3 and G = E/2
    phase = PhaseSpec(youngs_modulus="3 GPa", poisson_ratio=0)
    assert phase.law() == pytest.approx((1e9, 1.5e9), rel=1e-15)
