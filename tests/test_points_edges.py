"""Conditions on points and edges: point supports, line constraints, reactions there, bad input.

A body under tractions alone is held by supports at points and along an edge that remove its
rigid-body motions and nothing else; with a self-equilibrated load they carry no force and the
displacement is the free body's closed form (linear, so P1 reproduces it to round-off), with the
rigid motion the supports fix. With an unbalanced load the one support in the load's direction
carries it all. NAFEMS LE10 is held by the mid-plane line of its outer face (an edge set of a
gmsh mesh). Heat held at a point gives the point's reaction as its heat flow.
"""

import json
import math

import numpy as np
import pytest
from dolfinx.mesh import entities_to_geometry
from mpi4py import MPI

from app.errors import CaseError
from app.expressions import parse
from app.simulation import Simulation
from tests.conftest import assert_same_quantities, mpi_python, runs_on_ranks, scalebridge
from tests.test_mechanics import values_at

E, NU, S = 2e5, 0.3, 10.0  # Pa, -, Pa: a soft solid and a small traction
ORIGIN, LENGTH = [1.0, -0.5, 2.0], [2.0, 1.0, 0.5]
CORNER = "x == 1 and y == -0.5 and z == 2"  # the origin of the block: the anchor


def block(boundaries: dict, mesh: dict | None = None) -> dict:
    """The 3D block anchored at its origin corner, its x axis held in y and z, and one more
    point held in z: the six rigid-body motions and nothing else."""
    points = {"anchor": CORNER, "roller": "x == 1 and y == 0.5 and z == 2"}
    return {
        "mesh": {
            "type": "box",
            "origin": ORIGIN,
            "length": LENGTH,
            "cells": [4, 2, 2],
            "points": points,
            "edges": {"axis": "y == -0.5 and z == 2"},
        }
        | (mesh or {}),
        "physics": {
            "mechanics": {
                "youngs_modulus": E,
                "poisson_ratio": NU,
                "boundaries": {
                    "anchor": {"type": "fixed"},
                    "axis": {"type": "displacement", "y": 0, "z": 0},
                    "roller": {"type": "displacement", "z": 0},
                }
                | boundaries,
            }
        },
    }


def nodal_error(result, exact) -> float:
    """Largest difference between the displacement's nodal values and ``exact(x)``."""
    u = result.fields["displacement"]
    x = u.function_space.tabulate_dof_coordinates()
    gdim = u.function_space.mesh.geometry.dim
    local = np.abs(u.x.array.reshape(-1, gdim) - exact(x[:, :gdim])).max(initial=0.0)
    return MPI.COMM_WORLD.allreduce(local, op=MPI.MAX)


def reactions(quantities: dict) -> dict[str, float]:
    return {k: v[-1] for k, v in quantities.items() if k.startswith("reaction_")}


# Supports that remove rigid-body motion ------------------------------------------------------
def test_block_on_point_and_edge_supports_is_the_free_body():
    """Balanced tractions +-S on the x faces: uniaxial stress; no support carries anything."""
    loads = {
        "right": {"type": "traction", "value": [S, 0, 0]},
        "left": {"type": "traction", "value": [-S, 0, 0]},
    }
    sim = Simulation.from_case(block(loads))
    result = sim.run()
    assert sim.mesh_data.point_vertices == {"anchor": 1, "roller": 1}
    assert sim.mesh_data.edge_counts == {"axis": 4}  # the x axis of the block: 4 cell edges
    force = S * LENGTH[1] * LENGTH[2]
    found = reactions(result.quantities)
    assert set(found) == {
        "reaction_anchor_x_N",
        "reaction_anchor_y_N",
        "reaction_anchor_z_N",
        "reaction_axis_y_N",
        "reaction_axis_z_N",
        "reaction_roller_z_N",
    }
    assert all(abs(value) < 1e-12 * force for value in found.values()), found
    assert result.quantities["load_right_x_N"][-1] == pytest.approx(force, rel=1e-12)

    def free_body(x: np.ndarray) -> np.ndarray:  # relative to the anchor, which stays put
        strain = S / E * np.array([1.0, -NU, -NU])
        return (x - np.array(ORIGIN)) * strain

    assert nodal_error(result, free_body) < 1e-10 * S / E * max(LENGTH)


def test_the_one_support_along_a_load_carries_it():
    """Traction on the right face only: the anchor is the only x support, so it carries the whole
    load; nothing holds y and z against a load, so those reactions vanish."""
    sim = Simulation.from_case(block({"right": {"type": "traction", "value": [S, 0, 0]}}))
    found = reactions(sim.run().quantities)
    force = S * LENGTH[1] * LENGTH[2]
    assert found.pop("reaction_anchor_x_N") == pytest.approx(-force, rel=1e-10)
    for axis in "yz":
        total = sum(v for k, v in found.items() if k.endswith(f"_{axis}_N"))
        assert abs(total) < 1e-10 * force, found


