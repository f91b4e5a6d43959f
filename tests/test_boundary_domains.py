"""Instances on a boundary's mesh (``domain = "<boundary>"``): coordinates, constants, regions
inherited from the parent, the boundary's own end points, and fields on part of it.

The main check is a 1D problem solved on the top edge of a rectangle (x in [0, 2]):

    -(k u')' = f  on the top line,   u(0) = 0 at the end on 'left',   k u'(2) = g at 'right'

with k = 1 on the left half (region 'a') and k = 4 on the right half ('b'), f = 1, g = 1. Then
k u' = g + (2 - x), so u = 3x - x^2/2 on [0, 1] and u(1) + (3(x - 1) - (x^2 - 1)/2)/4 beyond.
"""

import numpy as np
import pytest
import tomli_w
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI

from app.domain_forms import ConstantAliases, localised
from app.errors import CaseError
from app.simulation import Simulation
from tests.conftest import assert_same_quantities, runs_on_ranks


def _unit_square_top():
    msh = mesh.create_unit_square(MPI.COMM_WORLD, 4, 4, mesh.CellType.quadrilateral)
    tdim = msh.topology.dim
    msh.topology.create_connectivity(tdim - 1, tdim)
    top = mesh.locate_entities_boundary(msh, tdim - 1, lambda x: np.isclose(x[1], 1))
    tags = mesh.meshtags(msh, tdim - 1, top, np.full(len(top), 4, dtype=np.int32))
    line, cell_map, _, _ = mesh.create_submesh(msh, tdim - 1, top)
    return msh, tags, line, cell_map


def _integral(form, maps):
    local = fem.assemble_scalar(fem.form(form, entity_maps=maps))
    return MPI.COMM_WORLD.allreduce(local, op=MPI.SUM)


def test_a_boundary_coordinate_inside_a_parent_integral_is_the_parent_coordinate():
    """DOLFINx reads the x of a boundary's submesh inside an integral over the parent's facets
    as if the parent were its mesh: 0.375 instead of 0.5 for the integral of x over the top of
    the unit square. Localised, the integral reads the parent's coordinate."""
    msh, tags, line, cell_map = _unit_square_top()
    ds = ufl.Measure("ds", domain=msh, subdomain_data=tags)
    form = ufl.SpatialCoordinate(line)[0] * ds(4)
    assert _integral(form, [cell_map]) == pytest.approx(0.375)  # the trap
    assert _integral(localised(form, ConstantAliases()), [cell_map]) == pytest.approx(0.5)


def test_a_parent_constant_inside_a_boundary_integral_becomes_an_alias():
    """A parent constant inside an integral over the submesh makes FFCx fail; localised, it is
    an alias on the submesh sharing the value, so a later change of the constant reaches it."""
    msh, _, line, cell_map = _unit_square_top()
    rate = fem.Constant(msh, 2.0)
    x = ufl.SpatialCoordinate(line)[0]
    form = localised(rate * x * ufl.dx(domain=line), ConstantAliases())
    compiled = fem.form(form, entity_maps=[cell_map])
    assert MPI.COMM_WORLD.allreduce(fem.assemble_scalar(compiled), op=MPI.SUM) == pytest.approx(1)
    rate.value = 6.0
    assert MPI.COMM_WORLD.allreduce(fem.assemble_scalar(compiled), op=MPI.SUM) == pytest.approx(3)


def profile_case() -> dict:
    """Heat on a unit square, fed through its top by a flux given as a field of the top's own
    mesh: g = x there (a prescribed field of an instance placed on the boundary)."""
    return {
        "mesh": {"type": "rectangle", "cells": [4, 4], "cell": "quadrilateral"},
        "physics": {
            "profile": {
                "type": "prescribed",
                "domain": "top",
                "fields": {"g": {"units": "W/m^2", "value": "x"}},
            },
            "heat": {
                "conductivity": 1.0,
                "boundaries": {
                    "bottom": {"type": "temperature", "value": 0.0},
                    "top": {"type": "flux", "value": "g"},
                },
            },
        },
    }


def test_a_field_of_a_boundary_instance_feeds_a_parent_integral():
    result = Simulation.from_case(profile_case()).run()
    # all the heat entering through the top (int x ds = 1/2) leaves through the bottom
    assert result.quantities["heat_flow_bottom_W_per_m"][-1] == pytest.approx(0.5, rel=1e-10)
    assert result.fields["g"].function_space.mesh.name == "top"


