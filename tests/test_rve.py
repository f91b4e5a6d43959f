"""Periodic homogenisation of unit cells against closed forms (app.multiscale.rve).

Cells are meshed by the gmsh scripts of meshes/ (periodic faces), solved under periodic,
kinematic (affine) and minimal (uniform flux or traction) conditions.
"""

import json
import textwrap

import numpy as np
import pytest
from mpi4py import MPI

from app.errors import CaseError
from app.multiscale import laws
from app.multiscale.materials import Conduction, Elasticity, isotropic_moduli
from app.multiscale.microstructure import Microstructure
from app.multiscale.rve import CellProblem
from tests.conftest import ROOT, mpi_python

SQUARE = {"matrix": 1.0, "inclusion": 10.0}


def cell(script: str, fraction: float, size: float, degree: int, comm=MPI.COMM_WORLD, **fixed):
    micro = Microstructure(f"meshes/{script}", "test", ROOT, fixed, ["volume_fraction"])
    return micro.mesh(np.array([fraction]), size, degree, comm)


def moduli(youngs: float, poisson: float) -> tuple[float, float]:
    return youngs / (3 * (1 - 2 * poisson)), youngs / (2 * (1 + poisson))


def rayleigh_perrins(fraction: float, contrast: float) -> float:
    """Square array of cylinders (Perrins, McKenzie & McPhedran 1979, their eq. for the square
    array), conductivity over the matrix's."""
    t = (1 + contrast) / (1 - contrast)
    f4, f8 = fraction**4, fraction**8
    denominator = t + fraction - 0.305827 * f4 * t / (t * t - 1.402958 * f8) - 0.013362 * f8
    return 1 - 2 * fraction / denominator


def assert_symmetric_positive(tensor: np.ndarray) -> None:
    scale = np.abs(tensor).max()
    assert np.abs(tensor - tensor.T).max() <= 1e-12 * scale
    assert np.linalg.eigvalsh(tensor).min() > 0


def assert_ordered(lower: np.ndarray, upper: np.ndarray) -> None:
    """upper - lower is positive semi-definite (to round-off)."""
    assert np.linalg.eigvalsh(upper - lower).min() >= -1e-12 * np.abs(upper).max()


def test_square_array_matches_rayleigh_perrins_and_conditions_bracket_it():
    # h = 0.05 with P2 on curved (order 2) cells; h = 0.0125 gives 1.652036 (report)
    domain, tags, regions = cell("rve_inclusion.py", 0.3, 0.05, 2, shape="circle")
    problem = CellProblem(domain, tags, regions, Conduction(SQUARE), 2)
    tensors = {
        condition: problem.solve(condition) for condition in ("minimal", "periodic", "kinematic")
    }
    reference = rayleigh_perrins(0.3, 10.0)
    assert reference == pytest.approx(1.65203, abs=1e-5)
    periodic = tensors["periodic"]
    assert np.diag(periodic) == pytest.approx([reference] * 2, abs=1e-4)
    assert abs(periodic[0, 1]) < 1e-5  # square symmetry: isotropic
    for tensor in tensors.values():
        assert_symmetric_positive(tensor)
    assert_ordered(tensors["minimal"], periodic)
    assert_ordered(periodic, tensors["kinematic"])
    # the isotropic Hashin-Shtrikman bounds hold too, the lower one (Maxwell-Garnett) closely
    lower, upper = laws.hashin_shtrikman_conductivity(1.0, 10.0, 0.3, 2)
    assert lower < periodic[0, 0] < upper
    assert periodic[0, 0] - lower < 2e-3


@pytest.mark.parametrize("dim", [2, 3])
def test_laminate_is_reuss_across_and_voigt_along_the_layers(dim):
    fraction = 0.3
    domain, tags, regions = cell("rve_laminate.py", fraction, 0.3, 1, dim=dim)
    tensor = CellProblem(domain, tags, regions, Conduction(SQUARE), 1).solve("periodic")
    exact = np.diag(
        [laws.reuss(1.0, 10.0, fraction)] + [laws.voigt(1.0, 10.0, fraction)] * (dim - 1)
    )
    assert np.abs(tensor - exact).max() < 1e-10