PIN_AND_SLIDE = {"pin": "x == 0 and y == 0", "slide": "x == 2 and y == 0"}
SUPPORTS = {"pin": {"type": "fixed"}, "slide": {"type": "displacement", "y": 0}}


def plate(boundaries: dict, points: dict = PIN_AND_SLIDE, supports: dict = SUPPORTS) -> dict:
    """A 2 x 1 plate in plane stress, by default pinned at (0, 0) and held in y at (2, 0)."""
    return {
        "mesh": {"type": "rectangle", "length": [2.0, 1.0], "cells": [8, 4], "points": points},
        "physics": {
            "mechanics": {
                "formulation": "plane_stress",
                "youngs_modulus": E,
                "poisson_ratio": NU,
                "boundaries": supports | boundaries,
            }
        },
    }


BALANCED = {
    "right": {"type": "traction", "value": [S, 0]},
    "left": {"type": "traction", "value": [-S, 0]},
}


def test_plate_fixed_at_one_point_in_both_components_and_at_another_in_one():
    result = Simulation.from_case(plate(BALANCED)).run()
    found = reactions(result.quantities)
    assert set(found) == {
        "reaction_pin_x_N_per_m",
        "reaction_pin_y_N_per_m",
        "reaction_slide_y_N_per_m",
    }
    assert all(abs(value) < 1e-12 * S for value in found.values()), found
    expected = S / E * np.array([1.0, -NU])  # plane stress: eps_yy = -nu sigma/E
    assert nodal_error(result, lambda x: x * expected) < 1e-10 * S / E


def test_equality_in_a_condition_forgives_the_round_off_of_coordinates():
    """0.1 + 0.2 is 0.30000000000000004: a vertex there still meets 'x == 0.3'."""
    assert parse("x == 0.3").evaluate({"x": 0.1 + 0.2}) is False
    assert parse("x == 0.3").evaluate({"x": 0.1 + 0.2}, tolerance=1e-12) is True
    case = {
        "mesh": {
            "type": "rectangle",
            "origin": [0.1, 0.0],
            "length": [0.2, 1.0],
            "cells": [2, 1],
            "points": {"corner": "x == 0.3 and y == 0"},
            "boundaries": {"side": "x >= 0.3"},
        },
        "physics": {"heat": {}},
    }
    sim = Simulation.from_case(case)
    sim.build()
    assert sim.mesh_data.point_vertices == {"corner": 1}
    assert sim.mesh_data.boundary_facets["side"] == 1


# Reactions of other physics at points, and fields on a region ---------------------------------
def test_heat_held_at_a_point_reports_its_reaction_as_heat_flow():
    """Steady heat with a source and insulated sides, held at 300 K at one point: all the heat
    leaves through that point (the discrete balance closes exactly)."""
    case = {
        "mesh": {"type": "rectangle", "cells": [6, 6], "points": {"sink": "x == 0.5 and y == 0.5"}},
        "physics": {
            "heat": {"source": 1e3, "boundaries": {"sink": {"type": "temperature", "value": 300}}}
        },
    }
    q = Simulation.from_case(case).run().quantities
    assert q["heat_flow_sink_W_per_m"][-1] == pytest.approx(1e3, rel=1e-10)
    assert q["heat_generated_W_per_m"][-1] == pytest.approx(1e3, rel=1e-12)
    assert q["min_temperature_K"][-1] == pytest.approx(300.0, rel=1e-12)


def test_point_on_an_instance_placed_on_a_region():
    """heat on the left half only (its own submesh), held at a point of that half."""
    case = {
        "mesh": {
            "type": "rectangle",
            "cells": [8, 4],
            "regions": {"core": "x < 0.5"},
            "points": {"sink": "x == 0.25 and y == 0.5"},
        },
        "physics": {
            "heat": {
                "domain": "core",
                "source": 1e3,
                "boundaries": {"sink": {"type": "temperature", "value": 300}},
            }
        },
    }
    result = Simulation.from_case(case).run()
    q = result.quantities
    assert q["heat_flow_sink_W_per_m"][-1] == pytest.approx(500.0, rel=1e-10)  # 1e3 W/m^3 * 0.5
    assert values_at(result.fields["temperature"], [[0.25, 0.5]])[0, 0] == pytest.approx(300.0)


