"""Reactions integrated over the cells that hold their dofs only (app/reaction_support.py).

A residual tested with the indicator of a boundary's dofs gets nothing from the cells away from
that boundary; the restricted form must give the same value (the same cell contributions) from
a boundary layer of cells, with every integral keeping its own subdomain (a tagged region, a
tagged face, all exterior facets), on one rank and on two.
"""

import json

import numpy as np
import ufl
from dolfinx import fem, mesh
from dolfinx.fem import IntegralType
from mpi4py import MPI

from app.reaction_support import Support
from app.simulation import Simulation
from tests.conftest import ROOT, mpi_python

CELLS = 12  # per direction of the unit cube: 6 * 12^3 = 10,368 tetrahedra


def _problem():
    """A heat residual with a source, a region term, a convective face and a flux on every
    exterior facet, and the functions it reads."""
    comm = MPI.COMM_WORLD
    msh = mesh.create_unit_cube(comm, CELLS, CELLS, CELLS)
    tdim = msh.topology.dim
    owned = np.arange(msh.topology.index_map(tdim).size_local, dtype=np.int32)
    lower = owned[mesh.compute_midpoints(msh, tdim, owned)[:, 1] < 0.5]
    region = mesh.meshtags(msh, tdim, lower, np.full(lower.size, 1, dtype=np.int32))
    msh.topology.create_connectivity(tdim - 1, tdim)
    right = mesh.locate_entities_boundary(msh, tdim - 1, lambda x: np.isclose(x[0], 1.0))
    bottom = mesh.locate_entities_boundary(msh, tdim - 1, lambda x: np.isclose(x[2], 0.0))
    facets = np.concatenate([right, bottom])
    order = np.argsort(facets)
    ids = np.concatenate([np.full(right.size, 2), np.full(bottom.size, 3)]).astype(np.int32)
    faces = mesh.meshtags(msh, tdim - 1, facets[order], ids[order])
    space = fem.functionspace(msh, ("Lagrange", 1))
    temperature = fem.Function(space)
    temperature.interpolate(lambda x: 300 + x[0] ** 2 + np.sin(3 * x[1]) * x[2])
    v = ufl.TestFunction(space)
    x = ufl.SpatialCoordinate(msh)
    dx = ufl.Measure("dx", domain=msh, subdomain_data=region)
    ds = ufl.Measure("ds", domain=msh, subdomain_data=faces)
    residual = (
        2.0 * ufl.inner(ufl.grad(temperature), ufl.grad(v)) * dx
        - (1 + x[0]) * v * dx
        + 5 * temperature * v * dx(1)
        + 50 * (temperature - 290) * v * ds(2)
        + 3 * temperature * v * ds
        + 7 * v * ds(3)
    )
    return msh, space, residual


def _indicator(space, where) -> fem.Function:
    dofs = fem.locate_dofs_geometrical(space, where)
    indicator = fem.Function(space)
    indicator.x.array[dofs[dofs < space.dofmap.index_map.size_local]] = 1.0
    indicator.x.scatter_forward()
    return indicator


def _integrated_cells(form: fem.Form, comm) -> int:
    local = sum(
        form._cpp_object.domains(IntegralType.cell, i).size
        for i in range(form._cpp_object.num_integrals(IntegralType.cell, 0))
    )
    return comm.allreduce(local, op=MPI.SUM)


def compare() -> dict[str, dict[str, float]]:
    """Per face: the reaction integrated everywhere and over its support, and the cells each
    form integrates (summed over ranks)."""
    msh, space, residual = _problem()
    comm = msh.comm
    faces = {
        "left": lambda x: np.isclose(x[0], 0.0),
        "bottom": lambda x: np.isclose(x[2], 0.0),
        "right": lambda x: np.isclose(x[0], 1.0),
    }
    results = {}
    for name, where in faces.items():
        support = Support(_indicator(space, where))
        tested = ufl.replace(residual, {residual.arguments()[0]: support.indicator})
        whole, restricted = fem.form(tested), fem.form(support.restrict(tested))
        results[name] = {
            "whole": comm.allreduce(fem.assemble_scalar(whole), op=MPI.SUM),
            "restricted": comm.allreduce(fem.assemble_scalar(restricted), op=MPI.SUM),
            "whole_cells": _integrated_cells(whole, comm),
            "restricted_cells": _integrated_cells(restricted, comm),
        }
    return results


def _check(results: dict[str, dict[str, float]]) -> None:
    for name, row in results.items():
        assert abs(row["restricted"] - row["whole"]) <= 1e-13 * abs(row["whole"]), name
        # the cells with a vertex on one face of the cube: at most 1/4 of them at 12^3
        assert 0 < row["restricted_cells"] < row["whole_cells"] / 4, (name, row)


def test_a_reaction_over_its_support_is_the_reaction_everywhere():
    _check(compare())


def test_the_same_on_two_ranks(tmp_path):
    script = tmp_path / "support.py"
    script.write_text(
        f"import json, sys\nsys.path.insert(0, {str(ROOT)!r})\nimport app\nfrom mpi4py import MPI\n"
        "from tests.test_reaction_support import compare\n"
        "results = compare()\n"
        "if MPI.COMM_WORLD.rank == 0:\n    print(json.dumps(results))\n"
    )
    process = mpi_python(script)
    assert process.returncode == 0, process.stderr
    parallel = json.loads(process.stdout.strip().splitlines()[-1])
    _check(parallel)
    serial = compare()
    for name, row in serial.items():
        assert abs(parallel[name]["restricted"] - row["restricted"]) <= 1e-12 * abs(row["whole"])


def test_integrals_it_does_not_cover_leave_the_form_as_it_is():
    msh, space, residual = _problem()
    interior = residual + ufl.avg(ufl.TestFunction(space)) * ufl.dS(domain=msh)
    support = Support(_indicator(space, lambda x: np.isclose(x[0], 0.0)))
    tested = ufl.replace(interior, {interior.arguments()[0]: support.indicator})
    assert support.restrict(tested) is tested


def _heat_run(monkeypatch=None):
    """The heat benchmark at 8^3 with quantities at every step (the reactions are assembled
    whole twice, then split into stored pieces and the rest), with or without the
    restriction."""
    if monkeypatch is not None:
        monkeypatch.setattr(Support, "restrict", lambda self, form: form)
    case = ROOT / "benchmarks" / "heat_3d.toml"
    sim = Simulation.from_case(case, ["mesh.cells=[8,8,8]", "time.end=300", "output.interval=60"])
    return sim, sim.run().quantities


def test_the_heat_benchmark_reactions_unchanged_from_a_boundary_layer(monkeypatch):
    sim, restricted = _heat_run()
    cells = 6 * 8**3
    integrated = [
        _integrated_cells(compiled, MPI.COMM_WORLD)
        for scalar in sim._evaluator._reactions.values()
        for compiled in [
            scalar._whole,
            *(piece[0] for piece in scalar._pieces or []),
            *([scalar._rest[0]] if scalar._rest else []),
        ]
        if compiled is not None
    ]
    # the cells with a vertex on the left face: 1,152 of 3,072 (the whole mesh before)
    assert len(integrated) >= 3 and all(0 < count < cells / 2 for count in integrated), integrated
    _, whole = _heat_run(monkeypatch)
    for column in ("heat_flow_left_W", "heat_flow_right_W"):
        for a, b in zip(restricted[column], whole[column], strict=True):
            assert abs(a - b) <= 1e-12 * max(abs(b), 1.0), (column, a, b)
