"""The pseudo-2D (x, r) mesh of a layered cell: vertex columns exactly at the interfaces, the
graded positions asked for, regions and boundaries of the right size, the layer of every top
facet, lengths from a parameter set, clear errors, and the same mesh and physics on 2 ranks."""

from pathlib import Path

import numpy as np
import pytest
from dolfinx import fem
from mpi4py import MPI

from app import Simulation
from app.case import load_case, validate
from app.errors import CaseError
from app.mesh_spec import MeshSpec
from app.meshing import build_mesh, facet_regions
from tests.conftest import assert_same_quantities, runs_on_ranks

LAYERS = [
    {"name": "negative", "thickness": "85.2 um", "cells": 6},
    {"name": "separator", "thickness": "12 um", "cells": 4},
    {"name": "positive", "thickness": 75.6e-6, "cells": 5},
]
THICKNESS = {"negative": 85.2e-6, "separator": 12e-6, "positive": 75.6e-6}


def mesh(comm=MPI.COMM_WORLD, **settings):
    spec = MeshSpec.model_validate({"type": "pseudo2d", "layers": LAYERS} | settings)
    return build_mesh(spec, comm, Path.cwd())


def total(data, form) -> float:
    return data.mesh.comm.allreduce(fem.assemble_scalar(fem.form(form)), op=MPI.SUM)


def test_vertex_columns_sit_exactly_on_the_interfaces_and_follow_the_gradings():
    data = mesh(radial_cells=8, radial_grading=1.5, interface_grading=2.0)
    x, r = data.mesh.geometry.x[:, 0], data.mesh.geometry.x[:, 1]
    columns = np.unique(x)
    assert len(columns) == 6 + 4 + 5 + 1
    for interface in (85.2e-6, 85.2e-6 + 12e-6):  # bitwise, as a sum of the thicknesses
        assert interface in columns
    assert np.array_equal(np.unique(r), 1 - (1 - np.arange(9) / 8) ** 1.5)
    widths = np.diff(columns)
    negative, separator, positive = widths[:6], widths[6:10], widths[10:]
    # cells shrink toward each interface with another layer, and only there
    assert np.all(np.diff(negative) < 0) and np.all(np.diff(positive) > 0)
    assert separator[0] == pytest.approx(separator[-1], 1e-12) and separator[1] > separator[0]
    assert negative[-1] == pytest.approx(85.2e-6 * (1 / 6) ** 2, 1e-12)  # 1 - (1 - xi)^2
    assert separator[0] == pytest.approx(12e-6 * 0.5 * (2 / 4) ** 2, 1e-12)


def test_regions_and_boundaries_have_their_sizes():
    data = mesh(radial_cells=3, radial_grading=2.0)
    assert data.mesh.topology.cell_name() == "quadrilateral"
    assert list(data.regions) == ["negative", "separator", "positive"]
    assert data.region_cells == {"negative": 18, "separator": 12, "positive": 15}
    assert set(data.boundaries) == {"left", "right", "bottom", "top"}
    one = fem.Constant(data.mesh, 1.0)
    import ufl

    dx = ufl.Measure("dx", domain=data.mesh, subdomain_data=data.cell_tags)
    ds = ufl.Measure("ds", domain=data.mesh, subdomain_data=data.facet_tags)
    for name, tag in data.regions.items():
        assert total(data, one * dx(tag)) == pytest.approx(THICKNESS[name], 1e-12)
    length = sum(THICKNESS.values())
    sizes = {name: total(data, one * ds(tag)) for name, tag in data.boundaries.items()}
    assert sizes == pytest.approx({"left": 1, "right": 1, "bottom": length, "top": length}, 1e-12)


def test_every_top_facet_belongs_to_the_layer_beside_it():
    data = mesh(radial_cells=4)
    facets, tags = facet_regions(data, "top")
    msh = data.mesh
    owned = facets < msh.topology.index_map(1).size_local
    from dolfinx import mesh as dmesh

    midpoints = dmesh.compute_midpoints(msh, 1, facets)[:, 0]
    edges = np.cumsum(list(THICKNESS.values()))
    for name, tag in data.regions.items():
        mine = tags == tag
        count = msh.comm.allreduce(int(np.sum(mine & owned)), op=MPI.SUM)
        assert count == {"negative": 6, "separator": 4, "positive": 5}[name]
        low, high = ([0.0, *edges][tag - 1], edges[tag - 1])
        assert np.all((midpoints[mine] > low) & (midpoints[mine] < high))


