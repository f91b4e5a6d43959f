"""A gmsh mesh with two regions of different conductivity (cases/two_layer_wall.toml).

Steady conduction through a layered wall has a piecewise-linear exact solution; P1 elements on a
mesh conforming to the interface reproduce it, so the profile, the boundary heat flows and the
flux on both sides of the interface are all checked against the closed form.
"""

import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI

from app.simulation import Simulation

K_INSULATION, K_BRICK = 0.04, 0.8
L1, L2, HEIGHT = 0.05, 0.10, 0.05
T_IN, T_OUT = 293.15, 268.15
Q = (T_IN - T_OUT) / (L1 / K_INSULATION + L2 / K_BRICK)  # W/m^2


def exact(x: np.ndarray) -> np.ndarray:
    interface = T_IN - Q * L1 / K_INSULATION
    return np.where(x <= L1, T_IN - Q * x / K_INSULATION, interface - Q * (x - L1) / K_BRICK)


@pytest.fixture(scope="module")
def wall(request):
    cases = request.config.rootpath / "cases"
    sim = Simulation.from_case(cases / "two_layer_wall.toml")
    return sim, sim.run()


def test_regions_come_from_gmsh_physical_names(wall):
    sim, _ = wall
    assert set(sim.mesh_data.regions) == {"insulation", "brick"}
    assert {"left", "right", "top", "bottom", "interface"} <= set(sim.mesh_data.boundaries)
    assert sim.mesh_data.interior_boundaries == {"interface"}


def test_profile_matches_the_closed_form(wall):
    _, result = wall
    T = result.fields["temperature"]
    x = T.function_space.tabulate_dof_coordinates()[:, 0]
    error = np.abs(T.x.array - exact(x)).max(initial=0.0)
    error = MPI.COMM_WORLD.allreduce(error, op=MPI.MAX)
    assert error / (T_IN - T_OUT) < 5e-3
    assert error < 1e-8  # P1 contains the exact solution


def test_boundary_heat_flows(wall):
    _, result = wall
    q = result.quantities
    flow = Q * HEIGHT  # W per metre of depth
    assert q["heat_flow_left_W_per_m"][-1] == pytest.approx(-flow, rel=5e-3)
    assert q["heat_flow_right_W_per_m"][-1] == pytest.approx(flow, rel=5e-3)
    assert q["heat_flow_top_W_per_m"][-1] == 0.0  # insulated


def test_flux_is_continuous_across_the_interface(wall):
    sim, result = wall
    ctx = sim.context("heat")
    T = result.fields["temperature"]
    k = ctx.coefficient(sim.physics["heat"].params.conductivity)
    dS = ctx.dS("interface")
    # The x-component of -k grad T, taken from each side of the interface (x = L1).
    sides = {}
    for side in ("+", "-"):
        form = fem.form(-k(side) * T.dx(0)(side) * dS)
        sides[side] = MPI.COMM_WORLD.allreduce(fem.assemble_scalar(form), op=MPI.SUM)
    assert sides["+"] == pytest.approx(Q * HEIGHT, rel=5e-3)
    assert sides["-"] == pytest.approx(sides["+"], rel=1e-9)
    # And the conductivities on either side really differ (the test is not vacuous).
    jump = fem.form(abs(k("+") - k("-")) * dS)
    assert MPI.COMM_WORLD.allreduce(fem.assemble_scalar(jump), op=MPI.SUM) == pytest.approx(
        (K_BRICK - K_INSULATION) * HEIGHT
    )
    dx = ufl.dx(T.function_space.mesh)
    area = MPI.COMM_WORLD.allreduce(fem.assemble_scalar(fem.form(1.0 * dx)), op=MPI.SUM)
    assert area == pytest.approx((L1 + L2) * HEIGHT)
