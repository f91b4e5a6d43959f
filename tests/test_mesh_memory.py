"""Meshes too large for the memory are refused before they are built, saying what they need.

The estimates are measured bytes per cell (app.mesh_memory); these tests check the arithmetic of
the verdict, that the estimates match what building a mesh really takes, that gmsh meshes are
judged from the geometry and the cell size before generation and from the count after it, and
that two ranks reach one verdict.
"""

import textwrap

import gmsh
import pytest

from app.cli import main
from app.errors import CaseError
from app.mesh_memory import (
    BYTES_PER_CELL,
    GMSH_CELLS_PER_SIZE,
    MemoryBudget,
    Node,
    simplex_cells,
)
from tests.conftest import CASES, ROOT, mpi_python, scalebridge


def test_cell_counts_of_builtin_meshes():
    assert simplex_cells([30000, 30000], "triangle") == 1_800_000_000
    assert simplex_cells([10, 20], "quadrilateral") == 200
    assert simplex_cells([2, 3, 4], "tetrahedron") == 144
    assert simplex_cells([7], "interval") == 7


def test_one_rank_needs_the_whole_mesh():
    budget = MemoryBudget((Node(available=230_000, ranks=1, root=True),), size=1)
    budget.check(1000, 230, "mesh.cells", "what")  # exactly fits
    with pytest.raises(CaseError, match=r"need about 230 kB .* it has 230 kB available") as info:
        budget.check(1001, 230, "mesh.cells", "what")
    assert info.value.path == "mesh.cells"


def test_rank_zero_holds_the_whole_mesh_and_its_node_the_other_shares():
    # 4 ranks on 2 nodes of 2: rank 0's node holds the whole mesh before distribution plus the
    # share of its second rank (1 + 1/4); the other node holds two shares (2/4).
    nodes = (Node(1250, 2, root=True), Node(499, 2, root=False))
    budget = MemoryBudget(nodes, size=4)
    with pytest.raises(CaseError, match=r"memory on another node \(2 ranks"):
        budget.check(1000, 1, "mesh.cells", "what")  # root: 1250 fits, other: 500 > 499
    roomy = MemoryBudget((Node(1249, 2, root=True), Node(10**6, 2, root=False)), size=4)
    with pytest.raises(CaseError, match=r"node of rank 0 \(2 ranks"):
        roomy.check(1000, 1, "mesh.cells", "what")
    MemoryBudget((Node(None, 2, root=True),), size=2).check(10**30, 1, "mesh.cells", "what")