# NAFEMS LE10: a line constraint from a gmsh mesh ---------------------------------------------
PRESSURE = 1e6
AREA = math.pi / 4 * (3.25 * 2.75 - 2.0 * 1.0)  # the quarter plate's top face


def stress_yy_at(result, sim, point: str) -> float:
    """sigma_yy at a named vertex: the mean of the cells' stress there (DG1, P2 displacement)."""
    data = sim.mesh_data
    vertex = data.vertex_tags.find(data.points[point])
    stress = result.fields["stress"]
    msh = stress.function_space.mesh
    local = []
    if len(vertex):
        msh.topology.create_connectivity(0, 3)
        x = msh.geometry.x[entities_to_geometry(msh, 0, vertex[:1])[0, 0]]
        owned = msh.topology.index_map(3).size_local
        cells = msh.topology.connectivity(0, 3).links(vertex[0])
        local = [stress.eval(x, np.array([c], dtype=np.int32))[4] for c in cells if c < owned]
    values = [v for part in MPI.COMM_WORLD.allgather(local) for v in part]
    return float(np.mean(values))


def test_nafems_le10_mid_plane_line_constraint(cases):
    """sigma_yy at D = -5.38 MPa (NAFEMS); measured -5.39 at size 0.3, -5.38 at 0.15, -5.35 at
    0.1 and -5.34 at 0.07 (quadratic tetrahedra). The line carries the whole load."""
    sim = Simulation.from_case(cases / "nafems_le10.toml", overrides={"mesh.size": 0.3})
    result = sim.run()
    assert list(sim.mesh_data.edges) == ["midline"] and list(sim.mesh_data.points) == ["D"]
    q = {k: v[-1] for k, v in result.quantities.items()}
    assert q["reaction_midline_z_N"] == pytest.approx(-q["load_top_z_N"], rel=1e-9)
    assert q["load_top_z_N"] == pytest.approx(-PRESSURE * AREA, rel=1e-5)  # curved cells
    assert q["reaction_outer_x_N"] == pytest.approx(-q["reaction_symmetry_x_x_N"], rel=1e-9)
    assert stress_yy_at(result, sim, "D") == pytest.approx(-5.38e6, rel=0.02)


@pytest.mark.mpi
def test_nafems_le10_on_two_ranks(tmp_path):
    """The gmsh edge set reaches every rank that holds a piece of the line."""
    serial, parallel = runs_on_ranks("cases/nafems_le10.toml", tmp_path, "--set", "mesh.size=0.3")
    # The in-plane load components are round-off of a 5 MN load on either side.
    assert_same_quantities(serial, parallel, floor=1e-9 * PRESSURE * AREA)
    assert parallel["reaction_midline_z_N"][-1] == pytest.approx(PRESSURE * AREA, rel=1e-5)


def test_gmsh_points_of_a_2d_mesh_and_of_a_1d_mesh(tmp_path):
    """A physical point of a 2D mesh is a point set; of a 1D mesh, a boundary (its facets)."""
    (tmp_path / "square.geo").write_text(
        'SetFactory("OpenCASCADE");\nRectangle(1) = {0, 0, 0, 1, 1};\n'
        'Physical Surface("plate") = {1};\nPhysical Curve("bottom") = {1};\n'
        'Physical Point("pin") = {1};\nMesh.CharacteristicLengthMax = 0.5;\n'
    )
    (tmp_path / "line.geo").write_text(
        "Point(1) = {0, 0, 0};\nPoint(2) = {1, 0, 0};\nLine(1) = {1, 2};\n"
        'Physical Curve("bar") = {1};\nPhysical Point("end") = {2};\n'
    )
    heat = {"boundaries": {"pin": {"type": "temperature", "value": 300}}}
    square = {"mesh": {"type": "gmsh", "file": "square.geo"}, "physics": {"heat": heat}}
    sim = Simulation.from_case(square, base_dir=tmp_path)
    sim.build()
    assert sim.mesh_data.point_vertices == {"pin": 1}
    assert "heat_flow_pin_W_per_m" in sim.quantities
    line = {"mesh": {"type": "gmsh", "file": "line.geo"}, "physics": {"heat": {}}}
    sim = Simulation.from_case(line, base_dir=tmp_path)
    sim.build()
    assert "end" in sim.mesh_data.boundaries and not sim.mesh_data.points


# Bad input ----------------------------------------------------------------------------------
def case_error(case: dict) -> CaseError:
    with pytest.raises(CaseError) as info:
        Simulation.from_case(case).build()
    return info.value


def test_a_point_set_that_meets_no_vertex():
    error = case_error(plate(BALANCED, points={"pin": "x == 0.3 and y == 0.7", "slide": "x == 2"}))
    assert error.path == "mesh.points.pin"
    assert error.problem == "'x == 0.3 and y == 0.7' selects no vertices"
    assert "x in [0, 2], y in [0, 1]" in error.fix


