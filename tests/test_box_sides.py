"""A built-in box tags its sides without creating facets (app/box_sides.py): the dofs located
from its (cell, local facet) pairs and its ds integrals must be DOLFINx's own from the facets,
on 1 and 2 ranks, and each side's facet count that of the grid."""

import json

from mpi4py import MPI

from app.mesh_spec import MeshSpec
from app.meshing import build_mesh
from tests.conftest import ROOT, mpi_python
from tests.test_mesh_cache_facets import MESHES, _check, compare


def test_built_box_sides_are_dolfinx_own(tmp_path):
    _check(compare(tmp_path, built=True))


def test_built_box_sides_on_two_ranks(tmp_path):
    script = tmp_path / "sides.py"
    script.write_text(
        f"import json, sys\nfrom pathlib import Path\nsys.path.insert(0, {str(ROOT)!r})\n"
        "import app\nfrom mpi4py import MPI\n"
        "from tests.test_mesh_cache_facets import compare\n"
        f"results = compare(Path({str(tmp_path)!r}), built=True)\n"
        "if MPI.COMM_WORLD.rank == 0:\n    print(json.dumps(results))\n"
    )
    process = mpi_python(script)
    assert process.returncode == 0, process.stderr
    _check(json.loads(process.stdout.strip().splitlines()[-1]))


def test_side_counts_are_the_grid_faces(tmp_path):
    """A box of nx x ny x nz cubes of 6 tetrahedra has 2 ny nz triangles on x = 0, and so on;
    a rectangle of nx x ny squares of 2 triangles has ny edges on x = 0."""
    box = build_mesh(MeshSpec.model_validate(MESHES["box"]), MPI.COMM_WORLD, tmp_path)
    nx, ny, nz = MESHES["box"]["cells"]
    faces = {"left": ny * nz, "bottom": nx * nz, "back": nx * ny}
    opposite = {"left": "right", "bottom": "top", "back": "front"}
    for side, count in faces.items():
        assert box.boundary_facets[side] == box.boundary_facets[opposite[side]] == 2 * count
    rectangle = build_mesh(MeshSpec.model_validate(MESHES["rectangle"]), MPI.COMM_WORLD, tmp_path)
    nx, ny = MESHES["rectangle"]["cells"]
    assert rectangle.boundary_facets == {"left": ny, "right": ny, "bottom": nx, "top": nx}