def test_elastic_laminate_matches_the_exact_layered_stiffness():
    fraction = 0.4
    domain, tags, regions = cell("rve_laminate.py", fraction, 0.2, 1, dim=2)
    phases = {"matrix": moduli(3.0, 0.35), "inclusion": moduli(70.0, 0.22)}
    problem = CellProblem(domain, tags, regions, Elasticity(phases), 1)
    stiffness = problem.solve("periodic")
    weights = {"matrix": 1 - fraction, "inclusion": fraction}

    def mean(function):
        return sum(w * function(*phases[name]) for name, w in weights.items())

    # plane strain: a = lambda + 2 mu across the layers (x), b = lambda
    def a(K, G):
        return K + 4 * G / 3

    def b(K, G):
        return K - 2 * G / 3

    c11 = 1 / mean(lambda K, G: 1 / a(K, G))
    c12 = mean(lambda K, G: b(K, G) / a(K, G)) * c11
    c22 = mean(lambda K, G: a(K, G) - b(K, G) ** 2 / a(K, G)) + c12**2 / c11
    shear = 1 / mean(lambda K, G: 1 / G)
    exact = np.array([[c11, c12, 0], [c12, c22, 0], [0, 0, 2 * shear]])
    assert np.abs(stiffness - exact).max() < 1e-10 * np.abs(exact).max()
    # the faces cut the layers: affine or uniform boundary values only bracket it
    assert_ordered(problem.solve("minimal"), stiffness)
    assert_ordered(stiffness, problem.solve("kinematic"))


def test_elastic_cell_tensors_are_symmetric_positive_and_bracketed():
    domain, tags, regions = cell("rve_inclusion.py", 0.3, 0.05, 2, shape="circle")
    phases = {"matrix": moduli(3e9, 0.35), "inclusion": moduli(70e9, 0.22)}
    problem = CellProblem(domain, tags, regions, Elasticity(phases), 2)
    tensors = {c: problem.solve(c) for c in ("minimal", "periodic", "kinematic")}
    for tensor in tensors.values():
        assert tensor.shape == (3, 3)
        assert_symmetric_positive(tensor)
    assert_ordered(tensors["minimal"], tensors["periodic"])
    assert_ordered(tensors["periodic"], tensors["kinematic"])
    # the in-plane bulk modulus of aligned fibres: Hashin-Shtrikman lower (= Mori-Tanaka) is
    # close below the square array's (the notes' 3.624 GPa vs 3.622 GPa, plane stress there)
    bulk, shear = isotropic_moduli(tensors["periodic"])
    mt_bulk, mt_shear = laws.mori_tanaka(phases["matrix"], phases["inclusion"], 0.3, 2)
    planar, mt_planar = bulk + shear / 3, mt_bulk + mt_shear / 3
    assert 0 < planar - mt_planar < 2e-3 * mt_planar


def test_dilute_sphere_matches_maxwell_garnett_and_mori_tanaka():
    fraction = 0.05
    domain, tags, regions = cell("rve_inclusion.py", fraction, 0.15, 2, shape="sphere")
    conductivity = CellProblem(domain, tags, regions, Conduction(SQUARE), 2).solve("periodic")
    assert_symmetric_positive(conductivity)
    maxwell = laws.halpin_tsai(1.0, 10.0, fraction, 2)  # Mori-Tanaka for spheres, 3D
    assert np.diag(conductivity) == pytest.approx([maxwell] * 3, rel=1e-2)
    phases = {"matrix": moduli(1.0, 0.3), "inclusion": moduli(20.0, 0.25)}
    stiffness = CellProblem(domain, tags, regions, Elasticity(phases), 2).solve("periodic")
    assert stiffness.shape == (6, 6)
    assert_symmetric_positive(stiffness)
    bulk, shear = isotropic_moduli(stiffness)
    mt_bulk, mt_shear = laws.mori_tanaka(phases["matrix"], phases["inclusion"], fraction, 3)
    assert bulk == pytest.approx(mt_bulk, rel=1e-2)
    assert shear == pytest.approx(mt_shear, rel=1e-2)