def test_a_traction_on_a_point_set_is_refused():
    case = plate(BALANCED | {"pin": {"type": "traction", "value": [1, 0]}})
    error = case_error(case)
    assert error.path == "physics.mechanics.boundaries.pin"
    assert "'pin' is a point set" in error.problem and "no length or area" in error.problem
    assert "left, right" in error.fix


def test_edges_need_a_3d_mesh():
    case = plate(BALANCED)
    case["mesh"]["edges"] = {"line": "y == 0"}
    error = case_error(case)
    assert error.path == "mesh.edges.line" and "edge sets are for 3D meshes" in error.problem


def test_point_set_names_are_new_names():
    error = case_error(plate(BALANCED, points={"left": "x == 0 and y == 0"}))
    assert error.path == "mesh.points.left"
    assert "already the name of a boundary" in error.problem
    error = case_error(block({}, {"edges": {"anchor": "y == -0.5 and z == 2"}}))
    assert error.path == "mesh.edges.anchor" and "point set" in error.problem


def test_an_unknown_support_lists_the_point_sets():
    case = plate(BALANCED)
    case["physics"]["mechanics"]["boundaries"]["pinn"] = {"type": "fixed"}
    error = case_error(case)
    assert error.path == "physics.mechanics.boundaries.pinn"
    assert "unknown boundary 'pinn' (did you mean 'pin'?)" in error.problem
    assert "point sets: pin, slide" in error.problem


def test_cli_reports_an_empty_point_set_with_exit_code_2(tmp_path):
    (tmp_path / "case.toml").write_text(
        '[mesh]\ntype = "rectangle"\npoints.anchor = "x == 5"\n[physics.heat]\n'
    )
    process = scalebridge("check", tmp_path / "case.toml")
    assert process.returncode == 2
    assert "mesh.points.anchor: 'x == 5' selects no vertices" in process.stderr
    assert "Traceback" not in process.stderr


# Parallel -----------------------------------------------------------------------------------
# A plate pulled on its right side, held at a line of points across its middle (x = 1), where
# two ranks split it: those vertices are owned by one rank and ghosts on the other.
PARALLEL = """\
import json, sys
import app
import numpy as np
from mpi4py import MPI
from app.simulation import Simulation

case = json.loads(sys.argv[1])
sim = Simulation.from_case(case)
result = sim.run()
data, u = sim.mesh_data, result.fields["displacement"]
vertices = data.vertex_tags.find(data.points["pin"])
owned = data.mesh.topology.index_map(0).size_local
bc = sim.groups[0].system.bcs
fixed = np.unique(np.concatenate([b.dof_indices()[0] for b in bc]))  # unrolled (x and y)
size = u.function_space.dofmap.index_map.size_local * 2
held = u.x.array[fixed]
report = {
    "owned": int((vertices < owned).sum()),
    "ghosts": int((vertices >= owned).sum()),
    "fixed_owned": int((fixed < size).sum()),
    "largest_fixed": float(np.abs(held).max(initial=0.0)),
    "reactions": {k: float(v[-1]) for k, v in result.quantities.items()},
}
reports = MPI.COMM_WORLD.gather(report)
if MPI.COMM_WORLD.rank == 0:
    print(json.dumps(reports))
"""


@pytest.mark.mpi
def test_points_shared_by_two_ranks_are_fixed_once(tmp_path):
    load = {"right": {"type": "traction", "value": [S, 0]}}
    case = plate(load, points={"pin": "x == 1"}, supports={"pin": {"type": "fixed"}})
    script = tmp_path / "points.py"
    script.write_text(PARALLEL)
    process = mpi_python(script, json.dumps(case), ranks=2, timeout=300)
    assert process.returncode == 0, process.stderr
    reports = json.loads(process.stdout.strip().splitlines()[-1])
    assert sum(r["owned"] for r in reports) == 5  # the vertices of x = 1, each owned once
    assert any(r["ghosts"] for r in reports)  # and some held as ghosts by the other rank
    assert sum(r["fixed_owned"] for r in reports) == 10  # x and y of each vertex, once
    assert all(r["largest_fixed"] == 0.0 for r in reports)  # ghost copies are held too
    serial = Simulation.from_case(case).run().quantities
    for name, value in reports[0]["reactions"].items():
        assert value == pytest.approx(serial[name][-1], rel=1e-10, abs=1e-12 * S), name
    assert serial["reaction_pin_x_N_per_m"][-1] == pytest.approx(-S, rel=1e-10)
