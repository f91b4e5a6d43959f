"""The [mesh] section: built-in and gmsh meshes, named regions and boundaries, errors, MPI."""

import json
import textwrap
from pathlib import Path

import gmsh
import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI

from app.errors import CaseError
from app.mesh_spec import MeshSpec
from app.meshing import MeshData, build_mesh
from tests.conftest import ROOT, mpi_python

MESHES = ROOT / "meshes"
L1, L2, H = 0.05, 0.10, 0.05
# Exact measures of the two-layer wall: region areas and boundary lengths.
WALL_AREAS = {"insulation": L1 * H, "brick": L2 * H}
WALL_LENGTHS = {"left": H, "right": H, "bottom": L1 + L2, "top": L1 + L2, "interface": H}


def build(**fields) -> MeshData:
    return build_mesh(MeshSpec(**fields), MPI.COMM_WORLD, ROOT)


def integrate(data: MeshData, measure: str, name: str) -> float:
    """The size of a region (dx) or boundary (ds/dS) summed over all ranks."""
    msh = data.mesh
    if measure == "dx":
        dm = ufl.Measure("dx", domain=msh, subdomain_data=data.cell_tags)(data.regions[name])
    else:
        dm = ufl.Measure(measure, domain=msh, subdomain_data=data.facet_tags)(data.boundaries[name])
    one = fem.Constant(msh, 1.0)
    return msh.comm.allreduce(fem.assemble_scalar(fem.form(one * dm)), op=MPI.SUM)


def boundary_size(data: MeshData, name: str) -> float:
    return integrate(data, "dS" if name in data.interior_boundaries else "ds", name)


def case_error(**fields) -> CaseError:
    """The CaseError that building this spec raises (validation or build time)."""
    with pytest.raises(CaseError) as info:
        build(**fields)
    return info.value


# --- built-in meshes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "extent"),
    [
        ({"type": "interval", "length": ["2 cm"], "origin": [1], "cells": [8]}, [0.02]),
        ({"type": "rectangle", "length": [2, 1], "cells": [4, 2]}, [2, 1]),
        ({"type": "rectangle", "length": [2, 1], "cells": [4, 2], "cell": "quadrilateral"}, [2, 1]),
        ({"type": "box", "length": [2, 1, 0.5], "cells": [2, 2, 2]}, [2, 1, 0.5]),
        (
            {"type": "box", "length": [2, 1, 0.5], "cells": [2, 2, 2], "cell": "hexahedron"},
            [2, 1, 0.5],
        ),
    ],
    ids=["interval", "triangle", "quadrilateral", "tetrahedron", "hexahedron"],
)
def test_builtin_boundaries_have_exact_sizes(fields, extent):
    data = build(**fields)
    dim = len(extent)
    # A side normal to axis a has the size of the product of the other lengths (1 for points).
    expected = {}
    for axis, names in enumerate([("left", "right"), ("bottom", "top"), ("back", "front")][:dim]):
        side = float(np.prod([e for i, e in enumerate(extent) if i != axis]))
        expected |= dict.fromkeys(names, side)
    assert list(data.boundaries) == list(expected)
    assert list(data.boundaries.values()) == list(range(1, 2 * dim + 1))
    assert data.interior_boundaries == frozenset()
    for name, size in expected.items():
        assert boundary_size(data, name) == pytest.approx(size, rel=1e-12)
    assert data.regions == {"domain": 1}
    assert integrate(data, "dx", "domain") == pytest.approx(np.prod(extent), rel=1e-12)
    assert data.cell_tags.values.size == data.mesh.topology.index_map(dim).size_local + (
        data.mesh.topology.index_map(dim).num_ghosts
    )


def test_interval_uses_units_and_origin():
    data = build(type="interval", length=["2 cm"], origin=["1 m"], cells=[8])
    x = data.mesh.geometry.x[:, 0]
    low, high = (
        MPI.COMM_WORLD.allreduce(x.min(), MPI.MIN),
        MPI.COMM_WORLD.allreduce(x.max(), MPI.MAX),
    )
    assert (low, high) == (pytest.approx(1.0), pytest.approx(1.02))
    assert data.description == "interval 8"