def line_case(cells: int = 8) -> dict:
    """The 1D problem of the module docstring on the top line of a [0, 2] x [0, 1] mesh whose
    halves are the regions 'a' and 'b'."""
    return {
        "mesh": {
            "type": "rectangle",
            "length": [2.0, 1.0],
            "cells": [cells, 2],
            "cell": "quadrilateral",
            "regions": {"a": "x < 1", "b": "x > 1"},
        },
        "physics": {
            "line": {
                "type": "heat",
                "domain": "top",
                "conductivity": {"a": 1.0, "b": 4.0},
                "source": 1.0,
                "boundaries": {
                    "left": {"type": "temperature", "value": 0.0},
                    "right": {"type": "flux", "value": 1.0},
                },
            }
        },
    }


def exact_line(x: np.ndarray) -> np.ndarray:
    inner = 3 * x - x**2 / 2
    return np.where(x <= 1, inner, 2.5 + (3 * (x - 1) - (x**2 - 1) / 2) / 4)


def test_an_instance_on_a_boundary_solves_on_its_own_mesh():
    """dx over the top line with the parent's regions (k by region), ds at its ends named after
    the parent's sides, quantities per unit area (a 1D domain)."""
    sim = Simulation.from_case(line_case())
    result = sim.run()
    u = result.fields["temperature"]
    assert u.function_space.mesh.topology.dim == 1
    x = u.function_space.tabulate_dof_coordinates()[:, 0]
    # P1 on a piecewise-quadratic solution with a kink at a node: nodally exact
    assert np.abs(u.x.array - exact_line(x)).max() < 1e-10
    q = {k: v[-1] for k, v in result.quantities.items()}
    # what enters at 'right' (1) and the source (2) leaves through 'left'
    assert q["line_heat_flow_left_W_per_m2"] == pytest.approx(3.0, rel=1e-10)
    assert q["line_heat_generated_W_per_m2"] == pytest.approx(2.0, rel=1e-10)
    assert sim.context("line").boundaries == ["left", "right"]
    assert sim.context("line").regions == ["a", "b"]


def test_an_instance_acts_on_part_of_a_boundary():
    """``regions = ["b"]``: the line problem on the right half only (u = 0 elsewhere); ends
    are those of the part ('right'), and 'left' is not a boundary of it."""
    case = line_case()
    line = case["physics"]["line"]
    line["regions"] = ["b"]
    line["conductivity"] = {"b": 4.0}
    line["boundaries"] = {"right": {"type": "temperature", "value": 2.0}}
    result = Simulation.from_case(case).run()
    u = result.fields["temperature"]
    x = u.function_space.tabulate_dof_coordinates()[:, 0]
    # -4 u'' = 1 on [1, 2] with u(2) = 2 and no flux at x = 1 (the part's own end)
    exact = 2.0 + ((2 - 1) ** 2 - (x - 1) ** 2) / 8
    inside = x > 1 + 1e-12
    assert np.abs(u.x.array[inside] - exact[inside]).max() < 1e-10
    assert np.abs(u.x.array[x < 1 - 1e-12]).max() == 0.0
    line["boundaries"] = {"left": {"type": "temperature", "value": 2.0}}
    with pytest.raises(CaseError, match=r"physics\.line\.boundaries\.left.*unknown boundary"):
        Simulation.from_case(case).build()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("domain", "topp", r"physics\.line\.domain: unknown region or boundary 'topp'"),
        ("regions", ["c"], r"physics\.line\.regions\[0\]: unknown region 'c' of boundary 'top'"),
    ],
)
def test_bad_placements_name_the_case_path(key, value, message):
    case = line_case()
    case["physics"]["line"][key] = value
    with pytest.raises(CaseError, match=message):
        Simulation.from_case(case).build()


def test_regions_without_a_boundary_domain_are_refused():
    case = line_case()
    del case["physics"]["line"]["domain"]
    case["physics"]["line"]["regions"] = ["a"]
    with pytest.raises(CaseError, match=r"physics\.line\.regions: regions are read for an"):
        Simulation.from_case(case).build()


def test_the_line_problem_on_two_ranks(tmp_path):
    path = tmp_path / "line.toml"
    path.write_text(tomli_w.dumps(line_case(16)))
    serial, parallel = runs_on_ranks(path, tmp_path)
    assert_same_quantities(serial, parallel, rtol=1e-10)
    assert serial["line_heat_flow_left_W_per_m2"][-1] == pytest.approx(3.0, rel=1e-10)