MEASURE = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    import app
    from mpi4py import MPI
    from app.meshing import build_mesh
    from app.mesh_spec import MeshSpec
    kind, cell, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spec = MeshSpec(type=kind, cell=cell, cells=[n] * {"rectangle": 2, "box": 3}[kind])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    data = build_mesh(spec, MPI.COMM_WORLD, Path("."))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cells = data.mesh.topology.index_map(data.mesh.topology.dim).size_global
    print((after - before) * 1024 / cells)
    """
)


@pytest.mark.parametrize(
    ("kind", "cell", "n"), [("rectangle", "triangle", 400), ("box", "tetrahedron", 30)]
)
def test_bytes_per_cell_match_a_measurement(tmp_path, kind, cell, n):
    script = tmp_path / "measure.py"
    script.write_text(MEASURE)
    process = mpi_python(script, kind, cell, str(n), ranks=1)
    assert process.returncode == 0, process.stderr
    measured = float(process.stdout.split()[-1])
    # Peak resident memory of building 320k triangles / 162k tets: the slope measured on larger
    # meshes plus this size's share of fixed costs (measured 6-10 % above the estimate).
    assert 0.8 < measured / BYTES_PER_CELL[cell] < 1.3, measured


def test_gmsh_size_refused_before_generation_from_the_geometry(capsys):
    case = CASES / "two_layer_wall.toml"
    assert main(["check", str(case), "--set", "mesh.size=1e-6"]) == 2
    message = capsys.readouterr().err
    # OpenCASCADE gives the exact area, 0.15 m x 0.05 m; 2.3 triangles per h^2 of area.
    cells = GMSH_CELLS_PER_SIZE[2] * 0.0075 / 1e-6**2
    assert "mesh.size: cell size 1e-06 m on a geometry of about 0.0075 m^2" in message
    assert f"makes at least about {cells:.3g} cells" in message


def _run_check(path, capsys):
    code = main(["check", str(path)])
    return code, capsys.readouterr()


def test_cells_per_size_predicts_what_gmsh_makes(tmp_path, capsys):
    """The pre-generation estimate against the count of the generated mesh, 2D and 3D."""
    box = tmp_path / "box.geo"
    box.write_text(
        'SetFactory("OpenCASCADE");\nBox(1) = {0, 0, 0, 1, 0.5, 0.25};\n'
        'Physical Volume("solid", 1) = {1};\nPhysical Surface("walls", 2) = {1, 2, 3, 4, 5, 6};\n'
    )
    for file, size, measure, dim in (
        (ROOT / "meshes" / "two_layer.geo", 0.002, 0.0075, 2),
        (box, 0.04, 0.125, 3),
    ):
        case = tmp_path / "case.toml"
        case.write_text(
            f'[mesh]\ntype = "gmsh"\nfile = "{file}"\nsize = {size}\n'
            "[physics.heat]\nconductivity = 1\n"
        )
        code, captured = _run_check(case, capsys)
        assert code == 0, captured.err
        cells = int(captured.out.split("Mesh: ")[1].splitlines()[1].split()[0])
        predicted = GMSH_CELLS_PER_SIZE[dim] * measure / size**dim
        # Meshes a few cells thick have a few more cells than the estimate (1.11 here, 1.03
        # at half the size): the estimate is a floor, as a refusal should be.
        assert 1 <= cells / predicted < 1.15, (file.name, cells, predicted)


def test_builtin_kernel_geometry_is_judged_by_its_bounding_box(tmp_path, capsys):
    geo = tmp_path / "triangle.geo"  # a right triangle of legs 1 m: area 0.5, bounding box 1 m^2
    geo.write_text(
        "Point(1) = {0, 0, 0}; Point(2) = {1, 0, 0}; Point(3) = {0, 1, 0};\n"
        "Line(1) = {1, 2}; Line(2) = {2, 3}; Line(3) = {3, 1};\n"
        "Curve Loop(1) = {1, 2, 3}; Plane Surface(1) = {1};\n"
        'Physical Surface("plate", 1) = {1};\n'
    )
    case = tmp_path / "case.toml"
    case.write_text(
        f'[mesh]\ntype = "gmsh"\nfile = "{geo}"\nsize = 1e-7\n[physics.heat]\nconductivity = 1\n'
    )
    code, captured = _run_check(case, capsys)
    assert code == 2
    assert "on a geometry of about 1 m^2 makes at least about 2.3e+14 cells" in captured.err


def test_msh_file_refused_after_reading_before_dolfinx(tmp_path, capsys, monkeypatch):
    msh = tmp_path / "wall.msh"
    gmsh.initialize(readConfigFiles=False, interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.open(str(ROOT / "meshes" / "two_layer.geo"))
        gmsh.model.mesh.generate(2)
        cells = sum(len(tags) for tags in gmsh.model.mesh.getElements(2)[1])
        gmsh.write(str(msh))
    finally:
        gmsh.finalize()
    case = tmp_path / "case.toml"
    case.write_text(f'[mesh]\ntype = "gmsh"\nfile = "{msh}"\n[physics.heat]\nconductivity = 1\n')
    monkeypatch.setattr("app.mesh_memory.available_memory", lambda: 100_000)
    code, captured = _run_check(case, capsys)
    assert code == 2, captured.err
    need = cells * 1230
    assert f"mesh.file: '{msh}' is meshed into {cells} Triangle 3 cells" in captured.err
    assert f"need about {need / 1e3:.3g} kB of memory" in captured.err
    assert "it has 100 kB available" in captured.err


@pytest.mark.mpi
def test_two_ranks_give_one_verdict(tmp_path):
    case = tmp_path / "case.toml"
    case.write_text(
        '[mesh]\ntype = "rectangle"\ncells = [30000, 30000]\n[physics.heat]\nconductivity = 1\n'
    )
    process = scalebridge("check", case, ranks=2)
    assert process.returncode == 2, process.stderr
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in process.stderr, process.stderr
    # Both ranks on this machine: rank 0's node holds the whole mesh and rank 1's half.
    assert "need about 621 GB of memory on the node of rank 0 (2 ranks" in lines[0]


def test_a_gmsh_mesh_refined_beyond_the_memory_is_refused_before_refining(
    tmp_path, capsys, monkeypatch
):
    # gmsh meshes are counted only once made: refined 10x, the wall's mesh took 12 GB and more
    # until the kernel killed the run; the memory is cut here to refuse a small refinement
    monkeypatch.setattr("app.mesh_memory.available_memory", lambda: 5_000_000)
    case = tmp_path / "case.toml"
    wall = ROOT / "meshes" / "two_layer.geo"
    case.write_text(
        f'[mesh]\ntype = "gmsh"\nfile = "{wall}"\nsize = 0.005\nrefine = 3\n'
        "[physics.heat]\nconductivity = 1\n"
    )
    code, captured = _run_check(case, capsys)
    assert code == 2, captured.err
    cells = 722 * 4**3
    assert (
        f"mesh.refine: the mesh's 722 triangle cells, refined 3x, make {cells:.3g} cells, which "
        f"need about {cells * 230 / 1e6:.3g} MB of memory on the node of rank 0 (1 rank, 230 "
        "bytes per cell measured); it has 5 MB available. Fix: refine fewer times, or start "
        "from a coarser mesh"
    ) in captured.err