def test_region_areas_and_remainder():
    data = build(
        cells=[8, 4],
        length=[2, 1],
        cell="quadrilateral",
        regions={"west": "x < 0.5", "low": "y < 0.5"},
    )
    assert data.regions == {"domain": 1, "west": 2, "low": 3}
    assert integrate(data, "dx", "west") == pytest.approx(0.5, rel=1e-12)
    assert integrate(data, "dx", "low") == pytest.approx(0.75, rel=1e-12)  # west took its part
    assert integrate(data, "dx", "domain") == pytest.approx(0.75, rel=1e-12)
    assert data.region_cells == {"domain": 12, "west": 8, "low": 12}


def test_domain_dropped_when_regions_cover_everything():
    data = build(cells=[4, 4], regions={"a": "x < 0.5", "b": "x >= 0.5"})
    assert data.regions == {"a": 2, "b": 3}
    assert integrate(data, "dx", "a") + integrate(data, "dx", "b") == pytest.approx(1.0)


def test_boundary_expressions_interior_line_and_override():
    data = build(
        cells=[4, 4],
        boundaries={"mid": "x > 0.499 and x < 0.501", "heater": "y > 0.999 and x <= 0.5"},
    )
    assert data.boundaries == {"left": 1, "right": 2, "bottom": 3, "top": 4, "mid": 5, "heater": 6}
    assert data.interior_boundaries == {"mid"}
    assert boundary_size(data, "mid") == pytest.approx(1.0, rel=1e-12)
    assert boundary_size(data, "heater") == pytest.approx(0.5, rel=1e-12)
    assert boundary_size(data, "top") == pytest.approx(0.5, rel=1e-12)  # the rest of the top
    assert data.boundary_facets["mid"] == 4


def test_boundary_taking_a_whole_side_removes_its_name():
    data = build(cells=[2, 2], boundaries={"inlet": "x < 1e-9"})
    assert "left" not in data.boundaries and data.boundaries["inlet"] == 5
    assert boundary_size(data, "inlet") == pytest.approx(1.0)


def test_summary_mentions_every_name():
    data = build(
        cells=[4, 2], regions={"hot": "x < 0.5"}, boundaries={"mid": "abs(x - 0.5) < 1e-9"}
    )
    text = data.summary()
    assert text.splitlines()[0] == "Mesh: rectangle 4x2 triangle"
    assert "16 cells (triangle, geometry order 1), 15 vertices, gdim 2" in text
    for name in ("domain", "hot", "left", "right", "bottom", "top"):
        assert f"    {name} " in text
    assert "interior (dS)  2 facets" in text and "exterior (ds)  4 facets" in text


# --- gmsh meshes -----------------------------------------------------------------------------


