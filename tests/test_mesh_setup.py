"""Mesh set-up that scales: uniform refinement in parallel with the names carried
(``mesh.refine``), and the cache of built meshes read back on any number of ranks
(``mesh.cache``, app/mesh_cache.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import dolfinx.mesh as dmesh
import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI

import app.meshing as meshing
from app.errors import CaseError
from app.mesh_spec import MeshSpec
from app.meshing import build_mesh
from tests.conftest import (
    CASES,
    ROOT,
    assert_same_quantities,
    mpi_python,
    read_quantities,
    runs_on_ranks,
    scalebridge,
)

# Steady conduction through the two layers of cases/two_layer_wall.toml: the temperature is
# linear in x within each layer, which P1 elements hold exactly on any mesh, so the heat flow
# through a 5 cm high section is 25 K / (L1/k1 + L2/k2) * H on every refinement (a heat flow
# is outward: negative where heat enters, at the warm left face).
WALL_FLOW = -25.0 / (0.05 / 0.04 + 0.10 / 0.8) * 0.05


def _wall(tmp_path: Path) -> Path:
    case = tmp_path / "wall.toml"
    shutil.copy(ROOT / "meshes" / "two_layer.geo", tmp_path / "two_layer.geo")
    text = (CASES / "two_layer_wall.toml").read_text()
    case.write_text(text.replace("../meshes/two_layer.geo", "two_layer.geo"))
    return case


def test_refinement_carries_regions_and_boundaries():
    """Each refinement splits a triangle in 4 and a facet in 2, inside the same region and
    boundary (the interior interface included)."""
    spec = {"type": "gmsh", "file": "meshes/two_layer.geo", "size": 0.01}
    coarse = build_mesh(MeshSpec(**spec), MPI.COMM_WORLD, ROOT)
    fine = build_mesh(MeshSpec(**spec, refine=2), MPI.COMM_WORLD, ROOT)
    assert fine.regions == coarse.regions and fine.boundaries == coarse.boundaries
    assert fine.region_cells == {n: 16 * c for n, c in coarse.region_cells.items()}
    assert fine.boundary_facets == {n: 4 * c for n, c in coarse.boundary_facets.items()}
    assert fine.interior_boundaries == coarse.interior_boundaries == {"interface"}


def test_refined_builtin_box_names_its_sides():
    coarse = build_mesh(MeshSpec(type="box", cells=[2, 3, 2]), MPI.COMM_WORLD, ROOT)
    fine = build_mesh(MeshSpec(type="box", cells=[2, 3, 2], refine=1), MPI.COMM_WORLD, ROOT)
    assert fine.region_cells["domain"] == 8 * coarse.region_cells["domain"]
    assert fine.boundary_facets == {n: 4 * c for n, c in coarse.boundary_facets.items()}


def test_refined_wall_conducts_the_closed_form_on_1_and_2_ranks(tmp_path):
    serial, parallel = runs_on_ranks(_wall(tmp_path), tmp_path, "--set", "mesh.refine=1")
    assert_same_quantities(serial, parallel, rtol=1e-8)
    (flow,) = [values for name, values in serial.items() if name.startswith("heat_flow_left")]
    assert flow[-1] == pytest.approx(WALL_FLOW, rel=1e-8)


@pytest.mark.mpi
def test_a_grid_with_fewer_cells_than_ranks_runs_on_2_ranks_as_on_1(tmp_path):
    # a one-cell batch reactor: the grid blocks cannot split it (a raw traceback and a hang)
    serial, parallel = runs_on_ranks(CASES / "calcite_batch.toml", tmp_path, timeout=120)
    assert_same_quantities(serial, parallel, rtol=1e-10)


def test_refinement_refuses_quadrilaterals():
    with pytest.raises(CaseError) as error:
        MeshSpec(type="rectangle", cell="quadrilateral", refine=1)
    assert str(error.value) == (
        "mesh.refine: refinement splits intervals, triangles and tetrahedra, not quadrilateral "
        'cells. Fix: use cell = "triangle" or "tetrahedron", or give more cells instead'
    )


def _run(case: Path, out: Path, ranks: int, *settings: str) -> tuple[dict, str]:
    process = scalebridge("run", case, "-o", out, *settings, ranks=ranks)
    assert process.returncode == 0, process.stderr
    return read_quantities(out), process.stdout + process.stderr


def test_cached_mesh_is_read_back_on_any_number_of_ranks(tmp_path):
    """A first run writes the mesh; later runs on 1 and 2 ranks read it and give the results
    of a run that builds it (the same numbers on the ranks count it was written with)."""
    case = _wall(tmp_path)
    cache = ("--set", 'mesh.cache="meshes"', "--set", "mesh.size=0.004")
    built, log = _run(case, tmp_path / "built", 1, *cache)
    assert "mesh read from the cache" not in log
    assert len(list((tmp_path / "meshes").iterdir())) == 1
    cached, log = _run(case, tmp_path / "cached", 1, *cache)
    assert "mesh read from the cache" in log
    assert "from the mesh cache" in (tmp_path / "cached" / "run.log").read_text()
    assert "from the mesh cache" not in (tmp_path / "built" / "run.log").read_text()
    assert_same_quantities(built, cached, rtol=1e-14)
    uncached, _ = _run(case, tmp_path / "np2", 2, "--set", "mesh.size=0.004")
    for attempt in ("xdmf", "partition"):  # first read from the file, then the 2-rank copy
        on_two, log = _run(case, tmp_path / f"np2_{attempt}", 2, *cache)
        assert "mesh read from the cache" in log
        assert_same_quantities(uncached, on_two, rtol=1e-8)
    entry = next((tmp_path / "meshes").iterdir())
    assert {p.name for p in entry.iterdir()} >= {"mesh.xdmf", "names.json", "ranks_1", "ranks_2"}


def test_cache_key_follows_the_mesh_section_and_the_file(tmp_path):
    case = _wall(tmp_path)
    cache = ("--set", 'mesh.cache="meshes"')
    _run(case, tmp_path / "a", 1, *cache)
    _run(case, tmp_path / "b", 1, *cache, "--set", "mesh.size=0.004")
    geo = tmp_path / "two_layer.geo"
    geo.write_text(geo.read_text().replace("L2 = 0.10;", "L2 = 0.12;"))
    changed, log = _run(case, tmp_path / "c", 1, *cache)
    assert "mesh read from the cache" not in log
    assert len(list((tmp_path / "meshes").iterdir())) == 3
    (flow,) = [values for name, values in changed.items() if name.startswith("heat_flow_left")]
    assert flow[-1] == pytest.approx(-25.0 / (0.05 / 0.04 + 0.12 / 0.8) * 0.05, rel=1e-8)


def test_cache_folder_must_be_named(tmp_path):
    process = scalebridge("run", _wall(tmp_path), "--set", "mesh.cache=true")
    assert process.returncode == 2
    assert "mesh.cache" in process.stderr and "Traceback" not in process.stderr


def test_unwritable_cache_costs_only_the_cache(tmp_path):
    case = _wall(tmp_path)
    (tmp_path / "blocked").write_text("a file where the cache folder would be")
    quantities, log = _run(case, tmp_path / "out", 1, "--set", 'mesh.cache="blocked"')
    assert "mesh cache not written" in log
    (flow,) = [values for name, values in quantities.items() if name.startswith("heat_flow_left")]
    assert flow[-1] == pytest.approx(WALL_FLOW, rel=1e-8)


BLOCKS_SCRIPT = """
import app
from pathlib import Path
from mpi4py import MPI
from app.meshing import build_mesh
from app.mesh_spec import MeshSpec