def test_thicknesses_from_the_parameter_set():
    case = {
        "parameters": {"set": "Chen2020", "L_s": "24 um"},
        "mesh": {
            "type": "pseudo2d",
            "layers": [
                {"name": "negative", "thickness": "L_n", "cells": 2},
                {"name": "separator", "thickness": "L_s", "cells": 2},
                {"name": "positive", "thickness": "L - L_n - L_s", "cells": 2},
            ],
        },
        "physics": {"heat": {}},
    }
    loaded = load_case(case)
    data = build_mesh(loaded.case.mesh, MPI.COMM_WORLD, Path.cwd())
    x = data.mesh.geometry.x[:, 0]
    assert x.max() == pytest.approx(85.2e-6 + 24e-6 + 75.6e-6, 1e-14)
    assert 85.2e-6 + 24e-6 in x


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"layers": None}, "mesh.layers: a pseudo2d mesh needs its layers"),
        ({"layers": []}, "mesh.layers: a pseudo2d mesh needs its layers"),
        (
            {"layers": [LAYERS[0], LAYERS[0]]},
            "mesh.layers.1.name: layer name 'negative' must be a new identifier",
        ),
        ({"layers": [{**LAYERS[0], "name": "top"}]}, "mesh.layers.0.name: layer name 'top'"),
        ({"layers": [{**LAYERS[0], "cells": 0}]}, "mesh.layers.0.cells: a layer needs at least"),
        (
            {"layers": [{**LAYERS[0], "thickness": -1e-6}]},
            "mesh.layers.0.thickness: must be positive, got -1e-06 m",
        ),
        (
            {"layers": [{**LAYERS[0], "thickness": "5 K"}]},
            "mesh.layers.0.thickness: '5 K' has units of K but m was expected",
        ),
        (
            {"layers": [{**LAYERS[0], "thickness": "L_n"}]},
            "mesh.layers.0.thickness: expected a number in m; expressions are not allowed here "
            "(except of a parameter set's constants)",
        ),
        ({"radial_cells": 0}, "mesh.radial_cells: at least 1 cell, got 0"),
        ({"radial_grading": 0.5}, "mesh.radial_grading: a grading exponent is in [1, 10]"),
        ({"interface_grading": 11}, "mesh.interface_grading: a grading exponent is in [1, 10]"),
        ({"cells": [4, 4]}, "mesh.cells: 'cells' is not read for a pseudo2d mesh"),
        ({"cell": "triangle"}, "mesh.cell: a pseudo2d mesh has straight quadrilateral cells"),
        ({"type": "rectangle"}, "mesh.layers: 'layers' is only read for type = \"pseudo2d\""),
        (
            {"type": "rectangle", "layers": None, "radial_cells": 4},
            "mesh.radial_cells: 'radial_cells' is only read",
        ),
    ],
)
def test_bad_settings(settings, expected):
    with pytest.raises(CaseError) as caught:
        validate(MeshSpec, {"type": "pseudo2d", "layers": LAYERS} | settings, "mesh")
    assert str(caught.value).startswith(expected)


PARTICLES = """
title = "Spherical particles filled through their surfaces"

[mesh]
type = "pseudo2d"
layers = [{ name = "negative", thickness = "85.2 um", cells = 5 },
          { name = "separator", thickness = "12 um", cells = 3 },
          { name = "positive", thickness = "75.6 um", cells = 4 }]
radial_cells = 6
radial_grading = 1.5
interface_grading = 1.5

[physics.particles]
type = "mass_transport"
coordinates = "spherical"
radial_axis = 1
species.c.diffusivity = 0.2
species.c.initial = "100*x/(85.2e-6 + 12e-6 + 75.6e-6)"
species.c.boundaries.top = { type = "flux", value = "0.5*(1 + x/85.2e-6)" }

[time]
scheme = "bdf2"
dt = 0.05
end = 0.5
"""


def test_spherical_particles_conserve_what_enters_through_the_surface(tmp_path):
    (tmp_path / "particles.toml").write_text(PARTICLES)
    result = Simulation.from_case(tmp_path / "particles.toml").run()
    q = result.quantities
    length = 85.2e-6 + 12e-6 + 75.6e-6
    # 4 pi r^2 at r = 1: what enters per unit time is 4 pi int 0.5 (1 + x/L_n) dx
    inflow = 4 * np.pi * 0.5 * (length + length**2 / (2 * 85.2e-6))
    amount = q["particles_amount_c_mol_m"]
    assert amount[-1] - amount[0] == pytest.approx(inflow * 0.5, 1e-10)
    # initially: 4 pi / 3 per unit x of 100 x/L
    assert amount[0] == pytest.approx(4 * np.pi / 3 * 100 * length / 2, 1e-12)


@pytest.mark.mpi
def test_two_ranks_build_the_same_mesh_and_solution(tmp_path):
    (tmp_path / "particles.toml").write_text(PARTICLES)
    serial, parallel = runs_on_ranks(tmp_path / "particles.toml", tmp_path)
    assert_same_quantities(serial, parallel, floor=1e-10)


LAYER_COUNTS = """\
import json
import sys
sys.path.insert(0, {root!r})
import app
import numpy as np
from mpi4py import MPI
from tests.test_meshing_pseudo2d import mesh
from app.meshing import facet_regions

data = mesh(radial_cells=4, radial_grading=1.5, interface_grading=2.0)
facets, tags = facet_regions(data, "top")
owned = facets < data.mesh.topology.index_map(1).size_local
counts = {{n: MPI.COMM_WORLD.allreduce(int(np.sum(owned & (tags == t))), op=MPI.SUM)
          for n, t in data.regions.items()}}
local = data.mesh.topology.index_map(2).size_local
everywhere = MPI.COMM_WORLD.allgather(local)
if MPI.COMM_WORLD.rank == 0:
    print(json.dumps({{"counts": counts, "cells": everywhere, "summary": data.summary()}}))
"""


@pytest.mark.mpi
def test_two_ranks_give_every_top_facet_its_layer(tmp_path):
    import json

    from tests.conftest import ROOT, mpi_python

    script = tmp_path / "layers.py"
    script.write_text(LAYER_COUNTS.format(root=str(ROOT)))
    run = mpi_python(script, ranks=2, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert all(n > 0 for n in result["cells"])  # both ranks own part of the mesh
    assert result["counts"] == {"negative": 6, "separator": 4, "positive": 5}
    serial = mesh(comm=MPI.COMM_SELF, radial_cells=4, radial_grading=1.5, interface_grading=2.0)
    assert result["summary"] == serial.summary()