def test_pores_have_no_cells_and_lower_the_conductivity():
    domain, tags, regions = cell("rve_inclusion.py", 0.2, 0.05, 2, shape="circle", porous=True)
    assert set(regions) == {"matrix"}
    tensor = CellProblem(domain, tags, regions, Conduction({"matrix": 2.0}), 2).solve("periodic")
    # a dilute-limit check: Maxwell-Garnett for insulating cylinders, (1 - f)/(1 + f) k_m
    assert tensor[0, 0] == pytest.approx(2.0 * 0.8 / 1.2, rel=2e-3)
    assert tensor[0, 0] < 2.0 * 0.8 / 1.2 + 1e-12  # a square array of holes conducts less


def test_a_mesh_without_periodic_faces_is_refused(tmp_path):
    script = tmp_path / "plain.py"
    script.write_text(
        textwrap.dedent(
            """
            def build(model, volume_fraction):  # no setPeriodic; left and right differ
                cell = model.occ.addRectangle(0, 0, 0, 1, 1)
                model.occ.synchronize()
                for _, curve in model.getBoundary([(2, cell)], oriented=False):
                    x, _, _ = model.occ.getCenterOfMass(1, curve)
                    if abs(x) < 1e-9 or abs(x - 1) < 1e-9:
                        model.mesh.setTransfiniteCurve(curve, 7 if x < 0.5 else 9)
                model.addPhysicalGroup(2, [cell], name="matrix")
            """
        )
    )
    micro = Microstructure(str(script), "surrogates.s", ROOT, {}, ["volume_fraction"])
    domain, tags, regions = micro.mesh(np.array([0.1]), 0.1, 1, MPI.COMM_WORLD)
    problem = CellProblem(domain, tags, regions, Conduction(SQUARE), 1)
    with pytest.raises(ValueError, match=r"not periodic: the node at .* has no partner"):
        problem.solve("periodic")


def test_a_script_that_raises_is_a_case_error_naming_the_state():
    micro = Microstructure(
        "meshes/rve_inclusion.py", "surrogates.s", ROOT, {"shape": "circle"}, ["volume_fraction"]
    )
    with pytest.raises(CaseError, match=r"surrogates.s.microstructure: .*0.9 does not fit"):
        micro.mesh(np.array([0.9]), 0.1, 1, MPI.COMM_WORLD)


PARALLEL = """
import json, sys
from pathlib import Path
import numpy as np
from mpi4py import MPI
import app
from app.multiscale.materials import Elasticity
from app.multiscale.microstructure import Microstructure
from app.multiscale.rve import CellProblem
micro = Microstructure("meshes/rve_inclusion.py", "t", Path(sys.argv[1]), {"shape": "ellipse",
    "aspect_ratio": 2.0, "angle": 30.0}, ["volume_fraction"])
domain, tags, regions = micro.mesh(np.array([0.25]), 0.08, 2, MPI.COMM_WORLD)
phases = {"matrix": (2.0, 1.0), "inclusion": (30.0, 12.0)}
problem = CellProblem(domain, tags, regions, Elasticity(phases), 2)
result = {c: problem.solve(c).tolist() for c in ("periodic", "kinematic", "minimal")}
if MPI.COMM_WORLD.rank == 0:
    print(json.dumps(result))
"""


@pytest.mark.mpi
def test_two_ranks_give_the_serial_tensors(tmp_path):
    script = tmp_path / "parallel_cell.py"
    script.write_text(PARALLEL)
    results = []
    for ranks in (1, 2):
        process = mpi_python(script, str(ROOT), ranks=ranks)
        assert process.returncode == 0, process.stderr
        results.append(json.loads(process.stdout.strip().splitlines()[-1]))
    for condition, serial in results[0].items():
        parallel = np.array(results[1][condition])
        assert np.abs(parallel - np.array(serial)).max() < 1e-10 * np.abs(serial).max()