for cell, cells in (("tetrahedron", [4, 6, 4]), ("hexahedron", [4, 6, 4])):
    data = build_mesh(MeshSpec(type="box", cell=cell, cells=cells), MPI.COMM_WORLD, Path("."))
    index_map = data.mesh.topology.index_map(3)
    # one writer: lines that two ranks print at once can interleave
    sizes = MPI.COMM_WORLD.gather((index_map.size_local, index_map.num_ghosts))
    if MPI.COMM_WORLD.rank == 0:
        for owned, ghosts in sizes:
            print(cell, owned, ghosts)
"""


def test_builtin_box_is_split_into_slabs_across_its_longest_axis(tmp_path):
    """On 2 ranks a 4 x 6 x 4 box is cut across y (the fewest facets cut): each rank owns half
    the cells and ghosts only the layer across the cut (4 x 4 squares, 2 triangles each)."""
    script = tmp_path / "blocks.py"
    script.write_text(BLOCKS_SCRIPT)
    process = mpi_python(script, ranks=2)
    assert process.returncode == 0, process.stderr
    lines = sorted(process.stdout.strip().split("\n"))
    assert lines == ["hexahedron 48 16"] * 2 + ["tetrahedron 288 32"] * 2


def test_refined_interval_is_the_finer_interval(tmp_path):
    """Halving an interval's cells twice gives the mesh of four times the cells: the same
    results to round-off, on 1 and on 2 ranks (its end points keep their names)."""
    rod = CASES / "heated_rod.toml"
    fine, _ = _run(rod, tmp_path / "fine", 1, "--set", "mesh.cells=[32]")
    for ranks in (1, 2):
        refined, _ = _run(rod, tmp_path / f"refined{ranks}", ranks, "--set", "mesh.refine=2")
        assert_same_quantities(fine, refined, rtol=1e-12)


def test_one_rank_box_is_built_without_partitioning(monkeypatch):
    """On one rank there is nothing to distribute: no partitioner runs (the grid blocks are for
    2 ranks and more, test above), and the box is DOLFINx's own ``create_box``, cell for cell."""
    partitions = []

    def spying_partitioner(*args):
        partition = grid_partitioner(*args)

        def spy(*call):
            partitions.append(call)
            return partition(*call)

        return spy

    grid_partitioner = meshing.grid_partitioner
    monkeypatch.setattr(meshing, "grid_partitioner", spying_partitioner)
    spec = MeshSpec(type="box", length=[1.0, 2.0, 1.0], cells=[3, 4, 2], cell="tetrahedron")
    built = build_mesh(spec, MPI.COMM_SELF, Path(".")).mesh
    assert partitions == []
    plain = dmesh.create_box(MPI.COMM_SELF, [[0, 0, 0], [1, 2, 1]], [3, 4, 2])
    cells = [msh.geometry.x[msh.geometry.dofmaps[0]] for msh in (built, plain)]
    np.testing.assert_array_equal(cells[0], cells[1])


