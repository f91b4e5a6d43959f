"""Nonlinear cells per macro point on sub-communicators (app.multiscale.ensemble): the same
stresses and tangents on 1 rank, on 2 ranks in two groups and on one group of 2 ranks, over a
loading-unloading path with a rejected step; a failed cell reaches every rank."""

import json

import numpy as np
import pytest

from tests.conftest import ROOT, mpi_python

ENSEMBLE = """
import json, sys, time
from pathlib import Path
import numpy as np
from mpi4py import MPI
import app
from app.errors import SolverError
from app.multiscale.batch import RVEPool
from app.multiscale.ensemble import CellEnsemble
from app.multiscale.microstructure import Microstructure
from app.multiscale.plastic_cell import J2Phase, PlasticCell

ranks_per_rve, mode = int(sys.argv[2]), sys.argv[3]
micro = Microstructure("meshes/rve_inclusion.py", "t", Path(sys.argv[1]), {"shape": "circle"},
    ["volume_fraction"])
matrix = J2Phase(bulk=175e9, shear=80e9, yield_stress=250e6, isotropic_modulus=2e9,
    kinematic_modulus=1e9)
POINTS = 5

def build(point, comm):
    domain, tags, regions = micro.mesh(np.array([0.1 + 0.05 * point]), 0.12, 1, comm)
    # in "fail" mode point 1 may take one Newton correction only: a plastic step fails
    iterations = 1 if mode == "fail" and point == 1 else 25
    return PlasticCell(domain, tags, regions, {"matrix": matrix, "inclusion": (350e9, 160e9)},
        max_iterations=iterations)

pool = RVEPool(MPI.COMM_WORLD, ranks_per_rve)
ensemble = CellEnsemble(pool, POINTS, build)
# each point its own direction and amplitude: different histories, some elastic
directions = np.array([[1, 0, 0], [0.5, -0.5, 0], [0, 0, 1], [1, 1, 0.5], [-1, 0.2, 0.3]])
amplitudes = np.array([1.0, 2.0, 0.2, 1.5, 3.0])[:, None] * 1e-3
steps = [1, 1, -1, -1, -1, -1, 1]  # load, unload, load in reverse, unload
if mode == "fail":
    try:
        ensemble.solve(directions * amplitudes)
        outcome = "solved"
    except SolverError as exc:
        outcome = str(exc)
    ensemble.rollback()
    elastic = ensemble.solve(directions * 1e-5)  # the failed point is back where it was
    answers = MPI.COMM_WORLD.gather({"rank": MPI.COMM_WORLD.rank, "outcome": outcome,
        "after": elastic.stress.tolist()})
    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps(answers))
    sys.exit(0)
history, seconds = [], 0.0
for number, sign in enumerate(steps):
    if number == 2:  # a rejected macro step: twice the increment, discarded
        ensemble.solve(2 * sign * directions * amplitudes)
        ensemble.rollback()
    started = time.perf_counter()
    response = ensemble.solve(sign * directions * amplitudes)
    seconds += time.perf_counter() - started
    ensemble.commit()
    history.append({"stress": response.stress.tolist(), "tangent": response.tangent.tolist(),
        "iterations": response.iterations.tolist()})
plastic = ensemble.averages("equivalent_plastic_strain").tolist()
strains = ensemble.strains().tolist()
if MPI.COMM_WORLD.rank == 0:
    print(json.dumps({"history": history, "plastic": plastic, "seconds": seconds,
        "strains": strains}))
"""


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("ensemble") / "ensemble.py"
    path.write_text(ENSEMBLE)
    return path


def run(script, ranks: int, ranks_per_rve: int, mode: str = "path") -> dict | list:
    process = mpi_python(script, str(ROOT), str(ranks_per_rve), mode, ranks=ranks, timeout=300)
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout.strip().splitlines()[-1])


@pytest.mark.mpi
def test_two_groups_and_one_group_of_two_ranks_give_the_serial_answers(script):
    serial = run(script, 1, 1)
    groups = run(script, 2, 1)  # two groups of one rank
    shared = run(script, 2, 2)  # one group of two ranks: every cell distributed
    plastic = np.array(serial["plastic"])
    assert (plastic > 0).sum() >= 3 and plastic.min() == 0  # histories differ, one elastic
    directions = np.array([[1, 0, 0], [0.5, -0.5, 0], [0, 0, 1], [1, 1, 0.5], [-1, 0.2, 0.3]])
    amplitudes = np.array([1.0, 2.0, 0.2, 1.5, 3.0])[:, None] * 1e-3
    assert np.array(serial["strains"]) == pytest.approx(-directions * amplitudes, abs=1e-15)
    for parallel, tolerance in ((groups, 1e-12), (shared, 1e-9)):
        for mine, theirs in zip(serial["history"], parallel["history"], strict=True):
            for key in ("stress", "tangent"):
                reference = np.array(mine[key])
                difference = np.abs(np.array(theirs[key]) - reference).max()
                assert difference <= tolerance * np.abs(reference).max()
        if parallel is groups:  # each cell solved on one rank, as in serial
            assert [h["iterations"] for h in serial["history"]] == [
                h["iterations"] for h in groups["history"]
            ]
        assert np.abs(np.array(parallel["plastic"]) - plastic).max() <= tolerance * plastic.max()


@pytest.mark.mpi
def test_a_failed_cell_reaches_every_rank_and_the_ensemble_rolls_back(script):
    answers = run(script, 2, 1, "fail")
    assert sorted(answer["rank"] for answer in answers) == [0, 1]
    for answer in answers:  # point 1 is solved on rank 1 only
        assert answer["outcome"].startswith("an RVE solve failed: SolverError: macro point 1:")
        assert "did not converge in 1 iterations" in answer["outcome"]
    assert answers[0]["after"] == answers[1]["after"]
    assert np.isfinite(answers[0]["after"]).all()