def check_wall(data: MeshData) -> None:
    assert data.regions == {"insulation": 1, "brick": 2}
    assert data.boundaries == {"left": 1, "right": 2, "bottom": 3, "top": 4, "interface": 5}
    assert data.interior_boundaries == {"interface"}
    for name, area in WALL_AREAS.items():
        assert integrate(data, "dx", name) == pytest.approx(area, rel=1e-12, abs=1e-15)
    for name, length in WALL_LENGTHS.items():
        assert boundary_size(data, name) == pytest.approx(length, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("file", ["meshes/two_layer.geo", "meshes/two_layer.py"])
def test_two_layer_wall(file):
    data = build(type="gmsh", file=file)
    check_wall(data)
    assert data.mesh.geometry.dim == 2
    assert data.description == f"gmsh {file}"


def test_py_parameters_and_second_order():
    data = build(
        type="gmsh",
        file="meshes/two_layer.py",
        parameters={"brick_thickness": 0.2},
        order=2,
        regions={"outer": "x > 0.15"},
    )
    assert data.mesh.geometry.cmaps[0].degree == 2
    assert data.regions == {"insulation": 1, "brick": 2, "outer": 3}
    assert integrate(data, "dx", "insulation") == pytest.approx(L1 * H, rel=1e-12)
    brick = integrate(data, "dx", "brick") + integrate(data, "dx", "outer")
    assert brick == pytest.approx(0.2 * H, rel=1e-12)
    assert boundary_size(data, "top") == pytest.approx(0.25, rel=1e-12)
    assert boundary_size(data, "interface") == pytest.approx(H, rel=1e-12)


def test_size_changes_the_cell_count():
    coarse = build(type="gmsh", file="meshes/two_layer.geo", size="2 cm")
    fine = build(type="gmsh", file="meshes/two_layer.geo", size=0.005)
    default = build(type="gmsh", file="meshes/two_layer.geo")
    counts = [sum(d.region_cells.values()) for d in (coarse, default, fine)]
    assert counts[0] < counts[1] < counts[2]
    assert fine.description == "gmsh meshes/two_layer.geo, size 0.005 m"
    check_wall(fine)


def write_wall_msh(msh_file: Path, cut_at: str | None = None) -> None:
    """The two-layer wall meshed into a .msh file (cut before ``cut_at``, if given)."""
    if MPI.COMM_WORLD.rank == 0:
        gmsh.initialize(readConfigFiles=False, interruptible=False)
        try:
            gmsh.option.setNumber("General.Terminal", 0)
            gmsh.open(str(MESHES / "two_layer.geo"))
            gmsh.model.mesh.generate(2)
            gmsh.write(str(msh_file))
        finally:
            gmsh.finalize()
        if cut_at is not None:
            text = msh_file.read_text()
            msh_file.write_text(text[: text.index(cut_at)])
    MPI.COMM_WORLD.barrier()


def test_msh_round_trip(tmp_path):
    write_wall_msh(tmp_path / "wall.msh")
    data = build_mesh(MeshSpec(type="gmsh", file="wall.msh"), MPI.COMM_WORLD, tmp_path)
    check_wall(data)
    geo = build(type="gmsh", file="meshes/two_layer.geo")
    assert data.region_cells == geo.region_cells
    assert data.boundary_facets == geo.boundary_facets


def test_msh_without_elements_says_so(tmp_path):
    """A .msh cut before its $Elements section (a geometry saved unmeshed) was reported as a
    mix of the cell types [] ."""
    write_wall_msh(tmp_path / "wall.msh", cut_at="$Elements")
    with pytest.raises(CaseError) as error:
        build_mesh(MeshSpec(type="gmsh", file="wall.msh"), MPI.COMM_WORLD, tmp_path)
    assert error.value.path == "mesh.file"
    assert "has physical surface groups but no 2D elements in them" in str(error.value)


def test_gmsh_file_found_from_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    data = build_mesh(MeshSpec(type="gmsh", file="meshes/two_layer.geo"), MPI.COMM_WORLD, tmp_path)
    assert data.regions == {"insulation": 1, "brick": 2}


def test_unnamed_groups_and_missing_boundary_groups(tmp_path):
    (tmp_path / "plain.geo").write_text(
        'SetFactory("OpenCASCADE");\nRectangle(1) = {0, 0, 0, 1, 1};\nPhysical Surface(7) = {1};\n'
        "Physical Curve(3) = {1};\nMesh.CharacteristicLengthMax = 0.5;\n"
    )
    data = build_mesh(MeshSpec(type="gmsh", file="plain.geo"), MPI.COMM_WORLD, tmp_path)
    assert data.regions == {"region_7": 7}
    assert data.boundaries == {"boundary_3": 3}
    assert boundary_size(data, "boundary_3") == pytest.approx(1.0)


TWO_BOXES = """\
import gmsh


def build(model, split=0.4):
    gmsh.option.setNumber("Mesh.CharacteristicLengthMax", 0.25)
    model.occ.addBox(0, 0, 0, split, 1, 1)
    model.occ.addBox(split, 0, 0, 1 - split, 1, 1)
    model.occ.fragment([(3, 1)], [(3, 2)])
    model.occ.synchronize()
    for tag, (x0, x1) in enumerate([(0, split), (split, 1)], start=1):
        box = (x0 - 1e-6, -1e-6, -1e-6, x1 + 1e-6, 1 + 1e-6, 1 + 1e-6)
        model.addPhysicalGroup(3, [t for _, t in model.getEntitiesInBoundingBox(*box, 3)], tag)
    glue = (split - 1e-6, -1e-6, -1e-6, split + 1e-6, 1 + 1e-6, 1 + 1e-6)
    faces = [t for _, t in model.getEntitiesInBoundingBox(*glue, 2)]
    model.addPhysicalGroup(2, faces, 9, name="glue")
"""


def test_gmsh_3d_script_with_unnamed_volumes(tmp_path):
    (tmp_path / "boxes.py").write_text(TWO_BOXES)
    spec = MeshSpec(type="gmsh", file="boxes.py", parameters={"split": 0.25})
    data = build_mesh(spec, MPI.COMM_WORLD, tmp_path)
    assert data.mesh.geometry.dim == 3 and data.mesh.topology.cell_name() == "tetrahedron"
    assert data.regions == {"region_1": 1, "region_2": 2}
    assert data.interior_boundaries == {"glue"}
    assert integrate(data, "dx", "region_1") == pytest.approx(0.25, rel=1e-12)
    assert integrate(data, "dx", "region_2") == pytest.approx(0.75, rel=1e-12)
    assert boundary_size(data, "glue") == pytest.approx(1.0, rel=1e-12)


# --- errors ----------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def gmsh_error(tmp_path: Path, name: str, text: str, **fields) -> CaseError:
    write(tmp_path, name, text)
    with pytest.raises(CaseError) as info:
        build_mesh(MeshSpec(type="gmsh", file=name, **fields), MPI.COMM_WORLD, tmp_path)
    return info.value


def test_missing_file_lists_where_it_looked():
    with pytest.raises(CaseError) as info:
        build_mesh(MeshSpec(type="gmsh", file="nope.geo"), MPI.COMM_WORLD, MESHES)
    assert info.value.path == "mesh.file"
    assert info.value.problem == f"file 'nope.geo' not found (looked in: {MESHES}, {Path.cwd()})"
    assert "case file's folder" in info.value.fix


def test_bad_geo_content(tmp_path):
    error = gmsh_error(tmp_path, "bad.geo", "Rectangle(1) = {0, 0, 0, 1, 1};\nFoo bar baz;\n")
    assert error.path == "mesh.file"
    assert "gmsh could not read 'bad.geo'" in error.problem and "line" in error.problem


def test_geo_without_physical_groups(tmp_path):
    text = 'SetFactory("OpenCASCADE");\nRectangle(1) = {0, 0, 0, 1, 1};\n'
    error = gmsh_error(tmp_path, "nogroups.geo", text)
    assert error.path == "mesh.file" and "no physical surface groups" in error.problem
    assert "Physical Surface" in error.fix


def test_geo_with_untagged_surface(tmp_path):
    text = """\
        SetFactory("OpenCASCADE");
        Rectangle(1) = {0, 0, 0, 1, 1};
        Rectangle(2) = {2, 0, 0, 1, 1};
        Physical Surface("a") = {1};
        """
    error = gmsh_error(tmp_path, "loose.geo", text)
    assert error.path == "mesh.file" and "surface(s) [2]" in error.problem


def test_py_without_build(tmp_path):
    error = gmsh_error(tmp_path, "nobuild.py", "def make(model):\n    pass\n")
    assert error.path == "mesh.file" and "has no build() function" in error.problem


def test_py_build_raises(tmp_path):
    error = gmsh_error(tmp_path, "raises.py", "def build(model):\n    raise ValueError('oops')\n")
    assert error.path == "mesh.file" and "raised ValueError: oops" in error.problem


def test_py_unknown_parameter():
    error = case_error(type="gmsh", file="meshes/two_layer.py", parameters={"thickness": 1})
    assert error.path == "mesh.parameters" and "thickness" in error.problem
    assert "brick_thickness" in error.fix and "insulation_thickness" in error.fix


@pytest.mark.parametrize(
    ("fields", "path", "words"),
    [
        ({"type": "gmsh", "file": "wall.stl"}, "mesh.file", "unknown mesh file type '.stl'"),
        ({"type": "gmsh"}, "mesh.file", "needs a file"),
        ({"file": "meshes/two_layer.geo"}, "mesh.file", 'only read for type = "gmsh"'),
        (
            {"type": "gmsh", "file": "a.geo", "cells": [4, 4]},
            "mesh.cells",
            "only read for built-in",
        ),
        ({"type": "gmsh", "file": "a.msh", "size": 0.1}, "mesh.size", "already meshed"),
        ({"type": "gmsh", "file": "a.geo", "order": 3}, "mesh.order", "1 or 2"),
        ({"type": "gmsh", "file": "a.geo", "parameters": {"a": 1}}, "mesh.parameters", ".py"),
        ({"type": "rectangle", "length": [1]}, "mesh.length", "needs 2 value(s)"),
        ({"type": "box", "origin": [0, 0]}, "mesh.origin", "needs 3 value(s)"),
        ({"type": "interval", "cells": [0]}, "mesh.cells", "at least 1"),
        ({"type": "rectangle", "length": [1, "-2 cm"]}, "mesh.length.1", "positive, got '-2 cm'"),
        ({"type": "rectangle", "length": [1, "2 kg"]}, "mesh.length.1", "m was expected"),
        ({"type": "rectangle", "cell": "hexahedron"}, "mesh.cell", "cannot have hexahedron"),
        ({"type": "interval", "order": 2}, "mesh.order", "order 1"),
    ],
)
def test_spec_errors(fields, path, words):
    error = case_error(**fields)
    assert error.path == path
    assert words in error.problem


def test_region_that_selects_nothing_gives_the_extent():
    error = case_error(length=[2, 1], regions={"far": "x > 5"})
    assert error.path == "mesh.regions.far" and "selects no cells" in error.problem
    assert "x in [0, 2], y in [0, 1]" in error.fix


def test_boundary_that_selects_nothing_and_shadowed_region():
    error = case_error(cells=[2, 2], boundaries={"gap": "x > 0.6 and x < 0.9"})
    assert error.path == "mesh.boundaries.gap" and "selects no facets" in error.problem
    error = case_error(cells=[4, 4], regions={"half": "x < 0.5", "quarter": "x < 0.25"})
    assert error.path == "mesh.regions.quarter" and "earlier regions already took" in error.problem


def test_unknown_name_in_a_condition():
    error = case_error(type="box", regions={"r": "q < 1"})
    assert error.path == "mesh.regions.r"
    assert "unknown name 'q'" in error.problem and "x, y, z" in error.problem
    error = case_error(type="rectangle", regions={"r": "z < 1"})
    assert "unknown name 'z'" in error.problem and "x, y" in error.fix


def test_gmsh_condition_errors_use_the_mesh_coordinates():
    error = case_error(type="gmsh", file="meshes/two_layer.geo", boundaries={"b": "z > 1"})
    assert error.path == "mesh.boundaries.b" and "unknown name 'z'" in error.problem
    error = case_error(type="gmsh", file="meshes/two_layer.geo", regions={"r": "sqrt(x - 0.1) > 0"})
    assert error.path == "mesh.regions.r" and "cannot evaluate" in error.problem


def test_names_cannot_be_reused():
    error = case_error(regions={"domain": "x < 0.5"})
    assert error.path == "mesh.regions.domain" and "already a region" in error.problem
    error = case_error(type="gmsh", file="meshes/two_layer.geo", boundaries={"top": "y > 0.049"})
    assert error.path == "mesh.boundaries.top" and "already a boundary" in error.problem


def test_value_is_not_a_condition():
    error = case_error(regions={"r": "x + 1"})
    assert error.path == "mesh.regions.r" and "not a condition" in error.problem


def test_boundary_mixing_exterior_and_interior_facets():
    error = case_error(cells=[2, 2], boundaries={"cross": "x > 0.49 and x < 0.51 or y < 1e-9"})
    assert error.path == "mesh.boundaries.cross" and "exterior" in error.problem


# --- MPI -------------------------------------------------------------------------------------

SCRIPT = """\
import json, sys
import app
import ufl
from dolfinx import fem
from mpi4py import MPI
from app.meshing import build_mesh
from app.mesh_spec import MeshSpec

data = build_mesh(MeshSpec(type="gmsh", file="meshes/two_layer.geo"), MPI.COMM_WORLD, {root!r})
sizes = {{}}
for name, tag in data.regions.items():
    dx = ufl.Measure("dx", domain=data.mesh, subdomain_data=data.cell_tags)
    sizes[name] = fem.assemble_scalar(fem.form(fem.Constant(data.mesh, 1.0) * dx(tag)))
for name, tag in data.boundaries.items():
    kind = "dS" if name in data.interior_boundaries else "ds"
    dm = ufl.Measure(kind, domain=data.mesh, subdomain_data=data.facet_tags)
    sizes[name] = fem.assemble_scalar(fem.form(fem.Constant(data.mesh, 1.0) * dm(tag)))
sizes = {{k: MPI.COMM_WORLD.allreduce(v, op=MPI.SUM) for k, v in sizes.items()}}
local_cells = data.mesh.topology.index_map(2).size_local
summaries = MPI.COMM_WORLD.gather(data.summary())
cells = MPI.COMM_WORLD.gather(local_cells)
if MPI.COMM_WORLD.rank == 0:
    print(json.dumps({{"sizes": sizes, "summaries": summaries, "cells": cells}}))
"""


@pytest.mark.mpi
def test_two_ranks_match_serial(tmp_path):
    script = tmp_path / "wall.py"
    script.write_text(SCRIPT.format(root=str(ROOT)))
    run = mpi_python(script, ranks=2, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert all(n > 0 for n in result["cells"])  # both ranks own part of the mesh
    serial = build(type="gmsh", file="meshes/two_layer.geo")
    for name, size in (WALL_AREAS | WALL_LENGTHS).items():
        assert result["sizes"][name] == pytest.approx(size, rel=1e-12, abs=1e-15)
        measure = "dx" if name in WALL_AREAS else None
        serial_size = integrate(serial, "dx", name) if measure else boundary_size(serial, name)
        assert result["sizes"][name] == pytest.approx(serial_size, rel=1e-12, abs=1e-15)
    assert result["summaries"] == [serial.summary()] * 2


# Each rank reports what it raised; rank 0 prints them all (lines printed by several ranks at once
# can interleave mid-line in mpirun's output).
BROKEN = """\
import json
import app
from mpi4py import MPI
from app.errors import CaseError
from app.meshing import build_mesh
from app.mesh_spec import MeshSpec

try:
    build_mesh(MeshSpec(type="gmsh", file="broken.geo"), MPI.COMM_WORLD, {folder!r})
    message = "no error"
except CaseError as exc:
    message = f"rank {{MPI.COMM_WORLD.rank}}: {{exc.path}}: {{exc.problem}}"
messages = MPI.COMM_WORLD.gather(message)
if MPI.COMM_WORLD.rank == 0:
    print(json.dumps(messages), flush=True)
"""


@pytest.mark.mpi
def test_gmsh_error_reaches_every_rank(tmp_path):
    write(tmp_path, "broken.geo", "Rectangle(1) = {0, 0, 0, 1, 1};\nFoo bar;\n")
    script = tmp_path / "broken.py"
    script.write_text(BROKEN.format(folder=str(tmp_path)))
    run = mpi_python(script, ranks=2, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = json.loads(run.stdout.strip().splitlines()[-1])
    assert [line[:7] for line in lines] == ["rank 0:", "rank 1:"]
    assert all("mesh.file: gmsh could not read 'broken.geo'" in line for line in lines)