def test_one_rank_gmsh_mesh_is_built_without_partitioning(tmp_path, monkeypatch):
    """A gmsh mesh on one rank is not run through a graph partitioner either; its layers and
    boundaries keep their exact measures."""
    made = []
    create = dmesh.create_cell_partitioner
    monkeypatch.setattr(dmesh, "create_cell_partitioner", lambda *a: made.append(a) or create(*a))
    shutil.copy(ROOT / "meshes" / "two_layer.geo", tmp_path)
    spec = MeshSpec(type="gmsh", file="two_layer.geo")
    data = build_mesh(spec, MPI.COMM_SELF, tmp_path)
    assert made == []
    dx = ufl.Measure("dx", domain=data.mesh, subdomain_data=data.cell_tags)
    ds = ufl.Measure("ds", domain=data.mesh, subdomain_data=data.facet_tags)
    areas = [
        fem.assemble_scalar(fem.form(1.0 * dx(data.regions[n]))) for n in ("insulation", "brick")
    ]
    assert areas == pytest.approx([0.05 * 0.05, 0.10 * 0.05], rel=1e-12)
    length = fem.assemble_scalar(fem.form(1.0 * ds(data.boundaries["bottom"])))
    assert length == pytest.approx(0.15, rel=1e-12)


@pytest.mark.mpi
def test_a_damaged_cache_entry_is_built_again_on_every_rank(tmp_path):
    case = _wall(tmp_path)
    cache = ("--set", 'mesh.cache="meshes"')
    _run(case, tmp_path / "built", 2, *cache)
    (entry,) = (tmp_path / "meshes").iterdir()
    rank_file = entry / "ranks_2" / "rank_1.npz"
    rank_file.write_bytes(rank_file.read_bytes()[:200])  # rank 1 raised alone (BadZipFile)
    quantities, log = _run(case, tmp_path / "cut", 2, *cache)
    assert f"mesh cache: the entry {entry} is damaged (BadZipFile: " in log
    (flow,) = [values for name, values in quantities.items() if name.startswith("heat_flow_left")]
    assert flow[-1] == pytest.approx(WALL_FLOW, rel=1e-8)
    _, log = _run(case, tmp_path / "again", 2, *cache)
    assert "mesh read from the cache" in log  # the entry was written anew

    (entry / "names.json").write_text("[]")  # an edit: an internal error (exit 70) on 1 rank
    _, log = _run(case, tmp_path / "edited", 1, *cache)
    assert (
        f"mesh cache: the entry {entry} is damaged (ValueError: '{entry}/names.json' is not " in log
    )
